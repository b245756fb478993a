"""One output folder per export: every artifact, the metadata, parity and INT8 reports, a manifest
and a README that says how it was made (command, versions, data).

The manifest lists every file the export wrote, with its sha256 (:mod:`.manifest`). A re-export into
the same folder first removes the files the previous manifest lists (and only those: a user's other
files stay), so a re-export never leaves the previous export's artifacts beside the new ones, even
when it fails half-way."""
from __future__ import annotations

import importlib
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..metadata import ArtifactMetadata
from .manifest import FORMAT, MANIFEST, SIDE_FILES, companions, file_hashes, inside, read_manifest

VERSIONED = ("fer_edge", "torch", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            out[name] = "not installed"
    return out


@dataclass
class Bundle:
    folder: Path
    metadata: ArtifactMetadata
    command: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    parity: list[dict[str, Any]] = field(default_factory=list)
    int8_reports: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)  # the previous export's files, removed at the start
    dropped: list[str] = field(default_factory=list)  # those of them this export did not make again

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.replaced = remove_previous_export(self.folder)
        (self.folder / "reports").mkdir(exist_ok=True)

    def path(self, suffix: str, graph: str | None = None) -> Path:
        """`<method>.onnx` for suffix ".onnx", `<method>_fp32.xml` for "fp32.xml"; with `graph` (one graph
        of a video model's split) `<method>_<graph>.onnx`, `<method>_<graph>_fp32.xml`."""
        sep = "" if suffix.startswith(".") else "_"
        return self.folder / f"{self.stem(graph)}{sep}{suffix}"

    def stem(self, graph: str | None = None) -> str:
        return self.metadata.method + (f"_{graph}" if graph else "")

    def add(self, path: Path, kind: str, precision: str, **info: Any) -> None:
        self.artifacts.append({"file": Path(path).name, "kind": kind, "precision": precision, **info})

    def written(self) -> list[str]:
        """Folder-relative names of every file this export writes (the manifest's "files")."""
        names: list[str] = []
        for art in self.artifacts:
            names += companions(art["file"])
            if art.get("report"):
                names += [art["report"], art["report"].removesuffix(".md") + ".json"]
        return names + [n for n in SIDE_FILES if n not in names]

    def finish(self) -> Path:
        """Write metadata.json, README.md and manifest.json (last: it hashes the others); return the README path."""
        from ..checkpoint import sha256_file

        (self.folder / "metadata.json").write_text(self.metadata.to_json(indent=2) + "\n")
        (self.folder / "reports" / "parity.json").write_text(json.dumps(self.parity, indent=2) + "\n")
        manifest = {"format": FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "command": self.command,
                    "versions": versions(), "source_sha256": self.metadata.source_sha256, "data": self.data,
                    "artifacts": self.artifacts, "parity": self.parity,
                    "int8": [_summary(r) for r in self.int8_reports]}
        readme = self.folder / "README.md"
        readme.write_text(self._readme(manifest))
        names = self.written()
        manifest["files"] = [{"file": n, "sha256": sha256_file(self.folder / n), "bytes": (self.folder / n).stat().st_size}
                             for n in names if (self.folder / n).is_file()]
        (self.folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=float) + "\n")
        self.dropped = [n for n in self.replaced if n not in names]
        return readme

    def _readme(self, manifest: dict[str, Any]) -> str:
        m = self.metadata
        h, w = m.input.size
        lines = [f"# {m.method} export", "", "Made with:", "", "```", self.command or "(library call)", "```", "",
                 f"Weights: {m.extra.get('weights', '?')}" + (f" (sha256 {m.source_sha256})" if m.source_sha256 else ""),
                 f"Input: {m.input.color} {h}x{w}, {m.input.layout}, mean {list(m.input.mean)}, std {list(m.input.std)}; "
                 f"output: {m.output.kind}; labels: {', '.join(m.labels)}", ""]
        if self.data:
            lines += ["Data:", ""] + [f"- {k}: {v}" for k, v in self.data.items()] + [""]
        lines += ["| file | kind | precision | graph |", "|---|---|---|---|"]
        lines += [f"| {a['file']} | {a['kind']} | {a['precision']} | {a.get('graph', 'classifier')} |"
                  for a in self.artifacts]
        if self.parity:
            lines += ["", "Parity with PyTorch on real faces (max |diff| of the primary output):", "",
                      "| artifact | backend | faces | max diff | bound | ok |", "|---|---|---|---|---|---|"]
            lines += [f"| {p['artifact']} | {p['backend']} | {p['faces']} | {p['max_abs_diff']:.2e} | "
                      f"{p['bound']:.1e} | {'yes' if p['ok'] else 'NO'} |" for p in self.parity]
        if self.int8_reports:
            lines += ["", "INT8 against FP32 (details in reports/int8_<target>.md; change = INT8 - FP32, "
                      "positive = INT8 better):", "",
                      "| target | FP32 top-1 | INT8 top-1 | change (points) | agreement | float layers |",
                      "|---|---|---|---|---|---|"]
            for r in self.int8_reports:
                f = f"{r['fp32']['top1']:.2f}%" if r.get("fp32") else "n/a"
                q = f"{r['int8']['top1']:.2f}%" if r.get("int8") else "n/a"
                d = f"{r['top1_change']:+.2f}" if r.get("top1_change") is not None else "n/a"
                lines.append(f"| {r['target']} | {f} | {q} | {d} | {r['top1_agreement']:.2f}% | {len(r['float_layers'])} |")
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()), "",
                  "Load any artifact with `fer_edge.load(path)` (the folder itself loads the FP32 ONNX); only the "
                  "files manifest.json lists, unchanged (sha256), load from this folder. Build a TensorRT engine on "
                  "the target GPU with `fer-edge build-engine <the _int8_tensorrt_qdq.onnx or the FP32 .onnx>`.", ""]
        return "\n".join(lines)


def remove_previous_export(folder: Path) -> list[str]:
    """Delete the files the folder's manifest lists (then the manifest); return their names."""
    manifest = read_manifest(folder)
    if manifest is None:
        return []
    removed = []
    for name in file_hashes(manifest):
        path = inside(folder, name)
        if path is not None and path.is_file():
            path.unlink()
            removed.append(name)
    (folder / MANIFEST).unlink()
    return removed


def _summary(rep: dict[str, Any]) -> dict[str, Any]:
    keys = ("target", "artifact", "top1_change", "top1_agreement", "max_logit_diff", "float_layers")
    out = {k: rep.get(k) for k in keys}
    if rep.get("fp32"):
        out["fp32_top1"], out["int8_top1"] = rep["fp32"]["top1"], rep["int8"]["top1"]
    return out
