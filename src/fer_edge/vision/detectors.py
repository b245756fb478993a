"""Face detectors behind one small interface, chosen by name.

``blazeface`` is MediaPipe's short-range BlazeFace and ``blazeface_full`` its full-range sibling (same
decoding, different input size and anchors: see ``BLAZEFACE_VARIANTS``), both shipped as ONNX and run
on ONNX Runtime: fast on a CPU, and they give six keypoints that alignment uses. ``haar`` is OpenCV's bundled frontal-face
cascade: no model file at all, keypoints estimated from the box. New detectors subclass
:class:`FaceDetector` and register with :func:`register_detector`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import cv2
import numpy as np

from ..errors import FerEdgeError

ASSETS = Path(__file__).resolve().parents[1] / "assets"

# MediaPipe's keypoint order; "right"/"left" are the person's own (image left/right in a frontal photo).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass
class Detection:
    """One face: box (x1, y1, x2, y2) and keypoints (6, 2) in pixels of the frame, and a score in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": {n: [round(float(x), 1), round(float(y), 1)] for n, (x, y) in zip(KEYPOINT_NAMES, self.keypoints)},
        }


class FaceDetector(ABC):
    """Finds faces in a BGR uint8 frame."""

    name: ClassVar[str]

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """All faces in `frame` (H, W, 3) BGR uint8, best first."""

    def __call__(self, frame: np.ndarray, max_side: int | None = None) -> list[Detection]:
        """`detect`, on a copy shrunk to at most `max_side` pixels on its long side if the frame is larger.

        Boxes and keypoints are always in pixels of `frame`. Bounding the working size bounds the
        detector's time and memory (BlazeFace tiles by frame size: a 10k px photo would be ~1400
        windows at once, and more windows also mean more false faces in textures like hair)."""
        frame = _check_frame(frame)
        h, w = frame.shape[:2]
        if max_side is None or max(h, w) <= max_side:
            return self.detect(frame)
        k = max_side / max(h, w)
        small = cv2.resize(frame, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        sx, sy = w / small.shape[1], h / small.shape[0]
        return [Detection(d.box * np.array([sx, sy, sx, sy], np.float32), d.keypoints * np.array([sx, sy], np.float32),
                          d.score) for d in self.detect(small)]


_DETECTORS: dict[str, type[FaceDetector]] = {}


def register_detector(name: str):
    """Class decorator: make a detector available by name (``--detector NAME``)."""

    def wrap(cls: type[FaceDetector]) -> type[FaceDetector]:
        cls.name = name
        _DETECTORS[name] = cls
        return cls

    return wrap


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


def create_detector(detector: str | FaceDetector = "blazeface", **options) -> FaceDetector:
    """A detector instance from a registered name (options go to its constructor), or pass one through."""
    if isinstance(detector, FaceDetector):
        return detector
    cls = _DETECTORS.get(str(detector).lower())
    if cls is None:
        raise FerEdgeError(f"unknown face detector {detector!r}; choose one of {', '.join(list_detectors())}")
    return cls(**options)


def _check_frame(frame) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) == 0:
        raise FerEdgeError(f"a frame must be an HxWx3 uint8 BGR image, got {frame.dtype} array of shape {frame.shape}")
    return frame


# --- box utilities shared by detectors and the tracker -------------------------------------------

def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4), x1y1x2y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float,
                        weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hard NMS, or MediaPipe-style weighted NMS: each kept face is the score-weighted mean of its cluster.

    Weighted NMS steadies the box and keypoints from frame to frame, which the tracker and the
    aligner both benefit from.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, points = boxes[order], scores[order], points[order]
    remaining = np.arange(len(scores))
    keep_b, keep_s, keep_p = [], [], []
    while remaining.size:
        first = remaining[0]
        overlap = iou_matrix(boxes[first:first + 1], boxes[remaining])[0]
        cluster = remaining[overlap > iou_threshold]
        cluster = cluster if cluster.size else remaining[:1]
        if weighted and cluster.size > 1:
            w = scores[cluster][:, None]
            keep_b.append((boxes[cluster] * w).sum(0) / w.sum())
            keep_p.append((points[cluster] * w[:, :, None]).sum(0) / w.sum())
        else:
            keep_b.append(boxes[first])
            keep_p.append(points[first])
        keep_s.append(scores[first])
        remaining = remaining[~np.isin(remaining, cluster)]
    if not keep_s:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
    return np.asarray(keep_b, np.float32), np.asarray(keep_s, np.float32), np.asarray(keep_p, np.float32)


