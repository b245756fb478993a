"""Registered artifact names that `fer_edge.load` resolves, starting with the embedded default.

The default expression model ships inside the package twice: as ONNX (for ONNX Runtime, OpenVINO,
TensorRT builds) and as safetensors (for the PyTorch backend). Both carry the same metadata.
"""
from __future__ import annotations

from pathlib import Path

from .errors import FerEdgeError

ASSETS = Path(__file__).parent / "assets"

# name -> {backend or "*": file in assets/}
_REGISTERED: dict[str, dict[str, str]] = {
    "default": {"*": "mini_xception.onnx", "torch": "mini_xception.safetensors"},
    "mini_xception": {"*": "mini_xception.onnx", "torch": "mini_xception.safetensors"},
}


def is_registered(name: str) -> bool:
    return name in _REGISTERED


def names() -> list[str]:
    return sorted(_REGISTERED)


def resolve(name: str, backend: str | None) -> tuple[Path, str | None]:
    """(file, backend) for a registered name; ONNX unless the backend needs another format."""
    files = _REGISTERED[name]
    # backend="tensorrt" gets the ONNX too: the TensorRT backend builds (once, cached) an engine from it.
    fname = files.get(backend or "*", files["*"])
    path = ASSETS / fname
    if not path.exists():
        raise FerEdgeError(f"the embedded artifact {fname} is missing from the installation; reinstall fer-edge")
    if backend is None:
        backend = "onnxruntime"
    return path, backend
