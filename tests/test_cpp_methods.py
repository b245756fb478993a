"""libfer_edge on exports of the bigger methods (slow: each makes a real `fer-edge export`):
POSTER V2 with the reference fill weights, and DFER-CLIP (reduced architecture) as its split pair.
C++ and Python on the same OpenVINO artifact agree within 1e-4 on real face crops and clips."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
torch = pytest.importorskip("torch")
pytest.importorskip("openvino")

import fer_edge  # noqa: E402
from fer_edge.pipeline import Pipeline  # noqa: E402

from conftest import crops_of  # noqa: E402
from test_cpp_parity import ov_detector  # noqa: E402

pytestmark = pytest.mark.slow


def export(tmp_path_factory, **options) -> Path:
    from fer_edge.export.orchestrate import ExportOptions, run_export

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(3)
        out = tmp_path_factory.mktemp(options["method"])
        bundle = run_export(ExportOptions(formats=("onnx",), output=str(out), parity_faces=2, **options))
    finally:
        torch.set_num_threads(threads)
    return bundle


def aligned_crops(model, face_photos) -> list:
    """Real faces as the Python pipeline aligns them for `model` (its template and size)."""
    return crops_of(Pipeline(model=model, detector=ov_detector()), face_photos)


def test_poster_v2_predict_matches_python(fc, tmp_path_factory, poster_checkpoint, face_photos):
    bundle = export(tmp_path_factory, method="poster_v2", weights=str(poster_checkpoint))
    onnx_file = next(bundle.folder / a["file"] for a in bundle.artifacts if a["file"].endswith(".onnx"))
    py = fer_edge.load(onnx_file, backend="openvino", precision="fp32")
    crops = aligned_crops(py, face_photos)[:4]
    c_model = fc.Model(fc.LIB, onnx_file, options={"precision": "f32"})
    assert c_model.labels == py.labels
    probs, _, _ = c_model.predict(crops)
    np.testing.assert_allclose(probs, py.predict(crops).probs, atol=1e-4)


def test_dfer_clip_split_pair_matches_python(fc, tmp_path_factory, face_photos, sample_video):
    pytest.importorskip("open_clip")
    from fer_edge.models.dfer_clip import TINY_ARCH

    bundle = export(tmp_path_factory, method="dfer_clip", random_init=True, model_kwargs={"arch": TINY_ARCH})
    files = {a.get("graph", "classifier"): bundle.folder / a["file"] for a in bundle.artifacts}
    vm = fer_edge.load(files["frame_encoder"], backend="openvino", precision="fp32")
    frames = vm.frames
    crops = aligned_crops(vm, face_photos)
    clips = [[crops[(i + k) % len(crops)] for k in range(frames)] for i in range(2)]
    # the split pair, opened from either graph, and the monolithic graph all give the clip's expression
    for path in (files["frame_encoder"], files["temporal_head"], files["classifier"]):
        c_model = fc.Model(fc.LIB, path, options={"precision": "f32"})
        probs, _, _ = c_model.predict_clips(clips)
        np.testing.assert_allclose(probs, vm.predict_clips(clips).probs, atol=1e-4, err_msg=path.name)
    # the live pipeline; the C++ side is given the monolithic graph, which it swaps for its pair
    py = Pipeline(model=files["frame_encoder"], backend="openvino", detector=ov_detector(), stride=4)
    cpp = fc.Pipeline(fc.Model(fc.LIB, files["classifier"]), {"stride": 4})
    cap = cv2.VideoCapture(str(sample_video))
    ready = 0
    for i in range(frames + 6):
        ok, frame = cap.read()
        assert ok
        for p, c in zip(py(frame), cpp(frame), strict=True):
            assert (p.track_id, p.label, p.clip_frames) == (c["track_id"], c["label"], c["clip"]["frames"])
            if not p.warming_up:
                np.testing.assert_allclose(c["probs"], p.probs, atol=1e-4)
                ready += 1
    assert ready
