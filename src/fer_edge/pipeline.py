"""The live pipeline: detect -> align -> classify -> track -> smooth, one BGR frame at a time.

``Pipeline(model="default")(frame)`` returns one :class:`FaceResult` per face. Per-stage timings are
kept in ``pipeline.timings`` for benchmarks (running totals and a short window: a pipeline may run for
months). No PyTorch: numpy, OpenCV and whatever backend the model runs on.

Consecutive calls are treated as frames of one sequence (tracks and smoothing carry over);
``reset_tracks()`` between unrelated images or videos starts afresh. Detection runs on the frame
shrunk to ``max_detect_side`` pixels at most; alignment crops faces from the full-resolution frame.

Image models classify every face crop of the frame in one batch. Video models (a
:class:`~fer_edge.runtimes.VideoModel`: frame encoder + temporal head) run per track through a
:class:`~fer_edge.runtimes.clip_stream.ClipStream`: each new aligned crop is encoded once into the
track's ring buffer of frame features, and the small temporal head gives a clip-level expression every
``stride`` frames once the buffer holds a clip; until then the face reports "warming up n/T". Buffers
of expired tracks are dropped.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
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
# Detection works on frames shrunk to this long side: 1080p video and photos up to 2048 px are detected
# as they are (results unchanged on the shared face photos); larger ones cost what a 2048 px frame does
# (a 10000 px photo: 0.5 s and no extra memory instead of 7 s and 2.6 GB). 4K video with tiny faces may
# want more.
DEFAULT_MAX_DETECT_SIDE = 2048


@dataclass
class FaceResult:
    """One face in one frame."""

    box: np.ndarray  # x1, y1, x2, y2 in frame pixels
    keypoints: np.ndarray  # (6, 2) frame pixels, detector order (see vision.detectors.KEYPOINT_NAMES)
    score: float  # detector confidence
    track_id: int
    label: str  # stable label (smoothed, with hysteresis): what to show ("warming up n/T" before a clip)
    confidence: float  # smoothed probability of `label`
    probs: np.ndarray | None  # this frame's probabilities (C,); video: the latest clip's (None before one)
    smoothed_probs: np.ndarray | None  # (C,)
    label_names: list[str]
    uncertainty: float | None = None  # where the model gives it (evidential methods)
    clip_length: int | None = None  # video models: frames per clip (None for image models)
    clip_frames: int = 0  # video models: frames of this track in its buffer
    clip_new: bool = False  # video models: a new clip prediction was made at this frame

    @property
    def warming_up(self) -> bool:
        return self.probs is None

    @property
    def raw_label(self) -> str | None:
        """This frame's (video: latest clip's) argmax, before smoothing; None while warming up."""
        return None if self.probs is None else self.label_names[int(np.argmax(self.probs))]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "track_id": self.track_id,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints],
        }
        if self.clip_length is not None:
            d["clip"] = {"frames": self.clip_frames, "length": self.clip_length, "new": self.clip_new,
                         "status": self.label if self.warming_up else "ready"}
        if self.warming_up:
            d.update(label=None, confidence=None)
            return d
        d.update({
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "raw_label": self.raw_label,
            "probs": {n: round(float(p), 4) for n, p in zip(self.label_names, self.probs)},
            "smoothed_probs": {n: round(float(p), 4) for n, p in zip(self.label_names, self.smoothed_probs)},
        })
        if self.uncertainty is not None:
            d["uncertainty"] = round(float(self.uncertainty), 4)
        return d


class StageTimings:
    """Seconds spent per stage: running totals over every frame, and the last `window` frames.

    Bounded on purpose: a per-frame list would grow for as long as a camera runs."""

    def __init__(self, window: int = 256):
        self.count = 0  # frames added since the last clear()
        self._totals = dict.fromkeys(STAGES, 0.0)
        self.recent: deque[dict[str, float]] = deque(maxlen=int(window))

    def add(self, entry: dict[str, float]) -> None:
        self.count += 1
        for stage in STAGES:
            self._totals[stage] += float(entry.get(stage, 0.0))
        self.recent.append(entry)

    @property
    def last(self) -> dict[str, float] | None:
        return self.recent[-1] if self.recent else None

    def clear(self) -> None:
        self.count = 0
        self._totals = dict.fromkeys(STAGES, 0.0)
        self.recent.clear()

    def totals(self) -> dict[str, float]:
        return dict(self._totals)

    def mean_ms(self) -> dict[str, float]:
        n = max(self.count, 1)
        return {s: 1000.0 * v / n for s, v in self._totals.items()}


def _load_model(model, backend: str | None, device: str):
    """A Model (image) or VideoModel (split pair); a monolithic clip graph is swapped for the pair it names."""
    from .runtimes import Model, VideoModel, load

    if isinstance(model, (Model, VideoModel)):
        loaded, where = model, None
    elif isinstance(model, (str, Path)):
        loaded, where = load(model, device=device, backend=backend), Path(model)
    else:
        raise FerEdgeError(f"model must be a loaded Model, a path or a registered name, got {type(model).__name__}")
    meta = loaded.metadata
    if isinstance(loaded, Model) and (meta.input.layout != "NCHW" or meta.input.frames):
        encoder = meta.extra.get("frame_encoder")
        if where is None or not encoder or not (where.parent / encoder).exists():
            raise FerEdgeError(
                f"{meta.method} is a clip graph (clips of {meta.input.frames} frames); the live pipeline runs video "
                "models as their split pair so that each frame is encoded once: pass the export folder, its "
                "_frame_encoder or _temporal_head graph, or a VideoModel")
        loaded = load(where.parent / encoder, device=device, backend=backend)
    return loaded


class Pipeline:
    """Faces and their expressions in BGR frames.

    Args:
        model: a loaded ``Model`` or ``VideoModel``, an artifact path (a video model's export folder or
            either graph of its pair too) or a registered name (``"default"``).
        detector: a ``FaceDetector`` or a registered name (``"blazeface"``, ``"blazeface_full"``, ``"haar"``).
        backend, device: passed to ``fer_edge.load`` when `model` is not loaded yet.
        ema: weight of the past in each face's probability average (0 = no smoothing).
        hysteresis: margin another class must win by before the shown label changes.
        iou_threshold, max_missed: tracker settings (overlap to continue a track; frames it survives unseen).
        stride: video models: frames of a track between two clip predictions (1 = every frame once its
            buffer holds a clip). Ignored for image models.
        min_face: ignore faces whose box is smaller than this many pixels on its short side (frame pixels).
        max_detect_side: detect on the frame shrunk to at most this many pixels on its long side
            (None: never shrink). Bounds detection time and memory on huge photos; boxes, keypoints
            and crops stay at full resolution.
        detector_options: settings for a detector created by name (e.g. ``score_threshold``).
    """

    def __init__(self, model: Any = "default", detector: str | FaceDetector = DEFAULT_DETECTOR, *,
                 backend: str | None = None, device: str = "auto", ema: float = 0.6, hysteresis: float = 0.1,
                 iou_threshold: float = 0.3, max_missed: int = 10, min_face: int = 20, stride: int = 4,
                 max_detect_side: int | None = DEFAULT_MAX_DETECT_SIDE, detector_options: dict | None = None):
        from .runtimes import VideoModel

        if max_detect_side is not None and (int(max_detect_side) != max_detect_side or max_detect_side < 64):
            raise FerEdgeError(f"max_detect_side must be a whole number of pixels >= 64 (or None: no limit), "
                               f"got {max_detect_side}")
        self.max_detect_side = None if max_detect_side is None else int(max_detect_side)
        self.model = _load_model(model, backend, device)
        self.video = isinstance(self.model, VideoModel)
        self.stride = int(stride)
        self.stream = self.model.stream(stride=self.stride) if self.video else None
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

    def reset_tracks(self) -> None:
        """Forget tracks, their smoothing and clip buffers: the next frame is unrelated to the last
        (another photo, another video). Timings are kept."""
        self.tracker.reset()
        if self.video:
            self.stream = self.model.stream(stride=self.stride)

    def reset(self) -> None:
        """Forget tracks and timings (e.g. between unrelated videos)."""
        self.reset_tracks()
        self.timings.clear()

    def __call__(self, frame: np.ndarray) -> list[FaceResult]:
        clock = time.perf_counter
        t0 = clock()
        found = self.detector(frame, max_side=self.max_detect_side)
        faces = [d for d in found if min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= self.min_face]
        t1 = clock()
        crops = self._align(frame, faces)
        t2 = clock()
        if self.video:
            results, classify = self._clips(faces, crops)
            t4 = clock()
            self.last_crops = crops
            self.timings.add({"detect": t1 - t0, "align": t2 - t1, "classify": classify,
                              "track_smooth": t4 - t2 - classify})
            return results
        prediction = self._classify(crops) if crops else None
        t3 = clock()
        tracks = self.tracker.update(np.stack([d.box for d in faces]) if faces else np.zeros((0, 4)))
        results = [self._smooth(d, tr, prediction, i) for i, (d, tr) in enumerate(zip(faces, tracks))]
        t4 = clock()
        self.last_crops = crops
        self.timings.add({"detect": t1 - t0, "align": t2 - t1, "classify": t3 - t2, "track_smooth": t4 - t3})
        return results

    def _align(self, frame: np.ndarray, faces: list[Detection]) -> list[np.ndarray]:
        spec = (self.model.encoder if self.video else self.model).metadata.input
        return [align_face(frame, d.keypoints, tuple(spec.size), spec.face_template, spec.face_scale)[0]
                for d in faces]

    def _classify(self, crops: list[np.ndarray]):
        """One batch for all faces of the frame (a video model would read per-track clip buffers here)."""
        return self.model.predict(crops)

    def _clips(self, faces: list[Detection], crops: list[np.ndarray]) -> tuple[list[FaceResult], float]:
        """Video models: track first, then push each face's crop into its track's clip stream.

        Returns the results and the seconds spent in the encoder and head (the "classify" stage)."""
        tracks = self.tracker.update(np.stack([d.box for d in faces]) if faces else np.zeros((0, 4)))
        start = time.perf_counter()
        preds = self.stream.push_many([(tr.id, crop) for tr, crop in zip(tracks, crops)])  # one encoder batch
        classify = time.perf_counter() - start
        alive = {t.id for t in self.tracker.tracks}
        for track_id in self.stream.tracks:
            if track_id not in alive:  # expired: its buffer would never be used again
                self.stream.drop(track_id)
        return [self._clip_result(d, tr, p) for d, tr, p in zip(faces, tracks, preds)], classify

    def _clip_result(self, det: Detection, track: Track, prediction) -> FaceResult:
        """The track's latest clip expression (smoothed over its clips), or its warm-up state."""
        length, names = self.stream.frames, self.model.labels
        if prediction is not None:
            smoother = track.state.get("smoother")
            if smoother is None:
                smoother = track.state["smoother"] = ProbabilitySmoother(self.ema, self.hysteresis)
            smoothed, k = smoother.update(prediction.probs[0])
            unc = None if prediction.uncertainty is None else float(prediction.uncertainty[0])
            track.state["clip"] = (prediction.probs[0], smoothed, k, unc)
        buffered = self.stream.buffered(track.id)
        common = dict(box=det.box, keypoints=det.keypoints, score=det.score, track_id=track.id, label_names=names,
                      clip_length=length, clip_frames=buffered, clip_new=prediction is not None)
        if "clip" not in track.state:
            return FaceResult(label=f"warming up {buffered}/{length}", confidence=0.0, probs=None,
                              smoothed_probs=None, **common)
        probs, smoothed, k, unc = track.state["clip"]
        return FaceResult(label=names[k], confidence=float(smoothed[k]), probs=probs, smoothed_probs=smoothed,
                          uncertainty=unc, **common)

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
