"""Sensitive-layer fallback when INT8 costs more than --max-drop: the worst layers stay in float, the
report names them and measures again. An impossible budget (INT8 must beat FP32 by 5 points) forces
the search on the default model so that every step runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("openvino")
nncf = pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def forced(fer2013, tmp_path_factory):
    from fer_edge.export.orchestrate import ExportOptions, run_export

    out = tmp_path_factory.mktemp("fallback")
    return run_export(ExportOptions(method="mini_xception", formats=("onnx",), int8=True,
                                    int8_targets=("onnxruntime", "tensorrt"), calib_data="fer2013:train",
                                    calib_size=100, val_data="fer2013:public_test", val_size=300,
                                    max_drop=-5.0, output=str(out)))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["onnxruntime", "tensorrt"])
def test_fallback_keeps_ranked_layers_in_float_and_reports_each_step(forced, target):
    import onnx

    from fer_edge.calibrate.trt_qdq import check_trt_qdq

    rep = json.loads((forced.folder / "reports" / f"int8_{target}.json").read_text())
    steps = rep["fallback"]
    assert [len(s["float_layers"]) for s in steps] == [0, 1, 2, 4, 8, 16]
    assert rep["float_layers"] == steps[-1]["float_layers"]
    assert any("still" in n for n in rep["notes"])  # the budget was not met and the report says so
    model = onnx.load(str(forced.folder / rep["artifact"]))
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:  # the named layers really are float: no DQ feeds their weights
        if node.name in rep["float_layers"]:
            assert producer.get(node.input[1]) is None or producer[node.input[1]].op_type != "DequantizeLinear"
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == "fer_edge"))
    assert meta["extra"]["quantization"]["float_layers"] == rep["float_layers"]
    if target == "tensorrt":
        assert check_trt_qdq(model, float_layers=rep["float_layers"]) == []
    assert "Sensitive-layer fallback" in (forced.folder / "reports" / f"int8_{target}.md").read_text()


@pytest.mark.slow
def test_ranking_blames_layers_that_add_error(forced, fer2013):
    from fer_edge.data.faces import load_faces
    from fer_edge.calibrate.ort_qdq import OrtQdqTarget
    from fer_edge.calibrate.sensitivity import rank_layers

    meta = forced.metadata
    x = load_faces("fer2013:train", limit=32).tensors(meta.input)
    fp32 = forced.folder / "mini_xception.onnx"
    art = OrtQdqTarget().quantize(fp32, forced.folder / "rank_check.onnx", x, meta)
    ranked = rank_layers(fp32, art.path, x, meta.input.name)
    scores = np.array([s for _, s in ranked])
    assert len(ranked) > 10 and np.all(np.diff(scores) <= 0) and scores[0] > 0


@pytest.mark.slow
def test_openvino_accuracy_control(forced, fer2013, tmp_path):
    """nncf.quantize_with_accuracy_control reverts layers to float when plain INT8 loses accuracy.

    The validation faces are chosen so that plain INT8 is certainly worse than FP32 on them (faces it
    gets wrong and FP32 right, plus faces both get right); a zero budget then forces the restorer."""
    import fer_edge
    from fer_edge.data.faces import FaceSet, load_faces
    from fer_edge.calibrate.nncf_ov import NncfOpenVinoTarget
    from fer_edge.export.openvino import export_openvino

    meta = forced.metadata
    ir = export_openvino(forced.folder / "mini_xception.onnx", meta, tmp_path / "m_fp32.xml")
    calib = load_faces("fer2013:train", limit=64).tensors(meta.input)
    target = NncfOpenVinoTarget()
    plain = target.quantize(ir, tmp_path / "plain.xml", calib, meta)
    pool = load_faces("fer2013:public_test", limit=400, need_labels=True)
    x = pool.tensors(meta.input)
    fp = fer_edge.load(str(ir), precision="f32").run(x)["logits"].argmax(1)
    q = fer_edge.load(str(plain.path), precision="f32").run(x)["logits"].argmax(1)
    lost = np.flatnonzero((fp == pool.labels) & (q != pool.labels))
    kept = np.flatnonzero((fp == pool.labels) & (q == pool.labels))[:20]
    assert len(lost) >= 2, "plain INT8 lost no face on 400: nothing to restore"
    idx = np.concatenate([lost, kept])
    val = FaceSet([pool.images[i] for i in idx], pool.labels[idx])
    art = target.quantize_with_accuracy_control(ir, tmp_path / "m_int8.xml", calib, meta, val.tensors(meta.input),
                                                val.labels, 0.0)
    assert art.excluded, "accuracy control reverted no layer although plain INT8 was worse"
    assert "accuracy_control" in art.settings and (tmp_path / "m_int8.xml").is_file()
