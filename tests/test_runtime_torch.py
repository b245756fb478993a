"""PyTorch backend specifics: deployment graph selection, autocast, CUDA (where there is a GPU)."""
from __future__ import annotations

import numpy as np
import pytest

import fer_edge
from fer_edge.errors import FerEdgeError

torch = pytest.importorskip("torch")
from fer_edge.runtimes.torch import deployment_module  # noqa: E402


from fer_edge.models import create_model, get_config  # noqa: E402
from fer_edge.models.deployment import FerModel, Graph  # noqa: E402


class _Part(torch.nn.Module):
    def __init__(self, tag: str):
        super().__init__()
        self.tag = tag


class _TwoTower(FerModel):
    """Stands in for a method with a text tower: training graph != deployment graph."""

    fer_cfg = get_config("mini_xception")

    def deployment(self):
        meta = self.config.metadata()
        return [Graph("classifier", _Part("deploy"), self.example_input(), meta),
                Graph("frame_encoder", _Part("frame_encoder"), self.example_input(), meta, partners=("temporal_head",))]


@pytest.mark.parametrize("graph,tag", [("classifier", "deploy"), ("frame_encoder", "frame_encoder")])
def test_deployment_graph_is_chosen_by_metadata(graph, tag):
    assert deployment_module(_TwoTower(), graph).tag == tag


def test_plain_model_is_its_own_deployment_graph():
    plain = create_model("mini_xception")
    assert deployment_module(plain, "classifier") is plain
    with pytest.raises(FerEdgeError, match="deploys no 'temporal_head' graph"):
        deployment_module(plain, "temporal_head")


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    return list(np.random.default_rng(5).integers(0, 256, (64, 48, 48), dtype=np.uint8))


@pytest.fixture(scope="module")
def fp32(faces):
    model = fer_edge.load("default", backend="torch", device="cpu")
    return model, model.predict(faces)


def test_outputs_are_named_like_the_onnx_graph(fp32):
    model, _ = fp32
    onnx_outputs = [o.name for o in fer_edge.load("default", backend="onnxruntime").engine.outputs]
    x = np.zeros((2, 1, 64, 64), np.float32)
    assert list(model.run(x)) == onnx_outputs == [model.metadata.output.name]
    assert model.device == "cpu" and model.info().precision_note == ""


def test_cpu_bf16_autocast(fp32, faces):
    _, ref = fp32
    model = fer_edge.load("default", backend="torch", device="cpu", autocast="bf16")
    pred = model.predict(faces)
    assert "bf16" in model.info().precision_note
    assert pred.probs.dtype == np.float32
    assert np.abs(pred.probs - ref.probs).max() < 0.1  # bf16 keeps 8 mantissa bits
    assert (pred.labels == ref.labels).mean() >= 0.9


def test_bad_autocast_option():
    with pytest.raises(FerEdgeError, match="autocast"):
        fer_edge.load("default", backend="torch", autocast="int8")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("autocast,atol", [(None, 1e-4), ("fp16", 1e-2), ("bf16", 1e-1)])
def test_cuda_matches_cpu(fp32, faces, autocast, atol):
    _, ref = fp32
    model = fer_edge.load("default", backend="torch", device="cuda", autocast=autocast)
    assert model.device.startswith("cuda") and "gpu" in model.info().details
    pred = model.predict(faces)
    assert np.abs(pred.probs - ref.probs).max() < atol