# --- BlazeFace -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlazeFaceVariant:
    """What differs between MediaPipe's BlazeFace models: file, input size, anchor grids, output names.

    ``grids`` lists (cells per side, anchors per cell) in output order; MediaPipe's SSD anchors have a
    fixed size, so the anchor centres are all the decoder needs. ``tile_px``: for ``tile_rows="auto"``,
    one row of tiles per this many pixels of the frame's short side (None: never tile).
    """

    detector_name: str
    file: str
    input: int
    grids: tuple[tuple[int, int], ...]
    outputs: tuple[str, str]  # (box+keypoint regressors, face logits)
    tile_px: int | None


BLAZEFACE_VARIANTS = {
    # strides 8, 16, 16, 16 on 128 px, one aspect ratio plus an interpolated scale: same-stride layers
    # share one grid, so a 16x16 grid with 2 anchors per cell, then an 8x8 grid with 6.
    "short": BlazeFaceVariant("blazeface", "blazeface.onnx", 128, ((16, 2), (8, 6)),
                              ("regressors", "classificators"), tile_px=360),
    # one stride-4 layer on 192 px, no interpolated scale: a 48x48 grid, 1 anchor per cell (2304 boxes,
    # as the model's 1x48x48x16 regressor head says).
    "full": BlazeFaceVariant("blazeface_full", "blazeface_full.onnx", 192, ((48, 1),),
                             ("reshaped_regressor_face_4", "reshaped_classifier_face_4"), tile_px=None),
}


def _variant(variant: str) -> BlazeFaceVariant:
    spec = BLAZEFACE_VARIANTS.get(variant)
    if spec is None:
        raise FerEdgeError(f"unknown BlazeFace variant {variant!r}; choose one of {', '.join(BLAZEFACE_VARIANTS)}")
    return spec


def blazeface_anchors(variant: str = "short") -> np.ndarray:
    """Anchor centres (N, 2) of a BlazeFace variant, in [0, 1] of its square input (MediaPipe's SSD anchors)."""
    parts = []
    for grid, per_cell in _variant(variant).grids:
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        parts.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(parts).astype(np.float32)


