"""CEPrompt (both stages) and UA-FER training recipes on real FER2013 faces with a reduced, random CLIP.

A random CLIP this small cannot generalise from a few hundred faces in a few epochs (measured: test top-1 at
the majority-class share), so these tests check what the recipes control: the trainable sets and lr scales of
the authors' code, and that a short run on a small fixed set of real faces lowers the loss and fits the
training faces above chance. Generalisation needs OpenAI's CLIP weights, which are not available offline.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from fer_edge.models.clip_common import ClipArch  # noqa: E402
from fer_edge.training.recipes.ceprompt import layer_decay_groups, warmup_cosine  # noqa: E402

ARCH = ClipArch(image_size=48, patch_size=8, vision_width=64, vision_layers=5, vision_heads=2,
                text_width=32, text_layers=2, text_heads=2, embed_dim=32)


def test_stage1_trainable_set_and_layer_decay_follow_the_authors():
    from fer_edge.models.ceprompt import stage1_model

    model = stage1_model(arch=ARCH)
    groups = layer_decay_groups(model, fix_layer=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters()
                         if n.startswith(("visual.transformer.resblocks.2.", "visual.transformer.resblocks.3.",
                                          "visual.transformer.resblocks.4.", "visual.ln_post.", "visual.proj"))}
    scales = sorted({round(g["lr_scale"], 6) for g in groups})
    # ids: block i -> i + 1, ln_post/proj -> layers + 1 = 6; scale 0.65 ** (6 - id) for blocks 2..4 and the head
    assert scales == sorted(round(0.65 ** k, 6) for k in (3, 2, 1, 0))
    assert all(g["weight_decay"] == (5e-4 if g["params"][0].ndim >= 2 else 0.0) for g in groups)


def test_warmup_cosine_matches_the_authors_schedule_at_mid_epoch():
    f = warmup_cosine(epochs=10, warmup=2, base_lr=2e-3)
    assert f(0) == pytest.approx(0.25) and f(1) == pytest.approx(0.75)
    assert f(2) == pytest.approx((1e-8 + (2e-3 - 1e-8) * 0.5 * (1 + math.cos(math.pi * 0.5 / 8))) / 2e-3)
    assert f(9) < 0.02


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    torch.manual_seed(0)
    clip = open_clip.CLIP(embed_dim=ARCH.embed_dim,
                          vision_cfg=dict(image_size=ARCH.image_size, patch_size=ARCH.patch_size,
                                          width=ARCH.vision_width, layers=ARCH.vision_layers, head_width=32),
                          text_cfg=dict(context_length=77, vocab_size=49408, width=ARCH.text_width,
                                        heads=ARCH.text_heads, layers=ARCH.text_layers), quick_gelu=True)
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.bin"
    torch.save(clip.state_dict(), path)
    return path


def _run(tmp_path, shared_data, method, clip, **options):
    import fer_edge.training.recipes.ceprompt  # noqa: F401  (registers ceprompt_stage1)
    from fer_edge.training import TrainConfig, train

    torch.set_num_threads(2)
    cfg = TrainConfig(method=method, dataset="fer2013", data_path=shared_data, output=tmp_path / method,
                      epochs=12, batch_size=16, lr=1e-2, limit=48, val_fraction=0.1, workers=0, progress=False,
                      model_kwargs={"arch": ARCH}, echo=lambda line: None,
                      options={"clip_weights": str(clip), "fix_layer": 0, "warmup_epochs": 1, **options})
    r = train(cfg)
    losses = [h["train"]["loss"] for h in r["history"]]
    accs = [h["train"]["accuracy"] for h in r["history"]]
    print(f"{method}: train loss {[round(x, 4) for x in losses]} train acc {[round(a, 3) for a in accs]}")
    assert losses[-1] < losses[0]
    assert max(accs[-3:]) > 1 / 7 + 0.05  # chance is 1/7
    return tmp_path / method


@pytest.mark.slow
def test_ceprompt_two_stages_and_ua_fer_train_on_real_faces(tmp_path, shared_data, tiny_clip):
    from fer_edge.checkpoint import load_checkpoint
    from fer_edge.models import create_model

    run1 = _run(tmp_path, shared_data, "ceprompt_stage1", tiny_clip)
    stage1, meta1 = load_checkpoint(run1 / "last.safetensors")
    assert meta1.method == "ceprompt_stage1" and "class_embeddings" in stage1

    run2 = _run(tmp_path, shared_data, "ceprompt", tiny_clip, stage1_weights=str(run1 / "last.safetensors"))
    stage2, meta2 = load_checkpoint(run2 / "last.safetensors")
    assert meta2.method == "ceprompt"
    for k, v in stage1.items():  # stage 2 trains only the prompt learner
        if k.startswith("visual."):
            assert torch.equal(stage2[k], v), k
    deployable = create_model("ceprompt", arch=ARCH, checkpoint_path=str(run2 / "last.safetensors"))
    deployable.deploy_module()

    # annealing_epochs 0: the KL weight is 1 from the start, so the objective does not change between epochs
    # (with the default 10-epoch annealing the total loss rises while the KL weight grows).
    run3 = _run(tmp_path, shared_data, "ua_fer", tiny_clip, annealing_epochs=0)
    _, meta3 = load_checkpoint(run3 / "last.safetensors")
    assert meta3.method == "ua_fer" and meta3.output.kind == "evidence"
