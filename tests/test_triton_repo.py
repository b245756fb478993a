"""`fer-edge triton-repo`: every generated config.pbtxt parses with Triton's own schema (tritonclient's
model_config_pb2, which rejects a misspelt field) and says what the artifact is."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient[grpc] is not installed: pip install 'fer-edge[triton]'")
from google.protobuf import text_format  # noqa: E402  (comes with tritonclient[grpc])

import fer_edge  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.triton import Serving, build_repository  # noqa: E402

pb = model_config_pb2.ModelConfig


def parse(folder: Path):
    """The model's config, parsed by Triton's schema; its name must be its folder's."""
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb())
    assert config.name == folder.name
    return config


def params(config) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


@pytest.fixture(scope="module")
def default_model():
    return fer_edge.load("default")


def test_schema_check_is_real():
    with pytest.raises(text_format.ParseError, match="max_batch_sise"):
        text_format.Parse('name: "x" max_batch_sise: 4', pb())


def test_onnxruntime_repository(tmp_path, default_model):
    repo = build_repository(["default"], tmp_path / "repo", Serving(max_batch=16, max_delay_us=1500, instances=2))
    name = "mini_xception_fp32_onnx"
    assert repo.models == {name: "onnxruntime", "fer_faces": "python"}
    config = parse(tmp_path / "repo" / name)
    assert (config.backend, config.default_model_filename, config.max_batch_size) == ("onnxruntime", "model.onnx", 16)
    assert [(i.name, list(i.dims), i.data_type) for i in config.input] == [("input", [1, 64, 64], model_config_pb2.TYPE_FP32)]
    assert [(o.name, list(o.dims)) for o in config.output] == [("logits", [7])]
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 1500
    assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_CPU, 2)]
    meta = fer_edge.ArtifactMetadata.from_json(params(config)["fer_edge_metadata"])
    assert meta.to_dict() == default_model.metadata.to_dict()
    assert params(config)["fer_edge_labels"].split(",") == default_model.labels
    # the copied model is the artifact itself
    copied = fer_edge.load(tmp_path / "repo" / name / "1" / "model.onnx")
    assert copied.metadata.to_dict() == default_model.metadata.to_dict()
    readme = (tmp_path / "repo" / "README.md").read_text()
    assert "tritonserver --model-repository" in readme and name in readme


def test_faces_pipeline_config(tmp_path):
    repo = build_repository(["default"], tmp_path / "repo", Serving(max_batch=8))
    config = parse(tmp_path / "repo" / repo.faces)
    assert config.backend == "python" and config.max_batch_size == 0
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [("IMAGE", model_config_pb2.TYPE_UINT8, [-1])]
    outputs = {o.name: (o.data_type, list(o.dims)) for o in config.output}
    assert outputs["PROBS"] == (model_config_pb2.TYPE_FP32, [-1, 7])
    assert outputs["LABELS"][0] == model_config_pb2.TYPE_STRING and outputs["BOXES"][1] == [-1, 4]
    p = params(config)
    assert p["classifier"] == "mini_xception_fp32_onnx" and p["classifier_max_batch"] == "8"
    assert p["detector"] == "blazeface"
    model_py = (tmp_path / "repo" / repo.faces / "1" / "model.py").read_text()
    assert "from fer_edge.triton.python_models import FacesModel as TritonPythonModel" in model_py
    from fer_edge.triton import python_models

    assert callable(python_models.FacesModel().execute)


def test_python_backend_classifier(tmp_path):
    repo = build_repository(["default"], tmp_path / "repo", Serving(), backend="python", names=["fer"])
    config = parse(tmp_path / "repo" / "fer")
    assert config.backend == "python" and config.max_batch_size == 32
    assert params(config)["artifact"] == "mini_xception.onnx"
    assert (tmp_path / "repo" / "fer" / "1" / "mini_xception.onnx").is_file()
    assert "ClassifierModel as TritonPythonModel" in (tmp_path / "repo" / "fer" / "1" / "model.py").read_text()
    assert params(parse(tmp_path / "repo" / repo.faces))["classifier"] == "fer"


@pytest.mark.parametrize("accelerator, device, field, name", [
    ("tensorrt", "gpu", "gpu_execution_accelerator", "tensorrt"),
    ("openvino", "cpu", "cpu_execution_accelerator", "openvino"),
])
def test_onnxruntime_accelerators(tmp_path, accelerator, device, field, name):
    build_repository(["default"], tmp_path / "repo", Serving(device=device, accelerator=accelerator), faces=False)
    config = parse(tmp_path / "repo" / "mini_xception_fp32_onnx")
    accelerators = getattr(config.optimization.execution_accelerators, field)
    assert [a.name for a in accelerators] == [name]
    if accelerator == "tensorrt":
        assert dict(accelerators[0].parameters)["precision_mode"] == "FP16"
        assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert not (tmp_path / "repo" / "fer_faces").exists()