def _onnx_session(path: Path, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


@register_detector("blazeface")
class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace. Short range (128 px input): faces within ~2 m of the camera, i.e. filling
    >~ 1/8 of the frame. Full range (192 px input, finer anchors): faces up to ~5 m away.

    Args:
        variant: ``"short"`` or ``"full"`` (default: the registered name's, ``blazeface`` = short).
        score_threshold: minimum face score (MediaPipe uses 0.5).
        iou_threshold: NMS overlap (MediaPipe uses 0.3).
        nms: ``"weighted"`` (MediaPipe's, steadier) or ``"hard"``.
        max_faces: keep at most this many faces (best first); None keeps all.
        tile_rows: also run on overlapping square tiles, this many rows of them ("auto": by frame
            size for the short model, none for the full one; 0: whole frame only), to find small faces
            in large frames.
        infer: optional callable NHWC float32 [-1, 1] (N, S, S, 3) -> (regressors, classificators),
            to run the same decoding on another engine (the conversion test runs the original TFLite).
        threads: ONNX Runtime intra-op threads (None: ONNX Runtime's default).
    """

    VARIANT = "short"

    def __init__(self, variant: str | None = None, score_threshold: float = 0.5, iou_threshold: float = 0.3, nms: str = "weighted",
                 max_faces: int | None = None, tile_rows: int | str = "auto", infer: Callable | None = None,
                 threads: int | None = None, model_path: str | Path | None = None):
        if nms not in ("weighted", "hard"):
            raise FerEdgeError(f"nms must be 'weighted' or 'hard', got {nms!r}")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.weighted = nms == "weighted"
        self.max_faces = max_faces
        if tile_rows != "auto" and (not str(tile_rows).isdigit()):
            raise FerEdgeError(f"tile_rows must be 'auto' or a whole number >= 0, got {tile_rows!r}")
        self.tile_rows = tile_rows
        self.variant = variant or self.VARIANT
        self.spec = _variant(self.variant)
        self.name = self.spec.detector_name
        self.INPUT = self.spec.input  # pixels of the square input; raw regressor outputs are in these units
        self.anchors = blazeface_anchors(self.variant)
        if infer is None:
            path = Path(model_path) if model_path else ASSETS / self.spec.file
            if not path.is_file():
                raise FerEdgeError(f"the BlazeFace model {path} is missing; reinstall fer-edge")
            session = _onnx_session(path, threads)
            infer = lambda x: session.run(list(self.spec.outputs), {"input": x})  # noqa: E731
        self._infer = infer

    def letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Frame -> (1, S, S, 3) RGB in [-1, 1] (S: the variant's input size), keeping the aspect ratio (black bars), plus the mapping."""
        h, w = frame.shape[:2]
        scale = self.INPUT / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((self.INPUT, self.INPUT, 3), np.uint8)
        top, left = (self.INPUT - nh) // 2, (self.INPUT - nw) // 2
        canvas[top:top + nh, left:left + nw] = resized
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        return x[None], scale, float(left), float(top)

    def decode(self, regressors: np.ndarray, classificators: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs -> (boxes (N, 4), scores (N,), keypoints (N, 6, 2)) in [0, 1] of the input, above threshold."""
        raw = np.asarray(regressors, np.float32).reshape(-1, 16)
        logits = np.clip(np.asarray(classificators, np.float64).reshape(-1), -100, 100)
        scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        keep = scores >= self.score_threshold
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, 0:2] / self.INPUT + anchors
        half = raw[:, 2:4] / self.INPUT / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:16].reshape(-1, 6, 2) / self.INPUT + anchors[:, None, :]
        return boxes, scores, points

    def tiles(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """Square windows (x, y, side) to run on, besides the whole frame.

        The short-range model sees the frame at 128x128, so a face must span about 1/8 of the frame's
        long side to be found. Overlapping tiles (a quarter of their side) let it find the smaller faces
        of a wide shot: ``tile_rows`` rows of tiles over the frame's short side ("auto", short model:
        one per ~360 px from 540 px up, so 1080p uses 3 rows, 15 tiles; on the sample video this finds
        the 70-120 px faces of pedestrians that the whole-frame pass misses; full model: no tiles).
        """
        rows = self.tile_rows
        if rows == "auto":
            px = self.spec.tile_px
            rows = int(round(min(h, w) / px)) if px and min(h, w) >= 1.5 * px else 0
        rows = int(rows)
        if rows < 2:
            return []
        side = int(np.ceil(min(h, w) / (rows - (rows - 1) * 0.25)))
        step = max(1, int(side * 0.75))

        def starts(length: int) -> list[int]:
            pos = list(range(0, max(length - side, 0) + 1, step))
            if pos[-1] + side < length:
                pos.append(length - side)
            return pos

        return [(x, y, side) for y in starts(h) for x in starts(w)]

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        tiles = self.tiles(h, w)
        # Shrink once so each tile is about the model's input size: resizing many large tiles one by one costs more than the model.
        image, fx, fy = frame, 1.0, 1.0
        if tiles and tiles[0][2] > self.INPUT:
            k = self.INPUT / tiles[0][2]
            image = cv2.resize(frame, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
            fx, fy = image.shape[1] / w, image.shape[0] / h
        windows = [(0, 0, None)] + tiles
        batch, mapping = [], []
        for x0, y0, side in windows:
            if side is None:
                window = image
            else:
                xs, ys = round(x0 * fx), round(y0 * fy)
                window = image[ys:ys + round(side * fy), xs:xs + round(side * fx)]
            x, scale, left, top = self.letterbox(window)
            batch.append(x)
            mapping.append((scale, left, top, 0 if side is None else round(x0 * fx), 0 if side is None else round(y0 * fy)))
        # all windows in one engine call
        regressors, classificators = self._infer(np.concatenate(batch))
        parts = []
        to_frame = np.array([1 / fx, 1 / fy], np.float32)
        for (x0, y0, side), (scale, left, top, xs, ys), reg, cls in zip(windows, mapping, regressors, classificators):
            boxes, scores, points = self.decode(reg, cls)
            # input [0, 1] -> pixels of the shrunk image (undo letterbox, add window offset) -> frame pixels
            offset = np.array([left, top], np.float32)
            origin = np.array([xs, ys], np.float32)
            boxes = (((boxes.reshape(-1, 2, 2) * self.INPUT - offset) / scale + origin) * to_frame).reshape(-1, 4)
            points = ((points * self.INPUT - offset) / scale + origin) * to_frame
            if side is not None:
                # a face cut by an inner tile edge is found whole in the overlapping neighbour: drop the part
                margin = 0.02 * side
                inner = ((x0 > 0) & (boxes[:, 0] < x0 + margin)) | ((y0 > 0) & (boxes[:, 1] < y0 + margin)) \
                    | ((x0 + side < w) & (boxes[:, 2] > x0 + side - margin)) \
                    | ((y0 + side < h) & (boxes[:, 3] > y0 + side - margin))
                boxes, scores, points = boxes[~inner], scores[~inner], points[~inner]
            parts.append((boxes, scores, points))
        boxes, scores, points = (np.concatenate(p) for p in zip(*parts))
        boxes, scores, points = non_max_suppression(boxes, scores, points, self.iou_threshold, self.weighted)
        if self.max_faces is not None:
            boxes, scores, points = boxes[: self.max_faces], scores[: self.max_faces], points[: self.max_faces]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return [Detection(b, p, float(s)) for b, p, s in zip(boxes, points, scores)
                if b[2] - b[0] > 1 and b[3] - b[1] > 1]


@register_detector("blazeface_full")
class BlazeFaceFullDetector(BlazeFaceDetector):
    """MediaPipe BlazeFace full range by name: the same detector with ``variant="full"`` as its default."""

    VARIANT = "full"


# --- Haar cascade ----------------------------------------------------------------------------------

# Where BlazeFace puts its keypoints inside a Haar frontal-face box, as fractions of the box (x, y):
# the mean over 34 faces both detectors found in the shared face photos and sample video, made
# left-right symmetric. Rough (spread ~0.08), but it lets alignment treat both detectors alike.
HAAR_KEYPOINTS = np.array([
    [0.315, 0.355],  # right eye (image left)
    [0.685, 0.355],  # left eye
    [0.500, 0.610],  # nose tip
    [0.500, 0.790],  # mouth centre
    [0.100, 0.390],  # right ear
    [0.900, 0.390],  # left ear
], np.float32)


@register_detector("haar")
class HaarDetector(FaceDetector):
    """OpenCV's bundled frontal-face Haar cascade (no model file needed; slower and less accurate).

    The cascade gives no probability; the score is a monotone function of how many neighbouring
    windows agreed, n / (n + min_neighbors), so that higher means surer.
    """

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24,
                 max_faces: int | None = None, cascade: str = "haarcascade_frontalface_default.xml"):
        if not hasattr(cv2, "CascadeClassifier"):
            raise FerEdgeError(
                f"OpenCV {cv2.__version__} has no Haar cascades (they left the main modules in OpenCV 5): "
                "use --detector blazeface, or pip install 'opencv-python-headless<5'")
        path = Path(cv2.data.haarcascades) / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FerEdgeError(f"OpenCV's Haar cascade {path} could not be loaded; reinstall opencv-python-headless")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, int(min_neighbors), int(min_size)
        self.max_faces = max_faces

    def detect(self, frame: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        rects, neighbours = self.cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2)
        out = []
        for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1)):
            box = np.array([x, y, x + w, y + h], np.float32)
            points = HAAR_KEYPOINTS * np.array([w, h], np.float32) + np.array([x, y], np.float32)
            out.append(Detection(box, points, float(n) / (float(n) + self.min_neighbors)))
        out.sort(key=lambda d: -d.score)
        return out[: self.max_faces] if self.max_faces is not None else out
