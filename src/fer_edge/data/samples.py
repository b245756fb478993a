"""A labelled list of face images, independent of how the data set stores them (numpy only).

Every reader in :mod:`fer_edge.data` returns :class:`FaceSamples`: either image files on disk
(RAF-DB, AffectNet, CAER-S, ImageFolder) or arrays in memory (FER2013/FER+), with integer targets
whose meaning is given by ``labels`` (canonical names, :mod:`fer_edge.labels`). Training maps it onto
the method's output order with :meth:`FaceSamples.to_labels`, so a RAF-DB "1" and a FER2013 "5" both
become the method's "surprise" index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FerEdgeError
from ..labels import remap_indices


@dataclass
class FaceSamples:
    """Targets in `labels` order plus, for each sample, a file path or an in-memory image."""

    name: str
    split: str
    labels: tuple[str, ...]
    targets: np.ndarray  # (N,) int64 indices into `labels`
    paths: list[Path] | None = None
    images: np.ndarray | None = None  # (N, H, W) gray or (N, H, W, 3) RGB uint8
    notes: list[str] = field(default_factory=list)  # what a reader dropped or assumed, for the log

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if (self.paths is None) == (self.images is None):
            raise ValueError("FaceSamples needs exactly one of paths or images")
        n = len(self.paths) if self.paths is not None else len(self.images)
        if n != len(self.targets):
            raise ValueError(f"{n} images but {len(self.targets)} targets")
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.labels)):
            raise ValueError(f"targets outside 0..{len(self.labels) - 1}")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.targets, minlength=self.num_classes)

    def load(self, i: int, color: str = "RGB") -> np.ndarray:
        """Image `i` as uint8, (H, W, 3) for RGB/BGR or (H, W) for GRAY."""
        if self.images is not None:
            img = self.images[i]
        else:
            img = read_image(self.paths[i])
        return convert_color(img, color)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "FaceSamples":
        idx = np.asarray(indices, dtype=np.int64)
        return FaceSamples(
            self.name, self.split, self.labels, self.targets[idx],
            paths=[self.paths[i] for i in idx] if self.paths is not None else None,
            images=self.images[idx] if self.images is not None else None,
            notes=list(self.notes),
        )

    def limit(self, n: int | None, seed: int = 0) -> "FaceSamples":
        """At most `n` samples, drawn stratified and seeded (quick runs, tests)."""
        if n is None or n >= len(self):
            return self
        from .splits import stratified_split

        _, keep = stratified_split(self.targets, n / len(self), seed=seed)
        return self.subset(keep)

    def to_labels(self, labels: Sequence[str]) -> "FaceSamples":
        """The same samples with targets in another label order; classes `labels` lacks are dropped."""
        labels = tuple(labels)
        if labels == self.labels:
            return self
        mapping = np.asarray(remap_indices(self.labels, labels), dtype=np.int64)
        new = mapping[self.targets] if len(self) else self.targets
        keep = np.flatnonzero(new >= 0)
        missing = [n for n, m in zip(self.labels, mapping) if m < 0]
        if len(keep) == 0:
            raise FerEdgeError(f"{self.name}: none of its classes ({', '.join(self.labels)}) is among "
                               f"the model's ({', '.join(labels)})")
        out = self.subset(keep)
        out.labels, out.targets = labels, new[keep]
        if missing:
            out.notes.append(f"dropped {len(self) - len(keep)} samples of classes the model lacks: {', '.join(missing)}")
        return out


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); a clear error for unreadable files."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FerEdgeError(f"cannot read image {path}: missing or not an image file")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def convert_color(img: np.ndarray, color: str) -> np.ndarray:
    """Gray (H, W) or RGB (H, W, 3) uint8 to the requested colour layout."""
    if color == "GRAY":
        if img.ndim == 2:
            return img
        return (img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    rgb = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
    return rgb[..., ::-1].copy() if color == "BGR" else rgb
