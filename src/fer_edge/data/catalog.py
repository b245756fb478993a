"""`--dataset NAME` -> the reader and label set of that data set (one table, used by `fer-edge train`).

Video sets with a k-fold protocol (DFEW, MAFW) are listed once with their folds; one training run
uses one fold, named ``<set>-fold<N>`` (:func:`dataset_name` turns ``--dataset dfew --fold 3`` into
``dfew-fold3``, which is also the name in logs, checkpoints and per-data-set hyper-parameters).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import FerEdgeError
from .folders import read_caers, read_image_folder
from .fer_csv import read_fer
from .lists import read_affectnet, read_rafdb
from .samples import FaceSamples
from .video import FOLDS, read_dfew, read_ferv39k, read_mafw


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    read: Callable[[Path, str], FaceSamples]
    layout: str  # what --data-path must point at, for help and errors
    folds: tuple[int, ...] = ()  # k-fold protocol: `read` is then (root, split, fold) -> samples
    video: bool = False


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
    DatasetInfo("dfew", lambda p, s, f: read_dfew(Path(p), s, f),
                "DFER-CLIP data root with annotation/DFEW_set_<fold>_{train,test}.txt", folds=FOLDS, video=True),
    DatasetInfo("mafw", lambda p, s, f: read_mafw(Path(p), s, f),
                "DFER-CLIP data root with annotation/MAFW_set_<fold>_{train,test}.txt", folds=FOLDS, video=True),
    DatasetInfo("ferv39k", lambda p, s: read_ferv39k(Path(p), s),
                "DFER-CLIP data root with annotation/FERV39K_{train,test}.txt", video=True),
)}

_FOLD_NAME = re.compile(r"^(?P<base>.+)-fold(?P<fold>\d+)$")


def dataset_name(name: str, fold: int | None = None) -> str:
    """``--dataset`` + ``--fold`` -> the run's data set name; a one-line error where they do not fit."""
    info = DATASETS.get(name)
    if info is None:
        raise FerEdgeError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if info.folds:
        if fold is None:
            raise FerEdgeError(f"--dataset {name} is evaluated by {len(info.folds)}-fold cross-validation: "
                               f"add --fold {info.folds[0]}..{info.folds[-1]} (or --fold all)")
        if fold not in info.folds:
            raise FerEdgeError(f"--fold {fold}: {name} has folds {info.folds[0]}..{info.folds[-1]}")
        return f"{name}-fold{fold}"
    if fold is not None:
        raise FerEdgeError(f"--fold: {name} has one official train/test split and no folds; drop --fold")
    return name


def split_fold(name: str) -> tuple[str, int | None]:
    """``dfew-fold3`` -> ("dfew", 3); a name without a fold suffix -> (name, None)."""
    m = _FOLD_NAME.match(name)
    if m and m["base"] in DATASETS and DATASETS[m["base"]].folds:
        return m["base"], int(m["fold"])
    return name, None


def open_dataset(name: str, path: str | Path, split: str) -> FaceSamples:
    """Samples of data set `name` ("train" or "test" split, ``<set>-fold<N>`` for k-fold sets) in that
    data set's own label order."""
    base, fold = split_fold(name)
    dataset_name(base, fold)  # validates the set and its fold
    info = DATASETS[base]
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"--data-path {path} does not exist; it should be the {info.layout}")
    return info.read(path, split, fold) if info.folds else info.read(path, split)
