"""What Triton needs to know about a fer-edge artifact: its kind, metadata and tensors.

ONNX and OpenVINO artifacts are opened on the CPU to read their graphs' inputs and outputs; a
TensorRT engine (tied to a GPU and TensorRT version, possibly not this machine's) is described by its
metadata sidecar alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata, read_sidecar

ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass
class Tensor:
    name: str
    dims: list[int]  # without the batch dimension; -1 where free


@dataclass
class Classifier:
    """One image classifier artifact, as the repository will serve it."""

    path: Path
    kind: str  # "onnx", "openvino" or "tensorrt"
    metadata: ArtifactMetadata
    inputs: list[Tensor]
    outputs: list[Tensor]
    fixed_batch: int | None  # the graph's batch size where it is not free

    @property
    def files(self) -> list[Path]:
        """The artifact's own files (an IR is its .xml and .bin)."""
        return [self.path, self.path.with_suffix(".bin")] if self.kind == "openvino" else [self.path]


def describe(artifact: str | Path) -> Classifier:
    """Open (or, for an engine, read the sidecar of) one artifact; a FerEdgeError says what is wrong."""
    from .. import artifacts as registry

    if isinstance(artifact, str) and registry.is_registered(artifact):
        path, _ = registry.resolve(artifact, None)
    else:
        path = Path(artifact)
    if not path.exists():
        raise FerEdgeError(f"artifact not found: {path}; check the path or run `fer-edge export`")
    if path.is_dir():
        found = sorted(path.glob("*.xml"))
        if len(found) != 1:
            raise FerEdgeError(f"{path} is a folder; pass the artifact file itself (.onnx, .xml or .engine)")
        path = found[0]
    if path.suffix.lower() in ENGINE_SUFFIXES:
        return _describe_engine(path)
    if path.suffix.lower() not in (".onnx", ".xml"):
        raise FerEdgeError(f"{path.name}: Triton repositories take .onnx, OpenVINO .xml or TensorRT "
                           f".engine/.plan artifacts, not {path.suffix or 'a file without extension'}")
    return _describe_graph(path)


def _describe_graph(path: Path) -> Classifier:
    from .. import load
    from ..runtimes import Model

    model = load(path, device="cpu", pair=False)
    if not isinstance(model, Model):  # pragma: no cover - pair=False always gives a Model
        raise FerEdgeError(f"{path.name} did not load as one graph")
    meta = model.metadata
    _check_image_classifier(meta, path)
    engine = model.engine
    inputs = [Tensor(t.name, _dims(t.shape[1:], path, t.name)) for t in engine.inputs]
    outputs = [Tensor(t.name, _dims(t.shape[1:], path, t.name)) for t in engine.outputs]
    first = engine.inputs[0].shape[0] if engine.inputs and engine.inputs[0].shape else None
    fixed = first if isinstance(first, int) and first > 0 else None
    kind = "onnx" if path.suffix.lower() == ".onnx" else "openvino"
    return Classifier(path, kind, meta, inputs, outputs, fixed)


def _describe_engine(path: Path) -> Classifier:
    meta = read_sidecar(path)
    if meta is None:
        raise FerEdgeError(f"{path.name} has no metadata file {path.name}.json beside it; build the engine with "
                           "`fer-edge build-engine` (it writes one)")
    _check_image_classifier(meta, path)
    h, w = meta.input.size
    inputs = [Tensor(meta.input.name, [meta.input.channels, h, w])]
    outputs = [Tensor(meta.output.name, [len(meta.labels)])]
    return Classifier(path, "tensorrt", meta, inputs, outputs, None)


def _check_image_classifier(meta: ArtifactMetadata, path: Path) -> None:
    if meta.input.layout != "NCHW" or meta.graph != "classifier":
        raise FerEdgeError(f"{path.name} is a video model graph ({meta.graph}, {meta.input.layout}); Triton "
                           "repositories are made for image classifiers only so far")


def _dims(shape: list, path: Path, name: str) -> list[int]:
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in shape]
    if not dims:
        raise FerEdgeError(f"{path.name}: tensor {name!r} has no dimension besides the batch; Triton batching "
                           "needs a batch dimension first")
    return dims
