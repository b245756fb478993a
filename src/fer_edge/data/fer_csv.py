"""FER2013 and FER+ for training: the shared ``.npz`` files (via :mod:`fer_edge.data.fer2013`) or
Kaggle's ``fer2013.csv`` (``emotion,pixels,Usage``; 48x48 grey pixels as space-separated text)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..labels import label_set
from .fer2013 import FER2013_FILE, FERPLUS_FILES, load_fer2013, load_ferplus
from .samples import FaceSamples

CSV_USAGE = {"train": "Training", "test": "PublicTest", "public_test": "PublicTest", "private_test": "PrivateTest"}
NPZ_SPLIT = {"train": "train", "test": "public_test", "public_test": "public_test"}


def read_fer2013_csv(path: str | Path, split: str = "train") -> FaceSamples:
    path = Path(path)
    if split not in CSV_USAGE:
        raise FerEdgeError(f"fer2013.csv has no split {split!r}; choose one of {', '.join(CSV_USAGE)}")
    usage = CSV_USAGE[split]
    images, targets = [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames or ()):
            raise FerEdgeError(f"{path} is not fer2013.csv: expected the columns emotion,pixels,Usage")
        for row in reader:
            if row["Usage"] != usage:
                continue
            px = np.asarray(row["pixels"].split(), dtype=np.uint8)
            if px.size != 48 * 48:
                raise FerEdgeError(f"{path}: a row has {px.size} pixels, expected 2304 (48x48)")
            images.append(px.reshape(48, 48))
            targets.append(int(row["emotion"]))
    if not images:
        raise FerEdgeError(f"{path} has no rows with Usage={usage}")
    return FaceSamples("fer2013", split, label_set("fer2013"), np.asarray(targets), images=np.stack(images))


def read_fer(path: str | Path, split: str = "train", *, plus: bool = False) -> FaceSamples:
    """FER2013 (or FER+ with `plus`) from a fer2013.csv, an npz file, or the shared data folder."""
    path = Path(path)
    csv_file = path if path.suffix == ".csv" else path / "fer2013.csv"
    if not plus and csv_file.is_file():
        return read_fer2013_csv(csv_file, split)
    if split not in NPZ_SPLIT:
        raise FerEdgeError(f"the FER npz files have splits train and test (public_test), not {split!r}")
    rel = FERPLUS_FILES[NPZ_SPLIT[split]] if plus else FER2013_FILE
    root = _npz_root(path, rel)
    fs = (load_ferplus if plus else load_fer2013)(NPZ_SPLIT[split], root=root)
    return FaceSamples("ferplus" if plus else "fer2013", split, tuple(fs.label_names), fs.labels, images=fs.images)


def _npz_root(path: Path, rel: str) -> Path:
    """The folder that holds `rel` (e.g. fer2013/fer2013_train_public.npz), from what the user named."""
    sub, fname = rel.split("/")
    for cand in (path, path.parent, path.parent.parent):
        if (cand / rel).is_file():
            return cand
    raise FerEdgeError(f"{path}: no fer2013.csv and no {rel} found; pass the folder holding {sub}/ "
                       f"(the shared data folder) or fer2013.csv")
