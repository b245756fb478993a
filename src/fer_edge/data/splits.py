"""Held-out validation split, stratified by class and seeded, so a best epoch is chosen without the test set."""
from __future__ import annotations

import numpy as np


def stratified_split(targets, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held_out) index arrays; each class gives round(fraction * count) samples to held_out.

    A class with at least two samples always keeps one on each side, so neither part loses a class
    entirely; the split depends only on `targets`, `fraction` and `seed`.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    t = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(t):
        idx = np.flatnonzero(t == c)
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(rng.permutation(idx)[:k])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(len(t), bool)
    mask[out] = False
    return np.flatnonzero(mask), out.astype(np.int64)
