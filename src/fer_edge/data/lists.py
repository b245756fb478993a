"""List-file layouts: RAF-DB (its own partition file and the CEPrompt/UA-FER id lists) and AffectNet.

* RAF-DB's ``EmoLabel/list_patition_label.txt``: ``train_00001.jpg 5`` (labels 1..7), images in
  ``Image/aligned/train_00001_aligned.jpg`` (or ``Image/original/``).
* CEPrompt/UA-FER id lists (1-based ids, space separated): ``images.txt`` (``id file``),
  ``image_class_labels.txt`` (``id label``), ``train_test_split.txt`` (``id 1=train|0=test``).
  RAF-DB labels are 1..7 there too; AffectNet labels 0..6/0..7 (``*_8cls.txt`` for 8 classes).
* AffectNet's own ``training.csv``/``validation.csv`` (``subDirectory_filePath, ..., expression``,
  expression 0..10 where 8-10 are none/uncertain/no-face) or any csv/txt of ``path,label``.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..labels import label_set
from ..metadata import short_repr
from .samples import FaceSamples

RAFDB_IMAGE_DIRS = ("Image/aligned_224", "Image/aligned", "Image/original", "Image", "images", ".")
RAFDB_LIST_DIRS = ("EmoLabel", "dataset", "lists", ".")


def _read_lines(path: Path) -> list[str]:
    """A list file's lines; unreadable or non-UTF-8 files are one clear error."""
    try:
        return path.read_bytes().decode("utf-8-sig").splitlines()
    except OSError as exc:
        raise FerEdgeError(f"cannot read list file {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise FerEdgeError(f"list file {path} is not UTF-8 text (byte {exc.start}); save it as plain text") from None


def _read_columns(path: Path) -> dict[str, str]:
    """First column -> second column of a whitespace-separated list file; a key given twice is an error."""
    out: dict[str, str] = {}
    for number, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) >= 2:
            if parts[0] in out:
                raise FerEdgeError(f"list file {path} names {short_repr(parts[0])} twice (again on line {number}); "
                                   "each id or file must appear once")
            out[parts[0]] = parts[1]
    return out


