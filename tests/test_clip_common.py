"""CLIP building blocks: towers equal open_clip's CLIP, weights load from OpenCLIP and OpenAI-style files."""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.models import clip_common as cc  # noqa: E402

TINY = cc.ClipArch(image_size=32, patch_size=16, vision_width=64, vision_layers=2, vision_heads=2,
                   text_width=32, text_layers=2, text_heads=2, embed_dim=16)
PROMPTS = ["a photo of happy.", "sad"]


@pytest.fixture(scope="module")
def reference_clip():
    """A small open_clip CLIP with random weights: the ground truth for our tower forwards."""
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=TINY.embed_dim,
        vision_cfg=dict(image_size=32, patch_size=16, width=64, layers=2, head_width=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        quick_gelu=True,
    ).eval()
    return model


def _check_towers(path, ref):
    visual, text = cc.build_visual(TINY), cc.build_text(TINY)
    report = cc.load_clip_weights(path, visual=visual, text=text)
    assert report["visual_matched"] == report["visual_total"] == len(visual.state_dict())
    assert report["text_matched"] == report["text_total"] == len(text.state_dict())
    img = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(cc.encode_image(visual, img), ref.encode_image(img), atol=1e-6)
        assert torch.allclose(cc.encode_texts(text, PROMPTS), ref.encode_text(cc.tokenize(PROMPTS)), atol=1e-6)
        tokens = cc.visual_tokens(visual, img)
    assert tokens.shape == (2, 1 + TINY.num_patches, TINY.vision_width)


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_openclip_state_dict_loads(tmp_path, reference_clip, suffix):
    path = tmp_path / f"clip{suffix}"
    sd = reference_clip.state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    _check_towers(path, reference_clip)


def test_openai_torchscript_archive_loads_without_running_it(tmp_path, reference_clip):
    # OpenAI's released .pt files are traced TorchScript archives; we read only their tensors.
    path = tmp_path / "ViT-tiny.pt"
    img, txt = torch.randn(1, 3, 32, 32), cc.tokenize(["x"])
    with warnings.catch_warnings():  # tracer and deprecation warnings of torch.jit itself
        warnings.simplefilter("ignore")
        torch.jit.trace(reference_clip, (img, txt), check_trace=False).save(str(path))
    sd = cc.read_clip_state_dict(path)
    assert set(reference_clip.state_dict()) <= set(sd)
    _check_towers(path, reference_clip)


def test_missing_and_wrong_files_are_one_line_errors(tmp_path, reference_clip):
    with pytest.raises(FerEdgeError, match="not found"):
        cc.read_clip_state_dict(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FerEdgeError, match="not a CLIP checkpoint"):
        cc.read_clip_state_dict(junk)
    other = tmp_path / "other.bin"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(FerEdgeError, match="matches only 0"):
        cc.load_clip_weights(other, visual=cc.build_visual(TINY))
    wrong = tmp_path / "wrong_patch.bin"  # a patch-32 file for a patch-16 tower
    torch.save({f"visual.{k}": v for k, v in cc.build_visual(TINY.reduced(patch_size=32)).state_dict().items()}, wrong)
    with pytest.raises(FerEdgeError, match="does not fit"):
        cc.load_clip_weights(wrong, visual=cc.build_visual(TINY))


def test_deep_prompts_overwrite_positions_before_blocks():
    torch.manual_seed(0)
    visual = cc.build_visual(TINY).eval()
    img = torch.randn(1, 3, 32, 32)
    prompts = [torch.randn(2, TINY.vision_width)]
    with torch.no_grad():
        plain = cc.visual_tokens(visual, img)
        prompted = cc.visual_tokens(visual, img, deep_prompts=prompts)
        # the same computation spelled out: block 0, overwrite positions 1..2, block 1
        x = visual.conv1(img).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.view(1, 1, -1), x], 1) + visual.positional_embedding
        x = visual.transformer.resblocks[0](visual.ln_pre(x))
        x = torch.cat([x[:, :1], prompts[0][None], x[:, 3:]], 1)
        manual = visual.ln_post(visual.transformer.resblocks[1](x))
    assert not torch.allclose(plain, prompted)
    assert torch.allclose(prompted, manual, atol=1e-6)


def test_fold_gives_a_constant_buffer():
    w = torch.nn.Parameter(torch.ones(3))
    const = cc.ConstantFeatures(cc.fold(lambda: w * 2))
    assert not const().requires_grad and "features" in const.state_dict()
    assert torch.equal(const(), torch.full((3,), 2.0))
