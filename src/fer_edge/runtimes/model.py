"""A loaded artifact: the same `predict`/`run` on every backend, and the surface `fer_edge.load` returns."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata
from ..postprocess import to_probabilities
from ..preprocess import preprocess_clips, preprocess_images
from .base import Backend, BackendInfo


@dataclass
class Prediction:
    """Per-face (or per-clip) results of one `predict` call."""

    probs: np.ndarray  # (N, C) float32
    labels: np.ndarray  # (N,) int64, argmax of probs
    label_names: list[str]  # the C class names, in output order
    raw: np.ndarray  # (N, C) the primary output before postprocessing
    uncertainty: np.ndarray | None = None  # (N,) where the method has it (evidential models)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        """The predicted label name of each face."""
        return [self.label_names[i] for i in self.labels]

    @property
    def confidences(self) -> np.ndarray:
        return self.probs[np.arange(len(self.labels)), self.labels]

    def to_records(self) -> list[dict]:
        out = []
        for i, k in enumerate(self.labels):
            rec = {
                "label": self.label_names[k],
                "confidence": float(self.probs[i, k]),
                "probs": {n: float(p) for n, p in zip(self.label_names, self.probs[i])},
            }
            if self.uncertainty is not None:
                rec["uncertainty"] = float(self.uncertainty[i])
            out.append(rec)
        return out


@runtime_checkable
class LoadedModel(Protocol):
    """What every object `fer_edge.load` returns offers, a plain :class:`Model` or a :class:`VideoModel`
    (two graphs): callers that only classify and close need not know which one they hold."""

    metadata: ArtifactMetadata

    @property
    def labels(self) -> list[str]: ...

    @property
    def backend(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def info(self) -> BackendInfo: ...

    def predict(self, images) -> Prediction: ...

    def predict_clips(self, clips) -> Prediction: ...

    def close(self) -> None: ...

    def __enter__(self) -> LoadedModel: ...

    def __exit__(self, *exc_info) -> None: ...


_Self = TypeVar("_Self", bound="Closing")


class Closing(ABC):
    """``with fer_edge.load(...) as m:`` closes `m` when the block ends, however it ends."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _no_items(batch) -> bool:
    """An empty list/tuple/array of crops (a frame without faces); anything else is for preprocessing to judge."""
    if isinstance(batch, np.ndarray):  # (0, H, W, C) or a (0, H, W) gray stack, not a 0-pixel image
        return batch.ndim == 4 and batch.shape[0] == 0 or batch.ndim == 3 and batch.shape[0] == 0 and batch.shape[-1] not in (1, 3)
    return isinstance(batch, (list, tuple)) and len(batch) == 0


class Model(Closing):
    """An artifact on a backend, with its metadata-driven pre- and postprocessing.

    Thread safety: `predict` and `run` may be called from several threads on one Model. ONNX Runtime
    sessions are thread-safe; OpenVINO keeps one infer request per thread; TensorRT serialises calls
    on its one execution context with a lock; the PyTorch backend runs an eval-mode module under
    ``inference_mode``, which keeps no state between calls (its ``threads=`` option is process-wide).
    Sharing one Model is therefore correct everywhere; for throughput on many cores, use one Model
    per thread (or batch the faces).

    Lifetime: :meth:`close` (or leaving a ``with`` block) releases the engine at once instead of when
    the object is garbage-collected; close a model when no thread is running it.
    """

    def __init__(self, backend: Backend, metadata: ArtifactMetadata):
        self._backend = backend
        self.metadata = metadata
        names = [t.name for t in backend.inputs]
        self._input_name = metadata.input.name if metadata.input.name in names else names[0]
        self._closed = False

    # --- what it is -----------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def device(self) -> str:
        return self._backend.device

    @property
    def engine(self) -> Backend:
        """The backend object itself (for engine-specific settings)."""
        return self._backend

    @property
    def labels(self) -> list[str]:
        return list(self.metadata.labels)

    def info(self) -> BackendInfo:
        return self._open().info()

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"Model(method={m.method!r}, backend={self.backend!r}, device={self.device!r}, "
            f"precision={m.precision!r}, classes={len(m.labels)}{', closed' if self._closed else ''})"
        )

    # --- lifetime -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the engine (session, compiled model, GPU buffers, module); a second call does nothing."""
        if not self._closed:
            self._closed = True
            self._backend.close()

    def _open(self) -> Backend:
        if self._closed:
            raise FerEdgeError(f"this {self.metadata.method} model on {self.backend} is closed; "
                               "load it again with fer_edge.load(...)")
        return self._backend

    # --- run ------------------------------------------------------------------------------------
    def run(self, tensor) -> dict[str, np.ndarray]:
        """Raw outputs for a preprocessed input tensor (or a dict of named inputs)."""
        backend = self._open()
        feeds = tensor if isinstance(tensor, dict) else {self._input_name: tensor}
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        self._check_shape(feeds)
        return backend.run(feeds)

    def _check_shape(self, feeds: dict[str, np.ndarray]) -> None:
        for info in self._backend.inputs:
            if info.name not in feeds:
                raise FerEdgeError(f"input {info.name!r} is missing; the model takes {[t.name for t in self._backend.inputs]}")
            got = feeds[info.name].shape
            want = info.shape
            bad = len(got) != len(want) or any(
                isinstance(w, int) and w > 0 and g != w for g, w in zip(got, want)
            )
            if bad:
                raise FerEdgeError(
                    f"input {info.name!r} should have shape {want} (strings/-1 are free), got {list(got)}"
                )

    def predict(self, images) -> Prediction:
        """Face crops (list of BGR uint8 images, or an NHWC uint8 array) -> Prediction.

        No crops (a frame without faces) give an empty Prediction, not an error.
        """
        self._open()  # closed: one error, even for an empty batch
        if _no_items(images):
            return self.empty_prediction()
        x = preprocess_images(images, self.metadata.input)
        return self.postprocess(self.run(x))

    def predict_clips(self, clips) -> Prediction:
        """Clips of face crops (video models) -> one Prediction per clip (none for no clips)."""
        self._open()  # closed: one error, even for an empty batch
        if _no_items(clips):
            return self.empty_prediction()
        x = preprocess_clips(clips, self.metadata.input)
        return self.postprocess(self.run(x))

    def empty_prediction(self) -> Prediction:
        """The Prediction of zero inputs, with the shapes a batch would have (no engine call)."""
        return self.postprocess({self.metadata.output.name: np.zeros((0, len(self.metadata.labels)), np.float32)})

    def postprocess(self, outputs: dict[str, np.ndarray]) -> Prediction:
        """Raw outputs of `run` -> Prediction (probabilities by the metadata's output kind)."""
        spec = self.metadata.output
        primary = outputs.get(spec.name)
        if primary is None:
            primary = next(iter(outputs.values()))
        primary = np.asarray(primary, np.float32)
        if primary.shape[-1] != len(self.metadata.labels):
            raise FerEdgeError(
                f"the model outputs {primary.shape[-1]} classes but its metadata names {len(self.metadata.labels)} labels"
            )
        probs, unc = to_probabilities(primary, spec.kind)
        if unc is None and "uncertainty" in outputs:
            unc = np.asarray(outputs["uncertainty"], np.float32).reshape(len(probs))
        extra = {k: v for k, v in outputs.items() if k != spec.name}
        return Prediction(
            probs=probs,
            labels=probs.argmax(axis=1).astype(np.int64),
            label_names=list(self.metadata.labels),
            raw=primary,
            uncertainty=unc,
            extra=extra,
        )
