"""One INT8 target end to end: quantize, measure against FP32, fall back on sensitive layers, report.

Faces that measure accuracy: the held-out ``--val-data`` when given, else the calibration faces
themselves. The fallback uses the same faces as the first measurement, so labelled calibration data
without ``--val-data`` still gets a working fallback; its report then says the faces were NOT held out
(the budget is checked on faces the quantizer has seen, an optimistic measure)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.faces import FaceSet
from ..export.progress import Counter, ProgressFn
from ..metadata import ArtifactMetadata
from .report import Evaluation, compare, evaluate, over_budget, write_report
from .targets import Int8Target, get_target, is_transformer_graph


def quantize_target(name: str, fp32: Path, calib_x: np.ndarray, calib: FaceSet, meta: ArtifactMetadata,
                    folder: Path, *, val: FaceSet | None, max_drop: float, fp32_evals: dict | None = None,
                    quantizer: str = "onnxruntime", stem: str | None = None, progress: ProgressFn | None = None):
    """(Int8Artifact, report dict) for target `name`, written into `folder` and `folder`/reports.

    `stem` names the artifact (default the method; `<method>_frame_encoder` for a split graph).
    `progress` gets the calibration, evaluation and fallback counts (:mod:`fer_edge.export.progress`)."""
    opts = {"quantizer": quantizer} if name == "tensorrt" else {}
    target = get_target(name, **opts)
    transformer = is_transformer_graph(_onnx_of(fp32))
    out = folder / f"{stem or meta.method}_{target.suffix}"
    art = target.quantize(fp32, out, calib_x, meta, transformer=transformer, calib_source=calib.source,
                          progress=progress)

    faces, held_out = (val, True) if val is not None else (calib, False)
    fp32_evals = {} if fp32_evals is None else fp32_evals
    key = str(fp32)
    if key not in fp32_evals:
        fp32_evals[key] = evaluate(fp32, faces, reference=True, progress=progress)
    ref = fp32_evals[key]
    # the TensorRT graph is measured on ONNX Runtime here; its numerics are TensorRT's int8 kernels' up to rounding
    rep = compare(ref, evaluate(art.path, faces, progress=progress), art, data_source=faces.source,
                  held_out=held_out)

    if over_budget(rep, max_drop):
        job = _Fallback(target, fp32, out, calib_x, calib, meta, faces, held_out, ref, max_drop, transformer, progress)
        art, rep = job.run(art, rep)
    write_report(rep, folder / "reports")
    return art, rep


def _onnx_of(fp32: Path) -> Path:
    if fp32.suffix == ".onnx":
        return fp32
    same = fp32.with_name(fp32.name.removesuffix("_fp32.xml") + ".onnx")  # the ONNX the IR came from
    return same if same.is_file() else next(fp32.parent.glob("*.onnx"))


@dataclass
class _Fallback:
    """Keep the most sensitive layers in float until the loss is within budget, measured on `faces`
    (the faces of the first measurement: held out or not, as `held_out` says)."""

    target: Int8Target
    fp32: Path
    out: Path
    calib_x: np.ndarray
    calib: FaceSet
    meta: ArtifactMetadata
    faces: FaceSet
    held_out: bool
    ref: Evaluation  # the FP32 artifact on `faces`
    max_drop: float
    transformer: bool
    progress: ProgressFn | None

    def _measure(self, art) -> dict:
        rep = compare(self.ref, evaluate(art.path, self.faces, progress=self.progress), art,
                      data_source=self.faces.source, held_out=self.held_out)
        if not self.held_out:
            rep["notes"].append("fallback measured on the calibration faces (no --val-data): not held out")
        return rep

    def run(self, first_art, rep):
        steps = [{"float_layers": [], "top1_change": rep["top1_change"]}]
        if self.target.name == "openvino":
            art = self.target.quantize_with_accuracy_control(
                self.fp32, self.out, self.calib_x, self.meta, self.faces.tensors(self.meta.input), self.faces.labels,
                self.max_drop, transformer=self.transformer, calib_source=self.calib.source, progress=self.progress)
            new = self._measure(art)
            steps.append({"float_layers": art.excluded, "top1_change": new["top1_change"]})
            new["fallback"] = steps
            return art, new
        from .sensitivity import fallback_groups, rank_layers

        groups = fallback_groups(rank_layers(self.fp32, self.out, self.calib_x, self.meta.input.name))
        counter = Counter(self.progress, f"INT8 {self.target.name}: fallback groups", len(groups))
        best_art, best = None, rep
        for group in groups:
            art = self.target.quantize(self.fp32, self.out, self.calib_x, self.meta, exclude=group,
                                       transformer=self.transformer, calib_source=self.calib.source,
                                       progress=self.progress)
            new = self._measure(art)
            counter.advance()
            steps.append({"float_layers": group, "top1_change": new["top1_change"]})
            best_art, best = art, new
            if not over_budget(new, self.max_drop):
                break
        if best_art is None:
            best_art, best = first_art, dict(rep)
            best["notes"].append("no quantized layer could be ranked; the loss stays above budget")
        elif over_budget(best, self.max_drop):
            best["notes"].append(f"still a top-1 change of {best['top1_change']:+.2f} points (budget: a loss of at "
                                 f"most {self.max_drop:g}) with {len(steps[-1]['float_layers'])} layers in float "
                                 f"(the cap); consider quantization-aware training")
        best["fallback"] = steps
        return best_art, best
