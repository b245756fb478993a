"""Stratified, seeded sampling: a held-out validation split (so a best epoch is chosen without the test
set) and fixed-size subsets that keep each class's share."""
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


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` indices drawn without replacement so that each class keeps its share (at least 1 if present)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts / counts.sum() * n)).astype(int)
    # hand out the remainder to the classes with the largest fractional shares
    while quota.sum() < n:
        frac = counts / counts.sum() * n - quota
        quota[int(np.argmax(frac))] += 1
    while quota.sum() > n:
        quota[int(np.argmax(quota))] -= 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(q, cnt), replace=False)
             for c, q, cnt in zip(classes, quota, counts)]
    return np.sort(np.concatenate(picks))
