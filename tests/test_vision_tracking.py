"""Tracking ids and per-track smoothing on hand-made sequences."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.vision.smoothing import ProbabilitySmoother
from fer_edge.vision.tracking import IoUTracker


def _ids(tracker, boxes):
    return [t.id for t in tracker.update(boxes)]


def test_ids_follow_moving_faces_and_new_faces_get_new_ids():
    tr = IoUTracker(iou_threshold=0.3, max_missed=2)
    a, b = np.array([0, 0, 100, 100.0]), np.array([300, 0, 400, 100.0])
    assert _ids(tr, [a, b]) == [1, 2]
    assert _ids(tr, [b + 10, a + 10]) == [2, 1]  # order of detections does not matter
    assert _ids(tr, [a + 20, b + 20, [600, 600, 650, 650]]) == [1, 2, 3]


def test_tracks_expire_and_ids_are_never_reused():
    tr = IoUTracker(iou_threshold=0.3, max_missed=2)
    box = np.array([0, 0, 50, 50.0])
    assert _ids(tr, [box]) == [1]
    for _ in range(2):  # missed twice: still alive
        assert _ids(tr, []) == []
    assert _ids(tr, [box]) == [1]
    for _ in range(3):  # missed three times: expired
        tr.update([])
    assert tr.tracks == []
    assert _ids(tr, [box]) == [2]


def test_greedy_matching_prefers_the_larger_overlap():
    tr = IoUTracker(iou_threshold=0.1)
    tr.update([[0, 0, 100, 100], [60, 0, 160, 100]])
    # one detection overlapping both tracks goes to the one it overlaps more; the other is new
    ids = _ids(tr, [[55, 0, 155, 100], [500, 500, 600, 600]])
    assert ids == [2, 3]


def test_track_state_lives_and_dies_with_the_track():
    tr = IoUTracker(max_missed=0)
    (t,) = tr.update([[0, 0, 10, 10]])
    t.state["x"] = 1
    (t2,) = tr.update([[1, 1, 11, 11]])
    assert t2 is t and t2.state == {"x": 1} and t2.hits == 2
    tr.update([])
    assert tr.tracks == []


def test_ema_average():
    s = ProbabilitySmoother(ema=0.5, hysteresis=0.0)
    s.update([1.0, 0.0])
    smoothed, label = s.update([0.0, 1.0])
    np.testing.assert_allclose(smoothed, [0.5, 0.5])
    smoothed, label = s.update([0.0, 1.0])
    np.testing.assert_allclose(smoothed, [0.25, 0.75])
    assert label == 1


def test_no_smoothing_is_the_raw_argmax():
    s = ProbabilitySmoother(ema=0.0, hysteresis=0.0)
    for p in ([0.2, 0.8], [0.9, 0.1], [0.4, 0.6]):
        smoothed, label = s.update(p)
        np.testing.assert_allclose(smoothed, p)
        assert label == int(np.argmax(p))


def test_hysteresis_stops_flicker_but_follows_a_real_change():
    flicker = [[0.48, 0.52, 0.0], [0.52, 0.48, 0.0]] * 10
    raw = ProbabilitySmoother(ema=0.0, hysteresis=0.0)
    steady = ProbabilitySmoother(ema=0.0, hysteresis=0.1)
    raw_labels = [raw.update(p)[1] for p in flicker]
    steady_labels = [steady.update(p)[1] for p in flicker]
    assert len(set(raw_labels)) == 2  # the raw label flickers
    assert set(steady_labels) == {1}  # the stable one does not
    # a clear change wins through the EMA within a few frames
    s = ProbabilitySmoother(ema=0.6, hysteresis=0.1)
    s.update([0.9, 0.1, 0.0])
    labels = [s.update([0.05, 0.05, 0.9])[1] for _ in range(5)]
    assert labels[0] == 0 and labels[-1] == 2


@pytest.mark.parametrize("kw", [{"ema": 1.0}, {"ema": -0.1}, {"hysteresis": 1.5}])
def test_bad_settings_are_clear_errors(kw):
    with pytest.raises(FerEdgeError):
        ProbabilitySmoother(**kw)
