"""PyTorch backend: our ``.safetensors`` checkpoints (and ``.pt`` files holding a state dict + metadata).

The model is rebuilt from the registry (``create_model(meta.method)``), the weights loaded with the
same checks as everywhere else, and the *deployment* graph taken from it: ``deploy_module()`` where
the method has one (methods with a text tower fold it there), or ``<graph>_module()`` for artifacts
that are one part of a split model (``frame_encoder``, ``temporal_head``). Outputs are numpy arrays
named like the ONNX graph's outputs, so `Model` treats this backend like any other.

Thread safety: inference runs under ``torch.inference_mode()`` on an eval-mode module, which keeps no
state between calls, and autocast is thread-local; several threads may share one backend. ``threads=``
sets torch's intra-op thread count, which is process-wide.

Precision: ``precision="fp16"``/``"bf16"`` runs the module under ``torch.autocast`` (``autocast=``, the
older spelling, still works); ``"fp32"`` (the default) runs it as it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, load_state_dict_checked
from ..errors import FerEdgeError
from ..metadata import METADATA_KEY, ArtifactMetadata, read_sidecar
from .base import Backend, BackendInfo, Option, TensorInfo

AUTOCAST = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    """"auto" -> the first CUDA GPU if there is one, else the CPU; a missing GPU is a clear error."""
    dev = device.lower()
    if dev == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev == "cpu":
        return torch.device("cpu")
    if dev.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(dev.split(":")[1]) if ":" in dev else 0
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise FerEdgeError(f"PyTorch device {device!r} is not available (this machine has {have}); use device='cpu'")
        return torch.device("cuda", index)
    raise FerEdgeError(f"the PyTorch backend runs on 'cpu' or 'cuda[:N]', not {device!r}")


def read_torch_artifact(path: Path) -> tuple[dict, ArtifactMetadata | None]:
    """(state_dict, metadata) from our safetensors file or a ``.pt``/``.pth`` dict
    ``{"state_dict": ..., "fer_edge": <metadata JSON or dict>}``; a sidecar JSON counts as metadata too."""
    if path.suffix == ".safetensors":
        sd, meta = load_checkpoint(path)
    else:
        from ..torch_files import UnreadableTorchFile, read_torch_file

        try:  # tensors and plain data only: a pickled class of any kind is refused
            obj = read_torch_file(path, foreign=False)
        except UnreadableTorchFile as exc:
            raise FerEdgeError(f"{path.name} is not a weights-only PyTorch file ({exc.reason}); "
                               f"convert it with `fer-edge import`") from None
        if not isinstance(obj, dict):
            raise FerEdgeError(f"{path.name} holds a {type(obj).__name__}, not a state dict with metadata")
        raw = obj.get(METADATA_KEY)
        meta = None
        if isinstance(raw, (str, bytes)):
            meta = ArtifactMetadata.from_json(raw)
        elif isinstance(raw, dict):
            meta = ArtifactMetadata.from_dict(raw)
        sd = obj.get("state_dict", obj if all(isinstance(v, torch.Tensor) for v in obj.values()) else None)
        if not isinstance(sd, dict):
            raise FerEdgeError(f"{path.name} has no 'state_dict' entry")
    return sd, meta or read_sidecar(path)


def deployment_module(model, graph: str) -> torch.nn.Module:
    """The module an artifact of kind `graph` runs: that graph of the model's declared deployment."""
    return model.deployed(graph).module


