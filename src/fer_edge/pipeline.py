"""The live pipeline: detect -> align -> classify -> track -> smooth, one BGR frame at a time.

``Pipeline(model="default")(frame)`` returns one :class:`FaceResult` per face. Per-stage timings of
every call are kept in ``pipeline.timings`` for benchmarks. No PyTorch: numpy, OpenCV and whatever
backend the model runs on.

Image models classify every face crop of the frame in one batch. Video models (``metadata.input.frames``)
will plug in at :meth:`Pipeline._classify`: the per-track ``Track.state`` dict is where a clip buffer
of aligned crops belongs, so each track is classified once its buffer holds a clip.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FerEdgeError
from .vision.align import align_face
from .vision.detectors import Detection, FaceDetector, create_detector
from .vision.smoothing import ProbabilitySmoother
from .vision.tracking import IoUTracker, Track

STAGES = ("detect", "align", "classify", "track_smooth")
DEFAULT_DETECTOR = "blazeface"  # short range with tiling: see bench/pipeline_fps.py for the comparison


@dataclass
class FaceResult:
    """One face in one frame."""

    box: np.ndarray  # x1, y1, x2, y2 in frame pixels
    keypoints: np.ndarray  # (6, 2) frame pixels, detector order (see vision.detectors.KEYPOINT_NAMES)
    score: float  # detector confidence
    track_id: int
    label: str  # stable label (smoothed, with hysteresis): what to show
    confidence: float  # smoothed probability of `label`
    probs: np.ndarray  # this frame's probabilities (C,)
    smoothed_probs: np.ndarray  # (C,)
    label_names: list[str]
    uncertainty: float | None = None  # where the model gives it (evidential methods)

    @property
    def raw_label(self) -> str:
        """This frame's argmax, before smoothing."""
        return self.label_names[int(np.argmax(self.probs))]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "track_id": self.track_id,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints],
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "raw_label": self.raw_label,
            "probs": {n: round(float(p), 4) for n, p in zip(self.label_names, self.probs)},
            "smoothed_probs": {n: round(float(p), 4) for n, p in zip(self.label_names, self.smoothed_probs)},
        }
        if self.uncertainty is not None:
            d["uncertainty"] = round(float(self.uncertainty), 4)
        return d


@dataclass
class StageTimings:
    """Seconds spent per stage, one entry per frame."""

    frames: list[dict[str, float]] = field(default_factory=list)

    def add(self, entry: dict[str, float]) -> None:
        self.frames.append(entry)

    def clear(self) -> None:
        self.frames.clear()

    def totals(self) -> dict[str, float]:
        return {s: float(sum(f.get(s, 0.0) for f in self.frames)) for s in STAGES}

    def mean_ms(self) -> dict[str, float]:
        n = max(len(self.frames), 1)
        return {s: 1000.0 * v / n for s, v in self.totals().items()}


def _load_model(model, backend: str | None, device: str):
    from .runtimes import Model, load

    if isinstance(model, Model):
        return model
    if isinstance(model, (str, Path)):
        return load(model, device=device, backend=backend)
    raise FerEdgeError(f"model must be a loaded Model, a path or a registered name, got {type(model).__name__}")


class Pipeline:
    """Faces and their expressions in BGR frames.

    Args:
        model: a loaded ``Model``, an artifact path or a registered name (``"default"``).
        detector: a ``FaceDetector`` or a registered name (``"blazeface"``, ``"blazeface_full"``, ``"haar"``).
        backend, device: passed to ``fer_edge.load`` when `model` is not loaded yet.
        ema: weight of the past in each face's probability average (0 = no smoothing).
        hysteresis: margin another class must win by before the shown label changes.
        iou_threshold, max_missed: tracker settings (overlap to continue a track; frames it survives unseen).
        min_face: ignore faces whose box is smaller than this many pixels on its short side.
        detector_options: settings for a detector created by name (e.g. ``score_threshold``).
    """

    def __init__(self, model: Any = "default", detector: str | FaceDetector = DEFAULT_DETECTOR, *,
                 backend: str | None = None, device: str = "auto", ema: float = 0.6, hysteresis: float = 0.1,
                 iou_threshold: float = 0.3, max_missed: int = 10, min_face: int = 20,
                 detector_options: dict | None = None):
        self.model = _load_model(model, backend, device)
        spec = self.model.metadata.input
        if spec.layout != "NCHW" or spec.frames:
            raise FerEdgeError(
                f"{self.model.metadata.method} is a video model (clips of {spec.frames} frames); the live pipeline "
                "runs image models for now: pick an image model")
        self.detector = create_detector(detector, **(detector_options or {}))
        self.tracker = IoUTracker(iou_threshold=iou_threshold, max_missed=max_missed)
        ProbabilitySmoother(ema, hysteresis)  # validate now, not at the first face
        self.ema, self.hysteresis = float(ema), float(hysteresis)
        self.min_face = int(min_face)
        self.timings = StageTimings()
        self.last_crops: list[np.ndarray] = []

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def reset(self) -> None:
        """Forget tracks and timings (e.g. between unrelated videos)."""
        self.tracker.reset()
        self.timings.clear()

    def __call__(self, frame: np.ndarray) -> list[FaceResult]:
        clock = time.perf_counter
        t0 = clock()
        faces = [d for d in self.detector(frame) if min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= self.min_face]
        t1 = clock()
        crops = self._align(frame, faces)
        t2 = clock()
        prediction = self._classify(crops) if crops else None
        t3 = clock()
        tracks = self.tracker.update(np.stack([d.box for d in faces]) if faces else np.zeros((0, 4)))
        results = [self._smooth(d, tr, prediction, i) for i, (d, tr) in enumerate(zip(faces, tracks))]
        t4 = clock()
        self.last_crops = crops
        self.timings.add({"detect": t1 - t0, "align": t2 - t1, "classify": t3 - t2, "track_smooth": t4 - t3})
        return results

    def _align(self, frame: np.ndarray, faces: list[Detection]) -> list[np.ndarray]:
        spec = self.model.metadata.input
        return [align_face(frame, d.keypoints, tuple(spec.size), spec.face_template, spec.face_scale)[0]
                for d in faces]

    def _classify(self, crops: list[np.ndarray]):
        """One batch for all faces of the frame (a video model would read per-track clip buffers here)."""
        return self.model.predict(crops)

    def _smooth(self, det: Detection, track: Track, prediction, i: int) -> FaceResult:
        smoother = track.state.get("smoother")
        if smoother is None:
            smoother = track.state["smoother"] = ProbabilitySmoother(self.ema, self.hysteresis)
        probs = prediction.probs[i]
        smoothed, k = smoother.update(probs)
        unc = None if prediction.uncertainty is None else float(prediction.uncertainty[i])
        return FaceResult(box=det.box, keypoints=det.keypoints, score=det.score, track_id=track.id,
                          label=prediction.label_names[k], confidence=float(smoothed[k]), probs=probs,
                          smoothed_probs=smoothed, label_names=prediction.label_names, uncertainty=unc)
