"""What the server runs: one model behind a dynamic batcher, pipelines for images and streams.

The model loads once. Every pipeline (a small pool for uploaded images, one per open WebSocket
stream) classifies through the same :class:`~fer_edge.serve.batching.BatchedBackend`, so faces of
concurrent requests share engine calls while each request keeps the exact results of
:class:`fer_edge.Pipeline` (the code ``fer-edge run`` uses). State is bounded: the image pool has
``workers`` pipelines and at most ``max_streams`` streams are open at once.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import FerEdgeError
from .batching import BatchedBackend, DynamicBatcher
from .errors import RequestError


@dataclass
class ServeOptions:
    """Everything `fer-edge serve` can set (the CLI's options, one to one)."""

    model: str = "default"
    backend: str | None = None
    device: str = "auto"
    detector: str | None = None  # None: the pipeline's default
    max_batch: int = 8  # face crops per classifier call
    max_delay_ms: float = 0.0  # how long a batch waits for more requests (0: only those already queued)
    workers: int = 4  # threads decoding, detecting and aligning (and image pipelines)
    max_streams: int = 8  # WebSocket streams open at once
    max_request_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_crops: int = 64  # crops in one /v1/predict request
    ema: float = 0.6
    hysteresis: float = 0.1
    detect_max_side: int | None = None  # None: the pipeline's default; 0: no limit

    def check(self) -> "ServeOptions":
        for name in ("max_batch", "workers", "max_streams", "max_request_bytes", "max_pixels", "max_crops"):
            if int(getattr(self, name)) < 1:
                raise FerEdgeError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.max_delay_ms <= 1000:
            raise FerEdgeError(f"max-delay-ms must be between 0 and 1000, got {self.max_delay_ms}")
        return self


class ServeEngine:
    """The loaded model, its batcher, the image pipelines and the stream slots."""

    def __init__(self, options: ServeOptions, on_batch=None):
        from .. import load
        from ..runtimes import Model

        self.options = options.check()
        loaded = load(options.model, device=options.device, backend=options.backend)
        if not isinstance(loaded, Model):
            raise FerEdgeError(f"{options.model} is a video model; `fer-edge serve` serves image models "
                               "(run video models with `fer-edge run`)")
        fixed = BatchedBackend.batch_limit(loaded.engine)
        self.max_batch = min(options.max_batch, fixed) if fixed else options.max_batch
        self.batcher = DynamicBatcher(loaded.engine.run, self.max_batch, options.max_delay_ms / 1000.0,
                                      on_batch=on_batch)
        self.model = Model(BatchedBackend(loaded.engine, self.batcher), loaded.metadata)
        names = [t.name for t in loaded.engine.inputs]  # the input Model.run feeds (metadata's, else the first)
        self.input_name = loaded.metadata.input.name if loaded.metadata.input.name in names else names[0]
        self.executor = ThreadPoolExecutor(options.workers, thread_name_prefix="fer-edge-serve")
        self._pool: queue.Queue = queue.Queue()
        for _ in range(options.workers):
            self._pool.put(self.new_pipeline())
        self._streams = threading.BoundedSemaphore(options.max_streams)
        self.closed = False

    def new_pipeline(self):
        from ..pipeline import Pipeline

        o = self.options
        chosen = {"detector": o.detector} if o.detector else {}
        if o.detect_max_side is not None:
            chosen["max_detect_side"] = o.detect_max_side or None
        return Pipeline(model=self.model, ema=o.ema, hysteresis=o.hysteresis, **chosen)

    @property
    def ready(self) -> bool:
        return not self.closed and self.batcher.alive

    def describe(self) -> dict:
        m = self.model.metadata
        return {"method": m.method, "backend": self.model.backend, "device": self.model.device,
                "labels": self.model.labels, "input_size": list(m.input.size), "max_batch": self.max_batch,
                "max_delay_ms": self.options.max_delay_ms}

    # --- work, run in the executor's threads ----------------------------------------------------
    def faces(self, image: np.ndarray) -> list[dict]:
        """The faces of one independent image, as `fer-edge run --json` writes them."""
        pipe = self._pool.get()
        try:
            pipe.reset_tracks()
            return [f.to_dict() for f in pipe(image)]
        finally:
            self._pool.put(pipe)

    def prepare(self, crops: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Face crops -> the classifier's feeds, for :meth:`DynamicBatcher.enqueue` (the /v1/predict route:
        no thread waits for the batch)."""
        from ..preprocess import preprocess_images

        if not crops or len(crops) > self.options.max_crops:
            raise RequestError(413 if crops else 400, f"{len(crops)} crops in one request; send 1 to "
                                                      f"{self.options.max_crops} (split larger sets)")
        return {self.input_name: preprocess_images(crops, self.model.metadata.input)}

    def finish(self, outputs: dict[str, np.ndarray]) -> list[dict]:
        """The batcher's outputs for one request -> one prediction record per crop (unrounded)."""
        return self.model.postprocess(outputs).to_records()

    def open_stream(self):
        """A fresh pipeline for one WebSocket stream, or None when all stream slots are taken."""
        if not self._streams.acquire(blocking=False):
            return None
        try:
            return self.new_pipeline()
        except BaseException:
            self._streams.release()
            raise

    def close_stream(self, pipe) -> None:
        pipe.reset()
        self._streams.release()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.batcher.close()
