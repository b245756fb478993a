"""ONNX Runtime INT8: QDQ graph, uint8 activations, per-channel int8 weights (``quantize_static``).

U8S8 QDQ is what ONNX Runtime's CPU kernels run fastest. The same driver, with other settings, makes
TensorRT's symmetric graph (:mod:`.trt_qdq`), so the ORT calibration machinery lives here once.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FerEdgeError, require
from ..export.progress import Counter
from ..metadata import ArtifactMetadata
from .targets import Int8Artifact, Int8Target, int8_metadata

QUANTIZABLE_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")
CALIB_BATCH = 16


class _Reader:
    """Feeds calibration tensors in batches (duck-types onnxruntime's CalibrationDataReader), counting
    the batches it hands out (a rewound reader's second pass counts as pass 2)."""

    def __init__(self, name: str, x: np.ndarray, batch: int = CALIB_BATCH, counter: Counter | None = None):
        self.name, self.x, self.batch, self.i = name, x, batch, 0
        self.counter = counter

    def get_next(self):
        if self.i >= len(self.x):
            return None
        chunk = self.x[self.i:self.i + self.batch]
        self.i += self.batch
        if self.counter is not None:
            self.counter.advance()
        return {self.name: np.ascontiguousarray(chunk, np.float32)}

    def rewind(self) -> None:
        self.i = 0


def quantizable_nodes(onnx_path: Path, ops: tuple[str, ...] = QUANTIZABLE_OPS) -> list[str]:
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ops and n.name]


def run_quantize_static(fp32: Path, out: Path, calib: np.ndarray, input_name: str, *, activation: str,
                        symmetric: bool, op_types: tuple[str, ...] | None, exclude: list[str],
                        extra: dict[str, Any], method: str = "minmax", keep_float_ops: tuple[str, ...] = (),
                        counter: Counter | None = None) -> float:
    """Pre-process and quantize; returns the seconds taken. Node names survive, so `exclude` works.

    `keep_float_ops`: op types left in float, together with the node that makes the network output
    (the final scaling of cosine heads), e.g. softmax and layer norm of attention graphs. `counter`
    counts the calibration batches (its total: :func:`calibration_batches`)."""
    q = require("onnxruntime.quantization", "core", "INT8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calib) == 0:
        raise FerEdgeError("no calibration faces: INT8 needs real data (fer-edge never calibrates on random data)")
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    if method not in methods:
        raise FerEdgeError(f"unknown calibration method {method!r}; choose {', '.join(methods)}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # symbolic shape inference fails on ViT graphs; ONNX's own shape inference is enough here
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        if keep_float_ops:
            exclude = list(exclude) + float_nodes(pre, keep_float_ops) + head_nodes(pre)
        ReaderBase = q.CalibrationDataReader
        reader = type("CalibReader", (_Reader, ReaderBase), {})(input_name, calib, counter=counter)
        q.quantize_static(
            str(pre), str(out), reader,
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QUInt8 if activation == "uint8" else q.QuantType.QInt8,
            weight_type=q.QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=list(exclude),
            calibrate_method=methods[method],
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True, **extra},
        )
    return time.perf_counter() - start


def calibration_batches(n: int) -> int:
    return -(-n // CALIB_BATCH)


def float_nodes(onnx_path: Path, op_types: tuple[str, ...]) -> list[str]:
    """Names of the nodes of `op_types` and of the nodes that produce the graph outputs."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    return [n.name for n in graph.node if n.name and (n.op_type in op_types or outputs & set(n.output))]


def head_nodes(onnx_path: Path, boundary: str = "LayerNormalization") -> list[str]:
    """Names of the nodes between the last `boundary` op and the graph outputs: the head of a transformer
    (CLIP methods: projection, L2 norms, the cosine scores against the folded text, top-k, the blend).

    Its class margins are small and its compute tiny, so it stays in float. [] when some path from an
    output reaches the graph input without crossing `boundary`, or the part holds attention (Softmax):
    then it is not a head but the network (a layer norm early in the graph)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    inputs = {i.name for i in graph.input}
    seen: set[int] = set()
    names: list[str] = []
    bounded = False
    stack = [o.name for o in graph.output]
    while stack:
        tensor = stack.pop()
        if tensor in inputs:
            return []
        node = producer.get(tensor)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type == boundary:
            bounded = True
            continue
        if node.op_type == "Softmax":
            return []
        if node.name:
            names.append(node.name)
        stack.extend(i for i in node.input if i)
    return names if bounded else []


def finish_onnx(out: Path, meta: ArtifactMetadata) -> None:
    from ..export.onnx import rewrite_onnx_metadata

    rewrite_onnx_metadata(out, meta)


class OrtQdqTarget(Int8Target):
    name = "onnxruntime"
    fp32_format = "onnx"
    suffix = "int8_onnxruntime.onnx"

    def __init__(self, method: str = "minmax"):
        self.method = method

    def quantize(self, fp32, out, calib, meta, *, exclude=(), transformer=False, calib_source="",
                 progress=None) -> Int8Artifact:
        settings = {"format": "QDQ", "activations": "uint8 asymmetric", "weights": "int8 symmetric per-channel",
                    "calibration_method": self.method, "quantizer": "onnxruntime.quantization.quantize_static"}
        if transformer:
            settings["float_ops"] = "Softmax, LayerNormalization, the head after the last layer norm"
        seconds = run_quantize_static(Path(fp32), Path(out), calib, meta.input.name, activation="uint8",
                                      symmetric=False, op_types=None, exclude=list(exclude), extra={},
                                      method=self.method,
                                      keep_float_ops=("Softmax", "LayerNormalization") if transformer else (),
                                      counter=self.calibration_counter(progress, calibration_batches(len(calib))))
        finish_onnx(Path(out), int8_metadata(meta, self.name, calib_source, len(calib), list(exclude), settings))
        return Int8Artifact(self.name, Path(out), seconds, list(exclude), settings)