def test_openvino_repository(tmp_path, default_model):
    pytest.importorskip("openvino")
    from fer_edge import artifacts
    from fer_edge.export.openvino import export_openvino

    onnx_path, _ = artifacts.resolve("default", None)
    xml = export_openvino(onnx_path, default_model.metadata, tmp_path / "ir" / "mini_xception.xml")
    build_repository([str(xml)], tmp_path / "repo", Serving(performance_hint="THROUGHPUT"), faces=False)
    folder = tmp_path / "repo" / "mini_xception_fp32_openvino"
    config = parse(folder)
    assert (config.backend, config.default_model_filename) == ("openvino", "model.xml")
    assert params(config)["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert [list(i.dims) for i in config.input] == [[1, 64, 64]] and [list(o.dims) for o in config.output] == [[7]]
    assert (folder / "1" / "model.bin").stat().st_size == xml.with_suffix(".bin").stat().st_size


def test_tensorrt_repository_from_the_engine_sidecar(tmp_path, default_model):
    """An engine is not opened (it belongs to its GPU): its metadata sidecar describes it."""
    from fer_edge.metadata import write_sidecar

    engine = tmp_path / "mini_xception_fp16.engine"
    engine.write_bytes(b"serialized engine bytes")
    write_sidecar(engine, default_model.metadata.replace(precision="fp16"))
    with pytest.raises(FerEdgeError, match="GPU instances; add --device gpu"):
        build_repository([str(engine)], tmp_path / "cpu", Serving())
    assert not (tmp_path / "cpu").exists()  # checked before anything was written
    build_repository([str(engine)], tmp_path / "repo", Serving(device="gpu", max_batch=8), faces=False)
    folder = tmp_path / "repo" / "mini_xception_fp16_trt"
    config = parse(folder)
    assert (config.platform, config.default_model_filename, config.max_batch_size) == ("tensorrt_plan", "model.plan", 8)
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [list(i.dims) for i in config.input] == [[1, 64, 64]]
    assert (folder / "1" / "model.plan").read_bytes() == b"serialized engine bytes"
    assert json.loads(params(config)["fer_edge_metadata"])["precision"] == "fp16"


def test_poster_v2_metadata_and_io(tmp_path):
    """POSTER V2's registered metadata (224x224 RGB, RAF-DB labels and face template) on a graph with its
    inputs and outputs: every backend's config passes the schema. The graph body is a stand-in (one
    pooling + one matrix product): the real 43.6M-parameter export is too heavy for this suite."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from fer_edge.metadata import attach_to_onnx, write_sidecar
    from fer_edge.models.registry import get_config

    import numpy as np

    meta = get_config("poster_v2").metadata()
    weight = numpy_helper.from_array(np.full((3, 7), 0.1, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])], "poster_v2_io",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    attach_to_onnx(model, meta)
    path = tmp_path / "poster_v2.onnx"
    onnx.save(model, str(path))
    engine = tmp_path / "poster_v2_fp16.engine"
    engine.write_bytes(b"engine")
    write_sidecar(engine, meta.replace(precision="fp16"))
    build_repository([str(path)], tmp_path / "ort", Serving())
    build_repository([str(path)], tmp_path / "py", Serving(), backend="python")
    build_repository([str(engine)], tmp_path / "trt", Serving(device="gpu"), faces=False)
    for folder in ("ort/poster_v2_fp32_onnx", "ort/fer_faces", "py/poster_v2_fp32_onnx", "trt/poster_v2_fp16_trt"):
        config = parse(tmp_path / folder)
        if folder != "ort/fer_faces":
            assert [list(i.dims) for i in config.input] == [[3, 224, 224]]
            assert [list(o.dims) for o in config.output] == [[7]]
        assert json.loads(params(config)["fer_edge_metadata"])["input"]["face_template"] == "rafdb"
        assert params(config)["fer_edge_labels"].split(",") == list(meta.labels)


def test_several_artifacts_and_names(tmp_path):
    with pytest.raises(FerEdgeError, match="used twice"):
        build_repository(["default", "default"], tmp_path / "dupe", Serving())
    repo = build_repository(["default", "default"], tmp_path / "repo", Serving(), names=["a", "b"])
    assert set(repo.models) == {"a", "b", "fer_faces"}
    for folder in ("a", "b", "fer_faces"):
        parse(tmp_path / "repo" / folder)


@pytest.mark.parametrize("kwargs, message", [
    ({"artifacts": ["missing.onnx"]}, "artifact not found"),
    ({"artifacts": ["default"], "backend": "grpc"}, "--backend must be native or python"),
    ({"artifacts": ["default"], "names": ["a b"]}, "model name 'a b'"),
    ({"artifacts": ["default"], "names": ["x", "y"]}, "2 --name values for 1 artifacts"),
    ({"artifacts": ["default"], "serving": Serving(device="tpu")}, "--device must be cpu or gpu"),
    ({"artifacts": ["default"], "serving": Serving(accelerator="tensorrt")}, "add --device gpu"),
    ({"artifacts": []}, "no artifact given"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, kwargs, message):
    kwargs = {"serving": Serving(), **kwargs}
    artifacts, serving = kwargs.pop("artifacts"), kwargs.pop("serving")
    with pytest.raises(FerEdgeError, match=message):
        build_repository(artifacts, tmp_path / "repo", serving, **kwargs)


def test_cli_writes_a_repository_and_refuses_a_full_folder(tmp_path):
    cmd = [sys.executable, "-m", "fer_edge.cli.main", "triton-repo", "default", "-o", str(tmp_path / "repo"),
           "--max-batch", "4", "--instances", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert parse(tmp_path / "repo" / "mini_xception_fp32_onnx").max_batch_size == 4
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "is not empty; pass --overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    refused = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "other"), "--overwrite"], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "no Triton models: not replacing it" in refused.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
