"""The artifact metadata schema: what a runtime needs to use a model correctly, carried inside it.

One JSON document, stored under the key ``fer_edge`` in ONNX ``metadata_props``, OpenVINO IR
``rt_info``, our safetensors checkpoints' header, and a ``<engine>.json`` sidecar for TensorRT engines
(which cannot carry it). Preprocessing (:mod:`fer_edge.preprocess`) and postprocessing
(:mod:`fer_edge.postprocess`) are driven by it on every backend, so an artifact cannot be run with
the wrong labels, size or normalisation.

The schema is versioned: readers accept older versions and refuse newer ones with a clear message.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import FerEdgeError

METADATA_KEY = "fer_edge"
SCHEMA_VERSION = 1

LAYOUTS = ("NCHW", "NTCHW")
COLORS = ("RGB", "BGR", "GRAY")
RESIZES = ("nearest", "bilinear", "bicubic", "area")
OUTPUT_KINDS = ("logits", "probabilities", "evidence", "scaled_cosine", "features")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "mixed")
TASKS = ("image", "video")
GRAPHS = ("classifier", "frame_encoder", "temporal_head")


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
        _check_choice("input.layout", self.layout, LAYOUTS)
        _check_choice("input.color", self.color, COLORS)
        _check_choice("input.resize", self.resize, RESIZES)
        if len(self.size) != 2 or min(self.size) <= 0:
            raise FerEdgeError(f"metadata input.size must be (height, width) > 0, got {self.size}")
        if len(self.mean) not in (1, self.channels) or len(self.std) not in (1, self.channels):
            raise FerEdgeError(
                f"metadata input.mean/std must have 1 or {self.channels} values, got {self.mean} / {self.std}"
            )
        if any(s == 0 for s in self.std):
            raise FerEdgeError("metadata input.std must not contain 0")
        if self.layout == "NTCHW" and not self.frames:
            raise FerEdgeError("metadata of a clip model (layout NTCHW) must give input.frames")


@dataclass
class OutputSpec:
    """What the primary output holds, so postprocessing turns it into probabilities correctly."""

    name: str = "logits"
    kind: str = "logits"
    # Further named outputs the graph has (e.g. UA-FER's "uncertainty"), for callers of Model.run.
    extra: tuple[str, ...] = ()

    def validate(self) -> None:
        _check_choice("output.kind", self.kind, OUTPUT_KINDS)


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
        if self.graph == "classifier" and not self.labels:
            raise FerEdgeError("metadata has no label names; pass labels=[...] explicitly")
        _check_choice("task", self.task, TASKS)
        _check_choice("graph", self.graph, GRAPHS)
        _check_choice("precision", self.precision, PRECISIONS)
        self.input.validate()
        self.output.validate()
        return self

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = "fer-edge/artifact"
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactMetadata":
        d = dict(d)
        d.pop("schema", None)
        version = int(d.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise FerEdgeError(
                f"artifact metadata schema v{version} is newer than this fer-edge understands "
                f"(v{SCHEMA_VERSION}): upgrade fer-edge"
            )
        try:
            inp = _from_fields(InputSpec, d.pop("input", {}))
            out = _from_fields(OutputSpec, d.pop("output", {}))
            meta = _from_fields(cls, d, input=inp, output=out)
        except TypeError as exc:
            raise FerEdgeError(f"artifact metadata is malformed ({exc}); re-export the artifact") from None
        return meta.validate()

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArtifactMetadata":
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise FerEdgeError(f"artifact metadata is not valid JSON ({exc}); re-export the artifact") from None
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> "ArtifactMetadata":
        return ArtifactMetadata.from_dict({**self.to_dict(), **changes})


def _from_fields(cls, d: dict[str, Any], **given: Any):
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in names}
    for key in ("size", "mean", "std", "extra"):
        if key in kwargs and isinstance(kwargs[key], list) and cls is not ArtifactMetadata:
            kwargs[key] = tuple(kwargs[key])
    kwargs.update(given)
    return cls(**kwargs)


def _check_choice(what: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise FerEdgeError(f"metadata {what} is {value!r}; expected one of {', '.join(map(str, choices))}")


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
    return ArtifactMetadata.from_json(path.read_text()) if path.is_file() else None


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
