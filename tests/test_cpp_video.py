"""libfer_edge runs a video model as its split pair (frame encoder + temporal head) with per-track
clip buffers, as runtimes/clip_stream.py does: same warm-up, same clip predictions and tracks as
the Python pipeline. The pair here is tiny and hand-built (order-sensitive head), so the test is
fast; the DFER-CLIP export itself is tested in test_video_pipeline.py."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
onnx = pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")

import fer_edge  # noqa: E402
from fer_edge.pipeline import Pipeline  # noqa: E402

from test_cpp_parity import ov_detector  # noqa: E402

FRAMES, DIM = 4, 8
LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _meta(graph: str, labels, layout: str, out_name: str, kind: str, in_name: str, extra: dict) -> str:
    return json.dumps({
        "schema": "fer-edge/artifact", "schema_version": 1, "method": "tiny_pair", "labels": labels, "task": "video",
        "graph": graph, "precision": "fp32", "licence": "MIT", "fer_edge_version": fer_edge.__version__,
        "input": {"name": in_name, "layout": layout, "size": [16, 16], "color": "RGB", "resize": "bilinear",
                  "scale": 1 / 255, "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.25, 0.3], "face_template": "rafdb",
                  "face_scale": 1.2, "frames": FRAMES if layout == "NTCHW" else None,
                  "sampling": "tsn-centre" if layout == "NTCHW" else None},
        "output": {"name": out_name, "kind": kind, "extra": []}, "extra": extra})


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("tiny_pair")
    enc = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["mixed"]),
         helper.make_node("Tanh", ["mixed"], ["features"])],
        "encoder", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", DIM])],
        [numpy_helper.from_array(rng.normal(size=(3, DIM)).astype(np.float32) * 3, "w")])
    head = helper.make_graph(  # flatten (T, D) before the matmul: the frame order matters
        [helper.make_node("Flatten", ["features"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "head", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FRAMES, DIM])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(LABELS)])],
        [numpy_helper.from_array(rng.normal(size=(FRAMES * DIM, len(LABELS))).astype(np.float32) * 0.3, "w")])
    for graph, name, meta in (
            (enc, "enc.onnx", _meta("frame_encoder", [], "NCHW", "features", "features", "input", {"temporal_head": "head.onnx"})),
            (head, "head.onnx", _meta("temporal_head", LABELS, "NTCHW", "logits", "logits", "features",
                                      {"frame_encoder": "enc.onnx"}))):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        helper.set_model_props(model, {"fer_edge": meta})
        onnx.save(model, str(folder / name))
    return folder


def test_stream_pipeline_matches_python_clip_stream(fc, pair, sample_video):
    py = Pipeline(model=fer_edge.load(pair / "enc.onnx", backend="openvino", precision="fp32"), detector=ov_detector(),
                  stride=2)
    c_model = fc.Model(fc.LIB, pair / "head.onnx", options={"precision": "f32"})  # either graph opens the pair
    assert fc.LIB.fe_model_is_video(c_model.handle) == 1 and fc.LIB.fe_model_clip_length(c_model.handle) == FRAMES
    cpp = fc.Pipeline(c_model, {"stride": 2})
    cap = cv2.VideoCapture(str(sample_video))
    warm, ready, new = 0, 0, 0
    for i in range(10):
        ok, frame = cap.read()
        assert ok
        py_faces, c_faces = py(frame), cpp(frame)
        assert len(py_faces) == len(c_faces), f"frame {i}"
        for p, c in zip(py_faces, c_faces):
            assert p.track_id == c["track_id"] and np.abs(p.box - c["box"]).max() <= 1.0
            assert (p.clip_frames, p.clip_length, p.clip_new) == (c["clip"]["frames"], FRAMES, c["clip"]["new"])
            assert p.label == c["label"], f"frame {i}"
            if p.warming_up:
                assert c["probs"] is None and c["label"].startswith("warming up")
                warm += 1
            else:
                np.testing.assert_allclose(c["probs"], p.probs, atol=1e-4)
                np.testing.assert_allclose(c["smoothed_probs"], p.smoothed_probs, atol=1e-4)
                ready += 1
                new += c["clip"]["new"]
    cap.release()
    assert warm and ready and 0 < new < ready  # stride 2: not every ready frame has a new clip


def test_predict_clips_matches_python(fc, pair, face_photos):
    vm = fer_edge.load(pair / "enc.onnx", backend="openvino", precision="fp32")
    crops = [cv2.imread(str(p))[::8, ::8] for p in face_photos][:4]
    clips = [crops, crops[::-1]]  # the same frames in another order: another clip
    c_model = fc.Model(fc.LIB, pair / "enc.onnx", options={"precision": "f32"})
    probs, raw, _ = c_model.predict_clips(clips)
    want = vm.predict_clips(clips)
    np.testing.assert_allclose(probs, want.probs, atol=1e-4)
    np.testing.assert_allclose(raw, want.raw, atol=1e-4)
    assert not np.allclose(raw[0], raw[1], atol=1e-2)
    with pytest.raises(fc.CError, match="video model"):
        c_model.predict(crops)
