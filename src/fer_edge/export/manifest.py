"""An export folder's manifest is the truth about the folder: the files one export made, with sha256.

Written by :class:`~fer_edge.export.bundle.Bundle`; read by a re-export into the same folder (the
previous export's files are removed, and only those) and by :func:`fer_edge.load` (an artifact of a
folder with a manifest loads only if the manifest lists it with the same sha256, so a leftover of
another export, or a file changed since, never loads silently). Light: no torch, no onnx.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FerEdgeError

MANIFEST = "manifest.json"
FORMAT = "fer-edge-export/1"  # written since hashes; older manifests are known by "artifacts" + "parity"
# written by every export beside the artifacts (reports/ holds int8_<target>.md/.json too)
SIDE_FILES = ("metadata.json", "README.md", "reports/parity.json")


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The fer-edge manifest of `folder`; None when it has none, or a manifest.json of another tool
    (valid JSON without fer-edge's keys). An unreadable one is refused: it may be a broken export's."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise FerEdgeError(f"{path} is not valid JSON; re-export the folder (or remove the manifest and the "
                           f"files of that export)") from None
    if not isinstance(data, dict):
        return None
    ours = data.get("format") == FORMAT or (isinstance(data.get("artifacts"), list) and "parity" in data)
    return data if ours else None


def companions(name: str) -> list[str]:
    """The files one artifact consists of: an OpenVINO IR is its .xml and the .bin beside it."""
    return [name, name[:-4] + ".bin"] if name.endswith(".xml") else [name]


def file_hashes(manifest: dict[str, Any]) -> dict[str, str | None]:
    """folder-relative file -> sha256 (None where the manifest predates hashes) of every file listed."""
    files = manifest.get("files")
    if isinstance(files, list):
        return {str(f["file"]): f.get("sha256") for f in files if isinstance(f, dict) and "file" in f}
    out: dict[str, str | None] = {}  # a manifest without "files": the artifacts and what goes with them
    for art in manifest.get("artifacts", []):
        if not isinstance(art, dict) or "file" not in art:
            continue
        out.update(dict.fromkeys(companions(str(art["file"]))))
        if art.get("report"):
            report = str(art["report"])
            out.update(dict.fromkeys([report, report.removesuffix(".md") + ".json"]))
    out.update(dict.fromkeys(SIDE_FILES))
    return out


def inside(folder: Path, name: str) -> Path | None:
    """`folder`/`name` when `name` is a plain relative path that stays inside `folder`; None otherwise
    (a hand-edited manifest never makes fer-edge touch files elsewhere)."""
    path = (folder / name).resolve()
    return path if path != folder.resolve() and folder.resolve() in path.parents else None


def check_listed(path: str | Path) -> None:
    """Refuse an artifact of an export folder that the folder's manifest does not list, or whose
    sha256 differs from the manifest's (an IR's .bin is checked with its .xml)."""
    from ..checkpoint import sha256_file

    path = Path(path)
    manifest = read_manifest(path.parent)
    if manifest is None:
        return
    hashes = file_hashes(manifest)
    where = path.parent / MANIFEST
    if path.name not in hashes:
        raise FerEdgeError(f"{path.name} is not listed in {where}: it is not part of that export (a leftover "
                           f"of an earlier one?); re-export the folder or move the file out of it")
    for name in companions(path.name):
        want, file = hashes.get(name), path.parent / name
        if want is not None and file.is_file() and sha256_file(file) != want:
            raise FerEdgeError(f"{name} differs from the file {where} lists (sha256 mismatch): it was changed or "
                               f"replaced after the export; re-export the folder")
