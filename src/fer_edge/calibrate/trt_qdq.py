"""TensorRT INT8: an explicit-quantization Q/DQ ONNX that TensorRT 10.x and 11.x build strongly typed.

What TensorRT wants (its "explicit quantization" rules), and what :func:`check_trt_qdq` verifies:

* symmetric int8 everywhere: every Q/DQ has an int8 zero point equal to 0;
* weights quantized per output channel (Conv/ConvTranspose: axis 0 of OIHW; MatMul: the last axis of
  a (K, N) weight; Gemm: axis 0 with transB=1, else 1);
* Q/DQ on every input of Conv/MatMul/Gemm, where TensorRT fuses them into int8 kernels;
* none on the inputs of Softmax / LayerNormalization, and a float network output: softmax, layer norm
  and the final scaling stay in float (the int8 error there is large and the time saved small).

Layers the sensitivity search keeps in float are named, and the checker accepts them without Q/DQ.
The graph is made with ONNX Runtime's quantizer restricted to those ops (outputs and biases left in
float), or with NVIDIA ModelOpt (``quantizer="modelopt"``) where it is installed.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from .ort_qdq import QUANTIZABLE_OPS, calibration_batches, finish_onnx, head_nodes, run_quantize_static
from .targets import Int8Artifact, Int8Target, int8_metadata

FLOAT_ONLY_OPS = ("Softmax", "LayerNormalization")


class TrtQdqTarget(Int8Target):
    name = "tensorrt"
    fp32_format = "onnx"
    suffix = "int8_tensorrt_qdq.onnx"

    def __init__(self, method: str = "minmax", quantizer: str = "onnxruntime"):
        if quantizer not in ("onnxruntime", "modelopt"):
            raise FerEdgeError(f"unknown --quantizer {quantizer!r}; choose onnxruntime or modelopt")
        self.method, self.quantizer = method, quantizer

    def quantize(self, fp32, out, calib, meta, *, exclude=(), transformer=False, calib_source="",
                 progress=None) -> Int8Artifact:
        fp32, out = Path(fp32), Path(out)
        if transformer:  # the head after the last layer norm (the final scaling) stays float: listed as float layers
            exclude = list(exclude) + [n for n in head_nodes(fp32) if n not in exclude]
        if self.quantizer == "modelopt":
            seconds, settings = _quantize_modelopt(fp32, out, calib, meta.input.name, list(exclude))
        else:
            settings = {"format": "QDQ (explicit quantization)", "activations": "int8 symmetric per-tensor",
                        "weights": "int8 symmetric per-channel", "calibration_method": self.method,
                        "quantized_ops": list(QUANTIZABLE_OPS), "quantizer": "onnxruntime quantize_static"}
            seconds = run_quantize_static(
                fp32, out, calib, meta.input.name, activation="int8", symmetric=True,
                op_types=QUANTIZABLE_OPS, exclude=list(exclude), method=self.method,
                counter=self.calibration_counter(progress, calibration_batches(len(calib))),
                extra={
                    # TensorRT fuses Q/DQ on a layer's inputs; a quantized output would put Q/DQ on the
                    # inputs of softmax, layer norm and the final scaling
                    "OpTypesToExcludeOutputQuantization": list(QUANTIZABLE_OPS),
                    # TensorRT computes the bias in float inside the fused kernel
                    "QuantizeBias": False,
                    "DedicatedQDQPair": True,
                },
            )
        finish_onnx(out, int8_metadata(meta, self.name, calib_source, len(calib), list(exclude), settings))
        problems = check_trt_qdq(out, float_layers=list(exclude))
        if problems:
            raise FerEdgeError(f"the TensorRT Q/DQ graph breaks {len(problems)} rule(s), first: {problems[0]}")
        return Int8Artifact(self.name, out, seconds, list(exclude), settings,
                            notes=["evaluated here on ONNX Runtime CPU (no TensorRT on this machine); "
                                   "a TensorRT engine fuses the same Q/DQ, so its numbers differ slightly"])


def _quantize_modelopt(fp32: Path, out: Path, calib: np.ndarray, input_name: str, exclude: list[str]):
    try:
        from modelopt.onnx.quantization import quantize as mo_quantize
    except ImportError:
        raise FerEdgeError("--quantizer modelopt needs NVIDIA ModelOpt: pip install 'nvidia-modelopt[onnx]' "
                           "(heavy, pulls onnxruntime-gpu; the default quantizer needs nothing extra)") from None
    start = time.perf_counter()
    mo_quantize(onnx_path=str(fp32), quantize_mode="int8", calibration_data={input_name: calib},
                output_path=str(out), nodes_to_exclude=exclude or None)
    return time.perf_counter() - start, {"format": "QDQ (explicit quantization)", "quantizer": "nvidia-modelopt",
                                         "float_parts": "fp16 (ModelOpt's high_precision_dtype default)"}


# --- the structural check ------------------------------------------------------------------------

def _weight_axis(node, weight_rank: int) -> int:
    if node.op_type in ("Conv",):
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return weight_rank - 1  # MatMul: (..., K, N) -> N


def check_trt_qdq(model, float_layers: list[str] = ()) -> list[str]:
    """Everything in a Q/DQ ONNX that TensorRT's explicit quantization would not accept or fuse.

    `model` is an ``onnx.ModelProto`` or a path. Returns one line per problem ([] = ready to build).
    """
    import onnx
    from onnx import numpy_helper

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    producer = {o: n for n in graph.node for o in n.output}
    problems: list[str] = []

    def array(name: str):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t)
        return None

    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        return ["the graph has no QuantizeLinear/DequantizeLinear nodes: it is not quantized"]
    for n in qdq:
        if len(n.input) < 3 or not n.input[2]:
            problems.append(f"{n.op_type} {n.name}: no zero point (defaults to uint8; TensorRT needs int8 zero points of 0)")
            continue
        zp, scale = array(n.input[2]), array(n.input[1])
        if zp is None or scale is None:
            problems.append(f"{n.op_type} {n.name}: scale/zero point are not constants")
            continue
        if zp.dtype != np.int8:
            problems.append(f"{n.op_type} {n.name}: zero point is {zp.dtype}, TensorRT needs int8")
        elif np.any(zp != 0):
            problems.append(f"{n.op_type} {n.name}: zero point is not 0 (asymmetric), TensorRT needs symmetric")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            problems.append(f"{n.op_type} {n.name}: scale has non-positive or non-finite values")

    floats = set(float_layers)
    for node in graph.node:
        if node.op_type in QUANTIZABLE_OPS and node.name not in floats:
            ins = [i for i in node.input[:2] if i]
            for pos, name in enumerate(ins):
                src = producer.get(name)
                if src is None or src.op_type != "DequantizeLinear":
                    problems.append(f"{node.op_type} {node.name}: input {pos} ({name}) has no Q/DQ in front")
                    continue
                w = array(src.input[0])
                if w is not None and pos == 1:  # a constant weight: must be per-channel on the output axis
                    scale = array(src.input[1])
                    axis = next((a.i for a in src.attribute if a.name == "axis"), 1)
                    want = _weight_axis(node, w.ndim)
                    if scale is None or scale.ndim != 1 or scale.size != w.shape[want]:
                        problems.append(f"{node.op_type} {node.name}: weight is not quantized per output channel "
                                        f"(scale shape {None if scale is None else scale.shape}, weight {w.shape})")
                    elif (axis % w.ndim) != want:
                        problems.append(f"{node.op_type} {node.name}: weight DQ axis {axis}, TensorRT needs {want}")
        if node.op_type in FLOAT_ONLY_OPS:
            src = producer.get(node.input[0])
            if src is not None and src.op_type == "DequantizeLinear":
                problems.append(f"{node.op_type} {node.name}: its input is quantized; keep it in float")
    for out in graph.output:
        src = producer.get(out.name)
        if src is not None and src.op_type in ("DequantizeLinear", "QuantizeLinear"):
            problems.append(f"network output {out.name} comes from {src.op_type}: the final scaling must stay float")
    return problems
