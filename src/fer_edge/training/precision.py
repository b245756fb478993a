"""Mixed precision for training steps: autocast plus a GradScaler for fp16, nothing for bf16/fp32.

Plain steps use the usual ``scale -> backward -> scaler.step -> update``. SAM needs two backward
passes per update and must see *unscaled* gradients before its first step; GradScaler allows one
``unscale_`` per update, so the second pass is unscaled by hand here, and an overflow in either pass
skips the update and backs the scale off, as GradScaler itself would.
"""
from __future__ import annotations

import contextlib

import torch

from ..errors import FerEdgeError

MODES = ("auto", "off", "fp16", "bf16")


class Precision:
    def __init__(self, mode: str, device: torch.device):
        if mode not in MODES:
            raise FerEdgeError(f"--amp must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "auto":
            mode = "fp16" if device.type == "cuda" else "off"
        if mode == "fp16" and device.type != "cuda":
            raise FerEdgeError("--amp fp16 needs a CUDA GPU; use --amp bf16 or --amp off on CPU")
        if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise FerEdgeError("this GPU has no bfloat16 support; use --amp fp16")
        self.mode, self.device = mode, device
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mode)
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")
        self._unscaled = False

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Optimizer step of a plain (single-backward) update."""
        self.scaler.step(optimizer)
        self.update()

    def unscale(self, optimizer: torch.optim.Optimizer) -> bool:
        """Turn the gradients into true gradients; False when any is inf/NaN (fp16 overflow)."""
        if not self.scaler.is_enabled():
            return True
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not self._unscaled:
            self.scaler.unscale_(optimizer)  # records the overflow check for update()
            self._unscaled = True
        else:
            inv = 1.0 / self.scaler.get_scale()
            for p in params:
                p.grad.mul_(inv)
        if not params:
            return True
        norms = torch.stack([p.grad.detach().float().norm() for p in params])
        return bool(torch.isfinite(norms).all())

    def update(self, overflow: bool = False) -> None:
        """End of an update. `overflow` reports an inf found outside GradScaler's own check."""
        if self.scaler.is_enabled():
            if overflow:
                self.scaler.update(self.scaler.get_scale() * self.scaler.get_backoff_factor())
            else:
                self.scaler.update()
        self._unscaled = False

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler.load_state_dict(state)
