"""The TensorRT Q/DQ graph on an attention model (Conv, MatMul, Gemm, Softmax, LayerNorm) and the
structural checker that `build-engine` also uses: it passes what TensorRT needs and names each break."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from fer_edge.metadata import ArtifactMetadata, InputSpec  # noqa: E402


class TinyAttention(torch.nn.Module):
    """Conv stem -> tokens -> LayerNorm -> softmax attention -> linear head with a final x10 scale."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 16, 4, stride=4)
        self.norm = torch.nn.LayerNorm(16)
        self.qkv = torch.nn.Linear(16, 48)
        self.head = torch.nn.Linear(16, 7)

    def forward(self, x):
        t = self.norm(torch.relu(self.stem(x)).flatten(2).transpose(1, 2))
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1) @ v
        return 10.0 * self.head(a.mean(1))


@pytest.fixture(scope="module")
def graphs(fer2013, tmp_path_factory):
    from fer_edge.data.faces import FaceSet
    from fer_edge.calibrate.trt_qdq import TrtQdqTarget
    from fer_edge.export.onnx import export_onnx

    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("trt")
    meta = ArtifactMetadata(method="tiny", labels=[f"c{i}" for i in range(7)],
                            input=InputSpec(size=(32, 32), color="GRAY", mean=(0.5,), std=(0.5,))).validate()
    fp32 = export_onnx(TinyAttention().eval(), meta, tmp / "tiny.onnx")
    x = FaceSet(list(fer2013["images"][:64])).tensors(meta.input)  # real faces, never random
    art = TrtQdqTarget().quantize(fp32, tmp / "tiny_trt.onnx", x, meta, transformer=True)
    return fp32, art.path, x


def test_symmetric_graph_passes_and_keeps_softmax_layernorm_float(graphs):
    from fer_edge.calibrate.trt_qdq import check_trt_qdq

    _, path, _ = graphs
    model = onnx.load(str(path))
    assert check_trt_qdq(model) == []
    producer = {o: n for n in model.graph.node for o in n.output}
    ops = [n.op_type for n in model.graph.node]
    assert "Softmax" in ops and "LayerNormalization" in ops or "ReduceMean" in ops
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm", "Conv"):
            assert all(producer[i].op_type == "DequantizeLinear" for i in node.input[:2]), node.name
        if node.op_type == "Softmax":
            assert producer[node.input[0]].op_type != "DequantizeLinear"
    zps = [numpy_helper.to_array(t) for t in model.graph.initializer if "zero_point" in t.name]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)


def test_int8_graph_runs_close_to_fp32(graphs):
    import onnxruntime as ort

    fp32, path, x = graphs
    ref = ort.InferenceSession(str(fp32)).run(None, {"input": x})[0]
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    assert np.mean(ref.argmax(1) == got.argmax(1)) > 0.8


def _mutated(path, edit):
    model = onnx.load(str(path))
    edit(model)
    return model


def test_checker_names_each_break(graphs):
    from fer_edge.calibrate.trt_qdq import check_trt_qdq

    fp32, path, _ = graphs
    assert "not quantized" in check_trt_qdq(fp32)[0]

    def asymmetric(m):
        t = next(t for t in m.graph.initializer if "zero_point" in t.name)
        t.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(t).shape, 3, np.int8), t.name))
    assert any("not 0" in p for p in check_trt_qdq(_mutated(path, asymmetric)))

    def per_tensor_weight(m):
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        dq = next(n for n in m.graph.node if conv.input[1] in n.output)
        scale = next(t for t in m.graph.initializer if t.name == dq.input[1])
        scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale)[:1], scale.name))
    assert any("per output channel" in p for p in check_trt_qdq(_mutated(path, per_tensor_weight)))

    def bypass(m):
        mm = next(n for n in m.graph.node if n.op_type in ("MatMul", "Gemm") and n.name)
        producer = {o: n for n in m.graph.node for o in n.output}
        q = producer[producer[mm.input[0]].input[0]]
        mm.input[0] = q.input[0]  # feed the float tensor directly
    assert any("no Q/DQ in front" in p for p in check_trt_qdq(_mutated(path, bypass)))
