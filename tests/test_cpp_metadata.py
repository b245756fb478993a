"""libfer_edge reads the fer-edge metadata where the Python side writes it (ONNX metadata_props,
OpenVINO IR rt_info) and refuses what the Python side refuses: a damaged document is an error
status naming the field, never a crash or a silently wrong preprocessing."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
onnx = pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")

import fer_edge  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.metadata import ArtifactMetadata, attach_to_openvino  # noqa: E402
from fer_edge.vision.detectors import ASSETS  # noqa: E402

MODEL = ASSETS / "mini_xception.onnx"


def original() -> dict:
    proto = onnx.load(str(MODEL))
    return json.loads(next(p.value for p in proto.metadata_props if p.key == "fer_edge"))


def with_metadata(tmp_path: Path, text: str, name: str = "damaged.onnx") -> Path:
    proto = onnx.load(str(MODEL))
    for p in proto.metadata_props:
        if p.key == "fer_edge":
            p.value = text
    out = tmp_path / name
    onnx.save(proto, str(out))
    return out


def edit(change) -> str:
    d = original()
    change(d)
    return json.dumps(d)


DAMAGE = {
    "duplicate label": (lambda d: d["labels"].__setitem__(1, "anger"), "twice"),
    "unknown field": (lambda d: d.__setitem__("colour", "red"), "unknown field \"colour\""),
    "newer schema": (lambda d: d.__setitem__("schema_version", 2), "newer"),
    "bad colour": (lambda d: d["input"].__setitem__("color", "CMYK"), "input.color"),
    "zero std": (lambda d: d["input"].__setitem__("std", [0]), "input.std"),
    "missing size": (lambda d: d["input"].pop("size"), "input.size is missing"),
    "wrong label count": (lambda d: d.__setitem__("labels", d["labels"][:5]), "7 classes"),
    "size unlike the graph": (lambda d: d["input"].__setitem__("size", [32, 32]), "shape"),
    "path in a file link": (lambda d: d["extra"].__setitem__("temporal_head", "../head.onnx"), "extra.temporal_head"),
    "unknown template": (lambda d: d["input"].__setitem__("face_template", "cats"), "face_template"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_metadata_is_refused_by_both(fc, tmp_path, case):
    change, message = DAMAGE[case]
    path = with_metadata(tmp_path, edit(change))
    with pytest.raises(FerEdgeError):
        fer_edge.load(path, backend="onnxruntime")  # the metadata checks do not depend on the backend
    with pytest.raises(fc.CError) as err:
        fc.Model(fc.LIB, path)
    assert err.value.status == "FE_ERR_BAD_ARTIFACT" and message in err.value.message
    assert "damaged.onnx" in err.value.message and "\n" not in err.value.message


@pytest.mark.parametrize("text", ["{", "[1, 2]", "null", "\"text\"", "{\"schema\": \"other\"}",
                                  "\xff\xfe", json.dumps(original())[:-1] + ', "method": "again"}'])
def test_metadata_that_is_not_a_document_is_refused(fc, tmp_path, text):
    path = with_metadata(tmp_path, text)
    with pytest.raises(FerEdgeError):
        fer_edge.load(path, backend="onnxruntime")
    with pytest.raises(fc.CError) as err:
        fc.Model(fc.LIB, path)
    assert err.value.status == "FE_ERR_BAD_ARTIFACT" and "\n" not in err.value.message


def test_openvino_ir_rt_info_is_read(fc, tmp_path, face_photos):
    import cv2

    model = ov.convert_model(str(MODEL))
    meta = ArtifactMetadata.from_dict(original())
    attach_to_openvino(model, meta)
    xml = tmp_path / "mini_xception.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    c_model = fc.Model(fc.LIB, xml, backend=None, options={"precision": "f32"})
    assert c_model.labels == meta.labels
    crops = [cv2.imread(str(p))[::4, ::4] for p in face_photos]  # whole photos, shrunk: a resize path
    want = fer_edge.load(xml, backend="openvino", precision="fp32").predict(crops)
    np.testing.assert_allclose(c_model.predict(crops)[0], want.probs, atol=1e-4)


def test_engine_without_the_tensorrt_backend_is_unsupported(fc, tmp_path):
    if fc.LIB.fe_backend_available(b"tensorrt"):
        pytest.skip("this libfer_edge has the TensorRT backend")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0" * 16)
    (tmp_path / "model.engine.json").write_text(json.dumps(original()))
    with pytest.raises(fc.CError) as err:
        fc.Model(fc.LIB, engine, backend=None, device=None)
    assert err.value.status == "FE_ERR_UNSUPPORTED" and "tensorrt backend is not built" in err.value.message
