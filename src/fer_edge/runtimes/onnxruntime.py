"""ONNX Runtime backend: CPU everywhere, CUDA and TensorRT execution providers where installed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import FerEdgeError
from ..metadata import METADATA_KEY, ArtifactMetadata
from .base import Backend, BackendInfo, TensorInfo

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def providers_for(device: str, available: list[str]) -> list[str]:
    """Execution providers for a device name; "auto" takes the best one installed."""
    dev = device.lower().split(":")[0]
    if dev == "auto":
        for cand in ("cuda", "cpu"):
            if _PROVIDERS[cand][0] in available:
                return [p for p in _PROVIDERS[cand] if p in available]
    if dev not in _PROVIDERS:
        raise FerEdgeError(f"ONNX Runtime has no device {device!r}; use cpu, cuda or tensorrt")
    wanted = _PROVIDERS[dev]
    if wanted[0] not in available:
        raise FerEdgeError(
            f"device {device!r} needs {wanted[0]}, which this onnxruntime does not have "
            f"(available: {', '.join(available)}); install onnxruntime-gpu or use device='cpu'"
        )
    return [p for p in wanted if p in available]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    extra = "core"
    devices = ("auto", "cpu", "cuda", "tensorrt")

    def __init__(self, path: str | Path, device: str = "auto", *, threads: int | None = None,
                 graph_optimization: str = "all", **options: Any):
        super().__init__(path, device, **options)
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
        so.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[graph_optimization]
        self._providers = providers_for(device, ort.get_available_providers())
        device_id = device.split(":")[1] if ":" in device else None
        provider_options = [{"device_id": device_id} if device_id and p != "CPUExecutionProvider" else {}
                            for p in self._providers]
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=self._providers,
                                                provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises its own exception types with long texts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FerEdgeError(f"ONNX Runtime cannot open {self.path.name}: {first}") from None

    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(i.name, list(i.shape), i.type) for i in self.session.get_inputs()]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(o.name, list(o.shape), o.type) for o in self.session.get_outputs()]

    @property
    def device(self) -> str:
        first = self.session.get_providers()[0]
        return {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
                "TensorrtExecutionProvider": "tensorrt"}.get(first, first)

    def read_metadata(self) -> ArtifactMetadata | None:
        props = self.session.get_modelmeta().custom_metadata_map
        return ArtifactMetadata.from_json(props[METADATA_KEY], source=self.path.name) if METADATA_KEY in props else None

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.device, ort.__version__,
                           details={"providers": self.session.get_providers()})

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feeds)))
