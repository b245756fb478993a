"""The dynamic batcher: concurrent callers share engine calls and each gets exactly its own rows.

No timing is asserted: the engine call is held on an event until the callers are queued, so what
joins which batch is decided by the queue, not by the clock."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.serve.batching import BatchedBackend, DynamicBatcher
from fer_edge.serve.errors import RequestError


class HeldEngine:
    """An engine whose calls wait for `release`; records each call's row count. Output = input * 2 + 1."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def __call__(self, feeds):
        self.entered.set()
        self.release.wait(30)
        x = feeds["x"]
        self.calls.append(len(x))
        return {"y": x * 2 + 1, "k": x[:, :1].sum(axis=1)}


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _run_held(batcher, engine: HeldEngine, inputs, while_held=lambda: None):
    """Submit `inputs` from one thread each: the first enters the engine and is held there while the
    rest queue behind it one by one, in order; `while_held()` runs, then the engine is released.
    (results, errors)."""
    results = [None] * len(inputs)
    errors = [None] * len(inputs)

    def call(i):
        try:
            results[i] = batcher.submit({"x": inputs[i]})
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    threads[0].start()
    engine.entered.wait(30)
    for i in range(1, len(threads)):
        threads[i].start()
        _wait_until(lambda: batcher.waiting == i, f"{i} queued callers")
    while_held()
    engine.release.set()
    for t in threads:
        t.join(30)
    return results, errors


def test_queued_callers_share_one_call_and_get_their_own_rows():
    engine = HeldEngine()
    batcher = DynamicBatcher(engine, max_batch=8, max_delay=0.0)
    try:
        inputs = [np.full((rows, 3), i, np.float32) for i, rows in enumerate([1, 2, 1, 3, 2, 1])]
        results, errors = _run_held(batcher, engine, inputs)
        assert errors == [None] * 6
        # 1 alone, then 2+1+3+2 = 8 rows (the batch limit), then the last 1
        assert engine.calls == [1, 8, 1]
        for x, out in zip(inputs, results):
            np.testing.assert_array_equal(out["y"], x * 2 + 1)
            np.testing.assert_array_equal(out["k"], x[:, 0])
    finally:
        engine.release.set()
        batcher.close()


def test_batch_one_never_merges():
    engine = HeldEngine()
    batcher = DynamicBatcher(engine, max_batch=1, max_delay=0.05)
    try:
        results, errors = _run_held(batcher, engine, [np.ones((1, 2), np.float32) * i for i in range(4)])
        assert engine.calls == [1, 1, 1, 1] and errors == [None] * 4
    finally:
        engine.release.set()
        batcher.close()


def test_other_shapes_are_not_concatenated():
    engine = HeldEngine()
    batcher = DynamicBatcher(engine, max_batch=8, max_delay=0.0)
    try:
        inputs = [np.ones((1, 3), np.float32), np.ones((1, 3), np.float32), np.ones((1, 5), np.float32),
                  np.ones((1, 3), np.float32)]
        results, errors = _run_held(batcher, engine, inputs)
        assert errors == [None] * 4
        assert engine.calls == [1, 1, 1, 1]  # (1,3) | (1,3) stops at the (1,5) | (1,5) | (1,3)
        assert [r["y"].shape for r in results] == [x.shape for x in inputs]
    finally:
        engine.release.set()
        batcher.close()


def test_engine_failure_reaches_every_caller_and_the_batcher_goes_on():
    calls = []

    def engine(feeds):
        calls.append(len(feeds["x"]))
        if len(calls) == 1:
            raise FerEdgeError("engine broke")
        return {"y": feeds["x"]}

    batcher = DynamicBatcher(engine, max_batch=4, max_delay=0.0)
    try:
        with pytest.raises(FerEdgeError, match="engine broke"):
            batcher.submit({"x": np.ones((2, 2), np.float32)})
        out = batcher.submit({"x": np.zeros((3, 2), np.float32)})
        assert out["y"].shape == (3, 2) and batcher.alive
    finally:
        batcher.close()


def test_full_queue_and_closed_batcher_refuse_with_503():
    engine = HeldEngine()
    batcher = DynamicBatcher(engine, max_batch=2, max_delay=0.0, max_queue=1)
    try:
        def one_more_is_refused():
            with pytest.raises(RequestError, match="overloaded") as full:
                batcher.submit({"x": np.ones((1, 1), np.float32)})
            assert full.value.status == 503

        _, errors = _run_held(batcher, engine, [np.ones((1, 1), np.float32)] * 2, one_more_is_refused)
        assert errors == [None, None]
    finally:
        engine.release.set()
        batcher.close()
    with pytest.raises(RequestError, match="shutting down"):
        batcher.submit({"x": np.ones((1, 1), np.float32)})
    assert not batcher.alive


@pytest.mark.parametrize("kwargs, message", [({"max_batch": 0}, "max_batch"), ({"max_delay": -1}, "max_delay")])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(FerEdgeError, match=message):
        DynamicBatcher(lambda f: f, **kwargs)


def test_model_on_batched_backend_predicts_like_the_plain_model(face_photos):
    """The server's Model (the real engine behind the batcher) gives the plain Model's predictions."""
    import cv2

    import fer_edge
    from fer_edge.runtimes import Model

    plain = fer_edge.load("default")
    batcher = DynamicBatcher(plain.engine.run, max_batch=4, max_delay=0.0)
    batched = Model(BatchedBackend(plain.engine, batcher), plain.metadata)
    try:
        crops = [cv2.resize(cv2.imread(str(p)), (96, 96)) for p in face_photos]
        want, got = plain.predict(crops), batched.predict(crops)
        np.testing.assert_array_equal(got.probs, want.probs)
        assert got.names == want.names and batched.labels == plain.labels
        assert BatchedBackend.batch_limit(plain.engine) is None  # the default model's batch is free
    finally:
        batcher.close()
