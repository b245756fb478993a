"""`fer-edge export` as a library call: source -> ONNX -> OpenVINO -> INT8 targets, verified and reported.

Every step writes into one :class:`~fer_edge.export.bundle.Bundle`. Order matters: the FP32 ONNX is
made and verified first, every other artifact derives from it, and each INT8 artifact is compared with
the FP32 artifact it came from.
"""
from __future__ import annotations

import time

from .bundle import Bundle
from .options import ExportOptions, Plan, check_options  # ExportOptions is importable from here too
from .quiet import Guard

LOG_FILE = "export.log"


def run_export(opts: ExportOptions) -> Bundle:
    """Check every option (nothing heavy happens before), then export into the plan's folder with
    third-party output in its export.log (unless `opts.verbose`)."""
    plan = check_options(opts)
    from ..models import get_config

    get_config(opts.method)  # an unknown method is refused before the model is built
    with Guard(plan.folder / LOG_FILE, verbose=opts.verbose) as guard:
        return _Run(opts, plan, guard).export()


class _Run:
    """One export: the steps of run_export, with the console messages and progress it sends."""

    def __init__(self, opts: ExportOptions, plan: Plan, guard: Guard):
        self.opts, self.plan, self.guard = opts, plan, guard
        self.start = time.perf_counter()

    def log(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.start:6.1f} s] {msg}"
        self.guard.note(line)
        with self.guard.paused():
            self.opts.log(line)

    def progress(self, task: str, done: int, total: int) -> None:
        if self.opts.progress is not None:
            with self.guard.paused():
                self.opts.progress(task, done, total)

    def export(self) -> Bundle:
        from . import load_source
        from .onnx import export_onnx

        opts, plan, log = self.opts, self.plan, self.log
        formats, targets = plan.formats, plan.targets
        log(f"building {opts.method}")
        src = load_source(opts.method, opts.weights, random_init=opts.random_init, clip_weights=opts.clip_weights,
                          model_kwargs=opts.model_kwargs)
        meta = src.metadata
        bundle = Bundle(plan.folder, meta, command=opts.command)
        if bundle.replaced:
            log(f"removed the previous export in {plan.folder} (the {len(bundle.replaced)} files its manifest lists)")
        bundle.data["weights"] = src.weights

        calib = val = None
        if opts.int8:
            calib = _faces(opts.calib_data, "calibration", meta, limit=plan.calib_size)
            bundle.data["calibration"] = f"{calib.source}: {len(calib)} faces" + "".join(f"; {n}" for n in calib.notes)
            if opts.val_data:
                val = _faces(opts.val_data, "validation", meta, limit=opts.val_size, labels=True)
                bundle.data["validation"] = f"{val.source}: {len(val)} faces" + "".join(f"; {n}" for n in val.notes)
        parity_faces = self._parity_faces(meta, calib, val)
        bundle.data["parity"] = f"{parity_faces.source}: {len(parity_faces)} faces"
        x = parity_faces.tensors(meta.input)

        from .verify import check_folded, check_parity, torch_outputs

        if src.reference is not None:
            folded = check_folded(src.reference, src.module, meta, x)
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
            self._int8(src, bundle, quantized, calib, val)
        bundle.finish()
        if bundle.dropped:
            log(f"files of the previous export that this one does not make (removed): {', '.join(bundle.dropped)}")
        if self.guard.captured:
            log(f"third-party messages are in {self.guard.log_path} (--verbose shows them here)")
        log("done")
        return bundle

    def _int8(self, src, bundle: Bundle, quantized: dict, calib, val) -> None:
        from ..calibrate.report import describe_change
        from ..calibrate.run import quantize_target

        calib_x = calib.tensors(quantized["onnx"][1].input)
        fp32_evals: dict[str, object] = {}
        if src.split:
            bundle.data["int8"] = ("the frame encoder (99% of the compute); the temporal head, with the final "
                                   "normalisation and the x100 scale, stays FP32; reports compare clip predictions "
                                   "of the INT8 encoder + FP32 head with the FP32 pair on pseudo-clips of real faces")
        for name in self.plan.targets:
            self.log(f"INT8 for {name}: calibrating on {len(calib)} faces")
            fp32, qmeta = quantized["openvino" if name == "openvino" else "onnx"]
            art, rep = quantize_target(name, fp32, calib_x, calib, qmeta, bundle.folder, val=val,
                                       max_drop=self.plan.max_drop, fp32_evals=fp32_evals,
                                       quantizer=self.plan.quantizer, stem=quantized["stem"], progress=self.progress)
            self.log(f"INT8 for {name}: done, {describe_change(rep)}, agreement {rep['top1_agreement']:.1f}%")
            graph = {"graph": qmeta.graph} if src.split else {}
            bundle.add(art.path, f"{name} int8", "int8", report=f"reports/int8_{name}.md", **graph)
            bundle.int8_reports.append(rep)

    def _parity_faces(self, meta, calib, val):
        """Real faces for the parity checks: --verify-data, else the calibration or validation faces, else
        the shipped public-domain photo and variants of it (enough to check parity, never to calibrate)."""
        opts = self.opts
        if opts.verify_data:
            return _faces(opts.verify_data, "parity", meta, limit=opts.parity_faces)
        for faces in (calib, val):
            if faces is not None and len(faces) >= 2:
                return faces.subset(opts.parity_faces, seed=1)
        if opts.calib_data or opts.val_data:
            return _faces(opts.calib_data or opts.val_data, "parity", meta, limit=opts.parity_faces)
        from ..data.faces import builtin_faces

        faces = builtin_faces(meta.input, limit=opts.parity_faces)
        self.log(f"no --verify-data: checking parity on the {faces.source}")
        return faces


def _linked(meta, src, bundle: Bundle, suffix: str):
    """With a split, the monolithic graph's metadata names the pair's files of the same format (so a
    pipeline given the clip graph finds the pair); unchanged otherwise."""
    if not src.split:
        return meta
    return meta.replace(extra={**meta.extra, **{g.graph: bundle.path(suffix, g.graph).name for g in src.split}})


def _faces(spec, what, meta, *, limit, labels=False):
    from ..data.faces import load_faces

    faces = load_faces(spec, what=what, input_spec=meta.input, need_labels=labels, limit=limit)
    return faces.relabel(list(meta.labels)) if faces.labelled else faces
