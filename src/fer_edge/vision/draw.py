"""Annotating frames: face box, track id, label with a confidence bar, FPS."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# BGR colour per canonical expression name; others get a stable colour from their name.
COLOURS = {
    "anger": (40, 40, 230), "disgust": (40, 140, 60), "fear": (160, 60, 160), "happy": (0, 200, 255),
    "sad": (200, 120, 40), "surprise": (0, 160, 255), "neutral": (200, 200, 200), "contempt": (120, 80, 200),
}


def colour_for(label: str) -> tuple[int, int, int]:
    if label in COLOURS:
        return COLOURS[label]
    h = sum(ord(c) * 31 ** i for i, c in enumerate(label)) % 180
    hsv = np.uint8([[[h, 200, 230]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


WARMING_UP = (150, 150, 150)


def draw_face(frame: np.ndarray, box, label: str, confidence: float | None, track_id: int | None = None,
              keypoints=None, uncertainty: float | None = None) -> None:
    """Draw one face in place; confidence None (a video model still filling its clip) draws the label
    in grey without a percentage or bar; `uncertainty` (evidential methods) is shown as "u=0.23"."""
    h, w = frame.shape[:2]
    thick = max(1, round(min(h, w) / 400))
    font = 0.4 + min(h, w) / 1600
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    colour = WARMING_UP if confidence is None else colour_for(label)
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick + 1)
    if keypoints is not None:
        for x, y in np.asarray(keypoints)[:4]:
            cv2.circle(frame, (int(round(x)), int(round(y))), thick + 1, colour, -1)
    text = (label + ("" if confidence is None else f" {confidence:.0%}")
            + ("" if uncertainty is None else f" u={uncertainty:.2f}")
            + (f"  #{track_id}" if track_id is not None else ""))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    ty = y1 - 8 if y1 - th - 12 > 0 else y2 + th + 8
    cv2.rectangle(frame, (x1, ty - th - 4), (x1 + tw + 6, ty + base), colour, -1)
    cv2.putText(frame, text, (x1 + 3, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    # confidence bar under the box
    bar_y = min(h - 1, y2 + 4)
    bar_h = max(3, thick * 3)
    cv2.rectangle(frame, (x1, bar_y), (x2, bar_y + bar_h), (60, 60, 60), -1)
    if confidence is None:
        return
    cv2.rectangle(frame, (x1, bar_y), (x1 + int((x2 - x1) * float(confidence)), bar_y + bar_h), colour, -1)


def draw_fps(frame: np.ndarray, fps: float) -> None:
    h, w = frame.shape[:2]
    font = 0.5 + min(h, w) / 1600
    thick = max(1, round(min(h, w) / 400))
    cv2.putText(frame, f"{fps:.1f} FPS", (10, int(30 * font + 10)), cv2.FONT_HERSHEY_SIMPLEX, font,
                (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} FPS", (10, int(30 * font + 10)), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255), thick, cv2.LINE_AA)


def draw_results(frame: np.ndarray, faces: Sequence, fps: float | None = None) -> np.ndarray:
    """A copy of `frame` with every face result (pipeline.FaceResult) and the FPS drawn on it."""
    out = frame.copy()
    for face in faces:
        confidence = None if getattr(face, "warming_up", False) else face.confidence
        draw_face(out, face.box, face.label, confidence, face.track_id, face.keypoints,
                  getattr(face, "uncertainty", None))
    if fps is not None:
        draw_fps(out, fps)
    return out
