"""fer-edge: facial expression recognition from research code to edge devices.

The runtime side (`load`, `Pipeline`) needs only numpy, OpenCV and an inference engine; PyTorch is
imported only by the training/export side (`fer_edge.models`, `fer_edge.export`, ...).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "Pipeline", "FerEdgeError", "ArtifactMetadata"]


def __getattr__(name: str):
    # Lazy: `import fer_edge` stays cheap and never pulls an inference engine it does not need.
    if name == "load":
        from .runtimes import load

        return load
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    if name == "FerEdgeError":
        from .errors import FerEdgeError

        return FerEdgeError
    if name == "ArtifactMetadata":
        from .metadata import ArtifactMetadata

        return ArtifactMetadata
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")
