"""OpenVINO-specific behaviour: device names, static batches (NPU-style), virtual devices."""
from __future__ import annotations

import numpy as np
import pytest

import fer_edge
from fer_edge.errors import FerEdgeError

ov = pytest.importorskip("openvino")
from fer_edge.runtimes.openvino import resolve_device  # noqa: E402


@pytest.mark.parametrize("asked,available,expected", [
    ("auto", ["CPU"], "CPU"),
    ("auto", ["CPU", "GPU"], "AUTO"),
    ("cpu", ["CPU"], "CPU"),
    ("GPU", ["CPU", "GPU.0", "GPU.1"], "GPU"),
    ("gpu.1", ["CPU", "GPU.0", "GPU.1"], "GPU.1"),
    ("AUTO:GPU,CPU", ["CPU"], "AUTO:GPU,CPU"),
])
def test_device_names(asked, available, expected):
    assert resolve_device(asked, available) == expected


@pytest.mark.parametrize("asked", ["NPU", "GPU.2", "cuda:0", "tpu"])
def test_missing_device_lists_the_available_ones(asked):
    with pytest.raises(FerEdgeError, match=r"available: CPU, GPU\.0"):
        resolve_device(asked, ["CPU", "GPU.0"])


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    return list(np.random.default_rng(3).integers(0, 256, (10, 48, 48), dtype=np.uint8))


@pytest.fixture(scope="module")
def reference(faces):
    return fer_edge.load("default", backend="openvino", precision="f32").predict(faces).probs


def test_static_batch_runs_in_chunks(faces, reference):
    """What an NPU gets: batch fixed at compile time, any number of faces fed in padded chunks."""
    model = fer_edge.load("default", backend="openvino", precision="f32", static_batch=4)
    assert model.engine.inputs[0].shape == [-1, 1, 64, 64]
    np.testing.assert_allclose(model.predict(faces).probs, reference, atol=1e-6)
    np.testing.assert_allclose(model.predict(faces[:1]).probs, reference[:1], atol=1e-6)


def test_ir_with_fixed_batch_accepts_any_batch(tmp_path, faces, reference):
    from fer_edge.artifacts import ASSETS
    from fer_edge.metadata import attach_to_openvino

    meta = fer_edge.load("default").metadata
    m = ov.Core().read_model(str(ASSETS / "mini_xception.onnx"))
    m.reshape([1, 1, 64, 64])
    attach_to_openvino(m, meta)
    ov.save_model(m, str(tmp_path / "static.xml"), compress_to_fp16=False)
    model = fer_edge.load(tmp_path / "static.xml", precision="f32")
    np.testing.assert_allclose(model.predict(faces).probs, reference, atol=1e-6)


def test_virtual_auto_device(faces, reference):
    model = fer_edge.load("default", backend="openvino", device="AUTO", precision="f32")
    assert model.device == "AUTO" and model.info().details["execution_devices"]
    np.testing.assert_allclose(model.predict(faces).probs, reference, atol=1e-5)


def test_folder_with_two_models_is_ambiguous(tmp_path):
    for name in ("a.xml", "b.xml"):
        (tmp_path / name).write_text("<net/>")
    with pytest.raises(FerEdgeError, match="exactly one"):
        fer_edge.load(tmp_path)


def test_unreadable_ir(tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<not an IR")
    with pytest.raises(FerEdgeError, match="OpenVINO cannot read broken.xml"):
        fer_edge.load(bad)
