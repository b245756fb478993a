"""Output paths checked before any work, so a long run never fails at its last step.

A destination is fine when it is not an existing folder (for files) or file (for folders), its
suffix is one the writer supports, and the nearest existing ancestor is a folder this user may
write into (missing folders are created later by the writer).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import FerEdgeError


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path.cwd()


def check_writable(folder: Path, flag: str) -> None:
    """Files can be created in `folder`, or in the nearest part of it that exists (the rest is made later)."""
    _check_anchor(Path(folder), Path(folder), flag)


def _check_ancestor(path: Path, flag: str) -> None:
    _check_anchor(path, path if path.is_dir() else path.parent, flag)


def _check_anchor(shown: Path, folder: Path, flag: str) -> None:
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise FerEdgeError(f"{flag} {shown}: {anchor} is a file, not a folder; choose another path")
    if not _can_create_in(anchor):
        raise FerEdgeError(f"{flag} {shown}: cannot write in {anchor} (no permission or a read-only file system); "
                           "choose a writable path")


def _can_create_in(folder: Path) -> bool:
    """Try it: permission bits lie for root, read-only mounts and pseudo file systems such as /proc."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".fer-edge-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def check_output_file(path: Path | None, flag: str, suffixes: tuple[str, ...] = ()) -> None:
    """`path` can be written as a file with one of `suffixes` (any suffix when empty), or a one-line error."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if path.is_dir():
        raise FerEdgeError(f"{flag} {path} is a folder; give a file name such as {path / ('out' + (suffixes or ('.json',))[0])}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise FerEdgeError(f"{flag} {path}: unsupported file type {path.suffix or '(none)'}; use {', '.join(suffixes)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise FerEdgeError(f"{flag} {path}: the file exists and is not writable; choose another path")
    _check_ancestor(path, flag)


def check_output_dir(path: Path | None, flag: str) -> None:
    """`path` can be used as an output folder (existing or to be created), or a one-line error."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FerEdgeError(f"{flag} {path} is a file, not a folder; choose a folder path")
    _check_ancestor(path, flag)
