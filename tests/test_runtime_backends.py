"""One artifact, every backend: same probabilities on real faces, same metadata, safe threading.

The embedded default model runs on ONNX Runtime, OpenVINO (from the ONNX and from an IR saved here)
and PyTorch (from the safetensors checkpoint); all must agree with PyTorch within 1e-4.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import fer_edge
from fer_edge.metadata import ArtifactMetadata

PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def faces(shared_data) -> list[np.ndarray]:
    """256 real FER2013 public_test faces (48x48 gray), the crops the model was trained on."""
    from fer_edge.data import load_fer2013

    return list(load_fer2013("public_test", root=shared_data, limit=256).images)


@pytest.fixture(scope="module")
def default_meta() -> ArtifactMetadata:
    return fer_edge.load("default", backend="onnxruntime").metadata


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory, default_meta):
    """The default ONNX converted to OpenVINO IR (fp32 weights) with the metadata in rt_info."""
    ov = pytest.importorskip("openvino")
    from fer_edge.artifacts import ASSETS
    from fer_edge.metadata import attach_to_openvino

    model = ov.Core().read_model(str(ASSETS / "mini_xception.onnx"))
    attach_to_openvino(model, default_meta)
    out = tmp_path_factory.mktemp("ir") / "mini_xception.xml"
    ov.save_model(model, str(out), compress_to_fp16=False)  # the default would store fp16 weights
    return out.parent


# name -> (artifact, load kwargs, module the backend needs)
CASES = {
    "onnxruntime": ("default", {"backend": "onnxruntime", "device": "cpu"}, "onnxruntime"),
    "openvino-onnx": ("default", {"backend": "openvino", "device": "cpu", "precision": "f32"}, "openvino"),
    "openvino-ir": ("IR", {"device": "cpu", "precision": "f32"}, "openvino"),
    "torch": ("default", {"backend": "torch", "device": "cpu"}, "torch"),
}


@pytest.fixture(scope="module", params=list(CASES))
def loaded(request):
    artifact, kwargs, module = CASES[request.param]
    pytest.importorskip(module)
    path = request.getfixturevalue("ir_dir") if artifact == "IR" else artifact
    return request.param, fer_edge.load(path, **kwargs)


@pytest.fixture(scope="module")
def torch_probs(faces, default_meta):
    """The reference: the registry's PyTorch module with the embedded weights, called directly."""
    torch = pytest.importorskip("torch")
    from fer_edge.models import create_model
    from fer_edge.preprocess import preprocess_images

    module = create_model("mini_xception", pretrained=True).eval()
    with torch.no_grad():
        logits = module(torch.from_numpy(preprocess_images(faces, default_meta.input)))
    return torch.softmax(logits.double(), 1).float().numpy()


def test_same_probabilities_as_pytorch(loaded, faces, torch_probs):
    name, model = loaded
    pred = model.predict(faces)
    diff = float(np.abs(pred.probs - torch_probs).max())
    print(f"{name}: max |p - p_torch| = {diff:.2e} over {len(faces)} faces")
    assert pred.probs.shape == (len(faces), 7)
    assert diff < PARITY_ATOL
    assert np.array_equal(pred.labels, torch_probs.argmax(1))


def test_metadata_travels_in_every_artifact(loaded, default_meta):
    _, model = loaded
    assert model.metadata.to_dict() == default_meta.to_dict()


def test_metadata_reads_back_from_each_container(tmp_path, default_meta, ir_dir):
    from fer_edge.artifacts import ASSETS
    from fer_edge.checkpoint import read_checkpoint_metadata
    from fer_edge.metadata import read_sidecar, write_sidecar
    from fer_edge.runtimes.openvino import OpenVINOBackend

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"")
    write_sidecar(engine, default_meta)
    read = {
        "onnx": default_meta,
        "ir": OpenVINOBackend(ir_dir, device="cpu").read_metadata(),
        "safetensors": read_checkpoint_metadata(ASSETS / "mini_xception.safetensors"),
        "sidecar": read_sidecar(engine),
    }
    for where, meta in read.items():
        assert meta.to_dict() == default_meta.to_dict(), where


def test_one_model_shared_by_threads(loaded, faces):
    """Several threads calling predict on one Model get exactly what sequential calls get."""
    _, model = loaded
    chunks = [faces[i:96:4] for i in range(4)]  # 4 batches of 24 faces
    expected = [model.predict(c).probs for c in chunks]
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for rep in range(5):
                k = (t + rep) % 4
                results[(t, rep)] = (k, model.predict(chunks[k]).probs)
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(results) == 20
    for k, probs in results.values():
        np.testing.assert_allclose(probs, expected[k], rtol=0, atol=1e-6)


def test_any_batch_size_and_layouts(loaded, faces):
    """A list of gray crops, an NHWC BGR array and one image give the same answer."""
    _, model = loaded
    gray = faces[:5]
    bgr = np.stack([np.repeat(f[..., None], 3, -1) for f in gray])
    a = model.predict(gray).probs
    np.testing.assert_allclose(model.predict(bgr).probs, a, atol=1e-6)
    np.testing.assert_allclose(model.predict(bgr[0]).probs, a[:1], atol=1e-6)
