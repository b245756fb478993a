"""Video models run as their edge pair: a per-frame encoder and a temporal head (no torch).

An export of a clip model (DFER-CLIP) writes, beside the monolithic clip graph, a ``frame_encoder``
graph (one face -> feature) and a ``temporal_head`` graph (T features -> logits). Each graph's
metadata names its partner's file in ``extra`` (``"temporal_head"`` / ``"frame_encoder"``), so loading
either one finds the pair. :class:`VideoModel` gives the pair one API: ``predict_clips`` for whole
clips (the result equals the monolithic graph) and ``stream()`` for live video, where each frame is
encoded once (:class:`~fer_edge.runtimes.clip_stream.ClipStream`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata
from ..preprocess import as_image_list, preprocess_images
from .base import BackendInfo
from .model import Closing, Model, Prediction

PAIR = ("frame_encoder", "temporal_head")
ENCODE_BATCH = 32


def partner_graph(graph: str) -> str:
    return PAIR[1] if graph == PAIR[0] else PAIR[0]


def partner_path(path: str | Path, meta: ArtifactMetadata) -> Path | None:
    """The file of the other graph of the pair, named in `meta.extra` relative to this artifact (None
    when the metadata names none: a graph exported on its own)."""
    other = partner_graph(meta.graph)
    name = meta.extra.get(other)
    if not name:
        return None
    found = Path(path).parent / name
    if not found.exists():
        raise FerEdgeError(f"{Path(path).name} needs its {other} graph {name}, which is not beside it in "
                           f"{Path(path).parent}; copy the whole export folder")
    return found


class VideoModel(Closing):
    """A clip model as its frame encoder + temporal head, both loaded with :func:`fer_edge.load`.

    ``metadata`` is the head's (labels, clip length ``input.frames``, sampling ``input.sampling``);
    the encoder's metadata drives the per-frame preprocessing.
    """

    def __init__(self, encoder: Model, head: Model):
        graphs = (encoder.metadata.graph, head.metadata.graph)
        if graphs != PAIR:
            raise FerEdgeError(f"VideoModel needs a frame_encoder and a temporal_head graph, got {graphs}")
        if encoder.metadata.method != head.metadata.method:
            raise FerEdgeError(f"the encoder ({encoder.metadata.method}) and head ({head.metadata.method}) "
                               "come from different methods")
        self.encoder, self.head = encoder, head
        self.metadata = head.metadata
        if not self.metadata.input.frames:
            raise FerEdgeError("the temporal head's metadata gives no clip length (input.frames); re-export it")

    # --- what it is -----------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return self.head.labels

    @property
    def frames(self) -> int:
        return int(self.metadata.input.frames)

    @property
    def backend(self) -> str:
        return self.encoder.backend

    @property
    def device(self) -> str:
        return self.encoder.device

    def info(self) -> BackendInfo:
        return self.encoder.info()

    # --- lifetime -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.encoder.closed or self.head.closed

    def close(self) -> None:
        """Release both graphs' engines; a second call does nothing."""
        self.encoder.close()
        self.head.close()

    def __repr__(self) -> str:
        m = self.metadata
        return (f"VideoModel(method={m.method!r}, backend={self.backend!r}, device={self.device!r}, "
                f"encoder={self.encoder.metadata.precision!r}, head={self.head.metadata.precision!r}, "
                f"classes={len(m.labels)}, frames={self.frames})")

    # --- run ------------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Preprocessed frames (N, C, H, W) -> features (N, D), in batches of the encoder."""
        outs = []
        for i in range(0, len(frames), ENCODE_BATCH):
            out = self.encoder.run(frames[i:i + ENCODE_BATCH])
            outs.append(np.asarray(out.get(self.encoder.metadata.output.name, next(iter(out.values()))), np.float32))
        return np.concatenate(outs)

    def run(self, clips: np.ndarray) -> dict[str, np.ndarray]:
        """Raw head outputs for preprocessed clips (B, T, C, H, W): what the monolithic graph's `run` gives."""
        clips = np.asarray(clips, np.float32)
        if clips.ndim != 5 or clips.shape[1] != self.frames:
            raise FerEdgeError(f"clips must have shape (batch, {self.frames}, C, H, W), got {list(clips.shape)}")
        b, t = clips.shape[:2]
        feats = self.encode(clips.reshape(b * t, *clips.shape[2:])).reshape(b, t, -1)
        return self.head.run({self.head.metadata.input.name: feats})

    def predict_clips(self, clips) -> Prediction:
        """Clips of BGR uint8 face crops (each `frames` long) -> one Prediction row per clip."""
        if self.closed:
            raise FerEdgeError(f"this {self.metadata.method} video model is closed; "
                               "load it again with fer_edge.load(...)")
        if isinstance(clips, np.ndarray) and clips.ndim == 4:
            clips = [clips]
        frames = [as_image_list(c) for c in clips]
        if not frames:
            return self.head.empty_prediction()
        bad = [len(f) for f in frames if len(f) != self.frames]
        if bad:
            raise FerEdgeError(f"a clip must have {self.frames} frames for this model, got {bad[0]}")
        # a frame shared by several clips (the same array object: overlapping windows, pseudo-clips)
        # is encoded once, as on a stream
        index: dict[int, int] = {}
        unique: list[np.ndarray] = []
        for im in (im for clip in frames for im in clip):
            if id(im) not in index:
                index[id(im)] = len(unique)
                unique.append(im)
        feats = self.encode(preprocess_images(unique, self.encoder.metadata.input))
        rows = np.array([[index[id(im)] for im in clip] for clip in frames])
        return self.head.postprocess(self.head.run({self.head.metadata.input.name: feats[rows]}))

    def predict(self, images) -> Prediction:
        raise FerEdgeError("this is a video model: pass clips (predict_clips) or use stream() for live frames")

    def stream(self, stride: int = 4, window: int | None = None):
        """A per-track streaming runner: each face crop encoded once, a clip prediction every `stride` frames."""
        from .clip_stream import ClipStream

        return ClipStream(self.encoder, self.head, stride=stride, window=window)


def load_pair(path: Path, model: Model, load_one: Callable[[Path], Model]) -> VideoModel | Model:
    """`model` (one graph of the pair, loaded from `path`) and its partner -> VideoModel; the graph alone
    when its metadata names no partner (then ``VideoModel(encoder, head)`` pairs two loaded graphs)."""
    where = partner_path(path, model.metadata)
    if where is None:
        return model
    other = load_one(where)
    if other.metadata.graph != partner_graph(model.metadata.graph):
        raise FerEdgeError(f"{path.name} names {other.metadata.graph!r} graph as its partner; re-export the pair")
    pair = (model, other) if model.metadata.graph == PAIR[0] else (other, model)
    return VideoModel(*pair)
