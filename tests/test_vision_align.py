"""Alignment: the similarity transform and the templates put faces where the model expects them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.vision.align import TEMPLATES, align_face, box_crop, similarity_transform, template_points
from fer_edge.vision.detectors import create_detector

ASTRONAUT = "src/fer_edge/assets/astronaut.jpg"


def _apply(matrix, pts):
    return np.asarray(pts) @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_motion():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (4, 2))
    angle, scale, shift = np.deg2rad(25), 1.7, np.array([12.0, -30.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-5)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-3)


def test_degenerate_keypoints_are_a_clear_error():
    with pytest.raises(FerEdgeError, match="degenerate"):
        similarity_transform(np.ones((4, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_keypoints_land_on_the_template(template):
    size = (64, 48)
    target = template_points(template, size)
    # keypoints of a face twice as large, rotated 20 degrees, somewhere in a frame
    angle = np.deg2rad(20)
    rot = 2 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = target @ rot.T + [200, 150]
    frame = np.zeros((480, 640, 3), np.uint8)
    crop, m = align_face(frame, np.vstack([pts, [[0, 0], [1, 1]]]), size, template)
    assert crop.shape == (64, 48, 3)
    np.testing.assert_allclose(_apply(m, pts), target, atol=1e-3)


def test_template_rules():
    base = template_points("fer2013", (100, 100))
    wide = template_points("fer2013", (100, 100), scale=2.0)
    # more context: same centre, half the spread
    np.testing.assert_allclose(wide.mean(0), base.mean(0), atol=1e-4)
    np.testing.assert_allclose(np.ptp(wide, axis=0), np.ptp(base, axis=0) / 2, atol=1e-4)
    for pts in TEMPLATES.values():  # right eye left of left eye, eyes above nose above mouth
        assert pts[0, 0] < pts[2, 0] < pts[1, 0] and pts[0, 1] < pts[2, 1] < pts[3, 1]
    with pytest.raises(FerEdgeError, match="unknown face template"):
        template_points("nope")
    with pytest.raises(FerEdgeError, match="face_scale"):
        template_points("default", scale=0)


def test_alignment_undoes_head_roll_on_a_real_face():
    frame = cv2.imread(ASTRONAUT)
    detector = create_detector("blazeface")
    upright = align_face(frame, detector(frame)[0].keypoints, (96, 96), "fer2013")[0]
    h, w = frame.shape[:2]
    tilt = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    tilted_frame = cv2.warpAffine(frame, tilt, (w, h), borderMode=cv2.BORDER_REPLICATE)
    faces = detector(tilted_frame)
    assert faces, "BlazeFace should find the tilted face"
    tilted = align_face(tilted_frame, faces[0].keypoints, (96, 96), "fer2013")[0]
    a, b = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel() for x in (upright, tilted))
    assert np.corrcoef(a, b)[0, 1] > 0.85
    # a plain box crop of the tilted face matches much worse: the rotation was really undone
    plain = box_crop(tilted_frame, faces[0].box, (96, 96), scale=1.3)
    c = cv2.cvtColor(plain, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    assert np.corrcoef(a, c)[0, 1] < np.corrcoef(a, b)[0, 1]
