"""Accuracy reports: each INT8 artifact against its FP32 source, on held-out labelled faces.

Both artifacts are run through :func:`fer_edge.load` and ``Model.predict`` on the same uint8 face
crops, so the numbers are what users get from the shipped files (preprocessing included), not from
an in-memory graph. Accuracy differences are a signed *change*, INT8 minus FP32 in points (positive =
INT8 better), everywhere: JSON (``top1_change``), Markdown and the console. ``--max-drop`` is the
budget for a loss, i.e. a change below ``-max_drop`` triggers the fallback.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.faces import FaceSet
from ..export.progress import Counter, ProgressFn

EVAL_BATCH = 64


@dataclass
class Evaluation:
    path: Path
    backend: str
    logits: np.ndarray  # (N, C) primary output
    metrics: Any | None  # fer_edge.metrics.ClassificationResult where labels exist


def _metrics(labels: np.ndarray, logits: np.ndarray, names: list[str]):
    try:
        from ..metrics import classification_metrics
    except ImportError:  # pragma: no cover - metrics ships with the package
        return None
    return classification_metrics(labels, logits, num_classes=logits.shape[1], labels=names)


def evaluate(path: Path, faces: FaceSet, *, backend: str | None = None, reference: bool = False,
             progress: ProgressFn | None = None) -> Evaluation:
    """Run every face through the artifact as a user would (fer_edge.load + predict).

    `reference`: the FP32 side of a comparison runs its float layers in full fp32 (OpenVINO would pick
    bf16 on CPUs that have it); INT8 artifacts run with the backend's defaults, as users run them.
    `progress` gets the faces done (task "evaluating <file>").
    """
    import fer_edge

    from ..export.verify import full_precision

    opts = full_precision(path, backend) if reference else {}
    model = fer_edge.load(str(path), device="cpu", backend=backend, **opts)
    video = model.metadata.input.layout == "NTCHW"
    # pseudo-clips of real faces for a video model: agreement and logit differences only, no clip labels
    items, run, batch = ((faces.clips(model.metadata.input.frames), model.predict_clips, 8) if video
                         else (faces.images, model.predict, EVAL_BATCH))
    counter = Counter(progress, f"evaluating {Path(path).name}", len(items))
    raws = []
    for i in range(0, len(items), batch):
        raws.append(run(items[i:i + batch]).raw)
        counter.advance(len(raws[-1]))
    logits = np.concatenate(raws).astype(np.float32)
    metrics = _metrics(faces.labels, logits, model.labels) if faces.labelled and not video else None
    backend_name = model.backend
    note = getattr(model.info(), "precision_note", "")
    return Evaluation(Path(path), backend_name + (f" ({note})" if note else ""), logits, metrics)


def _size(path: Path) -> int:
    path = Path(path)
    total = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        total += path.with_suffix(".bin").stat().st_size
    return total


def compare(fp32: Evaluation, int8: Evaluation, artifact, *, data_source: str, held_out: bool) -> dict[str, Any]:
    """The report's numbers (percent points for accuracies)."""
    diff = np.abs(int8.logits - fp32.logits)
    rep: dict[str, Any] = {
        "target": artifact.target,
        "artifact": Path(artifact.path).name,
        "fp32_source": Path(fp32.path).name,
        "evaluated_with": {"fp32": fp32.backend, "int8": int8.backend},
        "data": data_source,
        "held_out": held_out,
        "faces": int(len(fp32.logits)),
        "top1_agreement": round(100.0 * float(np.mean(fp32.logits.argmax(1) == int8.logits.argmax(1))), 3),
        "max_logit_diff": float(diff.max()),
        "mean_logit_diff": float(diff.mean()),
        "calibration_seconds": round(artifact.seconds, 2),
        "size_bytes": {"fp32": _size(fp32.path), "int8": _size(artifact.path)},
        "float_layers": list(artifact.excluded),
        "settings": artifact.settings,
        "notes": list(artifact.notes),
    }
    if fp32.metrics is not None and int8.metrics is not None:
        f, q = fp32.metrics, int8.metrics
        rep["fp32"] = {"top1": 100 * f.accuracy, "uar": 100 * f.uar, "war": 100 * f.war, "macro_f1": 100 * f.macro_f1}
        rep["int8"] = {"top1": 100 * q.accuracy, "uar": 100 * q.uar, "war": 100 * q.war, "macro_f1": 100 * q.macro_f1}
        rep["top1_change"] = round(rep["int8"]["top1"] - rep["fp32"]["top1"], 3)
        rep["uar_change"] = round(rep["int8"]["uar"] - rep["fp32"]["uar"], 3)
    else:
        rep["top1_change"] = None
        rep["notes"].append("no labelled --val-data: accuracy not measured, only agreement with FP32")
    return rep


