"""POSTER V2's training recipe as the authors' code runs it (shared/reference/poster_v2/SPEC.md, section 3).

* SAM (rho 0.05, not adaptive) over Adam (betas 0.9/0.999, weight decay 0: ``--wd`` is parsed but never
  passed in the original), plain cross-entropy (no label smoothing in V2).
* ExponentialLR(gamma 0.98) stepped once per epoch; batch 144; 200 epochs.
* Learning rate per data set: RAF-DB 3.5e-5, AffectNet-7/8 1e-6, CAER-S 4e-5. FER2013/FER+ and plain
  ImageFolder are not in the paper: they get RAF-DB's settings (our choice; override with --lr).
* Augmentation: Resize 224 -> RandomHorizontalFlip -> ToTensor -> Normalize(ImageNet) -> RandomErasing,
  with p 0.5 / scale (0.02, 0.1) for RAF-DB (and our FER/ImageFolder default), p 1 / scale (0.05, 0.05)
  for AffectNet and CAER-S; ratio (0.3, 3.3) and value 0 in every case.
* AffectNet: class-balanced sampling (``ImbalancedDatasetSampler``); others shuffle.
* The MobileFaceNet landmark branch is frozen (the model does ``requires_grad_(False)``); its BatchNorm
  statistics keep updating in train mode, as in the original. IR-50 and MobileFaceNet start from the
  authors' files (``--ir50``, ``--mobilefacenet``) through the model file's ``load_backbones``, which
  says how many tensors matched.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..sam import SAM
from . import HParams, Recipe, register_recipe, sam_train_step

ERASE_RAFDB = {"erase_p": 0.5, "erase_scale": (0.02, 0.1)}
ERASE_STRONG = {"erase_p": 1.0, "erase_scale": (0.05, 0.05)}


@register_recipe
class PosterV2Recipe(Recipe):
    name = "poster_v2"
    aliases = ("poster_v2_8cls",)
    defaults = HParams(epochs=200, batch_size=144, lr=3.5e-5,
                       extra={"rho": 0.05, "gamma": 0.98, **ERASE_RAFDB})
    per_dataset = {
        "rafdb": {"lr": 3.5e-5, **ERASE_RAFDB},
        "affectnet7": {"lr": 1e-6, **ERASE_STRONG},
        "affectnet8": {"lr": 1e-6, **ERASE_STRONG},
        "caer-s": {"lr": 4e-5, **ERASE_STRONG},
    }
    balanced_datasets = ("affectnet7", "affectnet8")

    def model_name(self, labels: tuple[str, ...]) -> str:
        return "poster_v2_8cls" if len(labels) == 8 else "poster_v2"

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models.poster_v2 import load_backbones

        if len(labels) not in (7, 8):
            cfg.echo(f"note: the released POSTER V2 heads have 7 or 8 classes; training a {len(labels)}-class head")
        model = super().build_model(cfg, labels)
        ir50, mfn = cfg.options.get("ir50"), cfg.options.get("mobilefacenet")
        if ir50 or mfn:
            load_backbones(model, ir50=ir50, mobilefacenet=mfn, echo=cfg.echo)
        else:
            cfg.echo("WARNING: training POSTER V2 without --ir50/--mobilefacenet: both backbones start random "
                     "(and the landmark branch stays frozen at random weights); the published results need both files")
        return model

    def transforms(self, cfg, spec, train: bool):
        from torchvision.transforms import v2

        from ..datasets import ImageTransform

        if not train:
            return ImageTransform(spec)
        hp = cfg.hparams.extra
        scale = tuple(hp["erase_scale"])
        return ImageTransform(spec, [v2.RandomHorizontalFlip(0.5)],
                              [v2.RandomErasing(p=hp["erase_p"], scale=scale, ratio=(0.3, 3.3), value=0)])

    def optimizer(self, model: nn.Module, cfg) -> torch.optim.Optimizer:
        base = torch.optim.Adam(self.trainable(model), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=0.0)
        return SAM(base, rho=cfg.hparams.extra["rho"], adaptive=False)

    def scheduler(self, optimizer, cfg):
        # On the base optimizer: it is the one whose step() runs (SAM shares its parameter groups).
        base = optimizer.base if isinstance(optimizer, SAM) else optimizer
        return torch.optim.lr_scheduler.ExponentialLR(base, gamma=cfg.hparams.extra["gamma"])

    def train_step(self, model, images, targets, optimizer, precision):
        return sam_train_step(self, model, images, targets, optimizer, precision)

    def describe(self, cfg) -> dict[str, Any]:
        hp = cfg.hparams.extra
        return {"recipe": self.name, "optimizer": f"SAM(rho={hp['rho']}) over Adam, wd 0",
                "scheduler": f"ExponentialLR(gamma={hp['gamma']}) per epoch",
                "augment": f"hflip 0.5, RandomErasing(p={hp['erase_p']}, scale={tuple(hp['erase_scale'])}) after Normalize",
                "sampler": self.sampler_kind(cfg), "landmark_branch": "frozen weights, BN stats update",
                "backbones": {k: cfg.options.get(k) for k in ("ir50", "mobilefacenet")}}
