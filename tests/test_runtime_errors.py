"""`fer_edge.load` and `Model` fail with one clear FerEdgeError for every user mistake."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import fer_edge
from fer_edge.artifacts import ASSETS
from fer_edge.errors import FerEdgeError, MissingDependencyError

BACKENDS = ["onnxruntime", "openvino", "torch"]


def _load(backend: str, path="default", **kw):
    pytest.importorskip(backend)
    if backend == "openvino":
        kw.setdefault("precision", "f32")  # comparable with the fp32 reference on bf16-capable CPUs
    return fer_edge.load(path, backend=backend, device="cpu", **kw)


def test_unknown_suffix(tmp_path):
    f = tmp_path / "model.tflite"
    f.write_bytes(b"x")
    with pytest.raises(FerEdgeError, match=r"cannot tell the backend.*backend="):
        fer_edge.load(f)


def test_missing_file():
    with pytest.raises(FerEdgeError, match="not found"):
        fer_edge.load("no/such/model.onnx")


@pytest.mark.parametrize("backend,package,extra", [("openvino", "openvino", "openvino"), ("torch", "torch", "torch")])
def test_missing_backend_package_names_the_extra(monkeypatch, backend, package, extra):
    """Simulate a box without the engine: its import fails, the error says what to pip install."""
    monkeypatch.setitem(sys.modules, package, None)  # makes `import <package>` raise ImportError
    monkeypatch.delitem(sys.modules, f"fer_edge.runtimes.{backend}", raising=False)
    with pytest.raises(MissingDependencyError, match=rf"fer-edge\[{extra}\]"):
        fer_edge.load("default", backend=backend)


@pytest.mark.parametrize("backend,device", [("openvino", "GPU.7"), ("openvino", "cuda"), ("onnxruntime", "npu"),
                                            ("torch", "cuda:7"), ("torch", "NPU")])
def test_device_not_there(backend, device):
    pytest.importorskip(backend)
    with pytest.raises(FerEdgeError, match=rf"(?i)(not available|no device|runs on).*"):
        fer_edge.load("default", backend=backend, device=device)


def test_openvino_error_lists_available_devices():
    ov = pytest.importorskip("openvino")
    if any(d.startswith("NPU") for d in ov.Core().available_devices):
        pytest.skip("this machine has an NPU")
    with pytest.raises(FerEdgeError) as err:
        fer_edge.load("default", backend="openvino", device="NPU")
    assert "available: " in str(err.value) and "CPU" in str(err.value)


def test_openvino_bad_options():
    pytest.importorskip("openvino")
    with pytest.raises(FerEdgeError, match="precision"):
        fer_edge.load("default", backend="openvino", precision="int3")
    with pytest.raises(FerEdgeError, match="performance_hint"):
        fer_edge.load("default", backend="openvino", performance_hint="FAST")


def test_openvino_reports_precision():
    """The note says when OpenVINO runs fp32 layers at lower precision; f32 turns it off."""
    pytest.importorskip("openvino")
    full = fer_edge.load("default", backend="openvino", precision="f32")
    assert full.info().details["inference_precision"] == "f32" and full.info().precision_note == ""
    default = fer_edge.load("default", backend="openvino")
    actual = default.info().details["inference_precision"]
    if actual in ("bf16", "f16"):
        assert actual in default.info().precision_note
    else:
        assert default.info().precision_note == ""


def _strip_onnx_metadata(tmp_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(ASSETS / "mini_xception.onnx"))
    del proto.metadata_props[:]
    out = tmp_path / "bare.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_artifact_without_metadata(tmp_path, backend):
    bare = _strip_onnx_metadata(tmp_path)
    with pytest.raises(FerEdgeError, match=r"no fer-edge metadata.*labels=.*input_size="):
        _load(backend, bare)
    with pytest.raises(FerEdgeError, match=r"input_size=") as err:
        _load(backend, bare, labels=list("abcdefg"))
    assert "labels=" not in str(err.value)
    # Explicit overrides: gray 64x64 in [-1, 1] is what the defaults for a 1-channel input give.
    model = _load(backend, bare, labels=list("abcdefg"), input_size=64)
    ref = fer_edge.load("default", backend="onnxruntime")
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    assert model.labels == list("abcdefg")
    np.testing.assert_allclose(model.predict(faces).probs, ref.predict(faces).probs, atol=1e-5)


def test_torch_checkpoint_without_metadata(tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    from fer_edge.checkpoint import load_checkpoint

    sd, _ = load_checkpoint(ASSETS / "mini_xception.safetensors")
    bare = tmp_path / "bare.safetensors"
    save_file(sd, str(bare))
    with pytest.raises(FerEdgeError, match="method="):
        fer_edge.load(bare)
    model = fer_edge.load(bare, method="mini_xception")
    assert model.metadata.method == "mini_xception" and len(model.labels) == 7
    with pytest.raises(FerEdgeError, match="not 'poster_v2'"):
        fer_edge.load(ASSETS / "mini_xception.safetensors", method="poster_v2")


def test_torch_pt_file_with_metadata(tmp_path):
    torch = pytest.importorskip("torch")
    from fer_edge.checkpoint import load_checkpoint

    sd, meta = load_checkpoint(ASSETS / "mini_xception.safetensors")
    pt = tmp_path / "model.pt"
    torch.save({"state_dict": sd, "fer_edge": meta.to_json()}, pt)
    model = fer_edge.load(pt)
    faces = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    ref = fer_edge.load("default", backend="onnxruntime").predict(faces).probs
    assert model.metadata.to_dict() == meta.to_dict()
    np.testing.assert_allclose(model.predict(faces).probs, ref, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 3, 64, 64), np.float32), r"should have shape"),  # 3 channels for a gray model
    (np.zeros((2, 1, 32, 32), np.float32), r"should have shape"),
    (np.zeros((1, 64, 64), np.float32), r"should have shape"),
])
def test_run_rejects_wrong_tensor_shape(backend, bad, match):
    model = _load(backend)
    with pytest.raises(FerEdgeError, match=match):
        model.run(bad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 48, 48, 3), np.float32), r"uint8"),
    ("face.jpg", r"numpy arrays"),
    ("", r"numpy arrays"),
    (np.zeros((2, 48, 48, 4), np.uint8), r"HxWx3"),
])
def test_predict_rejects_wrong_images(backend, bad, match):
    model = _load(backend)
    with pytest.raises(FerEdgeError, match=match):
        model.predict(bad)


def test_methods_without_their_optional_packages_say_what_to_install(monkeypatch):
    """A torch-only install (no open_clip) still builds POSTER V2; a CLIP method names the extra."""
    import subprocess
    import sys

    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def block(name, *a, **k):\n"
        "    if name.split('.')[0] == 'open_clip':\n"
        "        raise ModuleNotFoundError(\"No module named 'open_clip'\", name='open_clip')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = block\n"
        "from fer_edge.models import create_model\n"
        "from fer_edge.errors import FerEdgeError\n"
        "create_model('mini_xception')\n"
        "try:\n"
        "    create_model('ceprompt')\n"
        "except FerEdgeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "open_clip is needed for the ceprompt method" in out.stdout and "fer-edge[train]" in out.stdout


def test_empty_batch_gives_empty_prediction():
    """A frame without faces is no error: zero crops in, zero rows out, with the model's class count."""
    import numpy as np

    import fer_edge

    model = fer_edge.load("default")
    for empty in ([], np.zeros((0, 64, 64, 3), np.uint8)):
        pred = model.predict(empty)
        assert pred.probs.shape == (0, len(model.labels)) and pred.labels.shape == (0,)
        assert pred.names == [] and pred.to_records() == [] and len(pred) == 0
