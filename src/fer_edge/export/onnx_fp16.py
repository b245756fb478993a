"""Convert an fp32 ONNX graph to fp16, for strongly typed TensorRT 11 builds.

TensorRT 11 removed ``BuilderFlag.FP16``: every network is strongly typed, so a layer runs in fp16 only
if the graph says its tensors are fp16. This converter says so, using nothing but ``onnx``:

* float32 weights and activations become float16 (weights clipped to the fp16 range, so a ``-1e9``
  attention mask becomes ``-65504`` instead of ``-inf``);
* the graph's inputs and outputs STAY float32, with a Cast at each boundary. Decision: the engine then
  has the same interface as an fp32 engine, the metadata's input spec holds unchanged, and the runtime
  feeds the float32 tensors preprocessing makes; two Casts cost nothing next to the network;
* tensors that must stay float32 stay float32: the ``roi``/``scales`` inputs of Resize (and Upsample's
  scales), and every input and output of ops that have no fp16 kernel in the ONNX type constraints
  (Range, the Random* ops, ...) or that live in a custom domain. Casts are inserted where an fp16 tensor
  meets an fp32-only consumer and back. Integer tensors (shapes, indices) are never touched;
* Q/DQ graphs and control flow (If/Loop/Scan) are refused: int8 graphs are built as they are, and the
  subgraphs of control flow would need their own pass.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FerEdgeError, require

FP16_MAX = float(np.finfo(np.float16).max)
# (op_type, input index) pairs whose input is specified as float32 (or is better kept so).
KEEP_FP32_INPUTS = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}
# Ops without float16 in their ONNX type constraints: run them in float32 between Casts.
FP32_ONLY_OPS = frozenset({
    "Range", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
    "Bernoulli", "NonMaxSuppression", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
})
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


def _onnx():
    return require("onnx", "tensorrt", "converting ONNX graphs to fp16")


def convert_file_to_fp16(src: str | Path, dst: str | Path, keep_ops: tuple[str, ...] = ()) -> Path:
    """Read `src`, convert, write `dst` (fer-edge metadata copied with precision "fp16")."""
    onnx = _onnx()
    model = onnx.load(str(src))
    out = convert_to_fp16(model, keep_ops=keep_ops)
    dst = Path(dst)
    big = out.ByteSize() > (1 << 31) - (1 << 24)
    onnx.save(out, str(dst), save_as_external_data=big, location=dst.name + ".data" if big else None)
    return dst


def convert_to_fp16(model, keep_ops: tuple[str, ...] = ()):
    """Return an fp16 copy of an ``onnx.ModelProto`` (the argument is not modified).

    `keep_ops`: extra op types to keep in float32 (e.g. ``("Softmax",)`` if a model overflows in fp16).
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    from ..metadata import METADATA_KEY, ArtifactMetadata, attach_to_onnx

    FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    fp32_only = FP32_ONLY_OPS | set(keep_ops)

    for node in g.node:
        if node.op_type in CONTROL_FLOW or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                               for a in node.attribute):
            raise FerEdgeError(f"the fp16 converter does not handle control flow ({node.op_type}); "
                               "build this model in fp32 or convert it with NVIDIA ModelOpt AutoCast")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            raise FerEdgeError("this is a quantized Q/DQ graph: build it as int8 as it is, not through fp16")

    # Element types of every tensor in the fp32 graph.
    try:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    except Exception as exc:
        raise FerEdgeError(f"ONNX shape inference failed before fp16 conversion: {exc}") from None
    etype: dict[str, int] = {}
    for vi in list(inferred.graph.value_info) + list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type"):
            etype[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        etype[init.name] = init.data_type

    def wants_fp32(node, index: int) -> bool:
        return node.domain not in ("", "ai.onnx") or node.op_type in fp32_only or (node.op_type, index) in KEEP_FP32_INPUTS

    consumers: dict[str, list] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, i))

    graph_inputs = {i.name for i in g.input}
    # Which float32 tensors become float16: produced by a converting node, or constants no fp32 consumer needs.
    to_fp16: set[str] = set()
    for node in g.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in fp32_only:
            continue
        if node.op_type == "Constant":
            if (etype.get(node.output[0]) == FLOAT
                    and not any(wants_fp32(c, i) for c, i in consumers.get(node.output[0], []))):
                to_fp16.add(node.output[0])
            continue
        for out in node.output:
            if etype.get(out) == FLOAT:
                to_fp16.add(out)
    for init in g.initializer:
        if init.data_type == FLOAT and init.name not in graph_inputs and not any(
                wants_fp32(c, i) for c, i in consumers.get(init.name, [])):
            to_fp16.add(init.name)

    # Rewrite constants.
    for init in g.initializer:
        if init.name in to_fp16:
            init.CopyFrom(_fp16_tensor(numpy_helper, init, init.name))
    for node in g.node:
        if node.op_type == "Constant" and node.output[0] in to_fp16:
            _constant_to_fp16(node, helper, numpy_helper)
        elif node.op_type == "Cast" and node.output[0] in to_fp16:
            for a in node.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = FLOAT16
        elif node.op_type == "ConstantOfShape" and node.output[0] in to_fp16:
            for a in node.attribute:
                if a.name == "value":
                    a.t.CopyFrom(_fp16_tensor(numpy_helper, a.t, a.t.name))
            if not any(a.name == "value" for a in node.attribute):  # default is float32 zero
                node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.zeros(1, np.float16))))
        elif node.op_type in ("EyeLike", "RandomNormalLike", "RandomUniformLike") and node.output[0] in to_fp16:
            for a in node.attribute:
                if a.name == "dtype" and a.i == FLOAT:
                    a.i = FLOAT16

    # Casts where a float tensor's new type differs from what its consumer needs.
    new_nodes = []
    cast_cache: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in cast_cache:
            out = f"{name}__to_{'fp16' if to == FLOAT16 else 'fp32'}"
            new_nodes.append((name, helper.make_node("Cast", [name], [out], to=to, name=f"fer_edge_cast_{out}")))
            cast_cache[key] = out
        return cast_cache[key]

    for node in g.node:
        if node.op_type == "Cast":
            continue  # a Cast accepts either type
        for i, name in enumerate(node.input):
            if not name or etype.get(name) != FLOAT:
                continue
            have16, need32 = name in to_fp16, wants_fp32(node, i)
            if have16 and need32:
                node.input[i] = cast(name, FLOAT)
            elif not have16 and not need32:
                node.input[i] = cast(name, FLOAT16)

    # Graph outputs keep float32: the producer writes `<out>__fp16`, a Cast restores the public name.
    tail = []
    for out in g.output:
        if out.name in to_fp16:
            inner = f"{out.name}__fp16"
            for node in g.node:
                for j, name in enumerate(node.output):
                    if name == out.name:
                        node.output[j] = inner
                for j, name in enumerate(node.input):
                    if name == out.name:
                        node.input[j] = inner
            tail.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=f"fer_edge_cast_{out.name}"))
            to_fp16.discard(out.name)
            to_fp16.add(inner)
            for _, cnode in new_nodes:  # casts that read the renamed output
                for j, name in enumerate(cnode.input):
                    if name == out.name:
                        cnode.input[j] = inner

    # Insert each boundary Cast right after its source is produced (graph inputs/initializers: at the top).
    produced_at = {name: k for k, node in enumerate(g.node) for name in node.output}
    ordered = list(g.node)
    inserts: dict[int, list] = {}
    for _, cnode in new_nodes:
        src = cnode.input[0]
        inserts.setdefault(produced_at.get(src, -1), []).append(cnode)
    result = list(inserts.get(-1, []))
    for k, node in enumerate(ordered):
        result.append(node)
        result.extend(inserts.get(k, []))
    result.extend(tail)
    del g.node[:]
    g.node.extend(result)

    # value_info: update converted tensors' types; drop entries that no longer match a tensor.
    for vi in g.value_info:
        if vi.name in to_fp16 and vi.type.tensor_type.elem_type == FLOAT:
            vi.type.tensor_type.elem_type = FLOAT16

    meta = _metadata(m, METADATA_KEY, ArtifactMetadata)
    if meta is not None:
        attach_to_onnx(m, meta.replace(precision="fp16"))
    try:
        onnx.checker.check_model(m)
    except Exception as exc:  # a converter bug, not a user problem, but say it in one line
        raise FerEdgeError(f"the fp16 graph failed the ONNX checker: {' '.join(str(exc).split())[:300]}") from None
    return m


def _metadata(model, key, cls):
    for p in model.metadata_props:
        if p.key == key:
            return cls.from_json(p.value)
    return None


def _fp16_tensor(numpy_helper, tensor, name: str):
    arr = numpy_helper.to_array(tensor).astype(np.float32)
    arr = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(arr, name)


def _constant_to_fp16(node, helper, numpy_helper) -> None:
    for a in list(node.attribute):
        if a.name == "value":
            a.t.CopyFrom(_fp16_tensor(numpy_helper, a.t, a.t.name))
        elif a.name in ("value_float", "value_floats"):
            value = np.asarray(a.f if a.name == "value_float" else list(a.floats), np.float32)
            node.attribute.remove(a)
            node.attribute.append(helper.make_attribute(
                "value", numpy_helper.from_array(np.clip(value, -FP16_MAX, FP16_MAX).astype(np.float16))))
