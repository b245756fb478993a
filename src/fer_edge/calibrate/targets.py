"""The one interface of the three INT8 targets, and their table.

A target turns the FP32 artifact into an INT8 artifact from real calibration tensors. Each needs its
own graph (measured here: the symmetric S8S8 Q/DQ graph TensorRT wants runs slower than FP32 on ONNX
Runtime's CPU kernels, while ONNX Runtime's U8S8 graph is fast there), so each lives in its own module.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FerEdgeError
from ..export.progress import Counter, ProgressFn
from ..metadata import ArtifactMetadata


@dataclass
class Int8Artifact:
    target: str
    path: Path
    seconds: float  # calibration + quantization wall time
    excluded: list[str] = field(default_factory=list)  # layers kept in float
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Int8Target(ABC):
    name: str
    fp32_format: str  # "onnx" or "openvino": which FP32 artifact it starts from and is compared with
    suffix: str  # file name ending of its artifact

    @abstractmethod
    def quantize(self, fp32: Path, out: Path, calib: np.ndarray, meta: ArtifactMetadata, *,
                 exclude: list[str] = (), transformer: bool = False, calib_source: str = "",
                 progress: ProgressFn | None = None) -> Int8Artifact:
        """Write the INT8 artifact to `out` (metadata attached, precision int8); `progress` gets the
        calibration items handed to the quantizer (task "INT8 <name>: calibration")."""

    def calibration_counter(self, progress: ProgressFn | None, total: int) -> Counter:
        return Counter(progress, f"INT8 {self.name}: calibration", total)

    def layer_names(self, fp32: Path) -> list[str]:
        """Names of the layers that can be kept in float (the sensitivity search's candidates)."""
        from .ort_qdq import quantizable_nodes

        return quantizable_nodes(fp32)


# name -> (module, class)
TARGETS = {
    "onnxruntime": ("fer_edge.calibrate.ort_qdq", "OrtQdqTarget"),
    "tensorrt": ("fer_edge.calibrate.trt_qdq", "TrtQdqTarget"),
    "openvino": ("fer_edge.calibrate.nncf_ov", "NncfOpenVinoTarget"),
}
ALIASES = {"ort": "onnxruntime", "trt": "tensorrt", "ov": "openvino"}


def get_target(name: str, **options: Any) -> Int8Target:
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in TARGETS:
        raise FerEdgeError(f"unknown INT8 target {name!r}; choose from {', '.join(TARGETS)}")
    module, cls = TARGETS[name]
    return getattr(importlib.import_module(module), cls)(**options)


def int8_metadata(meta: ArtifactMetadata, target: str, calib_source: str, n: int, excluded: list[str],
                  settings: dict[str, Any]) -> ArtifactMetadata:
    # the source's own extra is kept unchanged, so INT8 metadata == FP32 metadata but for these two
    """The source metadata with precision int8 and how it was quantized under extra['quantization']."""
    q = {"target": target, "calibration": calib_source, "calibration_faces": n,
         "float_layers": list(excluded), **settings}
    return meta.replace(precision="int8", extra={**meta.extra, "quantization": q})


def is_transformer_graph(onnx_path: Path) -> bool:
    """Attention graphs (softmax / layer norm) get the transformer presets of the quantizers."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    return bool(ops & {"Softmax", "LayerNormalization"})
