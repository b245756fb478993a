"""Per-face temporal smoothing of expression probabilities, so the shown label does not flicker.

Two mechanisms, both per track: an exponential moving average of the probabilities (``ema`` is the
weight kept from the past: 0 = no smoothing), and hysteresis on the label: the shown label changes
only when another class beats it by ``hysteresis`` in smoothed probability, so two classes of near-equal
probability do not alternate frame by frame.
"""
from __future__ import annotations

import numpy as np

from ..errors import FerEdgeError


class ProbabilitySmoother:
    """EMA + hysteresis for one face."""

    def __init__(self, ema: float = 0.6, hysteresis: float = 0.1):
        if not 0.0 <= ema < 1.0:
            raise FerEdgeError(f"ema must be in [0, 1) (weight of the past; 0 = off), got {ema}")
        if not 0.0 <= hysteresis < 1.0:
            raise FerEdgeError(f"hysteresis must be in [0, 1), got {hysteresis}")
        self.ema = float(ema)
        self.hysteresis = float(hysteresis)
        self.probs: np.ndarray | None = None
        self.label: int | None = None

    def update(self, probs) -> tuple[np.ndarray, int]:
        """Add this frame's probabilities; return (smoothed probabilities, stable label index)."""
        probs = np.asarray(probs, np.float32).reshape(-1)
        if self.probs is None or self.probs.shape != probs.shape:
            self.probs = probs.copy()
        else:
            self.probs = self.ema * self.probs + (1.0 - self.ema) * probs
        best = int(np.argmax(self.probs))
        if self.label is None or self.label >= len(self.probs):
            self.label = best
        elif best != self.label and self.probs[best] > self.probs[self.label] + self.hysteresis:
            self.label = best
        return self.probs.copy(), self.label
