"""OpenVINO backend: IR (``.xml``/``.bin`` or their folder) and ONNX files, on CPU, GPU, NPU or AUTO.

Precision: OpenVINO decides how fp32 layers run from ``INFERENCE_PRECISION_HINT``. On CPUs with bf16
units (recent Xeon and EPYC) its default is bf16, which changes probabilities in the second or third
decimal; ``precision="fp32"`` keeps full fp32 (OpenVINO's own spellings ``"f32"``/``"f16"`` work too).
:meth:`OpenVINOBackend.info` reports what was chosen.

Thread safety: the compiled model is shared; each thread gets its own infer request (an infer request
must not be used by two threads at once), and outputs are copied out of the request. One backend can
therefore serve several threads. For throughput, use ``performance_hint="THROUGHPUT"`` and several
threads (or one Model per thread).

Static shapes: NPUs compile static shapes only, so there a dynamic batch dimension is fixed to
``static_batch`` (default 1) before compiling and inputs run in chunks of that size, the last one
zero-padded. ``static_batch=N`` does the same on any device.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

from ..errors import FerEdgeError
from ..metadata import METADATA_KEY, ArtifactMetadata, read_sidecar
from .base import Backend, BackendInfo, Option, TensorInfo

PRECISIONS = {"fp32": ov.Type.f32, "fp16": ov.Type.f16, "bf16": ov.Type.bf16}
# OPTIMIZATION_CAPABILITIES entry a device lists when it can run that precision
_CAPABILITY = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16"}
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")
STATIC_SHAPE_DEVICES = ("NPU",)


def resolve_device(device: str, available: list[str]) -> str:
    """fer-edge device name -> OpenVINO device name, or a FerEdgeError listing what this machine has.

    ``"auto"`` is the CPU when that is all there is (deterministic results), else OpenVINO's AUTO.
    """
    dev = device.strip()
    upper = dev.upper()
    if upper == "AUTO" and dev == "auto":
        return "CPU" if available == ["CPU"] else "AUTO"
    if upper.split(":")[0] in VIRTUAL_DEVICES:
        return upper
    if upper.startswith("CUDA"):
        raise FerEdgeError(f"OpenVINO has no device {device!r}: CUDA is for the onnxruntime, tensorrt and torch "
                           f"backends (available: {', '.join(available)})")
    family = upper.split(".")[0]
    if upper in available or (upper == family and any(d.split(".")[0] == family for d in available)):
        return upper
    raise FerEdgeError(f"OpenVINO device {device!r} is not available on this machine "
                       f"(available: {', '.join(available) or 'none'}); use device='cpu' or 'AUTO'")


def _shape(partial) -> list:
    return [d.get_length() if d.is_static else -1 for d in partial]


def _static_batch(model) -> int | None:
    """The batch size of a graph whose inputs all have a fixed batch (dim 0), else None."""
    sizes = set()
    for inp in model.inputs:
        shape = inp.get_partial_shape()
        if shape.rank.is_dynamic or len(shape) == 0 or not shape[0].is_static:
            return None
        sizes.add(shape[0].get_length())
    return sizes.pop() if len(sizes) == 1 else None


def _rt_text(model, path: list[str]) -> str | None:
    try:
        if not model.has_rt_info(path):
            return None
        return model.get_rt_info(path).astype(str)
    except RuntimeError:  # a parent of `path` is a plain value, not a map (e.g. rt_info framework="x")
        return None


def model_metadata(model, source: str | None = None) -> ArtifactMetadata | None:
    """fer-edge metadata of an ``ov.Model``: rt_info ``fer_edge`` (IR), else the ONNX metadata_props
    that OpenVINO's ONNX reader keeps under rt_info ``framework``. `source` names the file in errors."""
    for path in ([METADATA_KEY], ["framework", METADATA_KEY]):
        text = _rt_text(model, path)
        if text is not None:
            return ArtifactMetadata.from_json(text, source=source)
    return None


def _model_file(path: Path) -> Path:
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            found = ", ".join(x.name for x in xmls) or "none"
            raise FerEdgeError(f"{path} must hold exactly one OpenVINO .xml model (found: {found}); pass the file")
        return xmls[0]
    if path.suffix.lower() not in (".xml", ".onnx"):
        raise FerEdgeError(f"OpenVINO reads .xml (IR) or .onnx files, not {path.name!r}")
    return path


