"""`fer-edge export` as a library call: source -> ONNX -> OpenVINO -> INT8 targets, verified and reported.

Every step writes into one :class:`~fer_edge.export.bundle.Bundle`. Order matters: the FP32 ONNX is
made and verified first, every other artifact derives from it, and each INT8 artifact is compared with
the FP32 artifact it came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import FerEdgeError
from .bundle import Bundle

FORMATS = ("onnx", "openvino")
PARITY_FACES = 16
DEFAULT_CALIB_SIZE = 300


@dataclass
class ExportOptions:
    method: str
    weights: str | None = None
    random_init: bool = False
    clip_weights: str | None = None
    formats: tuple[str, ...] = FORMATS
    int8: bool = False
    int8_targets: tuple[str, ...] = ("onnxruntime", "tensorrt", "openvino")
    calib_data: str | None = None
    calib_size: int = DEFAULT_CALIB_SIZE
    val_data: str | None = None
    val_size: int | None = None
    verify_data: str | None = None
    max_drop: float = 1.0
    output: str | None = None
    opset: int = 17
    quantizer: str = "onnxruntime"
    model_kwargs: dict = field(default_factory=dict)  # to the model builder (e.g. a reduced test architecture)
    parity_faces: int = PARITY_FACES
    command: str = ""
    log: Callable[[str], None] = field(default=lambda msg: None)


def run_export(opts: ExportOptions) -> Bundle:
    import time

    from . import load_source
    from .onnx import export_onnx

    start = time.perf_counter()

    def log(msg: str) -> None:
        opts.log(f"[{time.perf_counter() - start:6.1f} s] {msg}")

    formats = _check_formats(opts.formats)
    if opts.int8 and not opts.calib_data:
        # checked before any work: no data, no INT8
        from ..data.faces import load_faces

        load_faces(None, what="calibration")
    targets = _check_targets(opts.int8_targets) if opts.int8 else []
    src = load_source(opts.method, opts.weights, random_init=opts.random_init, clip_weights=opts.clip_weights,
                      model_kwargs=opts.model_kwargs)
    meta = src.metadata
    bundle = Bundle(Path(opts.output or f"exports/{opts.method}"), meta, command=opts.command)
    bundle.data["weights"] = src.weights

    calib = val = None
    if opts.int8:
        calib = _faces(opts.calib_data, "calibration", meta, limit=opts.calib_size)
        bundle.data["calibration"] = f"{calib.source}: {len(calib)} faces" + "".join(f"; {n}" for n in calib.notes)
        if opts.val_data:
            val = _faces(opts.val_data, "validation", meta, limit=opts.val_size, labels=True)
            bundle.data["validation"] = f"{val.source}: {len(val)} faces" + "".join(f"; {n}" for n in val.notes)
    parity_faces = _parity_faces(opts, meta, calib, val)
    bundle.data["parity"] = f"{parity_faces.source}: {len(parity_faces)} faces"
    x = parity_faces.tensors(meta.input)

    from .verify import check_folded, check_parity, torch_outputs

    if src.full is not None:
        folded = check_folded(src.full, src.module, meta, x)
        if folded is None:
            bundle.data["folded graph"] = "not compared here: the full model's forward returns another output"
        else:
            bundle.parity.append(folded)
    ref = torch_outputs(src.module, x, meta)
    meta = _linked(meta, src, bundle, ".onnx")
    log(f"exporting {opts.method} to ONNX (opset {opts.opset})")
    onnx_path = export_onnx(src.module, meta, bundle.path(".onnx"), opset=opts.opset)
    bundle.parity.append(check_parity(src.module, meta, onnx_path, x, reference=ref))
    bundle.add(onnx_path, "onnx", "fp32")

    ir_fp32 = None
    needs_ir = "openvino" in formats or "openvino" in targets
    if needs_ir:
        from .openvino import export_openvino

        log("converting to OpenVINO IR (FP32 and FP16)")
        ir_fp32 = export_openvino(onnx_path, _linked(meta, src, bundle, "fp32.xml"), bundle.path("fp32.xml"))
        bundle.parity.append(check_parity(src.module, meta, ir_fp32, x, reference=ref))
        bundle.add(ir_fp32, "openvino", "fp32")
        if "openvino" in formats:
            ir_fp16 = export_openvino(onnx_path, _linked(meta, src, bundle, "fp16.xml"), bundle.path("fp16.xml"),
                                      fp16=True)
            bundle.parity.append(check_parity(src.module, meta, ir_fp16, x, reference=ref, precision="fp16"))
            bundle.add(ir_fp16, "openvino", "fp16")

    # what INT8 starts from: the clip graph, or the frame encoder of a split (the head stays float)
    quantized = {"onnx": (onnx_path, meta), "openvino": (ir_fp32, meta), "stem": None}
    if src.split:
        from .split import export_split

        quantized = export_split(src, bundle, parity_faces, x, ref, formats, needs_ir, opset=opts.opset, log=log)
    if opts.int8:
        from ..calibrate.run import quantize_target

        calib_x = calib.tensors(quantized["onnx"][1].input)
        fp32_evals: dict[str, object] = {}
        if src.split:
            bundle.data["int8"] = ("the frame encoder (99% of the compute); the temporal head, with the final "
                                   "normalisation and the x100 scale, stays FP32; reports compare clip predictions "
                                   "of the INT8 encoder + FP32 head with the FP32 pair on pseudo-clips of real faces")
        for name in targets:
            log(f"INT8 for {name}: calibrating on {len(calib)} faces")
            fp32, qmeta = quantized["openvino" if name == "openvino" else "onnx"]
            art, rep = quantize_target(name, fp32, calib_x, calib, qmeta, bundle.folder, val=val,
                                       max_drop=opts.max_drop, fp32_evals=fp32_evals, quantizer=opts.quantizer,
                                       stem=quantized["stem"])
            log(f"INT8 for {name}: done ({_drop_text(rep)})")
            graph = {"graph": qmeta.graph} if src.split else {}
            bundle.add(art.path, f"{name} int8", "int8", report=f"reports/int8_{name}.md", **graph)
            bundle.int8_reports.append(rep)
    bundle.finish()
    log("done")
    return bundle


def _linked(meta, src, bundle: Bundle, suffix: str):
    """With a split, the monolithic graph's metadata names the pair's files of the same format (so a
    pipeline given the clip graph finds the pair); unchanged otherwise."""
    if not src.split:
        return meta
    return meta.replace(extra={**meta.extra, **{g.graph: bundle.path(suffix, g.graph).name for g in src.split}})


def _drop_text(rep) -> str:
    if rep.get("top1_drop") is None:
        return f"agreement {rep['top1_agreement']:.1f}%"
    return f"top-1 {rep['fp32']['top1']:.2f}% -> {rep['int8']['top1']:.2f}%"


def _check_formats(formats) -> tuple[str, ...]:
    out = tuple(f.strip().lower() for f in formats if f.strip())
    bad = [f for f in out if f not in FORMATS]
    if bad:
        raise FerEdgeError(f"unknown --format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    return out


def _check_targets(targets) -> list[str]:
    from ..calibrate.targets import ALIASES, TARGETS

    out = [ALIASES.get(t.strip().lower(), t.strip().lower()) for t in targets if t.strip()]
    bad = [t for t in out if t not in TARGETS]
    if bad:
        raise FerEdgeError(f"unknown --int8-targets {', '.join(bad)}; choose from {', '.join(TARGETS)}")
    return out


def _faces(spec, what, meta, *, limit, labels=False):
    from ..data.faces import load_faces

    faces = load_faces(spec, what=what, input_spec=meta.input, need_labels=labels, limit=limit)
    return faces.relabel(list(meta.labels)) if faces.labelled else faces


def _parity_faces(opts: ExportOptions, meta, calib, val):
    """Real faces for the parity checks: --verify-data, else the calibration or validation faces, else
    the shipped public-domain photo and variants of it (enough to check parity, never to calibrate)."""
    if opts.verify_data:
        return _faces(opts.verify_data, "parity", meta, limit=opts.parity_faces)
    for faces in (calib, val):
        if faces is not None and len(faces) >= 2:
            return faces.subset(opts.parity_faces, seed=1)
    if opts.calib_data or opts.val_data:
        return _faces(opts.calib_data or opts.val_data, "parity", meta, limit=opts.parity_faces)
    from ..data.faces import builtin_faces

    faces = builtin_faces(meta.input, limit=opts.parity_faces)
    opts.log(f"no --verify-data: checking parity on the {faces.source}")
    return faces
