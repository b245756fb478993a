"""`fer-edge export --method poster_v2 --weights <golden-filled checkpoint> --int8 --calib-data <photos>`:
every artifact is made, FP32 ONNX/OpenVINO match PyTorch, every INT8 artifact loads and has its report."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def poster_bundle(poster_checkpoint, shared_data, tmp_path_factory):
    from fer_edge.export.orchestrate import ExportOptions, run_export

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("poster_export")
    # calibration photos go through the runtime's detector and aligner; 4 faces keep this test short
    return run_export(ExportOptions(method="poster_v2", weights=str(poster_checkpoint), int8=True,
                                    calib_data=str(shared_data / "faces"), calib_size=4, parity_faces=3,
                                    output=str(out)))


@pytest.mark.slow
def test_poster_v2_export_all_artifacts(poster_bundle):
    import fer_edge

    files = {a["file"]: a for a in poster_bundle.artifacts}
    expected = ["poster_v2.onnx", "poster_v2_fp32.xml", "poster_v2_fp16.xml", "poster_v2_int8_onnxruntime.onnx",
                "poster_v2_int8_tensorrt_qdq.onnx", "poster_v2_int8_openvino.xml"]
    assert sorted(files) == sorted(expected)
    # FP32 ONNX and both IRs matched PyTorch on real faces (check_parity raises otherwise)
    parity = {p["artifact"]: p for p in poster_bundle.parity}
    assert parity["poster_v2.onnx"]["ok"] and parity["poster_v2.onnx"]["max_abs_diff"] < 1e-3
    assert parity["poster_v2_fp32.xml"]["ok"] and parity["poster_v2_fp16.xml"]["ok"]
    for target in ("onnxruntime", "tensorrt", "openvino"):
        rep = json.loads((poster_bundle.folder / "reports" / f"int8_{target}.json").read_text())
        assert (poster_bundle.folder / "reports" / f"int8_{target}.md").is_file()
        model = fer_edge.load(str(poster_bundle.folder / rep["artifact"]))
        assert model.metadata.precision == "int8" and model.metadata.method == "poster_v2"
        pred = model.predict(np.full((2, 224, 224, 3), 128, np.uint8))
        assert pred.probs.shape == (2, 7) and np.isfinite(pred.probs).all()
        assert 0.0 <= rep["top1_agreement"] <= 100.0 and rep["size_bytes"]["int8"] < rep["size_bytes"]["fp32"]
    assert (poster_bundle.folder / "README.md").read_text().count("poster_v2") >= 3


@pytest.mark.slow
def test_poster_v2_export_makes_a_triton_repository_that_parses(poster_bundle, tmp_path):
    """The real POSTER V2 artifacts (fill weights, FP32 ONNX, FP32 IR, INT8 IR) as Triton models; every
    config passes Triton's own schema, which rejects misspelt fields."""
    pytest.importorskip("tritonclient.grpc", reason="Triton's config schema comes with tritonclient[grpc]")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from fer_edge.triton import Serving, build_repository

    folder = poster_bundle.folder
    artifacts = [folder / "poster_v2.onnx", folder / "poster_v2_fp32.xml", folder / "poster_v2_int8_openvino.xml"]
    repo = tmp_path / "repo"
    build_repository([str(a) for a in artifacts], repo, Serving())
    configs = sorted(repo.glob("*/config.pbtxt"))
    assert len(configs) == len(artifacts) + 1  # each classifier and the face pipeline
    for path in configs:
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert config.name == path.parent.name
        if config.backend in ("onnxruntime", "openvino"):
            assert [list(i.dims) for i in config.input] == [[3, 224, 224]] and [list(o.dims) for o in config.output] == [[7]]
            meta = json.loads(config.parameters["fer_edge_metadata"].string_value)
            assert meta["method"] == "poster_v2" and meta["input"]["face_template"] == "rafdb"
