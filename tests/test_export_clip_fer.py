"""`fer-edge export --method ceprompt|ua_fer --weights CKPT --clip-weights CLIP --int8 --calib-data ...`.

The checkpoints are the authors' layouts filled by ``fill.py`` from ``keys.tsv`` (full ViT-B/16), the CLIP
file is an OpenAI-named ViT-B/16 state dict (image tower from the same fill, text tower from UA-FER's
``text_keys.tsv``). How the two files combine:

* CEPrompt: the stage-2 file holds the whole model (image tower, prompted text encoder, prompt
  learner buffers); ``--clip-weights`` only initialises the towers before the checkpoint overrides them.
* UA-FER: the authors' file holds the image tower only; the class text features come from the CLIP
  file's text tower (refused without it; tested in test_ua_fer.py).

Fill weights carry no expression knowledge, so accuracy numbers here are meaningless: ``max_drop`` is
set out of reach (no sensitivity search over a ViT-B, which would take minutes) and the tests check the
artifacts, their parity, the Q/DQ placement, the reports, and UA-FER's uncertainty on every backend.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

pytestmark = pytest.mark.slow

EVAL_FACES = 16  # calibration and validation faces each: small, the graphs are full ViT-B/16


def _fill(fill_module, path) -> dict:
    return {k: torch.from_numpy(v) for k, v in fill_module.fill_state_dict(fill_module.read_keys(path)).items()}


@pytest.fixture(scope="module")
def clip_files(reference_dir, fill_module, fer2013, tmp_path_factory):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("clip_fer_weights")
    image = _fill(fill_module, reference_dir / "ua_fer" / "keys.tsv")  # = CEPrompt's stage-1 image tower
    clip = {("visual.proj" if k == "projection_dist" else f"visual.{k}"): v for k, v in image.items()}
    clip.update(_fill(fill_module, reference_dir / "ua_fer" / "text_keys.tsv"))
    save_file({k: v.contiguous() for k, v in clip.items()}, str(folder / "ViT-B-16.safetensors"))
    torch.save(image, folder / "ua_fer_rafdb.pth")
    torch.save(_fill(fill_module, reference_dir / "ceprompt" / "keys.tsv"), folder / "ceprompt_rafdb.pth")
    return folder


def _export(method, clip_files, out):
    """The CLI command of the issue, run in-process (main returns the exit code; errors go to stderr)."""
    from fer_edge.cli.main import main

    torch.set_num_threads(2)
    args = ["export", "--method", method, "--weights", str(clip_files / f"{method}_rafdb.pth"),
            "--clip-weights", str(clip_files / "ViT-B-16.safetensors"), "--int8",
            "--calib-data", "fer2013:train", "--calib-size", str(EVAL_FACES),
            "--val-data", "fer2013:public_test", "--val-size", str(EVAL_FACES), "--max-drop", "100", "-o", str(out)]
    assert main(args) == 0
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module", params=["ceprompt", "ua_fer"])
def exported(request, clip_files, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"export_{request.param}")
    return request.param, out, _export(request.param, clip_files, out)


def _faces(n=6):
    from fer_edge.data.faces import load_faces

    return load_faces("fer2013:public_test", limit=n, seed=3)


def test_all_artifacts_made_and_fp32_matches_pytorch(exported):
    method, out, manifest = exported
    files = {a["file"] for a in manifest["artifacts"]}
    assert files == {f"{method}.onnx", f"{method}_fp32.xml", f"{method}_fp16.xml", f"{method}_int8_onnxruntime.onnx",
                     f"{method}_int8_tensorrt_qdq.onnx", f"{method}_int8_openvino.xml"}
    parity = {p["artifact"]: p for p in manifest["parity"]}
    # the folded image-only graph equals the full model (text tower live), then ONNX/IR equal PyTorch
    folded = parity["deploy graph (folded) vs full model"]
    assert folded["ok"] and folded["max_abs_diff"] <= 1e-4 and folded["faces"] >= 8
    for name in (f"{method}.onnx", f"{method}_fp32.xml"):
        assert parity[name]["ok"] and parity[name]["max_abs_diff"] <= parity[name]["bound"] <= 2e-4
        assert parity[name]["batch1_max_abs_diff"] <= parity[name]["bound"]
    assert parity[f"{method}_fp16.xml"]["ok"]
    readme = (out / "README.md").read_text()
    assert "fer2013" in readme and method in readme


def test_int8_artifacts_load_and_have_reports(exported):
    import fer_edge

    method, out, manifest = exported
    faces = _faces()
    for target in ("onnxruntime", "tensorrt", "openvino"):
        rep = json.loads((out / "reports" / f"int8_{target}.json").read_text())
        assert (out / "reports" / f"int8_{target}.md").is_file()
        assert rep["size_bytes"]["int8"] < 0.4 * rep["size_bytes"]["fp32"]  # weights really are int8
        assert rep["int8"]["top1"] is not None and 0 <= rep["top1_agreement"] <= 100
        model = fer_edge.load(str(out / rep["artifact"]))
        meta = model.metadata
        assert meta.precision == "int8" and meta.method == method
        assert list(meta.input.mean) == pytest.approx([0.485, 0.456, 0.406])  # ImageNet mean, as the authors'
        pred = model.predict(faces.images)
        assert pred.probs.shape == (len(faces), 7) and np.isfinite(pred.probs).all()
    ov_settings = fer_edge.load(str(out / f"{method}_int8_openvino.xml")).metadata.extra["quantization"]
    assert ov_settings["model_type"] == "transformer"


def test_tensorrt_graph_keeps_softmax_layernorm_and_head_float(exported):
    import onnx

    from fer_edge.calibrate.trt_qdq import check_trt_qdq
    from fer_edge.metadata import METADATA_KEY, ArtifactMetadata

    method, out, _ = exported
    model = onnx.load(str(out / f"{method}_int8_tensorrt_qdq.onnx"))
    meta = ArtifactMetadata.from_json(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    float_layers = meta.extra["quantization"]["float_layers"]
    assert check_trt_qdq(model, float_layers=float_layers) == []
    producer = {o: n for n in model.graph.node for o in n.output}
    ops = [n for n in model.graph.node]
    # attention and layer norms stay float, the transformer's MatMuls are quantized on both inputs
    assert any(n.op_type == "Softmax" for n in ops) and any(n.op_type == "LayerNormalization" for n in ops)
    quantized = [n for n in ops if n.op_type in ("MatMul", "Gemm", "Conv")
                 and all(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input[:2])]
    assert len(quantized) >= 12 * 4  # 12 blocks: qkv/out projections and two MLP layers each
    # the cosine head (projection, scores against the folded text, the blend) is float
    head = [n for n in ops if n.name.startswith("/head/") and n.op_type == "MatMul"]
    assert head and all(n.name in float_layers for n in head)
    assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for n in head for i in n.input)
    # the same rules the engine builder enforces before TensorRT is imported
    from fer_edge.runtimes.tensorrt_build import check_qdq_placement

    check_qdq_placement(model, "x.onnx")


def test_ua_fer_uncertainty_on_every_backend(exported):
    import fer_edge

    from fer_edge.export.verify import full_precision

    method, out, manifest = exported
    faces = _faces()
    if method != "ua_fer":  # logits models carry no uncertainty (never a made-up one)
        for a in manifest["artifacts"]:
            assert fer_edge.load(str(out / a["file"])).predict(faces.images[:2]).uncertainty is None, a["file"]
        return
    per_artifact = {}
    for a in manifest["artifacts"]:
        path = out / a["file"]
        # FP32 IRs in fp32 (OpenVINO's CPU default may be bf16), everything else as users run it
        opts = full_precision(path, None) if a["precision"] == "fp32" else {}
        pred = fer_edge.load(str(path), **opts).predict(faces.images)
        unc = pred.uncertainty
        assert unc is not None and unc.shape == (len(faces),), a["file"]
        # K/S with logits in [-1, 1]: within [0.5, 1]; equal to the graph's own uncertainty output
        assert np.all((unc >= 0.5 - 1e-3) & (unc <= 1.0 + 1e-6)), a["file"]
        np.testing.assert_allclose(unc, np.asarray(pred.extra["uncertainty"]).reshape(-1), atol=2e-3)
        np.testing.assert_allclose(pred.probs.sum(1), 1.0, atol=1e-5)
        per_artifact[a["file"]] = (a["precision"], unc)
    ref = per_artifact["ua_fer.onnx"][1]
    np.testing.assert_allclose(per_artifact["ua_fer_fp32.xml"][1], ref, atol=1e-5)
    for name, (precision, unc) in per_artifact.items():
        err = np.abs(unc - ref)
        print(name, precision, "max |uncertainty - FP32|", float(err.max()))
        assert err.max() < {"fp32": 1e-5, "fp16": 1e-2, "int8": 0.2}[precision], name
