"""fer_edge.Pipeline on real faces: detect, align, classify, track, smooth."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

import fer_edge
from fer_edge.errors import FerEdgeError
from fer_edge.pipeline import STAGES, Pipeline

ASTRONAUT = "src/fer_edge/assets/astronaut.jpg"


@pytest.fixture(scope="module")
def model():
    return fer_edge.load("default")


@pytest.fixture(scope="module")
def pipeline(model):
    return Pipeline(model=model)


def test_astronaut_is_one_happy_face(pipeline):
    pipeline.reset()
    (face,) = pipeline(cv2.imread(ASTRONAUT))
    x1, y1, x2, y2 = face.box
    assert 160 < x1 < x2 < 290 and 60 < y1 < y2 < 190  # her face, not the suit or the shuttle
    assert face.label == "happy" and face.confidence > 0.8
    assert face.track_id == 1 and face.keypoints.shape == (6, 2)
    assert face.probs.sum() == pytest.approx(1, abs=1e-4)
    assert face.label_names == pipeline.labels
    d = face.to_dict()
    assert d["label"] == "happy" and set(d["probs"]) == set(pipeline.labels)
    assert set(pipeline.timings.last) == set(STAGES)
    assert pipeline.last_crops[0].shape[:2] == tuple(pipeline.model.metadata.input.size)


def test_tracks_stay_stable_over_video_frames(pipeline, sample_video):
    pipeline.reset()
    cap = cv2.VideoCapture(str(sample_video))
    per_frame = []
    for _ in range(6):
        ok, frame = cap.read()
        assert ok
        per_frame.append(pipeline(frame))
    cap.release()
    assert all(len(faces) >= 2 for faces in per_frame), [len(f) for f in per_frame]
    # the most confident face of the first frame keeps its id through the clip
    first = max(per_frame[0], key=lambda f: f.score)
    assert all(any(f.track_id == first.track_id for f in faces) for faces in per_frame)
    # smoothing: the shown probabilities move less than the raw ones frame to frame
    series = [next(f for f in faces if f.track_id == first.track_id) for faces in per_frame]
    raw_jumps = np.abs(np.diff([s.probs for s in series], axis=0)).sum()
    smooth_jumps = np.abs(np.diff([s.smoothed_probs for s in series], axis=0)).sum()
    assert smooth_jumps <= raw_jumps
    assert pipeline.timings.count == 6 and all(v > 0 for v in pipeline.timings.totals().values())


def test_model_by_name_path_or_object(model):
    frame = cv2.imread(ASTRONAUT)
    by_path = Pipeline(model=model.engine.path)(frame)[0]
    by_name = Pipeline(model="default")(frame)[0]
    np.testing.assert_allclose(by_path.probs, by_name.probs, atol=1e-6)
    with pytest.raises(FerEdgeError, match="model must be"):
        Pipeline(model=3.5)
    with pytest.raises(FerEdgeError, match="unknown face detector"):
        Pipeline(model=model, detector="nope")


def test_video_models_are_refused_clearly(model):
    from fer_edge.runtimes import Model

    meta = model.metadata.to_dict()
    meta["input"] = {**meta["input"], "layout": "NTCHW", "frames": 16}
    clip_model = Model(model.engine, fer_edge.ArtifactMetadata.from_dict(meta))
    with pytest.raises(FerEdgeError, match="video model"):
        Pipeline(model=clip_model)


def test_no_face_no_result(pipeline):
    assert pipeline(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.parametrize("detector", ["haar", "blazeface_full"])
def test_other_detectors_plug_in(model, detector):
    if detector == "haar" and not hasattr(cv2, "CascadeClassifier"):
        with pytest.raises(FerEdgeError, match="Haar"):
            Pipeline(model=model, detector="haar")
        pytest.skip(f"OpenCV {cv2.__version__} has no Haar cascades (checked the error message instead)")
    pipe = Pipeline(model=model, detector=detector)
    assert pipe.detector.name == detector
    faces = pipe(cv2.imread(ASTRONAUT))
    assert any(160 < f.box[0] < 290 and f.label == "happy" for f in faces)


def test_pipeline_does_not_import_torch():
    code = (
        "import sys, cv2, fer_edge\n"
        f"faces = fer_edge.Pipeline()(cv2.imread({ASTRONAUT!r}))\n"
        "assert faces and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
