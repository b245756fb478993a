"""DFER-CLIP: golden fidelity (every array), batching, folded/split deployment graphs, ONNX, streaming.

The fidelity tests run the real ViT-B/32 configuration with the reference fill weights (one model per
module); export and streaming tests use a reduced CLIP (same code paths) to stay fast.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from fer_edge.models import create_model  # noqa: E402
from fer_edge.models.dfer_clip import TINY_ARCH, checkpoint_filter_fn  # noqa: E402

ATOL_LOGITS = 1e-4  # README tolerance (rtol 1e-4 as well); intermediates 1e-5
ATOL_FEATURES = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs single-threaded (see conftest)."""


@pytest.fixture(scope="module")
def golden(reference_dir):
    path = reference_dir / "dfer_clip" / "golden.npz"
    if not path.is_file():
        pytest.skip(f"DFER-CLIP golden not found at {path}")
    return dict(np.load(path))


@pytest.fixture(scope="module")
def official_sd(reference_dir, fill_module):
    keys = fill_module.read_keys(reference_dir / "dfer_clip" / "keys.tsv")
    return {k: torch.from_numpy(np.asarray(v)) for k, v in fill_module.fill_state_dict(keys).items()}


@pytest.fixture(scope="module")
def model(official_sd):
    from fer_edge.checkpoint import load_state_dict_checked

    m = create_model("dfer_clip").eval()
    report = load_state_dict_checked(m, checkpoint_filter_fn(official_sd, m), source="fill", method="dfer_clip")
    assert report["missing"] == [] and report["unexpected"] == []
    assert report["ignored"] == ["clip_model_.logit_scale", "clip_model_.token_embedding.weight"]
    return m


@pytest.fixture(scope="module")
def clip(golden):
    return torch.from_numpy(golden["input_f16"].astype(np.float32))


@pytest.fixture(scope="module")
def full_logits(model, clip):
    with torch.no_grad():
        return model(clip).numpy()


def test_aliased_keys_take_clip_model_values(model, official_sd):
    # The authors' load order makes the clip_model_ copy win over image_encoder./text_encoder.
    sd = model.state_dict()
    assert torch.equal(sd["image_encoder.conv1.weight"], official_sd["clip_model_.visual.conv1.weight"])
    assert torch.equal(sd["text_encoder.transformer.resblocks.3.attn.in_proj_weight"],
                       official_sd["clip_model_.transformer.resblocks.3.attn.in_proj_weight"])
    assert not torch.equal(sd["image_encoder.conv1.weight"], official_sd["image_encoder.conv1.weight"])
    assert "text_encoder.token_embedding.weight" not in sd  # used only to build the prompt buffers


def test_golden_every_array(model, golden, clip, full_logits):
    np.testing.assert_array_equal(model.prompt_learner.tokenized_prompts.numpy(), golden["tokenized_prompts"])
    with torch.no_grad():
        frames = model.frame_features(clip)
        video = model.video_features(frames)
        text = model.text_features()
    np.testing.assert_allclose(frames.numpy(), golden["frame_features"], rtol=0, atol=ATOL_FEATURES)
    np.testing.assert_allclose(video.numpy(), golden["video_features"], rtol=0, atol=ATOL_FEATURES)
    np.testing.assert_allclose(text.numpy(), golden["text_features"], rtol=0, atol=ATOL_FEATURES)
    np.testing.assert_allclose(full_logits, golden["logits"], rtol=1e-4, atol=ATOL_LOGITS)


def test_batch_of_two_rows_equal_single_clips(model, clip, full_logits):
    other = clip.flip(-1) * 0.5  # a different clip: mirrored, lower contrast
    with torch.no_grad():
        single = model(other).numpy()
        both = model(torch.cat([clip, other])).numpy()
    assert np.abs(single - full_logits).max() > 0.1  # the two clips really differ
    np.testing.assert_allclose(both[0], full_logits[0], rtol=0, atol=ATOL_LOGITS)
    np.testing.assert_allclose(both[1], single[0], rtol=0, atol=ATOL_LOGITS)


def test_folded_equals_full(model, clip, full_logits):
    deploy = model.deploy_module()
    assert not any(n.startswith("text_encoder") for n, _ in deploy.named_parameters())
    with torch.no_grad():
        folded = deploy(clip).numpy()
    np.testing.assert_allclose(folded, full_logits, rtol=0, atol=ATOL_LOGITS)


