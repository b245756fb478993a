"""libfer_edge (C/C++) against the Python runtime on the shared photos, video and real face crops.

Same backend (OpenVINO, fp32) and artifact on both sides; the Python BlazeFace runs its decoding on
the same OpenVINO engine through its `infer=` hook, so the two pipelines see identical tensors. Then
boxes agree within 1 px, track ids are the same and probabilities agree within 1e-4.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
ov = pytest.importorskip("openvino")

import fer_edge  # noqa: E402
from fer_edge.pipeline import Pipeline  # noqa: E402
from fer_edge.vision.align import TEMPLATES  # noqa: E402
from fer_edge.vision.detectors import ASSETS, BlazeFaceDetector  # noqa: E402

MODEL = ASSETS / "mini_xception.onnx"
VIDEO_FRAMES = 16


def ov_detector() -> BlazeFaceDetector:
    compiled = ov.Core().compile_model(str(ASSETS / "blazeface.onnx"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})

    def infer(x):
        out = compiled(x)
        return out["regressors"], out["classificators"]

    return BlazeFaceDetector(infer=infer)


@pytest.fixture(scope="module")
def py_model():
    return fer_edge.load(MODEL, backend="openvino", precision="fp32")


@pytest.fixture(scope="module")
def pipelines(fc, py_model):
    c_model = fc.Model(fc.LIB, MODEL, options={"precision": "f32"})
    return Pipeline(model=py_model, detector=ov_detector()), fc.Pipeline(c_model), c_model


def assert_same_faces(py_faces, c_faces, where: str) -> None:
    assert len(py_faces) == len(c_faces), f"{where}: {len(py_faces)} faces in Python, {len(c_faces)} in C++"
    for p, c in zip(py_faces, c_faces):
        assert np.abs(p.box - c["box"]).max() <= 1.0, where
        assert np.abs(p.keypoints - c["keypoints"]).max() <= 1.0, where
        assert p.track_id == c["track_id"], where
        assert p.label == c["label"], where
        np.testing.assert_allclose(c["probs"], p.probs, atol=1e-4, err_msg=where)
        np.testing.assert_allclose(c["smoothed_probs"], p.smoothed_probs, atol=1e-4, err_msg=where)
        assert c["confidence"] == pytest.approx(p.confidence, abs=1e-4)


def test_pipeline_on_photos_matches_python(pipelines, face_photos):
    py, cpp, _ = pipelines
    total = 0
    for photo in face_photos:
        frame = cv2.imread(str(photo))
        py.reset_tracks()
        cpp.reset()
        py_faces, c_faces = py(frame), cpp(frame)
        assert_same_faces(py_faces, c_faces, photo.name)
        total += len(c_faces)
    assert total >= len(face_photos)  # every photo has a face; multiface.jpg several


def test_pipeline_on_video_matches_python_with_tracks(pipelines, sample_video):
    py, cpp, _ = pipelines
    py.reset_tracks()
    cpp.reset()
    before = cpp.frames  # timings and the frame count survive reset(), as in Python
    cap = cv2.VideoCapture(str(sample_video))
    ids = set()
    for i in range(VIDEO_FRAMES):
        ok, frame = cap.read()
        assert ok
        py_faces, c_faces = py(frame), cpp(frame)
        assert_same_faces(py_faces, c_faces, f"frame {i}")
        ids |= {c["track_id"] for c in c_faces}
    cap.release()
    assert len(ids) >= 2 and cpp.frames - before == VIDEO_FRAMES
    assert all(cpp.stage_seconds(s) > 0 for s in ("detect", "align", "classify"))


def test_predict_on_real_crops_matches_python(fc, pipelines, py_model, face_photos):
    py, _, c_model = pipelines
    aligned, boxed = [], []
    for photo in face_photos:
        frame = cv2.imread(str(photo))
        py.reset_tracks()
        faces = py(frame)
        aligned += py.last_crops
        for f in faces:  # unaligned rectangular crops: the resize path of preprocessing
            x1, y1, x2, y2 = (int(v) for v in f.box)
            boxed.append(frame[y1:y2, x1:x2])  # a strided view, as a camera frame's region would be
    for crops in (aligned, boxed):
        want = py_model.predict(crops)
        probs, raw, unc = c_model.predict(crops)
        np.testing.assert_allclose(probs, want.probs, atol=1e-4)
        np.testing.assert_allclose(raw, want.raw, atol=1e-3)
        assert (probs.argmax(1) == want.labels).all() and unc == [None] * len(crops)


def test_face_templates_and_version_match_python(fc):
    src = (ROOT / "cpp" / "src" / "metadata.cpp").read_text()
    for name, points in TEMPLATES.items():
        m = re.search(r'\{"' + name + r'", \{([^}]*)\}\}', src)
        assert m, f"template {name} is missing from cpp/src/metadata.cpp"
        numbers = [float(v.strip().rstrip("f")) for v in m.group(1).split(",")]
        np.testing.assert_array_equal(np.float32(numbers), points.reshape(-1))
    assert fc.LIB.fe_version().decode() == fer_edge.__version__


def test_library_exports_only_the_versioned_c_api(fc):
    import shutil
    import subprocess

    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    lib = ROOT / "cpp" / "build" / "libfer_edge.so"
    out = subprocess.run([readelf, "--dyn-syms", "--wide", str(lib)], capture_output=True, text=True, check=True).stdout
    defined = [line.split()[-1] for line in out.splitlines()
               if len(line.split()) >= 8 and line.split()[6] not in ("UND", "ABS") and line.split()[3] in ("FUNC", "OBJECT")]
    assert defined and all(re.fullmatch(r"fe_\w+@@FER_EDGE_1", s) for s in defined), defined[:5]
    assert {"fe_model_open@@FER_EDGE_1", "fe_pipeline_process@@FER_EDGE_1", "fe_version@@FER_EDGE_1"} <= set(defined)
