"""Clip-level expressions on a video stream, encoding every frame once (no torch).

A clip model such as DFER-CLIP spends ~99% of its compute on the per-frame image encoder. On a
stream, a sliding window of 16 frames shares 15 frames with the previous window, so re-encoding the
whole clip for every prediction repeats almost all of that work. :class:`ClipStream` runs the model as
its two exported graphs instead: the *frame encoder* once per new face crop, its feature kept in a
per-track ring buffer, and the small *temporal head* once per prediction, on clip features sampled
from the buffer the way the model's metadata says (``input.sampling``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from ..errors import FerEdgeError
from ..preprocess import preprocess_images
from .model import Model, Prediction


def segment_centres(num_frames: int, segments: int) -> list[int]:
    """Indices of the centre frame of each of `segments` equal segments (TSN test-time sampling).

    ``int(tick / 2 + i * tick)`` with ``tick = num_frames / segments``; a clip with no more frames than
    segments takes all of them and repeats the last one.
    """
    if num_frames <= 0:
        raise FerEdgeError("a clip needs at least one frame")
    if num_frames > segments:
        tick = num_frames / segments
        return [int(tick / 2.0 + tick * i) for i in range(segments)]
    return list(range(num_frames)) + [num_frames - 1] * (segments - num_frames)


def sample_indices(sampling: str | None, num_frames: int, frames: int) -> list[int]:
    """The frame indices a clip model's metadata asks for, out of `num_frames` buffered frames."""
    if sampling is None or sampling.startswith("tsn-centre"):
        return segment_centres(num_frames, frames)
    if sampling.startswith("uniform"):
        return np.linspace(0, num_frames - 1, frames).round().astype(int).tolist()
    raise FerEdgeError(f"clip sampling {sampling!r} is not supported by the stream runner; re-export the model")


@dataclass
class _Track:
    features: deque
    seen: int = 0  # frames pushed so far
    last_emit: int | None = None  # value of `seen` at the last prediction


class ClipStream:
    """Per-track ring buffers of frame features and a clip prediction every `stride` frames.

    Args:
        encoder: the ``frame_encoder`` graph (one face crop -> feature), loaded with ``fer_edge.load``.
        head: the ``temporal_head`` graph (``frames`` features -> logits), loaded the same way.
        stride: frames between two predictions of a track (1 = every frame once the buffer is full).
        window: frames kept per track (default: the model's clip length). A longer window covers more
            time; the clip is then sampled from it as the metadata says (segment centres).
    """

    def __init__(self, encoder: Model, head: Model, *, stride: int = 4, window: int | None = None):
        if encoder.metadata.graph != "frame_encoder" or head.metadata.graph != "temporal_head":
            raise FerEdgeError(
                f"ClipStream needs a frame_encoder and a temporal_head artifact, got graphs "
                f"{encoder.metadata.graph!r} and {head.metadata.graph!r}; export the split graphs"
            )
        if encoder.metadata.method != head.metadata.method:
            raise FerEdgeError(
                f"the encoder ({encoder.metadata.method}) and head ({head.metadata.method}) come from different methods"
            )
        self.encoder, self.head = encoder, head
        self.frames = int(head.metadata.input.frames or 0)
        if self.frames <= 0:
            raise FerEdgeError("the temporal head's metadata gives no clip length (input.frames); re-export it")
        self.sampling = head.metadata.input.sampling
        self.window = int(window or self.frames)
        if self.window < self.frames:
            raise FerEdgeError(f"window={self.window} is shorter than the model's clip of {self.frames} frames")
        if stride < 1:
            raise FerEdgeError(f"stride must be at least 1, got {stride}")
        self.stride = int(stride)
        self._tracks: dict[Hashable, _Track] = {}

    @property
    def tracks(self) -> list[Hashable]:
        return list(self._tracks)

    def encode(self, face_crop: np.ndarray) -> np.ndarray:
        """One BGR uint8 face crop -> its feature vector (D,)."""
        return self.encode_many([face_crop])[0]

    def encode_many(self, face_crops: list[np.ndarray]) -> np.ndarray:
        """Face crops -> features (N, D) in one encoder call (one batch is cheaper per face than N calls)."""
        x = preprocess_images(face_crops, self.encoder.metadata.input)
        out = self.encoder.run(x)
        feats = out.get(self.encoder.metadata.output.name)
        if feats is None:
            feats = next(iter(out.values()))
        return np.asarray(feats, np.float32).reshape(len(face_crops), -1)

    def push(self, track_id: Hashable, face_crop: np.ndarray) -> Prediction | None:
        """Add the track's next face crop; return a one-row Prediction when one is due, else None."""
        return self._append(track_id, self.encode(face_crop))

    def push_many(self, items: list[tuple[Hashable, np.ndarray]]) -> list[Prediction | None]:
        """`push` for the faces of one frame (distinct tracks), their crops encoded in one batch."""
        if not items:
            return []
        ids = [t for t, _ in items]
        if len(set(ids)) != len(ids):
            raise FerEdgeError("push_many takes one crop per track (a frame's faces); push a track's frames in order")
        feats = self.encode_many([crop for _, crop in items])
        return [self._append(t, f) for t, f in zip(ids, feats)]

    def _append(self, track_id: Hashable, feature: np.ndarray) -> Prediction | None:
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track(features=deque(maxlen=self.window))
        track.features.append(feature)
        track.seen += 1
        if len(track.features) < self.frames:
            return None
        if track.last_emit is not None and track.seen - track.last_emit < self.stride:
            return None
        track.last_emit = track.seen
        return self.predict_buffer(track_id)

    def predict_buffer(self, track_id: Hashable) -> Prediction:
        """Run the temporal head on the clip sampled from a track's current buffer."""
        buffered = list(self._tracks[track_id].features)
        clip = np.stack([buffered[i] for i in sample_indices(self.sampling, len(buffered), self.frames)])
        out = self.head.run({self.head.metadata.input.name: clip[None]})
        return self.head.postprocess(out)

    def buffered(self, track_id: Hashable) -> int:
        """Frame features a track holds now (0 for an unknown track); a prediction needs `frames`."""
        track = self._tracks.get(track_id)
        return 0 if track is None else len(track.features)

    def drop(self, track_id: Hashable) -> None:
        """Forget a track (it left the scene); unknown ids are ignored."""
        self._tracks.pop(track_id, None)
