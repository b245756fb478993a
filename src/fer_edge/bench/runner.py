"""Run artifacts on backends and collect one benchmark row each.

A target is ``PATH_OR_NAME[@backend]``: the same file can be measured on several engines in one run
(``default@onnxruntime default@openvino``), which is what makes the speed ratios honest: every number
in a document comes from the same machine, the same process and the same input.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from ..data.faces import FaceSet
from ..errors import FerEdgeError
from .energy import PowerSampler
from .timing import LatencyStats, measure


@dataclass
class Target:
    spec: str
    path: str
    backend: str | None = None
    reference: bool = False

    @classmethod
    def parse(cls, spec: str, reference: bool = False) -> "Target":
        path, _, backend = spec.partition("@")
        return cls(spec=spec, path=path, backend=backend or None, reference=reference)


@dataclass
class BenchConfig:
    batches: tuple[int, ...] = (1, 8, 32)
    warmup: int = 10
    runs: int = 50
    threads: int | None = None
    device: str = "auto"
    max_seconds: float = 20.0  # per batch size, bounds slow artifacts on small machines
    accuracy: bool = True  # False: predictions only for agreement (weights that are not trained)
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"batches": list(self.batches), "warmup": self.warmup, "runs": self.runs,
                "threads": self.threads, "device": self.device, "max_seconds": self.max_seconds,
                "accuracy": self.accuracy}


def _rss_mb() -> float | None:
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss / 2**20
    except ImportError:
        return None


def _artifact_size_mb(path: Path) -> float:
    files = [path]
    if path.suffix == ".xml":
        files.append(path.with_suffix(".bin"))
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def _format_of(path: Path, backend: str) -> str:
    return {".onnx": "onnx", ".xml": "openvino-ir", ".engine": "tensorrt", ".plan": "tensorrt",
            ".safetensors": "pytorch", ".pt": "pytorch", ".pth": "pytorch"}.get(path.suffix, backend)


def _inputs(model, data: FaceSet | None, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Preprocessed input of `batch` items: real faces where data is given, else synthetic (latency only)."""
    spec = model.metadata.input
    if data is not None and spec.layout == "NCHW":
        from ..preprocess import preprocess_images

        idx = np.arange(batch) % len(data.labels)
        return preprocess_images([data.images[i] for i in idx], spec), "real faces"
    shape = [batch] + spec.shape(batch)[1:]
    return rng.standard_normal(shape).astype(np.float32), "synthetic"


def _predict_all(model, data: FaceSet, batch: int) -> tuple[np.ndarray, np.ndarray]:
    probs = []
    for start in range(0, len(data.labels), batch):
        probs.append(model.predict([data.images[i] for i in range(start, min(start + batch, len(data.labels)))]).probs)
    p = np.concatenate(probs)
    return p.argmax(1), p


def _accuracy(model, data: FaceSet, pred: np.ndarray) -> dict | None:
    """Metrics over the samples whose class the model knows (label names matched, not indices)."""
    from ..metrics import classification_metrics

    pos = {n: i for i, n in enumerate(model.metadata.labels)}
    y = np.array([pos.get(data.label_names[k], -1) for k in data.labels])
    keep = y >= 0
    if not keep.any():
        return None
    return classification_metrics(y[keep], pred[keep], labels=list(model.metadata.labels)).to_dict()


def bench_target(target: Target, cfg: BenchConfig, data: FaceSet | None) -> tuple[dict, np.ndarray | None]:
    """One row (and the argmax predictions over `data`, for agreement)."""
    import fer_edge
    from ..runtimes import backend_class, locate

    rss0 = _rss_mb()
    options = dict(cfg.options)
    if cfg.threads and "threads" in backend_class(locate(target.path, target.backend)[1]).options:
        options["threads"] = cfg.threads  # CPU engines only: TensorRT refuses threads= (it runs on the GPU)
    # pair=False: a video model's frame encoder / temporal head is timed as the one graph it is
    model = fer_edge.load(target.path, device=cfg.device, backend=target.backend, pair=False, **options)
    info = model.info()
    rng = np.random.default_rng(0)
    latency: list[LatencyStats] = []
    kind = "synthetic"
    energy: dict[int, float | None] = {}
    for b in cfg.batches:
        x, kind = _inputs(model, data, b, rng)
        with PowerSampler() as power:  # Jetson only: tegrastats input power while measuring
            stats = measure(lambda: model.run(x), batch=b, warmup=cfg.warmup, runs=cfg.runs,
                            max_seconds=cfg.max_seconds)
        latency.append(stats)
        if power.available:
            # the sampler also spans the warm-up calls: count them as processed items too
            energy[b] = power.millijoules_per_item(b * (stats.runs + cfg.warmup))
    pred = acc = None
    if data is not None and model.metadata.task == "image" and model.metadata.graph == "classifier":
        pred, _ = _predict_all(model, data, max(cfg.batches))
        acc = _accuracy(model, data, pred) if cfg.accuracy else None
    rss1 = _rss_mb()
    path = model.engine.path
    row = {
        "artifact": target.spec,
        "method": model.metadata.method,
        "backend": model.backend,
        "device": model.device,
        "format": _format_of(path, model.backend),
        "precision": model.metadata.precision,
        "precision_note": info.precision_note or None,
        "size_mb": round(_artifact_size_mb(path), 3),
        "latency": [s.to_dict() for s in latency],
        "accuracy": acc,
        "agreement": None,
        "speedup_vs_reference": None,
        "memory_mb": None if rss0 is None or rss1 is None else round(rss1 - rss0, 1),
        "input": kind,
        "reference": target.reference,
        "engine_version": info.version,
        "energy_mj_per_item": {str(b): v for b, v in energy.items()} or None,
    }
    model.engine.close()
    return row, pred


def _relate(rows: list[dict], preds: list[np.ndarray | None]) -> None:
    """Agreement with, and speed-up over, each method's reference row (PyTorch eager or first FP32 row)."""
    for method in {r["method"] for r in rows}:
        idx = [i for i, r in enumerate(rows) if r["method"] == method]
        ref = next((i for i in idx if rows[i].get("reference")), None)
        if ref is None:
            ref = next((i for i in idx if rows[i]["precision"] == "fp32"), idx[0])
        ref_lat = {x["batch"]: x["p50_ms"] for x in rows[ref]["latency"]}
        for i in idx:
            lat = {x["batch"]: x["p50_ms"] for x in rows[i]["latency"]}
            common = sorted(set(lat) & set(ref_lat))
            if common:
                rows[i]["speedup_vs_reference"] = round(ref_lat[common[0]] / lat[common[0]], 3)
            if preds[i] is not None and preds[ref] is not None:
                rows[i]["agreement"] = float(np.mean(preds[i] == preds[ref]))


def run(targets: list[Target], cfg: BenchConfig, data: FaceSet | None = None) -> tuple[list[dict], list]:
    if not targets:
        raise FerEdgeError("nothing to benchmark: name at least one artifact")
    rows, preds = [], []
    with Progress(transient=True) as progress:
        task = progress.add_task("benchmarking", total=len(targets))
        for t in targets:
            progress.update(task, description=f"benchmarking {t.spec}")
            row, pred = bench_target(t, cfg, data)
            rows.append(row)
            preds.append(pred)
            progress.advance(task)
    _relate(rows, preds)
    return rows, preds
