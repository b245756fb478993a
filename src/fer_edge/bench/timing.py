"""Latency measurement: warm-up kept apart from measurement, percentiles, and a spread that shows noise."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

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


def measure_interleaved(fns: Sequence[Callable[[], object]], *, batch: int = 1, warmup: int, runs: int,
                        repeats: Sequence[int] | None = None, sync: Callable[[], None] | None = None,
                        max_seconds: float | None = None) -> list[LatencyStats]:
    """Time several callables round-robin, so load changes on a shared machine hit them all alike.

    Each round calls ``fns[i]`` ``repeats[i]`` times (default once), timing every call; `warmup`
    untimed rounds come first. `sync` is called after each call before the clock stops (e.g. a CUDA
    synchronise; backends returning host numpy arrays are already synchronous). `max_seconds` bounds
    the measured phase on slow machines (at least 5 rounds are kept).
    """
    repeats = list(repeats or [1] * len(fns))
    for _ in range(warmup):
        for fn in fns:
            fn()
    if sync:
        sync()
    samples: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for done in range(1, runs + 1):
        for fn, reps, out in zip(fns, repeats, samples):
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                if sync:
                    sync()
                out.append(time.perf_counter() - t0)
        if max_seconds is not None and done >= 5 and time.perf_counter() - start > max_seconds:
            break
    return [LatencyStats.from_samples(batch, out) for out in samples]


def measure(fn: Callable[[], object], *, batch: int, warmup: int, runs: int,
            sync: Callable[[], None] | None = None, max_seconds: float | None = None) -> LatencyStats:
    """Time one callable `runs` times after `warmup` untimed calls (see :func:`measure_interleaved`)."""
    return measure_interleaved([fn], batch=batch, warmup=warmup, runs=runs, sync=sync, max_seconds=max_seconds)[0]
