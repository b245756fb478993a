"""UA-FER's single-stage training as the authors' code runs it (shared/reference/ua_fer/SPEC.md, section 3).

The optimisation is CEPrompt stage 1's (:class:`~fer_edge.training.recipes.ceprompt.ClipFerRecipe`):
AdamW with layer-wise lr decay 0.65 over the image tower above ``fix_layer`` (2 on RAF-DB, 8 on AffectNet),
lr 1e-4, 5 warm-up epochs then cosine to 1e-8, 50 epochs, batch 128 (AffectNet 256), L1 KD of the CLS
embedding towards the frozen CLIP image tower (weight 1). The task loss is the evidential loss
(:class:`~fer_edge.training.evidential.EvidentialLoss`): the paper's full loss (expected squared error,
variance, KL to the uniform Dirichlet annealed over 10 epochs) by default; ``options["authors_code"]``
optimises only the squared error, exactly like the released code.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..evidential import EvidentialLoss
from . import HParams, register_recipe
from .ceprompt import KD_WEIGHT, ClipFerRecipe


@register_recipe
class UAFERRecipe(ClipFerRecipe):
    name = "ua_fer"
    aliases = ("ua_fer_affectnet7", "ua_fer_affectnet8")
    defaults = HParams(epochs=50, batch_size=128, lr=1e-4,
                       extra={"warmup_epochs": 5, "fix_layer": 2, "annealing_epochs": 10})
    per_dataset = {"affectnet7": {"batch_size": 256, "fix_layer": 8},
                   "affectnet8": {"batch_size": 256, "fix_layer": 8}}
    balanced_datasets = ("affectnet7", "affectnet8")

    def __init__(self) -> None:
        super().__init__()
        self.edl: EvidentialLoss | None = None

    def model_name(self, labels: tuple[str, ...]) -> str:
        if len(labels) == 8:
            return "ua_fer_affectnet8"
        return "ua_fer_affectnet7" if labels and labels[0] == "neutral" else "ua_fer"

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models import create_model

        self.edl = EvidentialLoss(annealing_epochs=float(self.setting(cfg, "annealing_epochs", 10)),
                                  authors_code=bool(cfg.options.get("authors_code", False)))
        model = create_model(self.model_name(labels), **self.model_kwargs(cfg))
        self.attach_teacher(model)
        return model

    def task_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.edl(logits, targets, epoch=self.epoch)[0]

    def describe(self, cfg) -> dict[str, Any]:
        return {"recipe": self.name, "loss": "authors' code (squared error only)" if self.edl.authors_code
                else "paper (squared error + variance + annealed KL)", "kd_weight": KD_WEIGHT,
                "clip_weights": cfg.options.get("clip_weights")}
