"""DFER-CLIP training side: the annotation-list video reader, TSN sampling, the recipe's optimiser and
schedule, and a short run of the shared trainer on pseudo-clips made from real FER2013 faces."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from fer_edge.data.video import DFEW_LABELS, VideoSamples, read_dfew, tsn_train_indices
from fer_edge.errors import FerEdgeError
from fer_edge.runtimes.clip_stream import segment_centres


def test_tsn_sampling_train_and_test():
    rng = random.Random(0)
    for n in (16, 40, 77, 847):
        avg = n // 16
        for _ in range(5):
            idx = tsn_train_indices(n, 16, rng)
            assert [i // avg for i in idx] == list(range(16))  # one frame inside each equal segment
    assert tsn_train_indices(10, 16, rng) == list(range(10)) + [9] * 6
    assert segment_centres(77, 16) == [int(77 / 32 + i * 77 / 16) for i in range(16)]
    assert segment_centres(16, 16) == list(range(16))


def _write_clip(folder, frames):
    import cv2

    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:05d}.png"), f)


def test_reader_parses_lists_sorts_frames_and_samples(tmp_path):
    # frame t has grey value 10 * t, so the loaded clip tells which frames were taken
    frames = [np.full((8, 8, 3), 10 * t, np.uint8) for t in range(20)]
    _write_clip(tmp_path / "clips" / "00001", frames)
    _write_clip(tmp_path / "clips" / "00002", frames[:5])
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "DFEW_set_2_test.txt").write_text("clips/00001 20 4\nclips/00002 9 0\n")
    s = read_dfew(tmp_path, "test", 2)
    assert isinstance(s, VideoSamples) and s.labels == DFEW_LABELS and s.targets.tolist() == [4, 0]
    clip = s.load(0)
    assert clip.shape == (16, 8, 8, 3)
    assert (clip[:, 0, 0, 0] // 10).tolist() == segment_centres(20, 16)
    # the list says 9 frames but the folder has 5: capped at the last file, not an error mid-epoch
    assert (s.load(1)[:, 0, 0, 0] // 10).tolist() == [min(i, 4) for i in segment_centres(9, 16)]
    sub = s.subset([1])
    assert isinstance(sub, VideoSamples) and sub.num_frames.tolist() == [9]
    with pytest.raises(FerEdgeError, match="DFEW_set_3_train"):
        read_dfew(tmp_path, "train", 3)


@pytest.fixture(scope="module")
def pseudo_dfew(tmp_path_factory, fer2013):
    """DFEW-layout lists of short pseudo-clips: one real FER2013 face per clip, drifting and brightening."""
    import cv2

    from fer_edge.labels import LABEL_SETS

    root = tmp_path_factory.mktemp("pseudo_dfew")
    images, labels, split = fer2013["images"], fer2013["labels"], fer2013["split"]
    fer = LABEL_SETS["fer2013"]
    rng = np.random.default_rng(0)
    for part, per_class, source in (("train", 6, "train"), ("test", 3, "public_test")):
        lines = []
        for c, name in enumerate(DFEW_LABELS):
            for j, i in enumerate(np.flatnonzero((labels == fer.index(name)) & (split == source))[:per_class]):
                n = int(rng.integers(12, 30))
                clip = []
                for t in range(n):
                    shift = np.float32([[1, 0, round(2 * np.sin(t / 3))], [0, 1, round(2 * np.cos(t / 4))]])
                    f = cv2.warpAffine(images[i], shift, (48, 48), borderMode=cv2.BORDER_REFLECT)
                    clip.append(np.clip(f * (0.9 + 0.2 * t / n), 0, 255).astype(np.uint8))
                _write_clip(root / "frames" / f"{part}_{c}_{j}", clip)
                lines.append(f"frames/{part}_{c}_{j} {n} {c}")
        (root / "annotation").mkdir(exist_ok=True)
        (root / "annotation" / f"DFEW_set_1_{part}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_recipe_optimizer_groups_and_schedule():
    torch = pytest.importorskip("torch")
    from fer_edge.models import create_model
    from fer_edge.models.dfer_clip import TINY_ARCH
    from fer_edge.training.recipes import get_recipe
    from fer_edge.training.trainer import TrainConfig

    recipe = get_recipe("dfer_clip")
    hp = recipe.hparams("dfew-fold1")
    cfg = TrainConfig(method="dfer_clip", dataset="dfew-fold1", data_path=".", output=".", hparams=hp,
                      epochs=hp.epochs, lr=hp.lr)
    model = create_model("dfer_clip", arch=TINY_ARCH)
    opt = recipe.optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-5, 1e-3])
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in opt.param_groups)
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in trained for p in model.text_encoder.parameters())  # text tower frozen
    assert sorted(recipe.scheduler(opt, cfg).milestones) == [30, 40]
    assert (hp.batch_size, hp.epochs, hp.extra["brightness"]) == (48, 50, 0.5)
    # --recipe-opt overrides a group's ratio (a from-scratch encoder needs a trainable lr)
    cfg.options = {"image_lr_ratio": 1.0, "prompt_lr_ratio": 0.5}
    assert [g["lr"] for g in recipe.optimizer(model, cfg).param_groups] == pytest.approx([1e-2, 1e-2, 5e-3])
    assert "image_encoder 0.01" in recipe.describe(cfg)["optimizer"]


def test_class_subset_keeps_each_class_description():
    pytest.importorskip("torch")
    from fer_edge.models.dfer_clip import CLASS_DESCRIPTIONS, TINY_ARCH
    from fer_edge.training.recipes import get_recipe
    from fer_edge.training.trainer import TrainConfig

    recipe = get_recipe("dfer_clip")
    cfg = TrainConfig(method="dfer_clip", dataset="dfew-fold1", data_path=".", output=".",
                      hparams=recipe.hparams("dfew-fold1"), model_kwargs={"arch": TINY_ARCH}, echo=lambda line: None)
    model = recipe.build_model(cfg, ("happy", "surprise", "neutral"))
    # happy, surprise, neutral are rows 0, 4, 2 of the authors' descriptions: the prompts' tokens
    # must be those rows', not the first three rows'
    ref = recipe.build_model(cfg, DFEW_LABELS)
    assert (model.prompt_learner.tokenized_prompts == ref.prompt_learner.tokenized_prompts[[0, 4, 2]]).all()
    assert not (model.prompt_learner.tokenized_prompts == ref.prompt_learner.tokenized_prompts[:3]).all()
    assert len(CLASS_DESCRIPTIONS) == 11


@pytest.mark.parametrize("dataset,fold,message", [
    ("dfew", None, "5-fold cross-validation: add --fold 1..5"),
    ("mafw", 6, "--fold 6: mafw has folds 1..5"),
    ("ferv39k", 1, "no folds; drop --fold"),
    ("dfew-video", None, "unknown dataset"),
])
def test_fold_argument_is_checked(dataset, fold, message):
    from fer_edge.data.catalog import dataset_name

    with pytest.raises(FerEdgeError, match=message):
        dataset_name(dataset, fold)


def test_video_sets_are_in_the_catalog_and_folds_map_to_lists(tmp_path):
    from fer_edge.data.catalog import dataset_name, open_dataset

    assert dataset_name("dfew", 3) == "dfew-fold3" and dataset_name("ferv39k") == "ferv39k"
    _write_clip(tmp_path / "c1", [np.zeros((8, 8, 3), np.uint8)] * 4)
    (tmp_path / "MAFW_set_3_train.txt").write_text("c1 4 10\n")
    (tmp_path / "FERV39K_test.txt").write_text("c1 4 6\n")
    mafw = open_dataset("mafw-fold3", tmp_path, "train")
    assert mafw.name == "mafw-fold3" and len(mafw.labels) == 11 and mafw.targets.tolist() == [10]
    assert open_dataset("ferv39k", tmp_path, "test").labels == DFEW_LABELS
    with pytest.raises(FerEdgeError, match="5-fold"):
        open_dataset("dfew", tmp_path, "train")


def test_cli_fold_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["train", "--method", "dfer_clip", "--dataset", "ferv39k", "--fold", "2",
                                 "--data-path", str(tmp_path)])
    assert isinstance(r.exception, FerEdgeError) and "no folds; drop --fold" in str(r.exception)
    r = CliRunner().invoke(app, ["train", "--method", "dfer_clip", "--dataset", "dfew", "--fold", "x",
                                 "--data-path", str(tmp_path)])
    assert isinstance(r.exception, FerEdgeError) and "--fold takes a fold number or 'all'" in str(r.exception)


def test_fold_summary_by_hand():
    from fer_edge.training.folds import summarize_folds

    per_fold = {1: {"uar": 0.5, "war": 0.6, "accuracy": 0.6, "macro_f1": 0.4},
                2: {"uar": 0.3, "war": 0.7, "accuracy": 0.7, "macro_f1": 0.2}}
    s = summarize_folds(per_fold)
    assert s["mean"]["uar"] == pytest.approx(0.4) and s["mean"]["war"] == pytest.approx(0.65)
    assert s["std"]["uar"] == pytest.approx(0.1) and s["std"]["war"] == pytest.approx(0.05)
    assert s["folds"]["2"]["uar"] == 0.3


@pytest.mark.slow
def test_short_training_run_on_pseudo_clips(pseudo_dfew, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from fer_edge.checkpoint import load_checkpoint
    from fer_edge.models.dfer_clip import TINY_ARCH
    from fer_edge.training.trainer import TrainConfig, Trainer

    arch = TINY_ARCH.reduced(image_size=112, patch_size=16)
    cfg = TrainConfig(method="dfer_clip", dataset="dfew-fold1", data_path=pseudo_dfew, output=tmp_path / "run",
                      epochs=4, batch_size=8, val_fraction=0.0, select_on="test", workers=0,
                      model_kwargs={"arch": arch}, progress=False, echo=lambda line: None)
    result = Trainer(cfg).fit()
    hist = result["history"]
    assert len(hist) == 4
    assert hist[-1]["train"]["loss"] < hist[0]["train"]["loss"]
    for h in hist:  # UAR and WAR (= accuracy) with the confusion matrix on the test clips, every epoch
        test = h["test"]
        assert 0.0 <= test["uar"] <= 1.0 and test["war"] == pytest.approx(test["accuracy"])
        assert np.asarray(test["confusion"]).sum() == 21
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["recipe"]["sampling"].startswith("TSN 16 segments")
    sd, meta = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert meta.method == "dfer_clip" and meta.input.layout == "NTCHW" and meta.input.size == (112, 112)
    assert "temporal_net.cls_token" in sd
