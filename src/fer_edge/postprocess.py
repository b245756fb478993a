"""Raw model outputs -> probabilities (and uncertainty), by the output kind in the metadata."""
from __future__ import annotations

import numpy as np

from .errors import FerEdgeError


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return (z / z.sum(axis=axis, keepdims=True)).astype(np.float32)


def evidential(evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet evidence -> (expected probabilities alpha/S, uncertainty K/S), as in subjective logic."""
    evidence = np.asarray(evidence, np.float64)
    alpha = evidence + 1.0
    strength = alpha.sum(axis=-1, keepdims=True)
    k = evidence.shape[-1]
    return (alpha / strength).astype(np.float32), (k / strength[..., 0]).astype(np.float32)


def to_probabilities(output: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(probs, uncertainty-or-None) from the primary output of a classifier graph."""
    output = np.asarray(output)
    if output.ndim != 2:
        raise FerEdgeError(f"the model's primary output should be (batch, classes), got shape {output.shape}")
    if kind in ("logits", "scaled_cosine"):
        return softmax(output), None
    if kind == "probabilities":
        return output.astype(np.float32), None
    if kind == "evidence":
        return evidential(output)
    raise FerEdgeError(f"output kind {kind!r} is not a classifier output")
