"""One output folder per export: every artifact, the metadata, parity and INT8 reports, a manifest
and a README that says how it was made (command, versions, data)."""
from __future__ import annotations

import importlib
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..metadata import ArtifactMetadata

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

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
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

    def finish(self) -> Path:
        """Write metadata.json, manifest.json and README.md; return the README path."""
        (self.folder / "metadata.json").write_text(self.metadata.to_json(indent=2) + "\n")
        (self.folder / "reports" / "parity.json").write_text(json.dumps(self.parity, indent=2) + "\n")
        manifest = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": self.command,
                    "versions": versions(), "data": self.data, "artifacts": self.artifacts,
                    "parity": self.parity, "int8": [_summary(r) for r in self.int8_reports]}
        (self.folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float) + "\n")
        readme = self.folder / "README.md"
        readme.write_text(self._readme(manifest))
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
            lines += ["", "INT8 against FP32 (details in reports/int8_<target>.md):", "",
                      "| target | FP32 top-1 | INT8 top-1 | drop | agreement | float layers |", "|---|---|---|---|---|---|"]
            for r in self.int8_reports:
                f = f"{r['fp32']['top1']:.2f}%" if r.get("fp32") else "n/a"
                q = f"{r['int8']['top1']:.2f}%" if r.get("int8") else "n/a"
                d = f"{r['top1_drop']:+.2f}" if r.get("top1_drop") is not None else "n/a"
                lines.append(f"| {r['target']} | {f} | {q} | {d} | {r['top1_agreement']:.2f}% | {len(r['float_layers'])} |")
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()), "",
                  "Load any artifact with `fer_edge.load(path)`; build a TensorRT engine on the target GPU with "
                  "`fer-edge build-engine <the _int8_tensorrt_qdq.onnx or the FP32 .onnx>`.", ""]
        return "\n".join(lines)


def _summary(rep: dict[str, Any]) -> dict[str, Any]:
    keys = ("target", "artifact", "top1_drop", "top1_agreement", "max_logit_diff", "float_layers")
    out = {k: rep.get(k) for k in keys}
    if rep.get("fp32"):
        out["fp32_top1"], out["int8_top1"] = rep["fp32"]["top1"], rep["int8"]["top1"]
    return out
