"""Latency measurement: warm-up kept apart from measurement, percentiles, and a spread that shows noise."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass
class LatencyStats:
    batch: int
    runs: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    throughput: float  # items per second at this batch size (batch / median latency)

    @classmethod
    def from_samples(cls, batch: int, seconds: list[float]) -> "LatencyStats":
        ms = np.asarray(seconds, np.float64) * 1e3
        p50 = float(np.percentile(ms, 50))
        return cls(batch=batch, runs=len(ms), min_ms=float(ms.min()), p50_ms=p50,
                   p90_ms=float(np.percentile(ms, 90)), p99_ms=float(np.percentile(ms, 99)),
                   max_ms=float(ms.max()), mean_ms=float(ms.mean()), throughput=batch / (p50 / 1e3))

    def to_dict(self) -> dict:
        return asdict(self)


def measure(fn: Callable[[], object], *, batch: int, warmup: int, runs: int,
            sync: Callable[[], None] | None = None, max_seconds: float | None = None) -> LatencyStats:
    """Time `fn` `runs` times after `warmup` untimed calls.

    `sync` is called after each call before the clock stops (e.g. a CUDA stream/device synchronise):
    backends returning host numpy arrays are already synchronous. `max_seconds` bounds the measured
    phase on slow machines (at least 5 runs are kept).
    """
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples: list[float] = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        samples.append(time.perf_counter() - t0)
        if max_seconds is not None and len(samples) >= 5 and time.perf_counter() - start > max_seconds:
            break
    return LatencyStats.from_samples(batch, samples)
