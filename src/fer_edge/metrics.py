"""Classification metrics for expression recognition (numpy only, no torch).

Used by training (per-epoch validation/test), export accuracy reports and benchmarks, so every
number the toolkit prints is computed one way.

Definitions (the FER literature's names):

* **WAR** (weighted average recall) = overall top-1 accuracy: each sample counts once.
* **UAR** (unweighted average recall) = mean of the per-class recalls, so rare classes
  (FER2013's disgust, AffectNet's contempt) weigh as much as common ones.
* **macro-F1** = mean of per-class F1.

Classes absent from the targets (e.g. a small evaluation subset without any disgust face) have no
defined recall. They are reported as NaN in ``per_class_recall`` and left OUT of UAR, so UAR is the
mean over the classes that occur; ``classes_present`` says how many that was. For macro-F1 a class
is counted when it occurs in the targets OR the predictions (predicting a class that never occurs
costs F1 = 0 for that class); a class in neither is left out.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np


def _as_int_array(x, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D class indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{what} must hold integer class indices")
    return a.astype(np.int64)


def predictions_from_scores(scores) -> np.ndarray:
    """Top-1 class index per row of a (N, C) score/logit array."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be (N, classes), got shape {s.shape}")
    return s.argmax(axis=1)


def confusion_matrix(targets, preds, num_classes: int) -> np.ndarray:
    """(C, C) counts; row = true class, column = predicted class."""
    t = _as_int_array(targets, "targets")
    p = _as_int_array(preds, "preds")
    if t.shape != p.shape:
        raise ValueError(f"targets and preds differ in length ({t.size} vs {p.size})")
    for name, a in (("targets", t), ("preds", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} hold class indices outside 0..{num_classes - 1}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per class; NaN for classes with no target sample."""
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 per class; NaN for classes neither in the targets nor in the predictions."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    denom = support + predicted  # 2TP + FP + FN
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), np.nan)


@dataclass
class ClassificationResult:
    """All the numbers of one evaluation; fractions in [0, 1]."""

    n: int
    accuracy: float  # top-1 = WAR
    uar: float
    macro_f1: float
    per_class_recall: list[float]
    confusion: list[list[int]]
    labels: list[str] = field(default_factory=list)
    classes_present: int = 0

    @property
    def war(self) -> float:
        return self.accuracy

    def to_dict(self) -> dict:
        d = asdict(self)
        d["war"] = self.accuracy
        # JSON has no NaN: absent classes become None.
        d["per_class_recall"] = [None if np.isnan(r) else float(r) for r in self.per_class_recall]
        for k in ("uar", "macro_f1", "accuracy", "war"):
            d[k] = None if d[k] is None or np.isnan(d[k]) else float(d[k])
        return d

    def summary(self) -> str:
        return f"top-1 {100 * self.accuracy:.2f}%  UAR {100 * self.uar:.2f}%  macro-F1 {100 * self.macro_f1:.2f}%  (n={self.n})"


def classification_metrics(targets, preds_or_scores, num_classes: int | None = None,
                           labels: Sequence[str] | None = None) -> ClassificationResult:
    """Top-1/WAR, UAR, macro-F1, per-class recall and confusion matrix.

    `preds_or_scores` is either 1-D predicted indices or (N, C) scores (argmax is taken).
    """
    p = np.asarray(preds_or_scores)
    if p.ndim == 2:
        num_classes = num_classes or p.shape[1]
        p = predictions_from_scores(p)
    if num_classes is None:
        num_classes = len(labels) if labels is not None else None
    if num_classes is None:
        raise ValueError("pass num_classes or labels when giving predicted indices")
    if labels is not None and len(labels) != num_classes:
        raise ValueError(f"{len(labels)} label names for {num_classes} classes")
    cm = confusion_matrix(targets, p, num_classes)
    n = int(cm.sum())
    if n == 0:
        raise ValueError("no samples to evaluate")
    recall = per_class_recall(cm)
    f1 = per_class_f1(cm)
    present = ~np.isnan(recall)
    return ClassificationResult(
        n=n,
        accuracy=float(np.trace(cm) / n),
        uar=float(recall[present].mean()),
        macro_f1=float(np.nanmean(f1)),
        per_class_recall=[float(r) for r in recall],
        confusion=cm.tolist(),
        labels=list(labels) if labels is not None else [],
        classes_present=int(present.sum()),
    )


def top1_accuracy(targets, preds_or_scores) -> float:
    t = _as_int_array(targets, "targets")
    p = np.asarray(preds_or_scores)
    p = predictions_from_scores(p) if p.ndim == 2 else _as_int_array(p, "preds")
    if t.size == 0:
        raise ValueError("no samples to evaluate")
    return float((t == p).mean())


def war(targets, preds_or_scores) -> float:
    """Weighted average recall = overall accuracy."""
    return top1_accuracy(targets, preds_or_scores)


def uar(targets, preds_or_scores, num_classes: int | None = None) -> float:
    """Unweighted average recall over the classes present in `targets`."""
    return classification_metrics(targets, preds_or_scores, num_classes or _infer_classes(targets, preds_or_scores)).uar


def macro_f1(targets, preds_or_scores, num_classes: int | None = None) -> float:
    return classification_metrics(targets, preds_or_scores, num_classes or _infer_classes(targets, preds_or_scores)).macro_f1


def _infer_classes(targets, preds_or_scores) -> int:
    p = np.asarray(preds_or_scores)
    if p.ndim == 2:
        return p.shape[1]
    return int(max(np.max(targets), np.max(p))) + 1