def test_split_equals_monolithic(model, golden, clip, full_logits):
    encoder, head = model.frame_encoder_module(), model.temporal_head_module()
    with torch.no_grad():
        feats = torch.stack([encoder(clip[0, t:t + 1])[0] for t in range(clip.shape[1])])  # one frame at a time
        logits = head(feats[None]).numpy()
    np.testing.assert_allclose(feats.numpy(), golden["frame_features"][0], rtol=0, atol=ATOL_FEATURES)
    np.testing.assert_allclose(logits, full_logits, rtol=0, atol=ATOL_LOGITS)


def test_authors_checkpoint_file_imports(tmp_path):
    """A file shaped like the authors' (module. prefixes, three CLIP aliases, a pickled recorder) loads."""
    torch.manual_seed(0)
    src = create_model("dfer_clip", arch=TINY_ARCH)
    theirs = {}
    for k, v in src.state_dict().items():
        theirs[k] = torch.randn_like(v)  # stale alias: must lose against clip_model_
        if k.startswith("image_encoder."):
            theirs["clip_model_.visual." + k[len("image_encoder."):]] = v
        elif k.startswith("text_encoder."):
            theirs["clip_model_." + k[len("text_encoder."):]] = v
        else:
            theirs[k] = v
    theirs["clip_model_.token_embedding.weight"] = torch.zeros(49408, 64)
    theirs["clip_model_.logit_scale"] = torch.tensor(4.6)
    path = tmp_path / "DFEW-set1-model_best.pth"
    torch.save({"epoch": 3, "best_acc": torch.tensor(70.0), "recorder": _RecorderMeter(),
                "state_dict": {"module." + k: v for k, v in theirs.items()}}, path)

    loaded = create_model("dfer_clip", arch=TINY_ARCH, checkpoint_path=str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


class _RecorderMeter:
    """Stands in for main.py's RecorderMeter: a non-tensor object pickled into the checkpoint."""

    def __init__(self):
        self.epoch_losses = np.zeros((50, 2), np.float32)


def test_mafw_variant_and_b16_option():
    from fer_edge.models import get_config

    cfg = get_config("dfer_clip_mafw")
    assert len(cfg.labels) == 11 and cfg.labels[:7] == get_config("dfer_clip").labels
    m = create_model("dfer_clip_mafw", arch=TINY_ARCH.reduced(patch_size=16))
    assert m.prompt_learner.tokenized_prompts.argmax(-1).tolist() == [25, 30, 26, 27, 25, 26, 27, 32, 28, 27, 27]
    assert m.image_encoder.positional_embedding.shape[0] == 1 + 14 * 14
    spec = get_config("dfer_clip").input
    assert (spec.layout, spec.frames, spec.size, spec.mean, spec.std) == ("NTCHW", 16, (224, 224), (0, 0, 0), (1, 1, 1))


# --- ONNX and streaming (reduced CLIP) --------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return create_model("dfer_clip", arch=TINY_ARCH).eval()


@pytest.fixture(scope="module")
def tiny_onnx(tiny, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("dfer_onnx")
    from fer_edge.export.onnx import export_onnx

    return {g.name: export_onnx(g.module, g.metadata, out / f"{g.name}.onnx", example=g.example)
            for g in tiny.deployment()}


@pytest.mark.parametrize("graph,kind", [("frame_encoder", "features"), ("temporal_head", "scaled_cosine"),
                                        ("classifier", "scaled_cosine")])
def test_onnx_graphs_dynamic_batch_match_torch(tiny, tiny_onnx, graph, kind):
    import fer_edge
    loaded = fer_edge.load(tiny_onnx[graph])
    assert loaded.metadata.graph == graph and loaded.metadata.output.kind == kind
    assert loaded.engine.inputs[0].shape[0] == "batch"
    module = tiny.deployed(graph).module
    for batch in (1, 3):
        shape = {"frame_encoder": (batch, 3, 224, 224), "temporal_head": (batch, 16, tiny.feature_dim),
                 "classifier": (batch, 16, 3, 224, 224)}[graph]
        x = torch.rand(shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            want = module(x).numpy()
        got = next(iter(loaded.run(x.numpy()).values()))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (96 + i, 80 + i, 3), dtype=np.uint8) for i in range(26)]


@pytest.fixture(scope="module")
def stream_models(tiny_onnx):
    import fer_edge

    return fer_edge.load(tiny_onnx["frame_encoder"]), fer_edge.load(tiny_onnx["temporal_head"])


def _monolithic(tiny, clip_crops):
    from fer_edge.preprocess import preprocess_clips

    x = torch.from_numpy(preprocess_clips([clip_crops], tiny.fer_cfg.input))
    with torch.no_grad():
        return tiny(x).numpy()[0]


def test_stream_emits_at_stride_and_equals_monolithic(tiny, stream_models, crops):
    from fer_edge.runtimes.clip_stream import ClipStream

    stream = ClipStream(*stream_models, stride=4)
    emitted = {}
    for i, crop in enumerate(crops):
        pred = stream.push("face-1", crop)
        if pred is not None:
            emitted[i + 1] = pred  # number of frames pushed so far
    assert sorted(emitted) == [16, 20, 24]
    for n, pred in emitted.items():
        assert pred.probs.shape == (1, 7)
        np.testing.assert_allclose(pred.raw[0], _monolithic(tiny, crops[n - 16:n]), rtol=0, atol=1e-4)


def test_stream_tracks_are_independent_and_drop_resets(stream_models, crops):
    from fer_edge.runtimes.clip_stream import ClipStream

    stream = ClipStream(*stream_models, stride=1)
    for crop in crops[:15]:
        assert stream.push("a", crop) is None
        assert stream.push("b", crop[:, ::-1].copy()) is None
    pa, pb = stream.push("a", crops[15]), stream.push("b", crops[15][:, ::-1].copy())
    assert pa is not None and pb is not None and not np.allclose(pa.raw, pb.raw)
    assert stream.push("a", crops[16]) is not None  # stride 1: every frame once full
    stream.drop("a")
    assert stream.tracks == ["b"]
    assert stream.push("a", crops[0]) is None  # a new track starts empty


def test_stream_window_samples_segment_centres(tiny, stream_models, crops):
    from fer_edge.runtimes.clip_stream import ClipStream, segment_centres

    assert segment_centres(24, 16) == [0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23]
    assert segment_centres(5, 16) == [0, 1, 2, 3, 4] + [4] * 11
    stream = ClipStream(*stream_models, stride=100, window=24)
    preds = [stream.push(0, c) for c in crops[:24]]
    assert [i for i, p in enumerate(preds) if p is not None] == [15]  # first full clip, buffer of 16
    last = stream.predict_buffer(0)  # buffer now holds 24 frames: centres of 16 segments
    want = _monolithic(tiny, [crops[i] for i in segment_centres(24, 16)])
    np.testing.assert_allclose(last.raw[0], want, rtol=0, atol=1e-4)


def test_stream_refuses_wrong_graphs(tiny_onnx):
    import fer_edge
    from fer_edge.errors import FerEdgeError
    from fer_edge.runtimes.clip_stream import ClipStream

    full = fer_edge.load(tiny_onnx["classifier"])
    with pytest.raises(FerEdgeError, match="frame_encoder"):
        ClipStream(full, full)


def test_clip_weights_file_sets_towers_and_prompt_buffers(tmp_path):
    """--clip-weights: the image/text towers and the prompt buffers (from its token embedding) come from the file."""
    from safetensors.torch import save_file

    from fer_edge.models.clip_common import build_text, build_visual

    torch.manual_seed(3)
    visual, text = build_visual(TINY_ARCH), build_text(TINY_ARCH)
    sd = {f"visual.{k}": v for k, v in visual.state_dict().items()}
    sd.update({k: v for k, v in text.state_dict().items()})
    path = tmp_path / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))

    m = create_model("dfer_clip", arch=TINY_ARCH, clip_weights=str(path))
    assert torch.equal(m.image_encoder.conv1.weight, visual.conv1.weight)
    assert torch.equal(m.text_encoder.text_projection, text.text_projection)
    with torch.no_grad():
        emb = text.token_embedding(m.prompt_learner.tokenized_prompts)
    assert torch.equal(m.prompt_learner.token_prefix, emb[:, :1])
    assert torch.equal(m.prompt_learner.token_suffix, emb[:, 9:])
