"""Face alignment: a similarity transform from detector keypoints to a canonical face template.

A model sees faces the way its training set framed them. FER2013's 48x48 faces are tight crops with
the eyes at ~39% of the height; RAF-DB's aligned crops show more forehead and chin. The template
(``InputSpec.face_template``) says where the eyes, nose tip and mouth belong in the model's input, and
``InputSpec.face_scale`` zooms out (> 1: more context) or in around the template's centre. Rotation
(head roll) is undone too, because the transform maps the eyes onto a level line.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import FerEdgeError

# (x, y) of right eye, left eye, nose tip, mouth centre, as fractions of the crop's width/height
# (the person's right eye is on the image left). These four of the detector's six keypoints are used;
# the ear points are too unstable under head turns.
TEMPLATES: dict[str, np.ndarray] = {
    # Tight, ArcFace-like framing (the widely used 112x112 five-point template, mouth corners averaged).
    "default": np.array([[0.342, 0.462], [0.658, 0.460], [0.500, 0.640], [0.501, 0.824]], np.float32),
    # FER2013: median BlazeFace keypoints over 1374 FER2013 training faces (made left-right symmetric),
    # measured with this project's detector, so aligned crops look like the images the model learned.
    "fer2013": np.array([[0.312, 0.390], [0.688, 0.390], [0.500, 0.595], [0.500, 0.774]], np.float32),
    # RAF-DB / AffectNet-style aligned crops (POSTER V2, CLIP-based methods): looser, more forehead
    # and chin than FER2013. Approximate: eyes at ~40% height and a third of the width apart.
    "rafdb": np.array([[0.335, 0.400], [0.665, 0.400], [0.500, 0.560], [0.500, 0.720]], np.float32),
}


def template_points(template: str = "default", size: tuple[int, int] = (112, 112), scale: float = 1.0) -> np.ndarray:
    """Template keypoints (4, 2) in pixels of a crop of `size` (height, width), zoomed out by `scale`."""
    pts = TEMPLATES.get(template)
    if pts is None:
        raise FerEdgeError(f"unknown face template {template!r}; known: {', '.join(sorted(TEMPLATES))}")
    if scale <= 0:
        raise FerEdgeError(f"face_scale must be > 0, got {scale}")
    h, w = size
    centre = pts.mean(axis=0)
    zoomed = (pts - centre) / float(scale) + centre
    return zoomed * np.array([w, h], np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping src (N, 2) onto dst (N, 2), as 2x3.

    Closed form (Umeyama without reflection): deterministic, unlike RANSAC estimators, which matters
    for frame-to-frame stability.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum()
    if var < 1e-9:
        raise FerEdgeError("face keypoints are degenerate (all at one point); cannot align this face")
    # For 2-D similarities: [a -b; b a] with a, b from the cross-covariance.
    a = (s * d).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    rot = np.array([[a, -b], [b, a]])
    t = mu_d - rot @ mu_s
    return np.hstack([rot, t[:, None]]).astype(np.float32)


def align_face(frame: np.ndarray, keypoints: np.ndarray, size: tuple[int, int], template: str = "default",
               scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Crop one face from `frame` onto the template at `size` (height, width).

    Returns the crop (BGR uint8) and the 2x3 matrix mapping frame pixels to crop pixels. Outside the
    frame the border is replicated, so faces at the frame edge do not get black bars the model never saw.
    """
    pts = np.asarray(keypoints, np.float32).reshape(-1, 2)
    if len(pts) < 4:
        raise FerEdgeError(f"alignment needs at least 4 keypoints (eyes, nose, mouth), got {len(pts)}")
    matrix = similarity_transform(pts[:4], template_points(template, size, scale))
    h, w = size
    crop = cv2.warpAffine(frame, matrix, (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, matrix


def box_crop(frame: np.ndarray, box, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Square crop around a box, for detectors or callers without keypoints (no rotation correction)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * float(scale)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = size
    k = np.float32(w / side), np.float32(h / side)
    matrix = np.array([[k[0], 0, w / 2 - k[0] * cx], [0, k[1], h / 2 - k[1] * cy]], np.float32)
    return cv2.warpAffine(frame, matrix, (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
