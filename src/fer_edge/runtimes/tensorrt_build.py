"""Build TensorRT engines from ONNX on the target GPU, and cache them.

Engines are not portable: they are tied to the GPU architecture and the TensorRT version. So fer-edge
ships ONNX (fp32, or a Q/DQ ONNX for int8) and builds the engine where it runs, once, into a cache keyed
by everything that makes an engine valid or different: GPU name and compute capability, TensorRT
version, precision (and how it was obtained), the shape profile and the ONNX file's sha256. A TensorRT
timing cache per (GPU, TensorRT) sits beside the engines and makes rebuilds fast (it matters on Jetson).

TensorRT 10 and 11 differ in how reduced precision is asked for, and all of that is decided in ONE
place, :meth:`TrtFeatures.plan`:

* fp16 on 10.x: the fp32 ONNX with ``BuilderFlag.FP16`` (weak typing; deprecated from 10.12 but present).
* fp16 on 11.x: weak typing is gone, every network is strongly typed, so the ONNX itself is converted to
  fp16 first (:mod:`fer_edge.export.onnx_fp16`), fp32 I/O kept through boundary Casts.
* int8 (any version): only from an explicitly quantized Q/DQ ONNX, never with a calibrator (deprecated in
  10.1, removed in 11). Strongly typed where the flag is the recommended path (10.12+ opt-in, 11 always);
  on 10.0-10.11 (JetPack 6 ships 10.3) the weakly typed explicit-quantization path with INT8+FP16 flags,
  so the Q/DQ placement is honoured and the layers left in float may run in fp16.

This module imports ``tensorrt`` only inside the functions that build, so the plan, the cache keys and
the Q/DQ check can be used (and tested) without TensorRT.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import sha256_file
from ..errors import FerEdgeError, MissingDependencyError, require
from ..metadata import METADATA_KEY, ArtifactMetadata, read_sidecar, write_sidecar

PRECISIONS = ("fp32", "fp16", "int8")
CACHE_ENV = "FER_EDGE_CACHE"
# Bump when the way an engine is made changes (e.g. the fp16 ONNX converter), so old cache entries miss.
RECIPE_VERSION = 1
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


# --- TensorRT itself ------------------------------------------------------------------------------

def import_tensorrt():
    """``import tensorrt``, or a one-line error that says where TensorRT comes from."""
    try:
        import tensorrt as trt  # noqa: PLC0415 - deliberately lazy
    except ImportError:
        exc = MissingDependencyError("tensorrt", "tensorrt", "the TensorRT backend")
        text = (f"{exc.args[0]} (the extra brings cuda-bindings; TensorRT itself does not come through "
                "fer-edge from PyPI: install it from NVIDIA for your CUDA version, or on Jetson use the one "
                "JetPack ships, apt install python3-libnvinfer)")
        exc.args, exc.msg = (text,), text  # ImportError's str() reads .msg
        raise exc from None
    return trt


def parse_version(text: str) -> tuple[int, int, int]:
    nums = [int(x) for x in re.findall(r"\d+", str(text))[:3]]
    if not nums:
        raise FerEdgeError(f"cannot read the TensorRT version from {text!r}")
    return tuple((nums + [0, 0])[:3])  # type: ignore[return-value]


@dataclass(frozen=True)
class BuildPlan:
    """How one precision is obtained on one TensorRT version."""

    precision: str
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag member names
    builder_flags: tuple[str, ...]  # BuilderFlag member names
    onnx_variant: str  # "as-is" or "fp16" (converted to fp16 before parsing)
    recipe: str  # short name that goes into the cache key

    def describe(self) -> str:
        parts = [f"network flags: {', '.join(self.network_flags) or 'none'}",
                 f"builder flags: {', '.join(self.builder_flags) or 'none'}",
                 f"ONNX: {self.onnx_variant}"]
        return "; ".join(parts)


@dataclass(frozen=True)
class TrtFeatures:
    """What a TensorRT version supports, derived from its version number: the one place that branches."""

    version: tuple[int, int, int]

    @classmethod
    def from_module(cls, trt) -> "TrtFeatures":
        return cls(parse_version(trt.__version__))

    @property
    def weak_typing(self) -> bool:
        """BuilderFlag.FP16/INT8 exist (10.x; deprecated from 10.12, removed in 11)."""
        return self.version[0] < 11

    @property
    def strong_typing_always(self) -> bool:
        """11.x: every network is strongly typed; the STRONGLY_TYPED flag is ignored."""
        return self.version[0] >= 11

    @property
    def strongly_typed_recommended(self) -> bool:
        """10.12+ deprecates weak typing: ask for a strongly typed network explicitly."""
        return self.version[:2] >= (10, 12) and not self.strong_typing_always

    def plan(self, precision: str) -> BuildPlan:
        if self.version[0] < 10:
            raise FerEdgeError(
                f"TensorRT {'.'.join(map(str, self.version))} is too old: fer-edge needs TensorRT 10 or newer "
                "(JetPack 6 ships 10.3)"
            )
        if precision not in PRECISIONS:
            raise FerEdgeError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        strong = ("STRONGLY_TYPED",) if self.strongly_typed_recommended else ()
        if precision == "fp32":
            # fp32 needs no precision flags; a strongly typed net pins every layer to the ONNX types.
            return BuildPlan("fp32", strong, (), "as-is", "fp32")
        if precision == "fp16":
            if self.weak_typing:
                return BuildPlan("fp16", (), ("FP16",), "as-is", "fp16-flag")
            return BuildPlan("fp16", (), (), "fp16", f"fp16-onnx-v{RECIPE_VERSION}")
        # int8: explicit quantization (Q/DQ ONNX) only.
        if self.strong_typing_always or self.strongly_typed_recommended:
            return BuildPlan("int8", strong, (), "as-is", "int8-qdq-strong")
        return BuildPlan("int8", (), ("INT8", "FP16"), "as-is", "int8-qdq-weak")


# --- ONNX facts -----------------------------------------------------------------------------------

def _onnx():
    return require("onnx", "tensorrt", "reading ONNX files before a TensorRT build")


def onnx_sha256(path: str | Path, model) -> str:
    """sha256 of the ONNX file and of any external-data files its weights live in (sorted by name)."""
    path = Path(path)
    h = hashlib.sha256(sha256_file(path).encode())
    locations = sorted({e.value for t in model.graph.initializer if t.data_location == 1  # EXTERNAL
                        for e in t.external_data if e.key == "location"})
    for loc in locations:
        data = path.parent / loc
        if not data.is_file():
            raise FerEdgeError(f"{path.name} keeps weights in {loc}, which is not beside it")
        h.update(loc.encode() + sha256_file(data).encode())
    return sha256_file(path) if not locations else h.hexdigest()


def count_qdq_nodes(model) -> int:
    """QuantizeLinear/DequantizeLinear nodes in the ONNX-domain graph (and its subgraphs)."""
    def walk(graph) -> int:
        n = 0
        for node in graph.node:
            if node.op_type in QDQ_OPS and node.domain in ("", "ai.onnx"):
                n += 1
            for attr in node.attribute:
                if attr.g is not None and attr.HasField("g"):
                    n += walk(attr.g)
                for g in attr.graphs:
                    n += walk(g)
        return n

    return walk(model.graph)


def asymmetric_qdq(model) -> list[str]:
    """Names of Q/DQ nodes TensorRT cannot build: a uint8 or non-zero zero point (ONNX Runtime's graph).

    TensorRT's explicit quantization is symmetric int8 only; fer-edge writes that graph separately
    (``*_int8_tensorrt_qdq.onnx``). Zero points stored outside the file are not inspected.
    """
    from onnx import TensorProto, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    bad = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS or node.domain not in ("", "ai.onnx"):
            continue
        zp = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zp is None or zp.data_location == TensorProto.EXTERNAL:
            continue
        if zp.data_type == TensorProto.UINT8 or numpy_helper.to_array(zp).any():
            bad.append(node.name or node.output[0])
    return bad


def onnx_metadata(model) -> ArtifactMetadata | None:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ArtifactMetadata.from_json(prop.value)
    return None


@dataclass
class ShapeProfile:
    """The batch range an engine accepts: TensorRT optimises for `opt` and refuses batches outside."""

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32

    @classmethod
    def from_args(cls, min_batch: int = 1, opt_batch: int | None = None, max_batch: int = 32) -> "ShapeProfile":
        """`opt_batch` None: 8, kept inside [min, max] (so ``max_batch=4`` alone is a valid request)."""
        opt = opt_batch if opt_batch is not None else min(max(8, min_batch), max_batch)
        return cls(int(min_batch), int(opt), int(max_batch)).validate()

    def validate(self) -> "ShapeProfile":
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise FerEdgeError(
                f"batch profile must satisfy 1 <= min <= opt <= max, got min={self.min_batch} "
                f"opt={self.opt_batch} max={self.max_batch}"
            )
        return self

    def shapes_for(self, inputs: dict[str, list]) -> dict[str, list[list[int]]]:
        """[min, opt, max] shapes per input: the first (batch) dimension may be dynamic, nothing else."""
        out = {}
        for name, dims in inputs.items():
            if not dims:
                raise FerEdgeError(f"input {name!r} is a scalar; fer-edge engines need batched inputs")
            rest = dims[1:]
            if any(not isinstance(d, int) or d <= 0 for d in rest):
                raise FerEdgeError(
                    f"input {name!r} has dynamic dimensions besides the batch ({dims}); export the ONNX "
                    "with a fixed image size"
                )
            if isinstance(dims[0], int) and dims[0] > 0:  # static batch: one shape only
                out[name] = [list(dims)] * 3
            else:
                out[name] = [[b, *rest] for b in (self.min_batch, self.opt_batch, self.max_batch)]
        return out


def onnx_inputs(model) -> dict[str, list]:
    """Graph inputs (not initializers) -> dims, with dynamic dims as their symbolic name or -1."""
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = []
        for d in inp.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or -1))
        out[inp.name] = dims
    return out


# --- the cache --------------------------------------------------------------------------------------

def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Argument, else $FER_EDGE_CACHE/engines, else ~/.cache/fer-edge/engines."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "engines"
    return Path.home() / ".cache" / "fer-edge" / "engines"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


@dataclass(frozen=True)
class EngineKey:
    """Everything that makes an engine valid on a machine, or different from another engine."""

    gpu_name: str
    compute_capability: tuple[int, int]
    trt_version: str
    precision: str
    recipe: str
    profile: tuple  # ((input name, (min shape, opt shape, max shape)), ...)
    onnx_sha256: str
    dla_core: int | None = None  # Jetson DLA core the engine runs on; None = the GPU
    onnx_stem: str = field(default="model", compare=False)

    @classmethod
    def make(cls, *, gpu_name: str, compute_capability, trt_version: str, plan: BuildPlan,
             shapes: dict[str, list[list[int]]], onnx_sha256: str, onnx_stem: str = "model",
             dla_core: int | None = None) -> "EngineKey":
        profile = tuple(sorted((n, tuple(tuple(s) for s in v)) for n, v in shapes.items()))
        return cls(gpu_name, tuple(compute_capability), str(trt_version), plan.precision, plan.recipe,
                   profile, onnx_sha256, None if dla_core is None else int(dla_core), onnx_stem)

    def components(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("onnx_stem")
        d["compute_capability"] = list(self.compute_capability)
        d["profile"] = {n: [list(s) for s in shapes] for n, shapes in self.profile}
        return d

    @property
    def digest(self) -> str:
        blob = json.dumps(self.components(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def name(self) -> str:
        """A file stem a person can read in a directory listing, unique through the digest."""
        cc = "".join(map(str, self.compute_capability))
        dla = f"-dla{self.dla_core}" if self.dla_core is not None else ""
        return f"{_slug(self.onnx_stem)}-{self.precision}{dla}-sm{cc}-trt{_slug(self.trt_version)}-{self.digest}"

    def timing_cache_name(self) -> str:
        """One timing cache per (GPU, TensorRT): tactic timings do not depend on the model."""
        cc = "".join(map(str, self.compute_capability))
        return f"timing-{_slug(self.gpu_name)}-sm{cc}-trt{_slug(self.trt_version)}.cache"


@dataclass
class BuildResult:
    engine_path: Path
    key: EngineKey
    cached: bool
    seconds: float
    plan: BuildPlan


# --- building ----------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parser_error(parser, onnx_name: str) -> FerEdgeError:
    """All parser errors as one line: the first in full, then how many more."""
    errors = []
    for i in range(int(getattr(parser, "num_errors", 0))):
        e = parser.get_error(i)
        where = []
        node_name = getattr(e, "node_name", None)
        op = getattr(e, "node_operator", None)
        if callable(node_name) and node_name():
            where.append(f"node {node_name()}")
        elif callable(getattr(e, "node", None)) and e.node() >= 0:
            where.append(f"node #{e.node()}")
        if callable(op) and op():
            where.append(f"op {op()}")
        desc = e.desc() if callable(getattr(e, "desc", None)) else str(e)
        errors.append((" ".join(where) + ": " if where else "") + _one_line(desc))
    if not errors:
        return FerEdgeError(f"TensorRT cannot parse {onnx_name} (no details from the parser)")
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return FerEdgeError(f"TensorRT cannot parse {onnx_name}: {errors[0]}{more}")


def _make_logger(trt, console, verbose: bool):
    """A TensorRT logger that prints through rich and remembers errors for the one-line report."""

    class RichLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            sev = trt.ILogger.Severity
            if severity in (sev.INTERNAL_ERROR, sev.ERROR):
                self.errors.append(_one_line(msg))
                console.print(f"[red]TensorRT error:[/] {msg}", highlight=False)
            elif severity == sev.WARNING:
                if verbose:
                    console.print(f"[yellow]TensorRT:[/] {msg}", highlight=False)
            elif verbose:
                console.print(f"[dim]TensorRT: {msg}[/]", highlight=False)

    return RichLogger()


def _make_progress_monitor(trt, progress):
    """Builder phases as rich progress bars (IProgressMonitor exists from TensorRT 10.0)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class RichProgress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.tasks: dict[str, Any] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            indent = "  " if parent_phase else ""
            self.tasks[phase_name] = progress.add_task(f"{indent}{phase_name}", total=max(int(num_steps), 1))

        def step_complete(self, phase_name, step):
            task = self.tasks.get(phase_name)
            if task is not None:
                progress.update(task, completed=int(step) + 1)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            task = self.tasks.pop(phase_name, None)
            if task is not None:
                progress.remove_task(task)

    return RichProgress()


def _flag_bits(enum, names: tuple[str, ...]) -> int:
    bits = 0
    for name in names:
        bits |= 1 << int(getattr(enum, name))
    return bits


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_engine(
    onnx_path: str | Path,
    precision: str = "fp16",
    profile: ShapeProfile | None = None,
    *,
    cache_dir: str | Path | None = None,
    output: str | Path | None = None,
    workspace_mb: int | None = None,
    device: int = 0,
    dla_core: int | None = None,
    force: bool = False,
    verbose: bool = False,
    console=None,
    check_qdq: bool = True,
) -> BuildResult:
    """Build (or reuse from the cache) a TensorRT engine for `onnx_path` on GPU `device`.

    The engine lands in the cache as ``<key>.engine`` with its metadata sidecar ``<key>.engine.json``;
    `output` additionally copies both there. `dla_core` builds for a Jetson DLA core (fp16/int8 only; layers
    DLA cannot run fall back to the GPU). Raises FerEdgeError for user problems (int8 from a graph
    without Q/DQ nodes or with Q/DQ placed where TensorRT cannot fuse it, unless `check_qdq` is False; a batch profile that does not fit the graph, parser errors, no GPU).
    """
    from rich.console import Console

    from . import _cuda

    console = console or Console(stderr=True)
    profile = (profile or ShapeProfile()).validate()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FerEdgeError(f"ONNX file not found: {onnx_path}")
    onnx = _onnx()
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise FerEdgeError(f"{onnx_path.name} is not a readable ONNX file ({_one_line(exc)})") from None

    n_qdq = count_qdq_nodes(model)
    check_precision_for_graph(precision, n_qdq, onnx_path.name)
    if n_qdq:
        bad = asymmetric_qdq(model)
        if bad:
            raise FerEdgeError(
                f"{onnx_path.name} has {len(bad)} Q/DQ nodes with uint8 or non-zero zero points (e.g. {bad[0]}): "
                "that is the ONNX Runtime int8 graph; TensorRT needs symmetric int8, the *_int8_tensorrt_qdq.onnx "
                "that `fer-edge export --int8` writes"
            )
        if check_qdq:
            check_qdq_placement(model, onnx_path.name)
    if dla_core is not None and precision == "fp32":
        raise FerEdgeError("DLA runs fp16 or int8 only: use --precision fp16 (or int8 with a Q/DQ ONNX)")

    trt = import_tensorrt()
    features = TrtFeatures.from_module(trt)
    plan = features.plan(precision)
    gpu = _cuda.gpu_info(device)
    _cuda.set_device(device)
    shapes = profile.shapes_for(onnx_inputs(model))
    key = EngineKey.make(gpu_name=gpu.name, compute_capability=gpu.compute_capability,
                         trt_version=trt.__version__, plan=plan, shapes=shapes,
                         onnx_sha256=onnx_sha256(onnx_path, model), onnx_stem=onnx_path.stem, dla_core=dla_core)
    cache = default_cache_dir(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    engine_path = cache / f"{key.name}.engine"

    if engine_path.is_file() and not force:
        result = BuildResult(engine_path, key, True, 0.0, plan)
    else:
        meta = onnx_metadata(model)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="fer-edge-trt-") as tmp:
            parse_path = onnx_path
            if plan.onnx_variant == "fp16":
                from ..export.onnx_fp16 import convert_file_to_fp16

                parse_path = Path(tmp) / f"{onnx_path.stem}.fp16.onnx"
                console.print(f"converting {onnx_path.name} to fp16 for a strongly typed build")
                convert_file_to_fp16(onnx_path, parse_path)
            data = _build_serialized(trt, plan, parse_path, shapes, cache / key.timing_cache_name(),
                                     workspace_mb, console, verbose, onnx_path.name, dla_core)
        seconds = time.perf_counter() - t0
        _atomic_write(engine_path, data)
        if meta is not None:
            write_sidecar(engine_path, engine_metadata(meta, key, plan, seconds))
        result = BuildResult(engine_path, key, False, seconds, plan)

    if output is not None:
        out = Path(output)
        if out.is_dir() or str(output).endswith(("/", os.sep)):
            out = out / f"{onnx_path.stem}-{precision}.engine"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(engine_path, out)
        side = read_sidecar(engine_path)
        if side is not None:
            write_sidecar(out, side)
        result.engine_path = out
    return result


def check_qdq_placement(model, onnx_name: str) -> None:
    """Refuse a Q/DQ graph that breaks TensorRT's explicit-quantization rules, before TensorRT is needed.

    A misplaced Q/DQ still builds, but as a slow or inaccurate engine (float Conv/MatMul, int8 softmax):
    failing here names the problem instead. Layers the export's sensitivity search kept in float are
    read from the graph's fer-edge metadata, so they are not reported as missing Q/DQ.
    """
    from ..calibrate.trt_qdq import check_trt_qdq

    meta = onnx_metadata(model)
    quant = (meta.extra.get("quantization") or {}) if meta is not None else {}
    problems = check_trt_qdq(model, float_layers=list(quant.get("float_layers") or ()))
    if problems:
        more = f" (+{len(problems) - 2} more)" if len(problems) > 2 else ""
        raise FerEdgeError(
            f"{onnx_name} breaks {len(problems)} TensorRT Q/DQ rule(s): {'; '.join(problems[:2])}{more}; "
            "re-export with `fer-edge export --int8 --int8-targets tensorrt`, or pass --skip-qdq-check to build "
            "a graph made elsewhere as it is"
        )


def check_precision_for_graph(precision: str, n_qdq: int, onnx_name: str) -> None:
    """int8 only from Q/DQ graphs; a Q/DQ graph is int8 whatever is asked, so say so."""
    if precision not in PRECISIONS:
        raise FerEdgeError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and n_qdq == 0:
        raise FerEdgeError(
            f"{onnx_name} has no QuantizeLinear/DequantizeLinear nodes: TensorRT int8 needs an explicitly "
            "quantized (Q/DQ) ONNX, not calibration; make one with `fer-edge export --int8 --calib-data DIR` "
            "and build the TensorRT Q/DQ ONNX it writes"
        )
    if precision != "int8" and n_qdq > 0:
        raise FerEdgeError(
            f"{onnx_name} is a quantized Q/DQ graph ({n_qdq} Q/DQ nodes), which TensorRT always builds as int8: "
            "use --precision int8, or build the fp32 ONNX for fp32/fp16"
        )


def engine_metadata(meta: ArtifactMetadata, key: EngineKey, plan: BuildPlan, seconds: float) -> ArtifactMetadata:
    """The ONNX's metadata for the engine sidecar: precision updated, how it was built recorded."""
    extra = dict(meta.extra)
    extra["tensorrt"] = {
        **key.components(),
        "cache_key": key.name,
        "build": plan.describe(),
        "build_seconds": round(seconds, 2),
    }
    return meta.replace(precision=plan.precision, extra=extra)


def _build_serialized(trt, plan: BuildPlan, onnx_path: Path, shapes, timing_path: Path,
                      workspace_mb, console, verbose: bool, display_name: str, dla_core: int | None = None) -> bytes:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    logger = _make_logger(trt, console, verbose)
    builder = trt.Builder(logger)
    network = builder.create_network(_flag_bits(trt.NetworkDefinitionCreationFlag, plan.network_flags))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise _parser_error(parser, display_name)

    config = builder.create_builder_config()
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if dla_core is not None:
        cores = int(getattr(builder, "num_DLA_cores", 0))
        if not 0 <= dla_core < cores:
            raise FerEdgeError(f"DLA core {dla_core} does not exist: this device has {cores} DLA core(s) "
                               "(Orin Nano and desktop GPUs have none; AGX Orin and Orin NX have 2 or 1)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)

    dynamic = {n: s for n, s in shapes.items() if s[0] != s[2]}
    if dynamic:
        opt_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in dynamic.items():
            opt_profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(opt_profile)

    timing_cache = None
    if timing_path.is_file():
        try:
            timing_cache = config.create_timing_cache(timing_path.read_bytes())
        except Exception:  # a damaged or foreign cache: start afresh rather than fail the build
            timing_cache = None
    if timing_cache is None:
        timing_cache = config.create_timing_cache(b"")
    config.set_timing_cache(timing_cache, False)

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        monitor = _make_progress_monitor(trt, progress)
        if monitor is not None and hasattr(config, "progress_monitor"):
            config.progress_monitor = monitor
        task = progress.add_task(f"building {display_name} ({plan.recipe})", total=None)
        serialized = builder.build_serialized_network(network, config)
        progress.remove_task(task)
    if serialized is None:
        detail = logger.errors[-1] if logger.errors else "no details from TensorRT"
        raise FerEdgeError(f"TensorRT could not build an engine from {display_name}: {detail}")

    try:
        _atomic_write(timing_path, bytes(config.get_timing_cache().serialize()))
    except Exception as exc:  # the engine is fine; a cache we cannot write only costs time later
        console.print(f"[yellow]could not save the timing cache {timing_path}: {_one_line(exc)}[/]")
    return bytes(serialized)
