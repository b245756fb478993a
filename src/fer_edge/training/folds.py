"""k-fold protocols (DFEW, MAFW): one training run per fold, then the mean and spread of test UAR/WAR.

Each fold trains into ``<output>/fold<N>`` exactly as a single ``--fold N`` run would (so a fold can be
resumed or inspected on its own); ``<output>/folds.json`` collects every fold's selected-epoch test
metrics and their mean, which is how DFEW and MAFW results are reported.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.catalog import dataset_name

METRICS = ("uar", "war", "accuracy", "macro_f1")


def summarize_folds(per_fold: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Mean and population std over folds of each metric (per-fold test metrics at the selected epoch)."""
    values = {m: np.array([f[m] for f in per_fold.values()], dtype=float) for m in METRICS}
    return {"folds": {str(k): v for k, v in per_fold.items()},
            "mean": {m: float(v.mean()) for m, v in values.items()},
            "std": {m: float(v.std()) for m, v in values.items()}}


def train_folds(cfg, dataset: str, folds: Sequence[int]) -> dict[str, Any]:
    """Train `cfg` on every fold of `dataset` in turn; returns (and writes) the per-fold and mean test metrics."""
    from .trainer import Trainer

    out = Path(cfg.output)
    per_fold = {}
    for fold in folds:
        cfg.echo(f"--- {dataset} fold {fold} of {len(folds)} ---")
        fold_cfg = replace(cfg, dataset=dataset_name(dataset, fold), output=out / f"fold{fold}")
        best = Trainer(fold_cfg).fit()["best"]
        per_fold[fold] = {m: best["test"][m] for m in METRICS}
    summary = {"dataset": dataset, "selected_on": cfg.select_on, **summarize_folds(per_fold)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds.json").write_text(json.dumps(summary, indent=2))
    return {**summary, "path": str(out / "folds.json")}
