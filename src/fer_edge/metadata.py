"""The artifact metadata schema: what a runtime needs to use a model correctly, carried inside it.

One JSON document, stored under the key ``fer_edge`` in ONNX ``metadata_props``, OpenVINO IR
``rt_info``, our safetensors checkpoints' header, and a ``<engine>.json`` sidecar for TensorRT engines
(which cannot carry it). Preprocessing (:mod:`fer_edge.preprocess`) and postprocessing
(:mod:`fer_edge.postprocess`) are driven by it on every backend, so an artifact cannot be run with
the wrong labels, size or normalisation.

The schema is versioned: readers accept older versions and refuse newer ones with a clear message.

Metadata comes from users' files, so it is checked here, in one place: every field's type and range,
the extra entries other modules read, and (:func:`check_against_graph`) the fit with the graph. Any
damage is one FerEdgeError line naming the field, never a traceback or a silently wrong preprocessing.
"""
from __future__ import annotations

import json
import re
import reprlib
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real
from pathlib import Path, PurePath
from typing import Any, NoReturn

from .errors import FerEdgeError

METADATA_KEY = "fer_edge"
SCHEMA_NAME = "fer-edge/artifact"
SCHEMA_VERSION = 1

LAYOUTS = ("NCHW", "NTCHW")
COLORS = ("RGB", "BGR", "GRAY")
RESIZES = ("nearest", "bilinear", "bicubic", "area")
OUTPUT_KINDS = ("logits", "probabilities", "evidence", "scaled_cosine", "features")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "mixed")
TASKS = ("image", "video")
GRAPHS = ("classifier", "frame_encoder", "temporal_head")

# Sane ranges: a value outside them means a damaged artifact, not an unusual model.
MAX_SIDE = 4096  # input height / width in pixels
MAX_FRAMES = 1024  # clip length
MAX_CLASSES = 10_000
MAX_NAME = 256  # characters of a label, tensor or method name
MAX_TEXT = 2_000  # characters of free text (licence)
MAX_EXTRA_DEPTH = 32  # nesting of the free-form `extra`
# `extra` entries naming the partner graph's file beside the artifact (fer_edge.runtimes.video)
FILE_LINKS = ("frame_encoder", "temporal_head")
FIX = "re-export the artifact with `fer-edge export`"

@dataclass
class InputSpec:
    """How a face crop becomes the model's input tensor."""

    name: str = "input"
    layout: str = "NCHW"  # NCHW for images, NTCHW for clips of `frames` images
    size: tuple[int, int] = (224, 224)  # (height, width) after resize
    color: str = "RGB"
    resize: str = "bilinear"
    scale: float = 1.0 / 255.0  # applied to uint8 pixels before mean/std
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    frames: int | None = None  # clip length of video models
    sampling: str | None = None  # how a clip is sampled from a stream (e.g. "uniform-16")
    # Alignment: which canonical face template (fer_edge.vision.align) and how much context around it.
    face_template: str = "default"
    face_scale: float = 1.0

    @property
    def channels(self) -> int:
        return 1 if self.color == "GRAY" else 3

    def shape(self, batch: int | str = "batch") -> list:
        h, w = self.size
        if self.layout == "NTCHW":
            return [batch, self.frames, self.channels, h, w]
        return [batch, self.channels, h, w]

    def validate(self) -> None:
        """Check every field (and normalise sequences to tuples of int / float)."""
        from .vision.align import TEMPLATES

        w = "metadata input."
        self.name = _text(w + "name", self.name)
        _choice(w + "layout", self.layout, LAYOUTS)
        _choice(w + "color", self.color, COLORS)
        _choice(w + "resize", self.resize, RESIZES)
        self.size = _ints(w + "size", self.size, 2, 1, MAX_SIDE, what="(height, width)")
        self.scale = _real(w + "scale", self.scale, 1e-9, 1e3)
        n = self.channels
        self.mean = _reals(w + "mean", self.mean, (1, n), -1e4, 1e4)
        self.std = _reals(w + "std", self.std, (1, n), 1e-6, 1e4)  # it divides: never 0
        if self.frames is not None:
            self.frames = _int(w + "frames", self.frames, 1, MAX_FRAMES)
        if self.layout == "NTCHW" and self.frames is None:
            raise FerEdgeError(f"metadata of a clip model (layout NTCHW) must give input.frames; {FIX}")
        if self.sampling is not None:
            self.sampling = _text(w + "sampling", self.sampling)
        _choice(w + "face_template", self.face_template, tuple(TEMPLATES))
        self.face_scale = _real(w + "face_scale", self.face_scale, 0.05, 20.0)