class OpenVINOBackend(Backend):
    name = "openvino"
    options = {
        "precision": Option("INFERENCE_PRECISION_HINT: the precision float layers run in; default: the "
                            "device's choice (bf16 on CPUs with bf16 units)", choices=tuple(PRECISIONS),
                            spellings={"f32": "fp32", "f16": "fp16"}),
        "performance_hint": Option("OpenVINO's PERFORMANCE_HINT; default LATENCY", choices=PERFORMANCE_HINTS),
        "threads": Option("inference threads on the CPU device; default: OpenVINO's", int, minimum=1),
        "cache_dir": Option("a folder where OpenVINO caches compiled models", Path),
        "static_batch": Option("fix a dynamic batch to this size and run inputs in chunks of it; default 1 "
                               "on NPUs", int, minimum=1),
    }
    not_options = {
        "graph_optimization": "an ONNX Runtime setting; OpenVINO optimises when it compiles",
        "min_batch": "a TensorRT engine-build setting; OpenVINO takes static_batch= for static shapes",
        "opt_batch": "a TensorRT engine-build setting; use performance_hint= to tune OpenVINO",
        "max_batch": "a TensorRT engine-build setting; OpenVINO takes static_batch= for static shapes",
        "workspace_mb": "a TensorRT engine-build setting",
        "dla_core": "a TensorRT setting for Jetson DLA cores",
        "method": "OpenVINO models carry their metadata; method= is for PyTorch checkpoints without it",
        "autocast": "a PyTorch setting; the common spelling is precision=",
    }

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        core = ov.Core()
        return {d: _full_name(core, d) for d in core.available_devices}

    def __init__(self, path: str | Path, device: str = "auto", *, precision: str | None = None,
                 performance_hint: str | None = "LATENCY", threads: int | None = None,
                 cache_dir: str | Path | None = None, static_batch: int | None = None):
        super().__init__(path)
        self.core = ov.Core()
        self._ov_device = resolve_device(device, list(self.core.available_devices))
        self.file = _model_file(self.path)
        try:
            self.model = self.core.read_model(str(self.file))
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line C++ context
            raise FerEdgeError(f"OpenVINO cannot read {self.file.name}: {_first_line(exc)}") from None
        self._metadata = model_metadata(self.model, self.file.name)
        if static_batch is None and self._ov_device.split(".")[0] in STATIC_SHAPE_DEVICES:
            static_batch = 1
        self._chunk = self._fix_static_batch(int(static_batch)) if static_batch else _static_batch(self.model)
        self._requested_precision = precision
        config = self._config(precision, performance_hint, threads, cache_dir)
        try:
            self.compiled = self.core.compile_model(self.model, self._ov_device, config)
        except Exception as exc:
            raise FerEdgeError(
                f"OpenVINO cannot compile {self.file.name} for {self._ov_device}: {_first_line(exc)}"
            ) from None
        self._local = threading.local()
        self._output_names = [o.get_any_name() for o in self.compiled.outputs]

    # --- set-up ---------------------------------------------------------------------------------
    def _config(self, precision, performance_hint, threads, cache_dir) -> dict:
        """OpenVINO properties for options already checked against `options` (fer_edge.load does)."""
        config: dict = {}
        if precision is not None:
            self._check_precision_supported(precision)
            config[hints.inference_precision] = PRECISIONS[precision]
        if performance_hint is not None:
            config[hints.performance_mode] = getattr(hints.PerformanceMode, performance_hint.upper())
        if threads:
            if not self._ov_device.startswith("CPU"):
                raise FerEdgeError(f"threads= applies to the CPU device only, not {self._ov_device}")
            config[props.inference_num_threads] = int(threads)
        if cache_dir is not None:
            config[props.cache_dir] = str(cache_dir)
        return config

    def _check_precision_supported(self, precision: str) -> None:
        if self._ov_device.split(":")[0] in VIRTUAL_DEVICES:
            return  # AUTO/MULTI pick the device later; each applies the hint where it can
        caps = self._capabilities(self._ov_device)
        if _CAPABILITY[precision] not in caps:
            can = ", ".join(k for k, v in _CAPABILITY.items() if v in caps)
            raise FerEdgeError(f"{self._ov_device} cannot run precision={precision!r} (it supports: {can})")

    def _fix_static_batch(self, batch: int) -> int:
        """Fix a dynamic batch dimension to `batch` (static-shape devices); return the chunk size."""
        if batch < 1:
            raise FerEdgeError(f"static_batch must be >= 1, got {batch}")
        shapes = {}
        for inp in self.model.inputs:
            dims = list(inp.get_partial_shape())
            if dims and not dims[0].is_static:
                dims[0] = ov.Dimension(batch)
            shape = ov.PartialShape(dims)
            if not shape.is_static:
                raise FerEdgeError(f"{self._ov_device} needs static shapes; {inp.get_any_name()} has {shape}")
            shapes[inp.get_any_name()] = shape
        if shapes:
            self.model.reshape(shapes)
        return batch

    # --- describe -------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[TensorInfo]:
        """Input tensors; the batch is free even for a static graph, since `run` feeds it in chunks."""
        out = []
        for i in self.compiled.inputs:
            shape = _shape(i.get_partial_shape())
            if self._chunk and shape:
                shape[0] = -1
            out.append(TensorInfo(i.get_any_name(), shape, i.get_element_type().get_type_name()))
        return out

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(o.get_any_name(), _shape(o.get_partial_shape()), o.get_element_type().get_type_name())
                for o in self.compiled.outputs]

    @property
    def device(self) -> str:
        return self._ov_device

    def read_metadata(self) -> ArtifactMetadata | None:
        if self._metadata is None:
            return read_sidecar(self.file)
        return ArtifactMetadata.from_dict(self._metadata.to_dict())  # a copy: callers may override fields

    def inference_precision(self) -> str | None:
        """The precision the compiled model runs fp32 layers in ("f32", "bf16", "f16"), if the device says."""
        try:
            return self.compiled.get_property(hints.inference_precision).get_type_name()
        except Exception:  # virtual devices / plugins that do not report it
            return None

    def info(self) -> BackendInfo:
        actual = self.inference_precision()
        executing = self._property(props.execution_devices) or [self._ov_device]
        details = {"file": self.file.name, "precision": self._requested_precision, "inference_precision": actual,
                   "execution_devices": list(executing),
                   "performance_hint": _enum_name(self._property(hints.performance_mode)),
                   "optimal_infer_requests": self._property(props.optimal_number_of_infer_requests)}
        if self._ov_device.startswith("CPU"):
            details["threads"] = self._property(props.inference_num_threads)
            details["device_name"] = _full_name(self.core, "CPU")
        return BackendInfo(self.name, self._ov_device, ov.get_version(),
                           precision_note=self._precision_note(actual, executing), details=details)

    def _precision_note(self, actual: str | None, executing: list[str]) -> str:
        """Say when fp32 layers run at lower precision, so results and benchmarks are not misread."""
        stored = self._metadata.precision if self._metadata else "fp32"
        if stored not in ("fp32", "mixed"):
            return ""
        if actual in ("bf16", "f16"):
            chosen = "as requested" if self._requested_precision else "OpenVINO's default here"
            return (f"OpenVINO runs fp32 layers in {actual} on this {self._ov_device} ({chosen}); "
                    f"pass precision='fp32' for full fp32 results")
        if actual is None and self._requested_precision is None:
            # Virtual devices (AUTO, MULTI) do not report it: say what the devices they use can do.
            reduced = [d for d in executing if {"BF16", "FP16"} & set(self._capabilities(d))]
            if reduced:
                return (f"OpenVINO {self._ov_device} runs on {', '.join(executing)}, which may run fp32 layers "
                        f"in bf16/f16; pass precision='fp32' for full fp32 results")
        return ""

    def close(self) -> None:
        """Drop the infer requests (of every thread), the compiled model and the read model."""
        self._local = threading.local()
        self.compiled = None
        self.model = None

    def _capabilities(self, device: str) -> list[str]:
        try:
            return list(self.core.get_property(device, props.device.capabilities))
        except Exception:
            return []

    def _property(self, key):
        try:
            return self.compiled.get_property(key)
        except Exception:
            return None

    # --- run ------------------------------------------------------------------------------------
    def _request(self):
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self.compiled.create_infer_request()
        return req

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._chunk is None:
            return self._infer(feeds)
        n = len(next(iter(feeds.values())))
        parts = []
        for start in range(0, n, self._chunk):
            chunk = {k: _pad_batch(v[start:start + self._chunk], self._chunk) for k, v in feeds.items()}
            m = min(self._chunk, n - start)
            parts.append({k: v[:m] for k, v in self._infer(chunk).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in self._output_names}

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            result = self._request().infer(feeds, share_inputs=False, share_outputs=False)
        except Exception as exc:
            raise FerEdgeError(f"OpenVINO inference failed on {self._ov_device}: {_first_line(exc)}") from None
        return {name: np.array(result[out]) for name, out in zip(self._output_names, self.compiled.outputs)}


def _pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    if len(x) == size:
        return x
    pad = np.zeros((size - len(x), *x.shape[1:]), x.dtype)
    return np.concatenate([x, pad])


def _full_name(core, device: str) -> str:
    try:
        return str(core.get_property(device, props.device.full_name))
    except Exception:  # a plugin that does not report it
        return ""


def _enum_name(value) -> str | None:
    return None if value is None else getattr(value, "name", str(value))


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # OpenVINO's messages start with C++ source locations; the last line is the useful one
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '"))]
    return (useful or lines or [type(exc).__name__])[-1][:300]
