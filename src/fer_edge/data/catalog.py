"""`--dataset NAME` -> the reader and label set of that data set (one table, used by `fer-edge train`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import FerEdgeError
from .folders import read_caers, read_image_folder
from .fer_csv import read_fer
from .lists import read_affectnet, read_rafdb
from .samples import FaceSamples


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    read: Callable[[Path, str], FaceSamples]
    layout: str  # what --data-path must point at, for help and errors


def _rafdb(root, split):
    # POSTER V2's own layout is ImageFolder with folders 1..7; the list layouts are RAF-DB's and CEPrompt's.
    root = Path(root)
    if (root / "train").is_dir() and not any((root / d).is_dir() for d in ("EmoLabel", "Image")):
        return read_image_folder(root, split, dataset="rafdb", name="rafdb")
    return read_rafdb(root, split)


def _affectnet(n):
    def read(root, split):
        root = Path(root)
        if (root / "train").is_dir():
            return read_image_folder(root, split, dataset=f"affectnet{n}", name=f"affectnet{n}")
        return read_affectnet(root, split, n)
    return read


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("rafdb", _rafdb, "RAF-DB root (EmoLabel/ + Image/, CEPrompt id lists, or train/1..7 folders)"),
    DatasetInfo("affectnet7", _affectnet(7), "AffectNet root (training.csv/validation.csv, affectnet_info/ lists, or train/ folders)"),
    DatasetInfo("affectnet8", _affectnet(8), "AffectNet root (as affectnet7)"),
    DatasetInfo("caer-s", read_caers, "CAER-S root with train/ and test/ class folders"),
    DatasetInfo("fer2013", lambda p, s: read_fer(p, s), "folder with fer2013.csv, or the shared data folder (fer2013/*.npz)"),
    DatasetInfo("ferplus", lambda p, s: read_fer(p, s, plus=True), "the shared data folder (ferplus/*.npz)"),
    DatasetInfo("imagefolder", lambda p, s: read_image_folder(p, s), "root with train/<class>/ and test/<class>/ (class = expression name)"),
)}


def open_dataset(name: str, path: str | Path, split: str) -> FaceSamples:
    """Samples of data set `name` ("train" or "test" split) in that data set's own label order."""
    if name not in DATASETS:
        raise FerEdgeError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"--data-path {path} does not exist; it should be the {DATASETS[name].layout}")
    return DATASETS[name].read(path, split)
