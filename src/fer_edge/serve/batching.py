"""Dynamic batching: concurrent requests' faces go through the classifier in one engine call.

A server wins over a per-request loop by batching: one call on 8 crops costs far less than 8 calls on
one. :class:`DynamicBatcher` queues the tensors of concurrent callers and runs them together, at most
``max_batch`` rows per call, waiting at most ``max_delay`` for more once the first one arrives.
:class:`BatchedBackend` puts a batcher behind the ordinary :class:`~fer_edge.runtimes.base.Backend`
interface, so a plain :class:`~fer_edge.runtimes.Model` and :class:`~fer_edge.Pipeline` run on it
unchanged: the records a server returns are made by the same code as ``fer-edge run``'s.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import FerEdgeError
from ..runtimes.base import Backend, BackendInfo, TensorInfo
from .errors import RequestError

Feeds = dict[str, np.ndarray]


@dataclass
class _Item:
    feeds: Feeds
    rows: int
    future: Future = field(default_factory=Future)

    @property
    def shape_key(self) -> tuple:
        """Only tensors whose non-batch dimensions agree can be concatenated."""
        return tuple((k, v.shape[1:]) for k, v in sorted(self.feeds.items()))


class DynamicBatcher:
    """Runs ``run(feeds)`` on the concatenation of concurrent callers' feeds (rows along axis 0).

    Args:
        run: the engine call, named inputs -> named outputs, every output with the batch first.
        max_batch: most rows in one call (a caller with more rows than this runs alone).
        max_delay: seconds the first queued request waits for others to join its batch (0: no
            waiting; requests that queued while the engine was busy still share the next call).
        max_queue: most requests waiting; beyond it ``submit`` fails at once (bounded memory).
        on_batch: called with the row count of every engine call (metrics).
    """

    def __init__(self, run: Callable[[Feeds], Feeds], max_batch: int = 8, max_delay: float = 0.005,
                 max_queue: int = 1024, on_batch: Callable[[int], None] | None = None):
        if int(max_batch) < 1:
            raise FerEdgeError(f"max_batch must be >= 1, got {max_batch}")
        if not 0.0 <= float(max_delay) <= 1.0:
            raise FerEdgeError(f"max_delay must be between 0 and 1 second, got {max_delay}")
        self._run = run
        self.max_batch, self.max_delay = int(max_batch), float(max_delay)
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=int(max_queue))
        self._on_batch = on_batch or (lambda rows: None)
        self._held: _Item | None = None  # taken from the queue but did not fit the last batch
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fer-edge-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    @property
    def waiting(self) -> int:
        """Requests queued and not yet in an engine call."""
        return self._queue.qsize() + (self._held is not None)

    def submit(self, feeds: Feeds) -> Feeds:
        """Queue one caller's feeds and block until its own rows of the outputs are ready."""
        return self.enqueue(feeds).result()

    def enqueue(self, feeds: Feeds) -> Future:
        """Queue one caller's feeds; the future holds its rows of the outputs (await it with
        ``asyncio.wrap_future``: no thread waits meanwhile)."""
        if self._closed:
            raise RequestError(503, "the server is shutting down; retry on another instance")
        rows = {int(v.shape[0]) for v in feeds.values()}
        if len(rows) != 1:
            raise FerEdgeError(f"every input of one request needs the same batch size, got {sorted(rows)}")
        item = _Item(feeds, rows.pop())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise RequestError(503, "the server is overloaded (its batch queue is full); retry later") from None
        return item.future

    def close(self) -> None:
        """Stop after the requests already queued; later submits fail."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    # --- the batching thread ------------------------------------------------------------------
    def _next(self, timeout: float | None) -> _Item | None:
        """The held-over request first, else the queue's next (timeout None: wait; <= 0: do not wait)."""
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if timeout is not None and timeout <= 0:
            return self._queue.get_nowait()
        return self._queue.get(timeout=timeout)

    def _loop(self) -> None:
        while True:
            first = self._next(None)
            if first is None:
                return
            batch, stop = self._collect(first)
            self._execute(batch)
            if stop:
                self._drain()
                return

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        """The first request plus whatever joins it before the deadline, within max_batch rows."""
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.max_delay
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._next(remaining)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            if rows + item.rows > self.max_batch or item.shape_key != first.shape_key:
                self._held = item
                break
            batch.append(item)
            rows += item.rows
        return batch, False

    def _execute(self, batch: list[_Item]) -> None:
        try:
            feeds = batch[0].feeds if len(batch) == 1 else {
                name: np.concatenate([it.feeds[name] for it in batch]) for name in batch[0].feeds}
            outputs = self._run(feeds)
            self._on_batch(sum(it.rows for it in batch))
            start = 0
            for it in batch:
                it.future.set_result({k: v[start:start + it.rows] for k, v in outputs.items()})
                start += it.rows
        except BaseException as exc:  # every waiting caller hears of the failure
            for it in batch:
                if not it.future.done():
                    it.future.set_exception(exc)

    def _drain(self) -> None:
        """After close: run what was queued before the stop sign."""
        while True:
            try:
                item = self._next(0)
            except queue.Empty:
                return
            if item is not None:
                self._execute([item])


class BatchedBackend(Backend):
    """A backend whose ``run`` goes through a :class:`DynamicBatcher` in front of another backend."""

    name = "batched"

    def __init__(self, inner: Backend, batcher: DynamicBatcher):
        super().__init__(inner.path)
        self.inner, self.batcher = inner, batcher
        self.name = inner.name  # what ran it, for /readyz and logs

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        return {}  # a wrapper opens nothing by name: the wrapped backend's devices apply

    @staticmethod
    def batch_limit(inner: Backend) -> int | None:
        """The engine's fixed batch size, or None when its batch dimension is free."""
        first = inner.inputs[0].shape[0] if inner.inputs and inner.inputs[0].shape else None
        return first if isinstance(first, int) and first > 0 else None

    @property
    def inputs(self) -> list[TensorInfo]:
        return self.inner.inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return self.inner.outputs

    @property
    def device(self) -> str:
        return self.inner.device

    def read_metadata(self):
        return self.inner.read_metadata()

    def info(self) -> BackendInfo:
        return self.inner.info()

    def run(self, feeds: Feeds) -> Feeds:
        return self.batcher.submit(feeds)

    def close(self) -> None:
        self.batcher.close()
        self.inner.close()
