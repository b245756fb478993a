"""UA-FER: golden fidelity (text tower, head, evidential outputs), folded graph, ONNX, official checkpoints."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from _clip_fer_helpers import TINY, fill_tensors, official_names, onnx_parity, save_tiny_clip  # noqa: E402

from fer_edge.checkpoint import load_into, load_state_dict_checked, save_checkpoint  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.models import create_model, get_config  # noqa: E402
from fer_edge.models.clip_common import build_text, encode_texts, fold  # noqa: E402
from fer_edge.models.ua_fer import UAFER, checkpoint_filter_fn  # noqa: E402
from fer_edge.postprocess import evidential  # noqa: E402

LOOSE = dict(rtol=1e-4, atol=1e-4)
TOL = {"logits": dict(rtol=0, atol=2e-5), "local_feat": dict(rtol=0, atol=1e-5),
       "global_feat": dict(rtol=0, atol=1e-5), "evidence": LOOSE, "dirichlet_strength": LOOSE,
       "uncertainty": LOOSE, "probs": LOOSE, "belief_mass": LOOSE}


@pytest.fixture(scope="module")
def golden(reference_dir):
    return dict(np.load(reference_dir / "ua_fer" / "golden.npz"))


@pytest.fixture(scope="module")
def text_embed_raw(reference_dir, fill_module):
    """The frozen CLIP text tower (text_keys.tsv fill) run once on the bare class names."""
    text = build_text("ViT-B-16")
    text.load_state_dict(fill_tensors(fill_module, reference_dir / "ua_fer" / "text_keys.tsv"), strict=True)
    names = ["surprise", "fear", "disgusted", "happy", "sad", "anger", "neutral"]
    raw = fold(lambda: encode_texts(text, names))
    return raw


@pytest.fixture(scope="module")
def model(reference_dir, fill_module, text_embed_raw):
    torch.set_num_threads(2)
    m = create_model("ua_fer").eval()
    assert m.prompts == ["surprise", "fear", "disgusted", "happy", "sad", "anger", "neutral"]
    m.set_class_embeddings(text_embed_raw)
    sd = fill_tensors(fill_module, reference_dir / "ua_fer" / "keys.tsv")
    assert len(sd) == 152
    report = load_state_dict_checked(m, checkpoint_filter_fn(sd, m), source="fill", method="ua_fer", strict=True)
    assert report["missing"] == report["unexpected"] == []
    return m


@pytest.fixture(scope="module")
def outputs(model, golden):
    with torch.no_grad():
        logits, local, glob = model.forward_features(torch.from_numpy(golden["input"]))
        e = model.evidential_outputs(logits)
    return {"logits": logits, "local_feat": local, "global_feat": glob, "evidence": e["evidence"],
            "dirichlet_strength": e["strength"], "uncertainty": e["uncertainty"], "probs": e["probs"],
            "belief_mass": e["belief"]}


def test_text_embeddings_match_golden(text_embed_raw, golden):
    np.testing.assert_allclose(text_embed_raw.numpy(), golden["text_embed_raw"], **LOOSE)


@pytest.mark.parametrize("name", list(TOL))
def test_golden_array(outputs, golden, name):
    got = outputs[name].numpy()
    assert got.shape == golden[name].shape
    np.testing.assert_allclose(got, golden[name], **TOL[name])


def test_folded_graph_equals_full_model_and_runtime_convention(model, outputs, golden):
    deploy = model.deploy_module()
    with torch.no_grad():
        evidence, uncertainty = deploy(torch.from_numpy(golden["input"]))
    assert float((evidence - outputs["evidence"]).abs().max()) <= 1e-6
    assert float((uncertainty - outputs["uncertainty"]).abs().max()) <= 1e-6
    # the runtime turns the primary output into the same probabilities and uncertainty
    cfg = get_config("ua_fer")
    assert cfg.output.kind == "evidence" and cfg.output.extra == ("uncertainty",)
    probs, unc = evidential(evidence.numpy())
    np.testing.assert_allclose(probs, golden["probs"], **LOOSE)
    np.testing.assert_allclose(unc, golden["uncertainty"][:, 0], **LOOSE)


def test_evidence_clips_negative_scores():
    # The golden never exercises ReLU (all its logits are positive); check it directly.
    out = UAFER.evidential_outputs(torch.tensor([[-0.5, 0.2, 0.9]]))
    assert torch.allclose(out["evidence"], torch.tensor([[0.0, 0.2, 0.9]]))
    assert torch.allclose(out["uncertainty"], torch.tensor([[3 / 4.1]]))


@pytest.fixture(scope="module")
def tiny_clip_file(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny_clip.bin")[0]


def test_onnx_dynamic_batch_two_outputs(tiny_clip_file, tmp_path):
    m = UAFER(arch=TINY, clip_weights=tiny_clip_file).eval()
    err = onnx_parity(m.deploy_module(), tmp_path / "ua_fer.onnx", ["evidence", "uncertainty"],
                      size=TINY.image_size)
    assert err < 1e-5


def test_official_checkpoint_needs_clip_text_and_loads(tiny_clip_file, tmp_path):
    torch.manual_seed(0)
    src = UAFER(arch=TINY, clip_weights=tiny_clip_file).eval()
    official = tmp_path / "model_epoch_1.pth"  # the authors' file: 152 image-tower tensors, no text tower
    torch.save(official_names(src.state_dict()), official)
    with pytest.raises(FerEdgeError, match="--clip-weights"):
        create_model("ua_fer", arch=TINY, checkpoint_path=str(official))
    loaded = create_model("ua_fer", arch=TINY, clip_weights=tiny_clip_file, checkpoint_path=str(official)).eval()
    x = torch.randn(2, 3, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        assert torch.equal(loaded(x), src(x))
    # our checkpoint carries the folded class embeddings: no CLIP file needed to reload it
    ours = save_checkpoint(tmp_path / "ua_fer.safetensors", loaded.state_dict(), get_config("ua_fer").metadata())
    again = create_model("ua_fer", arch=TINY)
    load_into(again, ours, method="ua_fer")
    with torch.no_grad():
        assert torch.equal(again.eval()(x), src(x))
    again.deploy_module()  # text is ready: does not raise


def test_import_command_takes_clip_weights(tiny_clip_file, tmp_path):
    from fer_edge.checkpoint import load_checkpoint
    from fer_edge.cli.import_ckpt import import_checkpoint

    src = UAFER(arch=TINY, clip_weights=tiny_clip_file).eval()
    official = tmp_path / "model_epoch_1.pth"
    torch.save(official_names(src.state_dict()), official)
    with pytest.raises(FerEdgeError, match="--clip-weights"):
        import_checkpoint("ua_fer", official, tmp_path / "a.safetensors", arch=TINY)
    out, counts = import_checkpoint("ua_fer", official, tmp_path / "b.safetensors", clip_weights=tiny_clip_file, arch=TINY)
    sd, meta = load_checkpoint(out)
    assert meta.method == "ua_fer" and counts["missing"] == 0 and "class_embeddings" in sd
