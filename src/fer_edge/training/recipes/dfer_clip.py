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

CLIP weights: ``options["clip_weights"]`` (``--clip-weights``, a local OpenAI/OpenCLIP ViT-B/32 file).
Every entry of ``defaults.extra`` can be overridden through ``options`` (``--recipe-opt KEY=VALUE``).
Without CLIP weights the encoder starts random and nearly input-independent; training it then needs
``image_lr_ratio=1`` and ``optimizer=adamw`` (docs/training.md, "Video", has the measurements).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import FerEdgeError
from . import HParams, Recipe, register_recipe


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
        "milestones": (0.6, 0.8), "gamma": 0.1, "brightness": 0.0, "rotation": 0.0, "crop_scale": (0.08, 1.0),
        "optimizer": "sgd"})
    per_dataset = {**{f"dfew-fold{f}": {"brightness": 0.5} for f in range(1, 6)}, "ferv39k": {"rotation": 4.0}}

    def model_name(self, labels: tuple[str, ...]) -> str:
        return "dfer_clip_mafw" if len(labels) == 11 else "dfer_clip"

    @staticmethod
    def setting(cfg, key: str):
        """A recipe setting: ``cfg.options`` (``--recipe-opt KEY=VALUE``) overrides the data set's default."""
        return cfg.options.get(key, cfg.hparams.extra[key])

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...labels import LABEL_SETS
        from ...models import create_model
        from ...models.dfer_clip import CLASS_DESCRIPTIONS

        kwargs = dict(cfg.model_kwargs)
        # Each class keeps its own description, also for a --classes subset (MAFW's order extends DFEW's).
        kwargs.setdefault("descriptions", tuple(CLASS_DESCRIPTIONS[LABEL_SETS["mafw"].index(c)] for c in labels))
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
        brightness, rotation = self.setting(cfg, "brightness"), self.setting(cfg, "rotation")
        ops = []
        if brightness:
            ops.append(v2.ColorJitter(brightness=brightness))
        if rotation:
            ops.append(v2.RandomRotation(rotation, interpolation=v2.InterpolationMode.BILINEAR))
        ops += [v2.RandomResizedCrop(tuple(spec.size), scale=tuple(self.setting(cfg, "crop_scale")),
                                     ratio=(3 / 4, 4 / 3), antialias=True),
                v2.RandomHorizontalFlip(0.5)]
        return ClipTransform(spec, ops)

    def group_lrs(self, cfg) -> dict[str, float]:
        """Learning rate of each parameter group. The image encoder's is tiny because it starts from
        pretrained CLIP; a from-scratch (e.g. reduced) encoder needs ``image_lr_ratio`` near 1."""
        return {"temporal_net": cfg.lr, "image_encoder": cfg.lr * self.setting(cfg, "image_lr_ratio"),
                "prompt_learner": cfg.lr * self.setting(cfg, "prompt_lr_ratio")}

    def param_groups(self, model: nn.Module, cfg) -> list[dict[str, Any]]:
        return [{"params": [p for p in getattr(model, name).parameters() if p.requires_grad], "lr": lr, "name": name}
                for name, lr in self.group_lrs(cfg).items()]

    def optimizer(self, model: nn.Module, cfg) -> torch.optim.Optimizer:
        """The authors' SGD; ``optimizer=adamw`` (same groups and lrs) is for encoders trained from scratch,
        whose per-parameter gradient scales differ by orders of magnitude (x100 cosine logits): plain SGD
        then stalls at uniform predictions (measured; see docs/training.md)."""
        kind = str(self.setting(cfg, "optimizer")).lower()
        groups, wd = self.param_groups(model, cfg), self.setting(cfg, "weight_decay")
        if kind == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=self.setting(cfg, "momentum"), weight_decay=wd)
        if kind == "adamw":
            return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=wd)
        raise FerEdgeError(f"DFER-CLIP optimizer must be sgd (the authors') or adamw, got {kind!r}")

    def scheduler(self, optimizer, cfg):
        milestones = sorted({max(1, round(f * cfg.epochs)) for f in self.setting(cfg, "milestones")})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=self.setting(cfg, "gamma"))

    def describe(self, cfg) -> dict[str, Any]:
        s = lambda k: self.setting(cfg, k)  # noqa: E731
        lrs = ", ".join(f"{k} {v:g}" for k, v in self.group_lrs(cfg).items())
        return {"recipe": self.name,
                "optimizer": (f"SGD(momentum {s('momentum')}, wd {s('weight_decay')})" if s("optimizer") == "sgd" else
                              f"{s('optimizer')}(wd {s('weight_decay')})") + f"; lr {lrs}",
                "scheduler": f"MultiStepLR(gamma {s('gamma')}) at {tuple(s('milestones'))} of the epochs",
                "augment": f"brightness {s('brightness')}, rotation {s('rotation')} deg, random-sized crop "
                           f"(area {tuple(s('crop_scale'))}), hflip (shared by the clip's frames)",
                "sampling": "TSN 16 segments: random frame per segment (train), centres (eval)",
                "clip_weights": cfg.options.get("clip_weights")}
