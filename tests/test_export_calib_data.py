"""Calibration/validation faces: photos through the runtime's detector and aligner, npz files,
dataset specs, label re-indexing by canonical name, reproducible subsets."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.metadata import InputSpec


def test_photo_folder_goes_through_detector_and_aligner(face_photos):
    from fer_edge.data.faces import load_faces

    spec = InputSpec(size=(112, 96), color="RGB")
    faces = load_faces(str(face_photos[0].parent), input_spec=spec)
    # four single-face photos and one group photo: at least one face each
    assert len(faces) >= len(face_photos) and not faces.labelled
    assert all(f.shape == (112, 96, 3) and f.dtype == np.uint8 for f in faces.images)
    assert faces.tensors(spec).shape == (len(faces), 3, 112, 96)
    # the crops are faces, not borders: real content with contrast
    assert min(float(f.std()) for f in faces.images) > 10


def test_npz_labels_follow_the_model_order(tmp_path, rng=np.random.default_rng(0)):
    from fer_edge.data.faces import load_faces

    path = tmp_path / "aligned.npz"
    images = rng.integers(0, 255, (6, 48, 48), dtype=np.uint8)
    np.savez(path, images=images, labels=np.array([0, 1, 2, 0, 1, 2]),
             classes=np.array(["Happy", "Contempt", "Angry"]))
    faces = load_faces(str(path)).relabel(["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    assert faces.labels.tolist() == [3, 0, 3, 0]  # happy -> 3, angry -> 0, contempt dropped
    assert any("left out" in n for n in faces.notes)


def test_subsets_are_reproducible(fer2013):
    from fer_edge.data.faces import load_faces

    a = load_faces("fer2013:train", limit=20)
    b = load_faces("fer2013:train", limit=20)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images)) and len(a) == 20
    with pytest.raises(FerEdgeError, match="positive"):
        a.subset(0)


def test_video_pseudo_clips_use_real_faces_only():
    from fer_edge.data.faces import FaceSet

    faces = FaceSet([np.full((8, 8), i, np.uint8) for i in range(3)])
    clips = faces.clips(4)
    assert len(clips) == 3 and [int(f[0, 0]) for f in clips[2]] == [2, 0, 1, 2]
    spec = InputSpec(layout="NTCHW", frames=4, size=(8, 8), color="GRAY", mean=(0.5,), std=(0.5,))
    assert faces.tensors(spec).shape == (3, 4, 1, 8, 8)