def _whole(text: str, where: str) -> int:
    """A label written as a whole number ("5", or "5.0" as spreadsheets write it)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value) or abs(value) > 2 ** 31:
        raise FerEdgeError(f"{where}: label {short_repr(text)} is not a whole number")
    return int(value)


def read_id_lists(folder: Path, suffix: str = "") -> list[tuple[str, int, bool]]:
    """(file, label, is_train) per id from the CEPrompt-style triple of list files."""
    names = [folder / f"{stem}{suffix}.txt" for stem in ("images", "image_class_labels", "train_test_split")]
    for p in names:
        if not _is_file(p):
            raise FerEdgeError(f"list file {p} not found; the id-list layout needs images{suffix}.txt, "
                               f"image_class_labels{suffix}.txt and train_test_split{suffix}.txt")
    files, labs, split = (_read_columns(p) for p in names)
    missing = [i for i in files if i not in labs or i not in split]
    if missing:
        raise FerEdgeError(f"{len(missing)} ids of {names[0].name} lack a label or split entry "
                           f"(e.g. id {short_repr(missing[0])})")
    bad = next((i for i in files if split[i] not in ("0", "1")), None)
    if bad is not None:
        raise FerEdgeError(f"{names[2]}: id {short_repr(bad)} has split {short_repr(split[bad])}; "
                           "use 1 for train and 0 for test")
    return [(files[i], _whole(labs[i], f"{names[1]} id {short_repr(i)}"), split[i] == "1") for i in files]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name the OS cannot look up (too long)
        return False


def _find(root: Path, candidates, what: str) -> Path:
    for c in candidates:
        if (root / c).exists():
            return root / c
    raise FerEdgeError(f"{root}: no {what} found (looked for {', '.join(str(c) for c in candidates)})")


def _resolve_image(name: str, dirs: list[Path]) -> Path | None:
    p = Path(name)
    variants = [p, p.with_name(f"{p.stem}_aligned{p.suffix}")] if p.name not in ("", ".", "..") else [p]
    if p.is_absolute():
        return p if _is_file(p) else None
    for d in dirs:
        for v in variants:
            if _is_file(d / v):
                return d / v
    return None


def _resolve_all(names: list[str], dirs: list[Path], root: Path) -> list[Path]:
    out = []
    for n in names:
        p = _resolve_image(n, dirs)
        if p is None:
            raise FerEdgeError(f"image {short_repr(n)} of the list not found under {root} "
                               f"(looked in {', '.join(str(d) for d in dirs)}, also as *_aligned)")
        out.append(p)
    return out


def read_rafdb(root: str | Path, split: str = "train") -> FaceSamples:
    """RAF-DB basic expressions in RAF-DB order (1 surprise ... 7 neutral -> index 0..6)."""
    root = _root(root)
    want_train = _want_train(split)
    image_dirs = [root / d for d in RAFDB_IMAGE_DIRS if (root / d).is_dir()]
    for d in RAFDB_LIST_DIRS:
        if (root / d / "images.txt").is_file():
            rows = [(f, lab) for f, lab, tr in read_id_lists(root / d) if tr == want_train]
            break
        if (root / d / "list_patition_label.txt").is_file():
            listing = root / d / "list_patition_label.txt"
            rows = [(f, _whole(lab, f"{listing} {short_repr(f)}")) for f, lab in _read_columns(listing).items()
                    if f.startswith("train") == want_train]
            break
    else:
        raise FerEdgeError(f"{root} is not a RAF-DB folder: no EmoLabel/list_patition_label.txt and no "
                           "images.txt/image_class_labels.txt/train_test_split.txt")
    labels = np.asarray([lab for _, lab in rows])
    if len(labels) and (labels.min() < 1 or labels.max() > 7):
        raise FerEdgeError(f"RAF-DB labels must be 1..7, found {labels.min()}..{labels.max()}")
    paths = _resolve_all([f for f, _ in rows], image_dirs, root)
    return FaceSamples("rafdb", split, label_set("rafdb"), labels - 1, paths=paths)


AFFECTNET_CSV = {"train": ("training.csv", "train.csv", "train.txt", "train_list.txt"),
                 "test": ("validation.csv", "val.csv", "valid.csv", "test.csv", "val.txt", "test.txt")}
PATH_COLUMNS = ("subdirectory_filepath", "path", "image", "file", "filename", "img", "image_path")
LABEL_COLUMNS = ("expression", "label", "emotion", "class")
AFFECTNET_IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "images", ".")


def read_affectnet(root: str | Path, split: str = "train", num_classes: int = 8) -> FaceSamples:
    """AffectNet-7/8 in AffectNet order (0 neutral ... 6 anger, 7 contempt); labels >= num_classes dropped."""
    if num_classes not in (7, 8):
        raise FerEdgeError(f"AffectNet has 7 or 8 expression classes, not {num_classes}")
    root = _root(root)
    want_train = _want_train(split)
    suffix = "_8cls" if num_classes == 8 else ""
    list_dir = next((d for d in (root / "affectnet_info", root) if (d / f"images{suffix}.txt").is_file()), None)
    if list_dir is None and num_classes == 8:
        list_dir = next((d for d in (root / "affectnet_info", root) if (d / "images.txt").is_file()), None)
        suffix = ""
    if list_dir is not None:
        rows = [(f, lab) for f, lab, tr in read_id_lists(list_dir, suffix) if tr == want_train]
        dirs = [root, list_dir]
    else:
        table = _find(root, AFFECTNET_CSV["train" if want_train else "test"], f"AffectNet {split} list")
        rows = _read_path_label_table(table)
        dirs = [root / d for d in AFFECTNET_IMAGE_DIRS if (root / d).is_dir()] + [table.parent]
    keep = [(f, lab) for f, lab in rows if 0 <= lab < num_classes]
    ds = FaceSamples(f"affectnet{num_classes}", split, label_set(f"affectnet{num_classes}"),
                     np.asarray([lab for _, lab in keep]), paths=_resolve_all([f for f, _ in keep], dirs, root))
    if len(keep) < len(rows):
        ds.notes.append(f"dropped {len(rows) - len(keep)} rows with labels outside 0..{num_classes - 1} "
                        "(contempt for 7 classes; none/uncertain/no-face)")
    return ds


def _read_path_label_table(path: Path) -> list[tuple[str, int]]:
    text = _read_lines(path)
    if not text:
        raise FerEdgeError(f"{path} is empty")
    try:
        first = [c.strip().lower() for c in next(csv.reader([text[0]]), [])]
        if any(c in PATH_COLUMNS for c in first):  # csv with a header
            pc = next(first.index(c) for c in PATH_COLUMNS if c in first)
            lc = next((first.index(c) for c in LABEL_COLUMNS if c in first), None)
            if lc is None:
                raise FerEdgeError(f"{path}: no label column (expected one of {', '.join(LABEL_COLUMNS)})")
            return [(r[pc], _whole(r[lc], f"{path} row {n}")) for n, r in enumerate(csv.reader(text[1:]), 2)
                    if len(r) > max(pc, lc)]
    except csv.Error as exc:
        raise FerEdgeError(f"{path} is not a readable csv ({exc}); save it as plain comma-separated text") from None
    rows = []
    for n, line in enumerate(text, 1):  # headerless "path label" or "path,label"
        parts = line.replace(",", " ").split()
        if len(parts) >= 2:
            rows.append((parts[0], _whole(parts[1], f"{path} line {n}")))
    return rows


def _root(root: str | Path) -> Path:
    root = Path(root)
    try:
        is_dir = root.is_dir()
    except (OSError, ValueError):
        is_dir = False
    if not is_dir:
        raise FerEdgeError(f"data path {root} is not a folder; pass --data-path with the data set's root")
    return root


def _want_train(split: str) -> bool:
    if split not in ("train", "test"):
        raise FerEdgeError(f"split must be 'train' or 'test', got {split!r}")
    return split == "train"