class TorchBackend(Backend):
    name = "torch"
    options = {
        "precision": Option("fp16/bf16 run matmuls and convolutions under torch.autocast; default fp32",
                            choices=tuple(AUTOCAST)),
        "threads": Option("torch's intra-op threads (process-wide); default: torch's", int, minimum=1),
        "method": Option("the registered method of a checkpoint without fer-edge metadata (see `fer-edge models`)"),
    }
    renamed = {"autocast": "precision"}
    not_options = {
        "performance_hint": "an OpenVINO setting",
        "static_batch": "an OpenVINO setting; the batch is free",
        "graph_optimization": "an ONNX Runtime setting",
        "cache_dir": "a setting of the openvino and tensorrt backends; checkpoints are not compiled",
        "min_batch": "a TensorRT engine-build setting; the batch is free",
        "opt_batch": "a TensorRT engine-build setting; the batch is free",
        "max_batch": "a TensorRT engine-build setting; the batch is free",
        "workspace_mb": "a TensorRT engine-build setting",
        "dla_core": "a TensorRT setting for Jetson DLA cores",
    }

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        gpus = range(torch.cuda.device_count()) if torch.cuda.is_available() else ()
        return {"cpu": "", **{f"cuda:{i}": torch.cuda.get_device_name(i) for i in gpus}}

    def __init__(self, path: str | Path, device: str = "auto", *, precision: str | None = None,
                 threads: int | None = None, method: str | None = None):
        super().__init__(path)
        if self.path.suffix.lower() not in (".safetensors", ".pt", ".pth"):
            raise FerEdgeError(f"the PyTorch backend reads .safetensors, .pt or .pth checkpoints, not {self.path.name!r}")
        self._device = resolve_device(device)
        self._autocast = AUTOCAST.get(precision or "fp32")  # None: no autocast
        self._precision = precision  # as asked (None: the default, fp32), for info()
        if threads:
            torch.set_num_threads(int(threads))
        sd, meta = read_torch_artifact(self.path)
        if meta is None:
            if method is None:
                raise FerEdgeError(f"{self.path.name} has no fer-edge metadata, so the network is unknown: "
                                   f"pass method='<registered name>' (see `fer-edge models`)")
            from ..models import get_config

            meta = get_config(method).metadata()
        elif method is not None and method != meta.method:
            raise FerEdgeError(f"{self.path.name} is a checkpoint for {meta.method!r}, not {method!r}")
        self._metadata = meta
        self.module = self._build(sd, meta).to(self._device).eval()
        self._output_names = [meta.output.name, *meta.output.extra]

    def _build(self, sd: dict, meta: ArtifactMetadata) -> torch.nn.Module:
        from ..models import create_model, get_config

        channels = get_config(meta.method).input.channels  # the file's metadata must fit the network
        if meta.input.channels != channels:
            raise FerEdgeError(f"{self.path.name}: its metadata gives {meta.input.color} input but {meta.method} "
                               f"takes {channels}-channel faces; re-export the artifact")

        try:
            model = create_model(meta.method, num_classes=meta.num_classes)
        except TypeError:  # constructors whose class count is fixed by their text prompts
            model = create_model(meta.method)
        load_state_dict_checked(model, sd, source=self.path.name, method=meta.method)
        return deployment_module(model.eval(), meta.graph)

    # --- describe -------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(self._metadata.input.name, self._metadata.input.shape("batch"), "float32")]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(n, ["batch", -1], "float32") for n in self._output_names]

    @property
    def device(self) -> str:
        return str(self._device)

    def read_metadata(self) -> ArtifactMetadata | None:
        return ArtifactMetadata.from_dict(self._metadata.to_dict())

    def info(self) -> BackendInfo:
        note = f"PyTorch autocast runs matmuls and convolutions in {self._precision}" if self._autocast else ""
        details = {"threads": torch.get_num_threads(), "precision": self._precision}
        if self._device.type == "cuda":
            details["gpu"] = torch.cuda.get_device_name(self._device)
        return BackendInfo(self.name, self.device, torch.__version__, precision_note=note, details=details)

    # --- run ------------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(feeds[self._metadata.input.name])).to(self._device)
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=self._autocast,
                                                    enabled=self._autocast is not None):
            out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = (out,)
        elif isinstance(out, dict):
            out = tuple(out[n] for n in self._output_names)
        if len(out) != len(self._output_names):
            raise FerEdgeError(f"{self._metadata.method} returned {len(out)} outputs but its metadata names "
                               f"{self._output_names}")
        return {n: t.float().cpu().numpy() for n, t in zip(self._output_names, out)}

    def close(self) -> None:
        self.module = None
        if self._device.type == "cuda":
            torch.cuda.empty_cache()  # hand the freed weights' memory back to the driver
