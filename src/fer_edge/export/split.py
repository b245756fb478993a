"""A video model's edge pair, exported beside its monolithic clip graph.

The pair is a per-frame encoder (one face -> feature) and a temporal head (T features -> logits):
on a stream each frame is then encoded once instead of once per clip it falls in. Both graphs go
through the same generic writers as every other graph (the head with its own tracing example, since
its input is a feature sequence), each is checked against its own PyTorch module on real inputs (the
encoder on real faces, the head on the real features of pseudo-clips of those faces), and the pair's
composition is checked equal to the monolithic graph on the same clips. Each graph's metadata names
its partner's file (``extra["temporal_head"]`` / ``extra["frame_encoder"]``) of the same format, so
``fer_edge.load`` of either finds the pair.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import FerEdgeError
from .bundle import Bundle
from .source import ExportSource, GraphSource
from .verify import TOLERANCE, check_parity, compare, torch_outputs

# (file suffix, bundle kind, precision); the ONNX comes first, the IRs derive from it
VARIANTS = ((".onnx", "onnx", "fp32"), ("fp32.xml", "openvino", "fp32"), ("fp16.xml", "openvino", "fp16"))


def linked_metadata(graph: GraphSource, split: list[GraphSource], bundle: Bundle, suffix: str):
    """The graph's metadata naming the other graphs of the pair, in the same file format."""
    links = {g.graph: bundle.path(suffix, g.graph).name for g in split if g.graph != graph.graph}
    return graph.metadata.replace(extra={**graph.metadata.extra, **links})


def graph_inputs(src: ExportSource, faces) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """graph -> (real input, PyTorch output): faces for the encoder, their features as clips for the head."""
    pair = _pair(src)
    enc, head = pair["frame_encoder"], pair["temporal_head"]
    enc_x = faces.tensors(enc.metadata.input)
    enc_ref = torch_outputs(enc.module, enc_x, enc.metadata)
    head_x = np.ascontiguousarray(enc_ref[faces.clip_indices(int(head.metadata.input.frames))])
    return {enc.graph: (enc_x, enc_ref), head.graph: (head_x, torch_outputs(head.module, head_x, head.metadata))}


def export_split(src: ExportSource, bundle: Bundle, faces, clips_x: np.ndarray, clips_ref: np.ndarray,
                 formats: tuple[str, ...], needs_ir: bool, *, opset: int,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Write, verify and record the pair; return what INT8 starts from: the FP32 frame encoder per
    format (``{"onnx": (path, metadata), "openvino": (path, metadata) | None}``) and its file stem."""
    from .onnx import export_onnx
    from .openvino import export_openvino

    variants = [v for v in VARIANTS if v[1] == "onnx" or (v[2] == "fp32" and needs_ir)
                or (v[2] == "fp16" and "openvino" in formats)]
    inputs = graph_inputs(src, faces)
    written: dict[tuple[str, str], tuple[Path, Any]] = {}
    for graph in src.split:
        log(f"exporting the {graph.graph} graph ({', '.join(v[0].lstrip('.') for v in variants)})")
        x, ref = inputs[graph.graph]
        for suffix, kind, precision in variants:
            meta = linked_metadata(graph, src.split, bundle, suffix)
            path = bundle.path(suffix, graph.graph)
            if kind == "onnx":
                export_onnx(graph.module, meta, path, opset=opset, example=graph.example)
            else:
                export_openvino(written[(".onnx", graph.graph)][0], meta, path, fp16=precision == "fp16")
            bundle.parity.append(check_parity(graph.module, meta, path, x, reference=ref, precision=precision))
            bundle.add(path, kind, precision, graph=graph.graph)
            written[(suffix, graph.graph)] = (path, meta)
    bundle.parity.append(check_composition(bundle, src, clips_x, clips_ref))
    enc = "frame_encoder"
    return {"onnx": written[(".onnx", enc)], "openvino": written.get(("fp32.xml", enc)), "stem": bundle.stem(enc)}


def check_composition(bundle: Bundle, src: ExportSource, clips_x: np.ndarray, clips_ref: np.ndarray) -> dict:
    """The exported ONNX pair, run as users run it (VideoModel), against the monolithic PyTorch graph."""
    from ..runtimes import VideoModel, load

    pair = _pair(src)
    enc, head = (load(str(bundle.path(".onnx", g)), device="cpu", pair=False) for g in pair)
    got = np.asarray(VideoModel(enc, head).run(clips_x)[head.metadata.output.name])
    atol, rtol = TOLERANCE["fp32"]
    res = {"artifact": f"{bundle.path('.onnx', 'frame_encoder').name} + {bundle.path('.onnx', 'temporal_head').name}"
                       " (split pair) vs monolithic", "backend": enc.backend, "faces": int(len(clips_x)),
           "precision": "fp32", "atol": atol, "rtol": rtol, **compare(clips_ref, got, atol=atol, rtol=rtol)}
    if not res["ok"]:
        raise FerEdgeError(f"the split pair of {src.method} differs from the monolithic graph on {len(clips_x)} clips "
                           f"of real faces: max |diff| {res['max_abs_diff']:.3g} > {res['bound']:.3g}")
    return res


def _pair(src: ExportSource) -> dict[str, GraphSource]:
    pair = {g.graph: g for g in src.split}
    if set(pair) != {"frame_encoder", "temporal_head"}:
        raise FerEdgeError(f"{src.method}'s split graphs are {sorted(pair)}; expected frame_encoder and temporal_head")
    return {"frame_encoder": pair["frame_encoder"], "temporal_head": pair["temporal_head"]}
