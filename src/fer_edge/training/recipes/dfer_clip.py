"""DFER-CLIP's training recipe as the authors' scripts run it (shared/reference/dfer_clip/SPEC.md, section 4).

* SGD, momentum 0.9, weight decay 1e-4 on three parameter groups: temporal net lr 1e-2, CLIP image
  encoder 1e-5, prompt context 1e-3 (``--lr`` sets the temporal net's; the others keep these ratios).
  The text tower is frozen.
* MultiStepLR, gamma 0.1 at epochs 30 and 40 of 50 (at 60 % and 80 % of ``--epochs`` for other lengths).
* Batch 48 clips of 16 frames, cross-entropy on the 100·cos logits, 50 epochs.
* Clip augmentation, with parameters shared by the 16 frames: DFEW brightness x U(0.5, 1.5); FERV39k
  rotation U(-4, 4) degrees; then, for all three sets, Inception-style random-sized crop (area 0.08-1,
  aspect 3/4-4/3) to 224 and a horizontal flip. Test: resize to 224. No mean/std normalisation.
* TSN sampling (random frame per segment in training, centres otherwise) lives in the data reader,
  :mod:`fer_edge.data.video`.
* The authors select the epoch with the best *test* accuracy; the trainer's default selects on a
  validation split (``select_on="test"`` reproduces theirs), and the log reports both.

CLIP weights: ``options["clip_weights"]`` (a local OpenAI/OpenCLIP ViT-B/32 file). Without it CLIP
starts random, which is only useful for plumbing tests.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.video import register_video_datasets
from . import HParams, Recipe, register_recipe

register_video_datasets()  # --dataset dfew-foldN / mafw-foldN / ferv39k


class ClipTransform:
    """(T, H, W, 3) uint8 frames -> (T, 3, H, W) float; torchvision v2 ops on the stacked frames draw
    their random parameters once, so every frame of a clip gets the same crop, flip and jitter."""

    def __init__(self, spec, ops=()):
        from torchvision.transforms import InterpolationMode, v2

        self.resize = v2.Resize(tuple(spec.size), interpolation=InterpolationMode.BILINEAR, antialias=True)
        self.ops = list(ops)
        self.scale = float(spec.scale)
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        for op in self.ops or [self.resize]:
            t = op(t)
        return (t.float() * self.scale - self.mean) / self.std


@register_recipe
class DferClipRecipe(Recipe):
    name = "dfer_clip"
    aliases = ("dfer_clip_mafw",)
    defaults = HParams(epochs=50, batch_size=48, lr=1e-2, extra={
        "momentum": 0.9, "weight_decay": 1e-4, "image_lr_ratio": 1e-3, "prompt_lr_ratio": 1e-1,
        "milestones": (0.6, 0.8), "gamma": 0.1, "brightness": 0.0, "rotation": 0.0})
    per_dataset = {**{f"dfew-fold{f}": {"brightness": 0.5} for f in range(1, 6)}, "ferv39k": {"rotation": 4.0}}

    def model_name(self, labels: tuple[str, ...]) -> str:
        return "dfer_clip_mafw" if len(labels) == 11 else "dfer_clip"

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models import create_model

        kwargs = dict(cfg.model_kwargs)
        if cfg.options.get("clip_weights"):
            kwargs["clip_weights"] = cfg.options["clip_weights"]
        else:
            cfg.echo("WARNING: training DFER-CLIP without --clip-weights: CLIP starts random; "
                     "the published results start from OpenAI's ViT-B/32")
        return create_model(self.model_name(labels), num_classes=len(labels), **kwargs)

    def transforms(self, cfg, spec, train: bool):
        from torchvision.transforms import v2

        if not train:
            return ClipTransform(spec)
        hp = cfg.hparams.extra
        ops = []
        if hp["brightness"]:
            ops.append(v2.ColorJitter(brightness=hp["brightness"]))
        if hp["rotation"]:
            ops.append(v2.RandomRotation(hp["rotation"], interpolation=v2.InterpolationMode.BILINEAR))
        ops += [v2.RandomResizedCrop(tuple(spec.size), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
                v2.RandomHorizontalFlip(0.5)]
        return ClipTransform(spec, ops)

    def param_groups(self, model: nn.Module, cfg) -> list[dict[str, Any]]:
        hp = cfg.hparams.extra
        return [
            {"params": [p for p in model.temporal_net.parameters() if p.requires_grad], "lr": cfg.lr},
            {"params": [p for p in model.image_encoder.parameters() if p.requires_grad],
             "lr": cfg.lr * hp["image_lr_ratio"]},
            {"params": [p for p in model.prompt_learner.parameters() if p.requires_grad],
             "lr": cfg.lr * hp["prompt_lr_ratio"]},
        ]

    def optimizer(self, model: nn.Module, cfg) -> torch.optim.Optimizer:
        hp = cfg.hparams.extra
        return torch.optim.SGD(self.param_groups(model, cfg), lr=cfg.lr, momentum=hp["momentum"],
                               weight_decay=hp["weight_decay"])

    def scheduler(self, optimizer, cfg):
        hp = cfg.hparams.extra
        milestones = sorted({max(1, round(f * cfg.epochs)) for f in hp["milestones"]})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=hp["gamma"])

    def describe(self, cfg) -> dict[str, Any]:
        hp = cfg.hparams.extra
        return {"recipe": self.name,
                "optimizer": f"SGD(momentum {hp['momentum']}, wd {hp['weight_decay']}); lr temporal {cfg.lr}, "
                             f"image encoder {cfg.lr * hp['image_lr_ratio']:g}, prompt ctx {cfg.lr * hp['prompt_lr_ratio']:g}",
                "scheduler": f"MultiStepLR(gamma {hp['gamma']}) at {hp['milestones']} of the epochs",
                "augment": f"brightness {hp['brightness']}, rotation {hp['rotation']} deg, random-sized crop, hflip "
                           "(shared by the clip's frames)",
                "sampling": "TSN 16 segments: random frame per segment (train), centres (eval)",
                "clip_weights": cfg.options.get("clip_weights")}
