"""Sensitive-layer fallback: when INT8 costs more than ``--max-drop``, keep the worst layers in float.

Ranking (ONNX targets): run the FP32 and the Q/DQ graph side by side on calibration faces and, for
every quantized Conv/MatMul/Gemm, measure the relative error of its output minus the relative error
already present in its input. That difference is the error the layer itself adds (its weight and
input quantization), so a layer that only inherits upstream error is not blamed. The top layers are
excluded in growing groups (1, 2, 4, ...) until the drop is within budget or the cap is reached.
OpenVINO uses NNCF's own accuracy-control search instead (:mod:`.nncf_ov`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

RANK_FACES = 32
MAX_FLOAT_LAYERS = 16


def _with_outputs(path: Path, names: list[str]) -> bytes:
    import onnx

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    for n in names:
        if n not in have:
            model.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()


def _run(model_bytes: bytes, input_name: str, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return dict(zip(names, sess.run(names, {input_name: x})))


def _float_source(name: str, producer: dict) -> str:
    """The float tensor behind a DequantizeLinear(QuantizeLinear(t)) pair."""
    node = producer.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        q = producer.get(node.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
    return name


def rank_layers(fp32: Path, int8: Path, x: np.ndarray, input_name: str) -> list[tuple[str, float]]:
    """(layer, error it adds) for the quantized layers of `int8`, worst first."""
    import onnx

    from .ort_qdq import QUANTIZABLE_OPS

    q = onnx.load(str(int8), load_external_data=False)
    producer = {o: n for n in q.graph.node for o in n.output}
    fp_tensors = {o for n in onnx.load(str(fp32), load_external_data=False).graph.node for o in n.output}
    fp_tensors |= {i.name for i in onnx.load(str(fp32), load_external_data=False).graph.input}
    layers = []
    for n in q.graph.node:
        if n.op_type in QUANTIZABLE_OPS and n.name and any(
                producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input[:2]):
            src = _float_source(n.input[0], producer)
            if n.output[0] in fp_tensors and src in fp_tensors:
                layers.append((n.name, src, n.output[0]))
    if not layers:
        return []
    tensors = sorted({t for _, s, o in layers for t in (s, o)})
    x = x[:RANK_FACES]
    ref = _run(_with_outputs(fp32, tensors), input_name, x, tensors)
    got = _run(_with_outputs(int8, tensors), input_name, x, tensors)

    def rel(t: str) -> float:
        return float(np.linalg.norm(got[t] - ref[t]) / (np.linalg.norm(ref[t]) + 1e-12))

    scores = [(name, rel(out) - rel(src)) for name, src, out in layers]
    return sorted(scores, key=lambda s: -s[1])


def fallback_groups(ranked: list[tuple[str, float]], cap: int = MAX_FLOAT_LAYERS) -> list[list[str]]:
    """Growing groups of the worst layers: top-1, top-2, top-4, ... up to `cap`."""
    names = [n for n, _ in ranked][:cap]
    sizes, k = [], 1
    while k < len(names):
        sizes.append(k)
        k *= 2
    if names:
        sizes.append(len(names))
    return [names[:k] for k in sizes]
