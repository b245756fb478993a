"""Figures shared by training, export reports and benchmarks. matplotlib is imported lazily (Agg)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import require


def _pyplot():
    matplotlib = require("matplotlib", "bench", "plots")
    matplotlib.use("Agg", force=True)  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (colour = recall share) annotated with percent and raw counts.

    Rows are true classes, columns predictions. Rows without samples stay blank instead of
    dividing by zero.
    """
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(labels):
        raise ValueError(f"confusion matrix {cm.shape} does not fit {len(labels)} labels")
    support = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, support, out=np.full(cm.shape, np.nan), where=support > 0)
    k = len(labels)
    size = 1.6 + 0.75 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    try:
        im = ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
        ax.set_xticks(range(k), labels=list(labels), rotation=45, ha="right")
        ax.set_yticks(range(k), labels=[f"{n} ({int(s)})" for n, s in zip(labels, support[:, 0])])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (count)")
        for i in range(k):
            for j in range(k):
                if np.isnan(norm[i, j]):
                    continue
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{100 * norm[i, j]:.0f}%\n{cm[i, j]}", ha="center", va="center",
                        fontsize=7, color=colour)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