def to_markdown(rep: dict[str, Any]) -> str:
    mb = {k: v / 1e6 for k, v in rep["size_bytes"].items()}
    lines = [f"# INT8 report: {rep['target']}", "",
             f"Artifact `{rep['artifact']}` against its FP32 source `{rep['fp32_source']}`, "
             f"on {rep['faces']} faces of {rep['data']}" + ("" if rep["held_out"] else " (NOT held out)") + ".", ""]
    if rep.get("fp32"):
        lines += ["| metric | FP32 | INT8 | change (points) |", "|---|---|---|---|"]
        for k, name in (("top1", "top-1"), ("uar", "UAR"), ("war", "WAR"), ("macro_f1", "macro-F1")):
            f, q = rep["fp32"][k], rep["int8"][k]
            lines.append(f"| {name} | {f:.2f}% | {q:.2f}% | {q - f:+.2f} |")
        lines += ["", "change = INT8 - FP32 (positive: INT8 is better).", ""]
    lines += [
        f"- top-1 agreement with FP32: {rep['top1_agreement']:.2f}%",
        f"- logit difference: max {rep['max_logit_diff']:.4g}, mean {rep['mean_logit_diff']:.4g}",
        f"- calibration time: {rep['calibration_seconds']:.1f} s",
        f"- size: FP32 {mb['fp32']:.2f} MB, INT8 {mb['int8']:.2f} MB",
        f"- evaluated with: FP32 on {rep['evaluated_with']['fp32']}, INT8 on {rep['evaluated_with']['int8']}",
        f"- layers kept in float: {', '.join(rep['float_layers']) if rep['float_layers'] else 'none'}",
    ]
    for note in rep.get("notes", []):
        lines.append(f"- note: {note}")
    if rep.get("fallback"):
        lines += ["", "## Sensitive-layer fallback", "",
                  "The first INT8 artifact lost more top-1 than the budget; the layers that add the most "
                  "quantization error were kept in float and the artifact measured again:", "",
                  "| float layers | top-1 change (points) |", "|---|---|"]
        for step in rep["fallback"]:
            lines.append(f"| {len(step['float_layers'])}: {', '.join(step['float_layers']) or 'none'} | "
                         f"{step['top1_change']:+.2f} |")
    return "\n".join(lines) + "\n"


def describe_change(rep: dict[str, Any]) -> str:
    """One phrase for the console: "top-1 change +2.67 points (65.23% -> 67.90%)"."""
    if rep.get("top1_change") is None:
        return "accuracy not measured (no labelled faces)"
    return (f"top-1 change {rep['top1_change']:+.2f} points "
            f"({rep['fp32']['top1']:.2f}% -> {rep['int8']['top1']:.2f}%)")


def over_budget(rep: dict[str, Any], max_drop: float) -> bool:
    """True when INT8 lost more than `max_drop` top-1 points (unmeasured accuracy never is)."""
    return rep.get("top1_change") is not None and -rep["top1_change"] > max_drop


def write_report(rep: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"int8_{rep['target']}"
    js, md = folder / f"{stem}.json", folder / f"{stem}.md"
    js.write_text(json.dumps(rep, indent=2, default=float) + "\n")
    md.write_text(to_markdown(rep))
    return js, md
