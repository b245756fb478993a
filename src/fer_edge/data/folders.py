"""Class-per-folder layouts: torchvision's ImageFolder (POSTER V2's ``train/1..7``) and CAER-S.

Named folders ("Angry", "happiness", ...) are mapped to canonical names; numbered folders need the
data set's label order to mean anything (POSTER's RAF-DB folders ``1..7`` are RAF-DB labels 1..7).
Class order follows ImageFolder's: sorted folder names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..labels import canonical_name, label_set
from .samples import FaceSamples

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_DIRS = {"train": ("train", "training"), "test": ("test", "valid", "val", "validation")}


def split_dir(root: str | Path, split: str) -> Path:
    """`<root>/train` for "train"; `<root>/test`, else `valid`/`val` for "test" (POSTER's main.py uses valid/)."""
    root = Path(root)
    if not root.is_dir():
        raise FerEdgeError(f"data path {root} is not a folder; pass --data-path with the data set's root")
    for name in SPLIT_DIRS.get(split, (split,)):
        if (root / name).is_dir():
            return root / name
    raise FerEdgeError(f"{root} has no {split} folder (looked for {', '.join(SPLIT_DIRS.get(split, (split,)))})")


def read_image_folder(root: str | Path, split: str = "train", *, dataset: str | None = None,
                      name: str = "imagefolder") -> FaceSamples:
    """`<root>/<split>/<class>/*.jpg`. `dataset` names the label set numbered folders refer to."""
    d = split_dir(root, split)
    classes = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FerEdgeError(f"{d} has no class folders; expected {d}/<class>/<image files>")
    folder_labels = _folder_labels(classes, dataset, d)
    canon = sorted(set(folder_labels), key=folder_labels.index)
    paths, targets = [], []
    for folder, lab in zip(classes, folder_labels):
        files = sorted(p for p in (d / folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        targets += [canon.index(lab)] * len(files)
    if not paths:
        raise FerEdgeError(f"no image files under {d}")
    labels = tuple(canon)
    if dataset is not None:  # keep the data set's own order, so index k means label k of that set
        ref = label_set(dataset)
        if set(labels) <= set(ref):
            remap = np.asarray([ref.index(n) for n in labels])
            targets, labels = remap[np.asarray(targets)].tolist(), ref
    return FaceSamples(name, split, labels, np.asarray(targets), paths=paths)


def _folder_labels(classes: list[str], dataset: str | None, d: Path) -> list[str]:
    if all(c.isdigit() for c in classes):
        if dataset is None:
            raise FerEdgeError(f"{d} has numbered class folders ({', '.join(classes)}); say which data set's "
                               "numbering they use with --dataset (rafdb: 1..7, affectnet7/8: 0..)")
        ref = label_set(dataset)
        nums = [int(c) for c in classes]
        base = 1 if min(nums) >= 1 and max(nums) == len(ref) else 0  # RAF-DB folders are 1-based
        bad = [c for c, n in zip(classes, nums) if not 0 <= n - base < len(ref)]
        if bad:
            raise FerEdgeError(f"{d}: folders {', '.join(bad)} do not fit {dataset}'s {len(ref)} classes")
        return [ref[n - base] for n in nums]
    try:
        return [canonical_name(c) for c in classes]
    except KeyError as exc:
        raise FerEdgeError(f"{d}: class folder {exc.args[0]}") from None


def read_caers(root: str | Path, split: str = "train") -> FaceSamples:
    """CAER-S: `<root>/{train,test}/{Anger,Disgust,Fear,Happy,Neutral,Sad,Surprise}/*.png`."""
    return read_image_folder(root, split, dataset="caers", name="caer-s")
