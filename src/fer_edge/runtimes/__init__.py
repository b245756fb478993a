"""`fer_edge.load(path)`: any artifact, any backend, one API.

Backends are imported lazily by name, so loading an ONNX file never imports OpenVINO, TensorRT or
PyTorch, and a missing engine is reported as the pip extra to install.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import FerEdgeError, MissingDependencyError
from ..metadata import ArtifactMetadata, InputSpec
from .base import Backend, BackendInfo, TensorInfo
from .model import Model, Prediction
from .video import PAIR, VideoModel

__all__ = ["load", "Model", "VideoModel", "Prediction", "Backend", "BackendInfo", "TensorInfo", "BACKENDS", "backend_for_path"]

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


def load(
    path: str | Path,
    device: str = "auto",
    backend: str | None = None,
    *,
    labels: list[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
    pair: bool = True,
    **options: Any,
) -> Model | VideoModel:
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
        options: backend-specific settings (e.g. ``threads``, ``performance_hint``, ``precision``).
    """
    resolved, backend = _resolve_name(path, backend)
    if not resolved.exists():
        raise FerEdgeError(f"artifact not found: {resolved}; check the path or run `fer-edge export`")
    if resolved.is_dir():
        resolved = _video_pair_in_bundle(resolved, backend) or resolved
    name = ALIASES.get(backend, backend) if backend else backend_for_path(resolved)
    engine = backend_class(name)(resolved, device=device, **options)
    meta = engine.read_metadata()
    meta = _apply_overrides(meta, engine, labels, input_size, resolved)
    model = Model(engine, meta)
    if pair and meta.graph in PAIR:
        from .video import load_pair

        return load_pair(resolved, model, lambda p: load(p, device=device, backend=backend, pair=False, **options))
    return model


def _video_pair_in_bundle(folder: Path, backend: str | None) -> Path | None:
    """The FP32 frame encoder of an export folder that holds a video model's split pair, for the
    backend asked for (ONNX Runtime by default); None for other folders (an OpenVINO IR folder)."""
    import json

    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        artifacts = json.loads(manifest.read_text()).get("artifacts", [])
    except ValueError:
        raise FerEdgeError(f"{manifest} is not valid JSON; re-export the folder") from None
    encoders = [a for a in artifacts if a.get("graph") == PAIR[0] and a.get("precision") == "fp32"]
    if not encoders:
        return None
    name = ALIASES.get(backend, backend) if backend else "onnxruntime"
    kind = {"onnxruntime": "onnx", "openvino": "openvino"}.get(name)
    chosen = [a for a in encoders if a.get("kind") == kind]
    if not chosen:
        raise FerEdgeError(f"{folder} holds no FP32 {name} frame encoder; pass the graph file itself")
    return folder / chosen[0]["file"]


def _apply_overrides(meta, engine, labels, input_size, path) -> ArtifactMetadata:
    if meta is None:
        if labels is None or input_size is None:
            missing = " and ".join(n for n, v in (("labels=", labels), ("input_size=", input_size)) if v is None)
            raise FerEdgeError(
                f"{path.name} has no fer-edge metadata; export it with `fer-edge export` or pass {missing}"
            )
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        first = engine.inputs[0]
        channels = first.shape[1] if isinstance(first.shape[1], int) and first.shape[1] > 0 else 3
        spec = InputSpec(name=first.name, size=size, color="GRAY" if channels == 1 else "RGB",
                         mean=(0.5,) * channels, std=(0.5,) * channels)
        meta = ArtifactMetadata(method="unknown", labels=list(labels), input=spec)
        meta.output.name = engine.outputs[0].name
        return meta.validate()
    if labels is not None:
        if len(labels) != len(meta.labels):
            raise FerEdgeError(f"labels= has {len(labels)} names but the model has {len(meta.labels)} classes")
        meta.labels = list(labels)
    if input_size is not None:
        meta.input.size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    return meta
