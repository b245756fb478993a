"""Metrics against values worked out by hand."""
import json
import math

import numpy as np
import pytest

from fer_edge import metrics as M

# targets/preds with a hand-made confusion matrix:
#   true 0: predicted 0,0,1   true 1: predicted 1,2   true 2: predicted 2
TARGETS = [0, 0, 0, 1, 1, 2]
PREDS = [0, 0, 1, 1, 2, 2]


def test_confusion_matrix_rows_are_true_classes():
    cm = M.confusion_matrix(TARGETS, PREDS, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_war_is_accuracy_and_uar_is_mean_recall():
    r = M.classification_metrics(TARGETS, PREDS, 3, labels=["a", "b", "c"])
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.war == r.accuracy
    assert r.per_class_recall == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert r.uar == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # 13/18, differs from WAR
    assert r.uar != pytest.approx(r.accuracy)
    assert M.uar(TARGETS, PREDS, 3) == pytest.approx(13 / 18)
    assert M.war(TARGETS, PREDS) == pytest.approx(4 / 6)


def test_macro_f1_by_hand():
    # F1 = 2TP / (2TP + FP + FN): class 0: 4/5, class 1: 2/4, class 2: 2/3
    assert M.macro_f1(TARGETS, PREDS, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_scores_are_argmaxed():
    scores = np.eye(3)[PREDS] * 5.0 - 1.0
    r = M.classification_metrics(TARGETS, scores)
    assert r.confusion == M.confusion_matrix(TARGETS, PREDS, 3).tolist()
    assert M.top1_accuracy(TARGETS, scores) == pytest.approx(4 / 6)


def test_absent_class_is_left_out_of_uar_and_reported_as_nan():
    # 4 classes; class 2 appears nowhere, class 3 only as a (wrong) prediction.
    r = M.classification_metrics([0, 0, 1, 1], [0, 3, 1, 1], 4)
    assert r.per_class_recall[:2] == pytest.approx([0.5, 1.0])
    assert math.isnan(r.per_class_recall[2]) and math.isnan(r.per_class_recall[3])
    assert r.classes_present == 2
    assert r.uar == pytest.approx(0.75)  # mean over the two present classes, not /4
    # F1: class 0 = 2/3, class 1 = 1, class 3 (predicted, never true) = 0, class 2 excluded
    assert r.macro_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)
    d = json.loads(json.dumps(r.to_dict()))  # JSON-safe: NaN became None
    assert d["per_class_recall"][2] is None and d["war"] == pytest.approx(0.75)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        M.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        M.confusion_matrix([0, 5], [0, 1], 2)
    with pytest.raises(ValueError):
        M.classification_metrics([], [], 3)


def test_confusion_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    from fer_edge.plots import plot_confusion_matrix

    cm = M.confusion_matrix([0, 0, 1, 1], [0, 3, 1, 1], 4)  # includes an empty row
    out = plot_confusion_matrix(cm, ["neutral", "happy", "sad", "fear"], tmp_path / "cm.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
