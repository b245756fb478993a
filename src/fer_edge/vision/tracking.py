"""Face tracking by box overlap: stable ids across frames, so per-face state (smoothing) can live on.

Faces move little between consecutive frames, so greedy IoU matching (best overlaps first) is enough
for a live camera and much cheaper than appearance features. A track that goes unmatched for more
than ``max_missed`` frames expires; ids are never reused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .detectors import iou_matrix


@dataclass
class Track:
    """One face followed over time. ``state`` holds per-face data of later stages (smoother, clip buffer)."""

    id: int
    box: np.ndarray
    hits: int = 1  # frames in which it was detected
    missed: int = 0  # consecutive frames without a detection
    age: int = 1  # frames since it appeared
    state: dict[str, Any] = field(default_factory=dict)


class IoUTracker:
    """Greedy IoU matcher.

    Args:
        iou_threshold: minimum overlap for a detection to continue a track.
        max_missed: frames a track survives without a detection (covers blinks of the detector).
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10):
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks = []
        self._next_id = 1

    def update(self, boxes) -> list[Track]:
        """Match this frame's boxes (N, 4) to tracks; return the track of each box, in box order."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        assigned: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            iou = iou_matrix(np.stack([t.box for t in self.tracks]), boxes)
            pairs = np.argwhere(iou >= self.iou_threshold)
            pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]
            used_t, used_d = set(), set()
            for ti, di in pairs:
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                assigned[di] = self.tracks[ti]
        matched = {id(t) for t in assigned if t is not None}
        for track in self.tracks:
            track.age += 1
            if id(track) not in matched:
                track.missed += 1
        for di, track in enumerate(assigned):
            if track is None:
                track = Track(id=self._next_id, box=boxes[di])
                self._next_id += 1
                self.tracks.append(track)
                assigned[di] = track
            else:
                track.box = boxes[di]
                track.hits += 1
                track.missed = 0
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return assigned  # type: ignore[return-value]
