"""`fer_edge.load(path)`: any artifact, any backend, one API.

Backends are imported lazily by name, so loading an ONNX file never imports OpenVINO, TensorRT or
PyTorch, and a missing engine is reported as the pip extra to install.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import FerEdgeError, MissingDependencyError
from ..metadata import ArtifactMetadata, InputSpec, check_against_graph, check_labels, parse_input_size
from .base import Backend, BackendInfo, TensorInfo
from .model import LoadedModel, Model, Prediction
from .video import PAIR, VideoModel

__all__ = ["load", "LoadedModel", "Model", "VideoModel", "Prediction", "Backend", "BackendInfo", "TensorInfo",
           "BACKENDS", "backend_for_path"]

# name -> (module, class, pip extra)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("fer_edge.runtimes.onnxruntime", "OnnxRuntimeBackend", "core"),
    "openvino": ("fer_edge.runtimes.openvino", "OpenVINOBackend", "openvino"),
    "tensorrt": ("fer_edge.runtimes.tensorrt", "TensorRTBackend", "tensorrt"),
    "torch": ("fer_edge.runtimes.torch", "TorchBackend", "torch"),
}
ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "ov": "openvino", "trt": "tensorrt", "pytorch": "torch"}

_SUFFIXES = {
    ".onnx": "onnxruntime",
    ".xml": "openvino",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".pt": "torch",
    ".pth": "torch",
    ".safetensors": "torch",
}


def backend_class(name: str) -> type[Backend]:
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise FerEdgeError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls, extra = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except MissingDependencyError:
        raise
    except ImportError as exc:
        raise MissingDependencyError(exc.name or name, extra, f"the {name} backend") from None
    return getattr(mod, cls)


def backend_for_path(path: str | Path) -> str:
    """Pick the backend from the artifact's file type (an OpenVINO IR folder counts as .xml)."""
    p = Path(path)
    if p.is_dir():
        if list(p.glob("*.xml")):
            return "openvino"
        raise FerEdgeError(f"{p} is a folder without an OpenVINO .xml model; pass the model file itself")
    backend = _SUFFIXES.get(p.suffix.lower())
    if backend is None:
        known = ", ".join(sorted(_SUFFIXES))
        raise FerEdgeError(f"cannot tell the backend for {p.name!r} from its suffix (known: {known}); pass backend=")
    return backend


def _resolve_name(path: str | Path, backend: str | None) -> tuple[Path, str | None]:
    """Registered artifact names ("default", ...) -> a file that the chosen backend can open."""
    from .. import artifacts

    if isinstance(path, str) and artifacts.is_registered(path):
        return artifacts.resolve(path, ALIASES.get(backend, backend) if backend else None)
    return Path(path), backend


_LOAD_KEYWORDS = ("device", "backend", "labels", "input_size", "pair")  # close matches for a misspelt one


def locate(path: str | Path, backend: str | None = None) -> tuple[Path, str]:
    """The file :func:`load` opens for `path` and the name of the backend that opens it (no engine
    starts), e.g. to ask that backend's class which options it takes."""
    resolved, backend = _resolve_name(path, backend)
    if not resolved.exists():
        raise FerEdgeError(f"artifact not found: {resolved}; check the path or run `fer-edge export`")
    if resolved.is_dir():
        resolved = _artifact_in_bundle(resolved, backend) or resolved
    if resolved.is_file():
        from ..export.manifest import check_listed

        check_listed(resolved)  # a file of an export folder loads only as its manifest lists it
    return resolved, ALIASES.get(backend, backend) if backend else backend_for_path(resolved)


