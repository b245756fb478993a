"""FER2013 and FER+ from the ``.npz`` files in the shared data folder, as plain numpy arrays.

Used by the accuracy tests, INT8 calibration, benchmarks and training. No torch here: a training
loop wraps :class:`FerSplit` in its own dataset class.

    from fer_edge.data import load_fer2013
    test = load_fer2013("public_test")            # 3589 faces
    calib = load_fer2013("train", limit=512, stratified=True, seed=0)
    test.images  # (N, 48, 48) uint8 grayscale;  test.labels  # (N,) int64
    test.label_names  # canonical names in label order: ("anger", "disgust", ...)

The folder is ``$FER_EDGE_DATA`` if set, else ``../shared/data`` beside the repository.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from .splits import stratified_indices

FER2013_FILE = "fer2013/fer2013_train_public.npz"
FERPLUS_FILES = {"train": "ferplus/ferplus_train.npz", "public_test": "ferplus/ferplus_public_test.npz"}


@dataclass
class FerSplit:
    """Face images with integer labels; `label_names[k]` is the canonical name of label k."""

    images: np.ndarray  # (N, 48, 48) uint8 grayscale
    labels: np.ndarray  # (N,) int64
    label_names: tuple[str, ...]
    names: np.ndarray  # (N,) original file stems
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def bgr(self) -> np.ndarray:
        """The images as (N, 48, 48, 3) BGR uint8, the layout face crops have in the pipeline."""
        return np.repeat(self.images[..., None], 3, axis=-1)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.label_names))


def data_root() -> Path:
    """Where the data files live: $FER_EDGE_DATA, else ./data or ../shared/data from the working
    directory, else ../shared/data beside a source checkout (the first that exists)."""
    env = os.environ.get("FER_EDGE_DATA")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    for cand in (Path.cwd() / "data", Path.cwd().parent / "shared" / "data", checkout):
        if (cand / "fer2013").is_dir() or (cand / "ferplus").is_dir():
            return cand
    return checkout


def load_fer2013(split: str = "public_test", *, root: str | Path | None = None, limit: int | None = None,
                 stratified: bool = False, seed: int = 0) -> FerSplit:
    """FER2013 (`split`: "train", "public_test" or "all"), labels in FER2013 order (7 classes)."""
    d = _load(root, FER2013_FILE)
    if split == "all":
        keep = np.ones(len(d["labels"]), bool)
    else:
        known = sorted(set(d["split"].tolist()))
        if split not in known:
            raise FerEdgeError(f"FER2013 has no split {split!r}; choose one of {', '.join(known)} or 'all'")
        keep = d["split"] == split
    return _subset(FerSplit(d["images"][keep], d["labels"][keep].astype(np.int64), LABEL_SETS["fer2013"],
                           d["names"][keep], split), limit, stratified, seed)


def load_ferplus(split: str = "public_test", *, root: str | Path | None = None, limit: int | None = None,
                 stratified: bool = False, seed: int = 0) -> FerSplit:
    """FER+ majority-vote labels (`split`: "train" or "public_test"), FER2013 order plus contempt (8 classes)."""
    if split not in FERPLUS_FILES:
        raise FerEdgeError(f"FER+ has no split {split!r}; choose one of {', '.join(FERPLUS_FILES)}")
    d = _load(root, FERPLUS_FILES[split])
    return _subset(FerSplit(d["images"], d["labels"].astype(np.int64), LABEL_SETS["ferplus"], d["names"], split),
                   limit, stratified, seed)


def _load(root: str | Path | None, rel: str) -> dict[str, np.ndarray]:
    path = Path(root) / rel if root is not None else data_root() / rel
    if not path.is_file():
        raise FerEdgeError(f"data file not found: {path}; set FER_EDGE_DATA to the folder holding {rel}")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _subset(ds: FerSplit, limit: int | None, stratified: bool, seed: int) -> FerSplit:
    """The first `limit` images, or (stratified) a seeded sample keeping the class proportions."""
    if limit is None or limit >= len(ds):
        return ds
    if not stratified:
        idx = np.arange(limit)
    else:
        idx = stratified_indices(ds.labels, limit, seed)
    return FerSplit(ds.images[idx], ds.labels[idx], ds.label_names, ds.names[idx], ds.split)
