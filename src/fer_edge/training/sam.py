"""Sharpness-Aware Minimization (Foret et al., ICLR 2021), as POSTER V2 trains with it.

Each update takes two gradients: one at the weights w, used only to move to the nearby "worst" point
w + e with e = rho * g / ||g|| (Adaptive SAM scales by |w|), and one at w + e, which the base
optimizer applies after w is restored. The wrapper shares its parameter groups with the base
optimizer, so learning-rate schedulers stepping the wrapper reach the base optimizer.
"""
from __future__ import annotations

from typing import Callable

import torch


class SAM(torch.optim.Optimizer):
    """Wraps a constructed base optimizer (e.g. ``Adam``); ``rho`` is the neighbourhood radius."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False):
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        self.base = base
        self.rho, self.adaptive = rho, adaptive
        super().__init__(base.param_groups, dict(base.defaults, rho=rho, adaptive=adaptive))
        self.param_groups = base.param_groups  # one list: schedulers see the base's lr
        self._offsets: dict[torch.Tensor, torch.Tensor] = {}

    def _params_with_grad(self):
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def grad_norm(self) -> torch.Tensor:
        params = self._params_with_grad()
        if not params:
            return torch.zeros(())
        norms = [((p.abs() if self.adaptive else 1.0) * p.grad).norm(p=2) for p in params]
        return torch.stack([n.to(norms[0].device) for n in norms]).norm(p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Move to w + e (e = rho * g / ||g||) and remember e."""
        scale = self.rho / (self.grad_norm() + 1e-12)
        for p in self._params_with_grad():
            e = p.grad * scale.to(p.device)
            if self.adaptive:
                e = e * p.pow(2)
            p.add_(e)
            self._offsets[p] = e
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def restore(self) -> None:
        """Back to w (undo the perturbation) without an update."""
        for p, e in self._offsets.items():
            p.sub_(e)
        self._offsets.clear()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Restore w and apply the base optimizer with the gradient taken at w + e."""
        self.restore()
        self.base.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Full SAM update; `closure` must zero nothing, run forward + backward, and return the loss.

        The gradient at w must already be in ``.grad`` (from the caller's first backward).
        """
        if closure is None:
            raise RuntimeError("SAM.step needs a closure that recomputes the loss and its gradient")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step(zero_grad=False)
        return loss

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups
