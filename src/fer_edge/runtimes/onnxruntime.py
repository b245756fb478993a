"""ONNX Runtime backend: CPU everywhere, CUDA and TensorRT execution providers where installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import FerEdgeError
from ..metadata import METADATA_KEY, ArtifactMetadata
from .base import Backend, BackendInfo, Option, TensorInfo

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


_LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_DEVICE_OF = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "tensorrt"}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    options = {
        "threads": Option("intra-op threads of the session; default: one per core", int, minimum=1),
        "graph_optimization": Option("ONNX Runtime's graph optimisation level; default all", choices=tuple(_LEVELS)),
        "precision": Option("fp16 lets the TensorRT execution provider (device='tensorrt') run float layers in "
                            "fp16; default: the graph's own types", choices=("fp32", "fp16")),
    }
    not_options = {
        "performance_hint": "an OpenVINO setting; ONNX Runtime has threads=",
        "static_batch": "an OpenVINO setting for static-shape devices; the graph's batch is used as it is",
        "cache_dir": "a setting of the openvino and tensorrt backends",
        "min_batch": "a TensorRT engine-build setting; use backend='tensorrt'",
        "opt_batch": "a TensorRT engine-build setting; use backend='tensorrt'",
        "max_batch": "a TensorRT engine-build setting; use backend='tensorrt'",
        "workspace_mb": "a TensorRT engine-build setting; use backend='tensorrt'",
        "dla_core": "a TensorRT setting for Jetson DLA cores; use backend='tensorrt'",
        "method": "ONNX files carry their metadata; method= is for PyTorch checkpoints without it",
        "autocast": "a PyTorch setting; the common spelling is precision=",
    }

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        return {_DEVICE_OF[p]: p for p in ort.get_available_providers() if p in _DEVICE_OF}

    def __init__(self, path: str | Path, device: str = "auto", *, threads: int | None = None,
                 graph_optimization: str | None = None, precision: str | None = None):
        super().__init__(path)
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
        so.graph_optimization_level = _LEVELS[graph_optimization or "all"]
        self._providers = providers_for(device, ort.get_available_providers())
        if precision == "fp16" and self._providers[0] != "TensorrtExecutionProvider":
            raise FerEdgeError(f"ONNX Runtime runs {self.path.name} in the graph's own types on "
                               f"{_DEVICE_OF.get(self._providers[0])}; precision='fp16' needs device='tensorrt', "
                               "or export an fp16 ONNX")
        self._precision = precision
        device_id = device.split(":")[1] if ":" in device else None
        provider_options = [self._provider_options(p, device_id) for p in self._providers]
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=self._providers,
                                                provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises its own exception types with long texts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FerEdgeError(f"ONNX Runtime cannot open {self.path.name}: {first}") from None
        self._inputs = [TensorInfo(i.name, list(i.shape), i.type) for i in self.session.get_inputs()]
        self._outputs = [TensorInfo(o.name, list(o.shape), o.type) for o in self.session.get_outputs()]
        self._running = self.session.get_providers()

    def _provider_options(self, provider: str, device_id: str | None) -> dict:
        opts = {"device_id": device_id} if device_id and provider != "CPUExecutionProvider" else {}
        if provider == "TensorrtExecutionProvider" and self._precision == "fp16":
            opts["trt_fp16_enable"] = True
        return opts

    @property
    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    @property
    def device(self) -> str:
        return _DEVICE_OF.get(self._running[0], self._running[0])

    def read_metadata(self) -> ArtifactMetadata | None:
        props = self.session.get_modelmeta().custom_metadata_map
        return ArtifactMetadata.from_json(props[METADATA_KEY], source=self.path.name) if METADATA_KEY in props else None

    def info(self) -> BackendInfo:
        note = "the TensorRT execution provider may run float layers in fp16" if self._precision == "fp16" else ""
        return BackendInfo(self.name, self.device, ort.__version__, precision_note=note,
                           details={"providers": list(self._running), "precision": self._precision})

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._outputs]
        return dict(zip(names, self.session.run(names, feeds)))

    def close(self) -> None:
        self.session = None  # the last reference: ONNX Runtime frees the session and its arenas