def load(
    path: str | Path,
    device: str = "auto",
    backend: str | None = None,
    *,
    labels: list[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
    pair: bool = True,
    **options: Any,
) -> LoadedModel:
    """Load an artifact (or a registered name such as ``"default"``) for inference.

    Args:
        path: ``.onnx``, OpenVINO ``.xml`` (or its folder), TensorRT ``.engine``/``.plan``,
            our ``.safetensors``/``.pt`` checkpoints, or a registered name.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``/``"cuda:N"``, OpenVINO's ``"GPU"``/``"NPU"``/``"AUTO"``.
        backend: override the backend chosen from the file type.
        labels, input_size: for artifacts without fer-edge metadata (a foreign ONNX file).
        pair: a video model's frame_encoder or temporal_head graph (or an export folder holding the
            pair) loads as a :class:`VideoModel` with its partner graph; ``pair=False`` loads the one
            graph as a plain Model (e.g. to check it alone).
        options: the backend's own settings, as its class declares them in ``options`` (e.g. ``threads``,
            ``performance_hint``; ``precision`` on every backend); anything else is refused in one line.
    """
    resolved, name = locate(path, backend)
    cls = backend_class(name)
    checked = cls.check_options(options, also=_LOAD_KEYWORDS)  # before the engine opens anything
    engine = cls(resolved, device=device, **checked)
    try:
        meta = engine.read_metadata()
        meta = _apply_overrides(meta, engine, labels, input_size, resolved)
        check_against_graph(meta, {t.name: t.shape for t in engine.inputs}, {t.name: t.shape for t in engine.outputs},
                            resolved.name)
    except BaseException:
        engine.close()  # a refused artifact does not hold its engine until garbage collection
        raise
    model = Model(engine, meta)
    if pair and meta.graph in PAIR:
        from .video import load_pair

        return load_pair(resolved, model, lambda p: load(p, device=device, backend=backend, pair=False, **checked))
    return model


def _artifact_in_bundle(folder: Path, backend: str | None) -> Path | None:
    """The FP32 artifact an export folder's manifest lists for the backend asked for (ONNX Runtime by
    default): a video model's frame encoder (it loads with its partner head), else the classifier.
    Only manifest-listed files are ever picked; None for folders without a manifest (an IR folder)."""
    from ..export.manifest import read_manifest

    manifest = read_manifest(folder)
    if manifest is None:
        return None
    fp32 = [a for a in manifest.get("artifacts", []) if isinstance(a, dict) and a.get("precision") == "fp32"]
    encoders = [a for a in fp32 if a.get("graph") == PAIR[0]]
    candidates = encoders or [a for a in fp32 if a.get("graph") in (None, "classifier")]
    name = ALIASES.get(backend, backend) if backend else "onnxruntime"
    # TensorRT builds its engine from the ONNX
    kind = {"onnxruntime": "onnx", "tensorrt": "onnx", "openvino": "openvino"}.get(name)
    chosen = [a for a in candidates if a.get("kind") == kind]
    if not chosen:
        what = "frame encoder" if encoders else "model"
        raise FerEdgeError(f"{folder} holds no FP32 {name} {what} in its manifest; pass the artifact file itself")
    file = chosen[0].get("file")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise FerEdgeError(f"{folder / 'manifest.json'} names the {name} file {file!r}, not a file of the folder; "
                           "re-export the folder")
    return folder / file


def _apply_overrides(meta, engine, labels, input_size, path) -> ArtifactMetadata:
    """The artifact's metadata with the caller's labels=/input_size= (checked like metadata fields)."""
    if labels is not None:
        labels = check_labels(labels, "labels=", "pass a list of distinct class names, one per model output")
    size = parse_input_size(input_size) if input_size is not None else None
    if meta is None:
        if labels is None or size is None:
            missing = " and ".join(n for n, v in (("labels=", labels), ("input_size=", size)) if v is None)
            raise FerEdgeError(
                f"{path.name} has no fer-edge metadata; export it with `fer-edge export` or pass {missing}"
            )
        if not engine.inputs or not engine.outputs:
            raise FerEdgeError(f"{path.name} has no inputs or no outputs, so it is not a face classifier")
        first = engine.inputs[0]
        dims = list(first.shape)
        channels = dims[1] if len(dims) > 1 and isinstance(dims[1], int) and dims[1] > 0 else 3
        if channels not in (1, 3):
            raise FerEdgeError(f"{path.name}'s input {first.name!r} has {channels} channels; fer-edge feeds faces "
                               "as 1 (gray) or 3 (colour) channels in NCHW layout")
        spec = InputSpec(name=first.name, size=size, color="GRAY" if channels == 1 else "RGB",
                         mean=(0.5,) * channels, std=(0.5,) * channels)
        meta = ArtifactMetadata(method="unknown", labels=labels, input=spec)
        meta.output.name = engine.outputs[0].name
        return meta.validate()
    if labels is not None:
        if len(labels) != len(meta.labels):
            raise FerEdgeError(f"labels= has {len(labels)} names but the model has {len(meta.labels)} classes")
        meta.labels = labels
    if size is not None:
        meta.input.size = size
    return meta
