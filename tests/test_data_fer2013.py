"""The numpy reader of FER2013 / FER+ (used by accuracy tests, calibration, benchmarks, training)."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data import load_fer2013, load_ferplus
from fer_edge.data.fer2013 import stratified_indices
from fer_edge.errors import FerEdgeError
from fer_edge.labels import LABEL_SETS


@pytest.mark.parametrize("split,count,first_counts", [
    ("public_test", 3589, [467, 56, 496, 895, 653, 415, 607]),
    ("train", 28709, [3995, 436, 4097, 7215, 4830, 3171, 4965]),
])
def test_fer2013_splits_match_readme(shared_data, split, count, first_counts):
    ds = load_fer2013(split, root=shared_data)
    assert len(ds) == count and ds.images.shape == (count, 48, 48) and ds.images.dtype == np.uint8
    assert ds.class_counts().tolist() == first_counts
    assert ds.label_names == LABEL_SETS["fer2013"]


def test_ferplus_has_contempt(shared_data):
    ds = load_ferplus("public_test", root=shared_data)
    assert len(ds) == 3199 and ds.label_names[-1] == "contempt" and ds.labels.max() == 7


def test_stratified_subset_keeps_class_shares(shared_data):
    full = load_fer2013("train", root=shared_data)
    sub = load_fer2013("train", root=shared_data, limit=700, stratified=True, seed=1)
    assert len(sub) == 700
    share_full = full.class_counts() / len(full)
    assert np.abs(sub.class_counts() / 700 - share_full).max() < 0.01
    again = load_fer2013("train", root=shared_data, limit=700, stratified=True, seed=1)
    assert np.array_equal(sub.names, again.names)


def test_stratified_indices_keep_rare_classes():
    labels = np.array([0] * 990 + [1] * 10)
    idx = stratified_indices(labels, 20, seed=0)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert (labels[idx] == 1).sum() >= 1


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(FerEdgeError, match="FER_EDGE_DATA"):
        load_fer2013("public_test", root=tmp_path)
    with pytest.raises(FerEdgeError, match="no split"):
        load_ferplus("private", root=tmp_path)
