"""One INT8 target end to end: quantize, measure against FP32, fall back on sensitive layers, report."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metadata import ArtifactMetadata
from ..data.faces import FaceSet
from .report import compare, evaluate, write_report
from .targets import get_target, is_transformer_graph


def quantize_target(name: str, fp32: Path, calib_x: np.ndarray, calib: FaceSet, meta: ArtifactMetadata,
                    folder: Path, *, val: FaceSet | None, max_drop: float, fp32_evals: dict | None = None,
                    quantizer: str = "onnxruntime", stem: str | None = None):
    """(Int8Artifact, report dict) for target `name`, written into `folder` and `folder`/reports.

    `stem` names the artifact (default the method; `<method>_frame_encoder` for a split graph)."""
    opts = {"quantizer": quantizer} if name == "tensorrt" else {}
    target = get_target(name, **opts)
    transformer = is_transformer_graph(_onnx_of(fp32))
    out = folder / f"{stem or meta.method}_{target.suffix}"
    art = target.quantize(fp32, out, calib_x, meta, transformer=transformer, calib_source=calib.source)

    eval_faces, held_out = (val, True) if val is not None else (calib, False)
    fp32_evals = {} if fp32_evals is None else fp32_evals
    key = str(fp32)
    if key not in fp32_evals:
        fp32_evals[key] = evaluate(fp32, eval_faces, reference=True)
    ref = fp32_evals[key]
    # the TensorRT graph is measured on ONNX Runtime here; its numerics are TensorRT's int8 kernels' up to rounding
    rep = compare(ref, evaluate(art.path, eval_faces), art, data_source=eval_faces.source, held_out=held_out)

    if rep["top1_drop"] is not None and rep["top1_drop"] > max_drop:
        art, rep = _fallback(art, target, name, fp32, out, calib_x, calib, meta, val, ref, rep, max_drop, transformer)
    write_report(rep, folder / "reports")
    return art, rep


def _onnx_of(fp32: Path) -> Path:
    if fp32.suffix == ".onnx":
        return fp32
    same = fp32.with_name(fp32.name.removesuffix("_fp32.xml") + ".onnx")  # the ONNX the IR came from
    return same if same.is_file() else next(fp32.parent.glob("*.onnx"))


def _fallback(first_art, target, name, fp32, out, calib_x, calib, meta, val, ref, rep, max_drop, transformer):
    """Keep the most sensitive layers in float until the drop is within budget."""
    steps = [{"float_layers": [], "top1_drop": rep["top1_drop"]}]
    if name == "openvino":
        art = target.quantize_with_accuracy_control(fp32, out, calib_x, meta, val.tensors(meta.input), val.labels,
                                                    max_drop, transformer=transformer, calib_source=calib.source)
        new = compare(ref, evaluate(art.path, val), art, data_source=val.source, held_out=True)
        steps.append({"float_layers": art.excluded, "top1_drop": new["top1_drop"]})
        new["fallback"] = steps
        return art, new
    from .sensitivity import fallback_groups, rank_layers

    ranked = rank_layers(fp32, out, calib_x, meta.input.name)
    best_art, best = None, rep
    for group in fallback_groups(ranked):
        art = target.quantize(fp32, out, calib_x, meta, exclude=group, transformer=transformer,
                              calib_source=calib.source)
        new = compare(ref, evaluate(art.path, val), art, data_source=val.source, held_out=True)
        steps.append({"float_layers": group, "top1_drop": new["top1_drop"]})
        best_art, best = art, new
        if new["top1_drop"] <= max_drop:
            break
    if best_art is None:
        best_art, best = first_art, dict(rep)
        best["notes"].append("no quantized layer could be ranked; the drop stays above budget")
    elif best["top1_drop"] > max_drop:
        best["notes"].append(f"still {best['top1_drop']:.2f} points above FP32 with {len(steps[-1]['float_layers'])} "
                             f"layers in float (the cap); consider quantization-aware training")
    best["fallback"] = steps
    return best_art, best