@dataclass
class OutputSpec:
    """What the primary output holds, so postprocessing turns it into probabilities correctly."""

    name: str = "logits"
    kind: str = "logits"
    # Further named outputs the graph has (e.g. UA-FER's "uncertainty"), for callers of Model.run.
    extra: tuple[str, ...] = ()

    def validate(self) -> None:
        self.name = _text("metadata output.name", self.name)
        _choice("metadata output.kind", self.kind, OUTPUT_KINDS)
        names = tuple(_text(f"metadata output.extra[{i}]", n)
                      for i, n in enumerate(_seq("metadata output.extra", self.extra, "output names")))
        if len(set(names + (self.name,))) != len(names) + 1:
            _bad("metadata output.extra", f"repeats an output name ({_show(names)}, primary {self.name!r})")
        self.extra = names


@dataclass
class ArtifactMetadata:
    """Everything a runtime needs to use an artifact, independent of its format."""

    method: str
    labels: list[str]
    input: InputSpec = field(default_factory=InputSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    task: str = "image"
    graph: str = "classifier"
    precision: str = "fp32"
    licence: str = "unknown"
    source_sha256: str | None = None
    fer_edge_version: str = ""
    schema_version: int = SCHEMA_VERSION
    # Free-form provenance: export command, quantizer settings, accuracy report summary, ...
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.fer_edge_version:
            from . import __version__

            self.fer_edge_version = __version__

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def validate(self) -> "ArtifactMetadata":
        """Check every field, including the `extra` entries other modules read; returns self."""
        self.method = _text("metadata method", self.method)
        _choice("metadata task", self.task, TASKS)
        _choice("metadata graph", self.graph, GRAPHS)
        _choice("metadata precision", self.precision, PRECISIONS)
        if self.graph != "frame_encoder" and isinstance(self.labels, (list, tuple)) and not self.labels:
            raise FerEdgeError("metadata has no label names; pass labels=[...] explicitly")
        self.labels = check_labels(self.labels)
        self.licence = _text("metadata licence", self.licence, limit=MAX_TEXT, empty=True)
        if self.source_sha256 is not None and not (
                isinstance(self.source_sha256, str) and re.fullmatch(r"[0-9a-f]{64}", self.source_sha256)):
            _bad("metadata source_sha256", f"must be 64 lower-case hex digits or null, got {_show(self.source_sha256)}")
        self.fer_edge_version = _text("metadata fer_edge_version", self.fer_edge_version, limit=64)
        self.schema_version = _int("metadata schema_version", self.schema_version, 1, SCHEMA_VERSION)
        _check_extra(self.extra)
        self.input.validate()
        self.output.validate()
        return self

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = SCHEMA_NAME
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactMetadata":
        """Metadata from a parsed document (as :meth:`to_dict` writes it), every field checked.

        Unknown fields are refused (a newer writer bumps ``schema_version``), and so are missing
        fields that decide the preprocessing: defaults there would silently feed the wrong tensor.
        """
        if not isinstance(d, dict):
            _bad("artifact metadata", f"must be a JSON object, got {_show(d)}")
        d = dict(d)
        schema = d.pop("schema", SCHEMA_NAME)
        if schema != SCHEMA_NAME:
            _bad("artifact metadata", f"has schema {_show(schema)}, not {SCHEMA_NAME!r}: it is not fer-edge metadata")
        version = d.get("schema_version", 1)
        if isinstance(version, Integral) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise FerEdgeError(
                f"artifact metadata schema v{version if version < 10**6 else '(huge)'} is newer than this "
                f"fer-edge understands (v{SCHEMA_VERSION}): upgrade fer-edge"
            )
        top = _known_fields(cls, d, "", ("method", "labels", "input", "output"))
        inp = InputSpec(**_known_fields(InputSpec, top.pop("input"), "input.", _INPUT_REQUIRED))
        out = OutputSpec(**_known_fields(OutputSpec, top.pop("output"), "output.", ("kind",)))
        return cls(**top, input=inp, output=out).validate()

    @classmethod
    def from_json(cls, text: str | bytes, source: str | None = None) -> "ArtifactMetadata":
        """Metadata from the JSON stored in an artifact; `source` (its file name) starts any error."""
        try:
            return cls.from_dict(read_json(text, "artifact metadata"))
        except FerEdgeError as exc:
            if source is None:
                raise
            raise FerEdgeError(f"{_one_line(source)}: {exc}") from None

    def replace(self, **changes: Any) -> "ArtifactMetadata":
        return ArtifactMetadata.from_dict({**self.to_dict(), **changes})


# The input fields that decide the tensor; the others have safe defaults.
_INPUT_REQUIRED = ("layout", "size", "color", "scale", "mean", "std")


def _known_fields(cls, d: Any, prefix: str, required: tuple[str, ...]) -> dict[str, Any]:
    """`d` as keyword arguments of dataclass `cls`: an object with only its fields, the required ones present."""
    where = f"metadata {prefix.rstrip('.')}" if prefix else "artifact metadata"
    if not isinstance(d, dict):
        _bad(where, f"must be a JSON object, got {_show(d)}")
    names = {f.name for f in fields(cls)}
    unknown = [k for k in d if k not in names]
    if unknown:
        _bad(where, f"has an unknown field {_show(unknown[0])}",
             "upgrade fer-edge if a newer version wrote the artifact, else re-export it")
    missing = [k for k in required if k not in d]
    if missing:
        _bad(f"metadata {prefix}{missing[0]}", "is missing")
    return dict(d)


# --- checks shared by the schema and the user's overrides (labels=, input_size=) -------------------

def check_labels(labels: Any, where: str = "metadata labels", fix: str = FIX) -> list[str]:
    """Class names in output order: distinct, non-empty, printable, no surrounding spaces."""
    names = _seq(where, labels, "class names", fix)
    if len(names) > MAX_CLASSES:
        _bad(where, f"has {len(names)} names; at most {MAX_CLASSES} classes are supported", fix)
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not (isinstance(name, str) and name and name == name.strip() and len(name) <= MAX_NAME
                and name.isprintable()):
            _bad(f"{where}[{i}]", f"must be a printable name without surrounding spaces (1 to {MAX_NAME} "
                                  f"characters), got {_show(name)}", fix)
        if name in seen:
            _bad(where, f"names {_show(name)} twice; each class needs its own name", fix)
        seen.add(name)
    return list(names)


def parse_input_size(value: Any, where: str = "input_size=") -> tuple[int, int]:
    """One side (a square input) or (height, width), each 1..MAX_SIDE pixels."""
    sides = [value, value] if isinstance(value, Integral) and not isinstance(value, bool) else value
    return _ints(where, sides, 2, 1, MAX_SIDE, what="(height, width)",
                 fix="pass one side, e.g. input_size=64, or (height, width)")


def check_against_graph(meta: ArtifactMetadata, inputs: dict[str, list], outputs: dict[str, list],
                        artifact: str) -> None:
    """Refuse metadata that does not fit the graph it describes: the primary output's class count must
    be the number of labels, and the input's fixed dimensions must be the metadata's (N, [T,] C, H, W).
    `inputs`/`outputs` map tensor names to shapes (ints; strings or -1 for free dimensions)."""
    artifact = _one_line(artifact)
    if meta.output.kind != "features" and outputs:
        name = meta.output.name if meta.output.name in outputs else next(iter(outputs))
        shape = list(outputs[name])
        if shape and _fixed(shape[-1]) and shape[-1] != len(meta.labels):
            raise FerEdgeError(
                f"{artifact}: output {_show(name)} has {shape[-1]} classes but the metadata names "
                f"{len(meta.labels)} labels; pass labels= with {shape[-1]} names, or re-export it")
    if meta.graph == "temporal_head" or not inputs:  # the head's input is features, not faces
        return
    name = meta.input.name if meta.input.name in inputs else next(iter(inputs))
    shape, want = list(inputs[name]), meta.input.shape("N")
    if shape and (len(shape) != len(want) or any(_fixed(g) and g != e for g, e in zip(shape[1:], want[1:]))):
        raise FerEdgeError(
            f"{artifact}: input {_show(name)} has shape {_show(shape)} but the metadata describes {want} "
            f"({meta.input.color}, {meta.input.size[0]}x{meta.input.size[1]}); pass input_size= to match, "
            "or re-export it")


def _fixed(dim: Any) -> bool:
    return isinstance(dim, Integral) and not isinstance(dim, bool) and dim > 0


# --- field checks: each names the field and says what it must be -----------------------------------

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def short_repr(value: Any) -> str:
    """A short one-line repr of a value read from a file (bounded however big or deep it is), for errors."""
    return _one_line(_REPR.repr(value))


_show = short_repr


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _bad(where: str, problem: str, fix: str = FIX) -> NoReturn:
    raise FerEdgeError(f"{where} {problem}" + (f"; {fix}" if fix else ""))


def _text(where: str, value: Any, *, limit: int = MAX_NAME, empty: bool = False) -> str:
    if not (isinstance(value, str) and len(value) <= limit and value.isprintable() and (empty or value.strip())):
        _bad(where, f"must be {'' if empty else 'non-empty '}printable text of at most {limit} characters, "
                    f"got {_show(value)}")
    return value


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        _bad(where, f"is {_show(value)}; expected one of {', '.join(choices)}")
    return value


def _int(where: str, value: Any, lo: int, hi: int, fix: str = FIX) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        _bad(where, f"must be {lo if lo == hi else f'a whole number from {lo} to {hi}'}, got {_show(value)}", fix)
    return int(value)


def _real(where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not lo <= value <= hi:  # NaN fails too
        _bad(where, f"must be a number from {lo:g} to {hi:g}, got {_show(value)}")
    return float(value)


def _seq(where: str, value: Any, what: str, fix: str = FIX) -> list:
    if not isinstance(value, (list, tuple)):
        _bad(where, f"must be a list of {what}, got {_show(value)}", fix)
    return list(value)


def _ints(where: str, value: Any, n: int, lo: int, hi: int, *, what: str, fix: str = FIX) -> tuple[int, ...]:
    items = _seq(where, value, f"{n} whole numbers {what}", fix)
    if len(items) != n or any(isinstance(v, bool) or not isinstance(v, Integral) or not lo <= v <= hi for v in items):
        _bad(where, f"must be {n} whole numbers {what} from {lo} to {hi}, got {_show(value)}", fix)
    return tuple(int(v) for v in items)


def _reals(where: str, value: Any, lengths: tuple[int, ...], lo: float, hi: float) -> tuple[float, ...]:
    items = _seq(where, value, "numbers")
    if len(items) not in lengths or any(isinstance(v, bool) or not isinstance(v, Real) or not lo <= v <= hi
                                        for v in items):
        counts = " or ".join(str(k) for k in sorted(set(lengths)))
        _bad(where, f"must list {counts} number{'s' if max(lengths) > 1 else ''} (one per channel, or one for "
                    f"all) from {lo:g} to {hi:g}, got {_show(value)}")
    return tuple(float(v) for v in items)


def _check_extra(extra: Any) -> None:
    """`extra` is free-form JSON, but the entries other modules read must have their types."""
    if not isinstance(extra, dict):
        _bad("metadata extra", f"must be a JSON object, got {_show(extra)}")
    _check_json_tree("metadata extra", extra)
    for key in FILE_LINKS:  # runtimes.video.partner_path joins them to the artifact's folder
        name = extra.get(key)
        if name not in (None, "") and not (isinstance(name, str) and name.isprintable() and len(name) <= 255
                                           and name not in (".", "..") and PurePath(name).name == name
                                           and "\\" not in name):
            _bad(f"metadata extra.{key}", f"must be the plain name of a file beside the artifact, got {_show(name)}")
    if "tensorrt" in extra:  # the engine sidecar's build record (runtimes.tensorrt)
        trt, w = extra["tensorrt"], "metadata extra.tensorrt"
        if not isinstance(trt, dict):
            _bad(w, f"must be a JSON object, got {_show(trt)}")
        if trt.get("dla_core") is not None:
            _int(w + ".dla_core", trt["dla_core"], 0, 15)
        if "trt_version" in trt and not re.search(r"\d", _text(w + ".trt_version", trt["trt_version"], limit=64)):
            _bad(w + ".trt_version", f"must be a version number, got {_show(trt['trt_version'])}")
        if "compute_capability" in trt:
            _ints(w + ".compute_capability", trt["compute_capability"], 2, 0, 99, what="(major, minor)")
    quant = extra.get("quantization")  # read by runtimes.tensorrt_build
    if quant is not None:
        if not isinstance(quant, dict):
            _bad("metadata extra.quantization", f"must be a JSON object, got {_show(quant)}")
        layers = quant.get("float_layers")
        if layers is not None:
            for i, name in enumerate(_seq("metadata extra.quantization.float_layers", layers, "layer names")):
                _text(f"metadata extra.quantization.float_layers[{i}]", name, limit=MAX_TEXT)


def _check_json_tree(where: str, tree: Any) -> None:
    """Only JSON values (text keys), nested at most MAX_EXTRA_DEPTH deep, so it can be written back."""
    stack = [(tree, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if any(not isinstance(k, str) for k in value):
                _bad(where, f"has a key that is not text: {_show(next(k for k in value if not isinstance(k, str)))}")
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        elif value is None or isinstance(value, (str, bool, Real)):
            continue
        else:
            _bad(where, f"holds a {type(value).__name__}, which is not a JSON value")
        if depth > MAX_EXTRA_DEPTH:
            _bad(where, f"is nested more than {MAX_EXTRA_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


# --- reading JSON from a user's file -------------------------------------------------------------

def read_json(text: str | bytes, what: str, fix: str = FIX) -> Any:
    """A JSON document from a user's file; every way it can be broken is one FerEdgeError line
    (bad UTF-8, truncated, nested too deep, a key given twice)."""
    what = _one_line(what)
    if not isinstance(text, (str, bytes, bytearray)):
        raise FerEdgeError(f"{what} must be JSON text, not a {type(text).__name__}; {fix}")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise FerEdgeError(f"{what} is nested too deeply to be read; {fix}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits, _unique_keys
        raise FerEdgeError(f"{what} is not valid JSON ({_one_line(exc)[:200]}); {fix}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {_show(dup)} is given twice")
    return d


# --- where the metadata lives in each artifact type ----------------------------------------------

def sidecar_path(artifact: str | Path) -> Path:
    """The JSON file beside an artifact that cannot hold metadata itself (TensorRT engines)."""
    return Path(str(artifact) + ".json")


def write_sidecar(artifact: str | Path, meta: ArtifactMetadata) -> Path:
    path = sidecar_path(artifact)
    path.write_text(meta.to_json(indent=2) + "\n")
    return path


def read_sidecar(artifact: str | Path) -> ArtifactMetadata | None:
    path = sidecar_path(artifact)
    try:
        if not path.is_file():
            return None
        data = path.read_bytes()
    except OSError as exc:
        raise FerEdgeError(f"cannot read the metadata file {_one_line(path.name)} ({_one_line(exc.strerror or exc)}); "
                           "check that it is readable") from None
    return ArtifactMetadata.from_json(data, source=path.name)


def attach_to_onnx(model_proto, meta: ArtifactMetadata) -> None:
    """Store `meta` in an ``onnx.ModelProto``'s metadata_props (replacing an earlier copy)."""
    props = [p for p in model_proto.metadata_props if p.key != METADATA_KEY]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(props)
    entry = model_proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()


def attach_to_openvino(ov_model, meta: ArtifactMetadata) -> None:
    """Store `meta` in an ``openvino.Model``'s rt_info, saved into the IR's .xml."""
    ov_model.set_rt_info(meta.to_json(), [METADATA_KEY])
