"""CEPrompt's two training stages as the authors' code runs them (shared/reference/ceprompt/SPEC.md, sections 2-4).

Stage 1, EVA (method/model ``ceprompt_stage1``): the CLIP image tower, scored against
frozen CLIP text features of the stage-1 template. Blocks 0-1, the patch/CLS/position embeddings and ln_pre
are frozen; blocks 2-11, ln_post and the projection train with AdamW (lr 1e-4, weight decay 5e-4 on
matrices, 0 on vectors) and BEiT layer-wise lr decay 0.65^(L+1-id). Loss = CE + 1.0 * L1(student CLS
embedding (L2-normalised), frozen-CLIP teacher CLS embedding (unnormalised)), as the code does it.

Stage 2, CAT (method/model ``ceprompt``): starts from a stage-1 checkpoint
(``options["stage1_weights"]``), freezes everything except ``prompt_learner.*``, trains the prompts with
SGD (lr 2e-3, momentum 0.9, weight decay 5e-4) and plain CE.

Both stages: linear warm-up then half-cycle cosine to min_lr 1e-8. The authors step the schedule per
iteration; the shared trainer steps schedulers once per epoch, so the factor is evaluated at the middle
of each epoch (our choice, documented in docs/methods/ceprompt.md). CLIP weights: ``options["clip_weights"]``.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ...errors import FerEdgeError
from . import HParams, Recipe, StepResult, register_recipe

LAYER_DECAY = 0.65
MIN_LR = 1e-8
WEIGHT_DECAY = 5e-4
KD_WEIGHT = 1.0


def layer_id(name: str, num_layers: int) -> int:
    """BEiT-style depth of a parameter of our ClipFerNet: embeddings 0, block i -> i+1, the rest num_layers+1."""
    if name.startswith(("visual.conv1", "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre")):
        return 0
    if name.startswith("visual.transformer.resblocks."):
        return int(name.split(".")[3]) + 1
    return num_layers + 1


def layer_decay_groups(model: nn.Module, *, fix_layer: int, weight_decay: float = WEIGHT_DECAY,
                       layer_decay: float = LAYER_DECAY) -> list[dict[str, Any]]:
    """Param groups with ``lr_scale``; freezes (requires_grad=False) every parameter at depth <= fix_layer
    and everything outside the image tower (the authors' ``param_groups_lrd(fix_layer=...)``)."""
    num_layers = len(model.visual.transformer.resblocks)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        lid = layer_id(name, num_layers)
        if not name.startswith("visual.") or lid <= fix_layer:
            p.requires_grad_(False)
            continue
        p.requires_grad_(True)
        decay = p.ndim >= 2
        g = groups.setdefault((lid, decay), {"params": [], "weight_decay": weight_decay if decay else 0.0,
                                             "lr_scale": layer_decay ** (num_layers + 1 - lid)})
        g["params"].append(p)
    return list(groups.values())


def warmup_cosine(epochs: int, warmup: int, base_lr: float, min_lr: float = MIN_LR):
    """Factor of the base lr at epoch e, the authors' lr_sched evaluated at the middle of the epoch."""
    def factor(e: int) -> float:
        t = e + 0.5
        if t < warmup:
            return t / warmup
        frac = (t - warmup) / max(epochs - warmup, 1e-9)
        return (min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))) / base_lr
    return factor


class ClipFerRecipe(Recipe):
    """What CEPrompt stage 1 and UA-FER share: layer-decayed AdamW on the image tower, KD to a frozen CLIP."""

    fix_layer = 2
    warmup_epochs = 5

    def __init__(self) -> None:
        self.teacher: nn.Module | None = None
        self._scheduler = None

    @staticmethod
    def setting(cfg, key: str, default: Any) -> Any:
        """A recipe setting: ``cfg.options`` overrides the per-data-set default (e.g. fix_layer, warmup_epochs)."""
        return cfg.options.get(key, cfg.hparams.extra.get(key, default))

    def model_kwargs(self, cfg) -> dict[str, Any]:
        kwargs = dict(cfg.model_kwargs)
        if cfg.options.get("clip_weights"):
            kwargs["clip_weights"] = cfg.options["clip_weights"]
        else:
            cfg.echo("WARNING: no --clip-weights: the CLIP towers start random (smoke tests only); "
                     "the published results start from OpenAI's ViT-B/16")
        return kwargs

    def attach_teacher(self, model: nn.Module) -> None:
        """The frozen KD teacher: the image tower as it is before training (CLIP, when CLIP weights are given)."""
        self.teacher = copy.deepcopy(model.visual).eval().requires_grad_(False)

    def transforms(self, cfg, spec, train: bool):
        from torchvision.transforms import v2

        from ..datasets import ImageTransform

        return ImageTransform(spec, [v2.RandomHorizontalFlip(0.5)] if train else [])

    def optimizer(self, model: nn.Module, cfg) -> torch.optim.Optimizer:
        fix = int(self.setting(cfg, "fix_layer", self.fix_layer))
        groups = layer_decay_groups(model, fix_layer=fix)
        for g in groups:
            g["lr"] = cfg.lr * g["lr_scale"]
        return torch.optim.AdamW(groups, lr=cfg.lr)

    def scheduler(self, optimizer, cfg):
        warmup = int(self.setting(cfg, "warmup_epochs", self.warmup_epochs))
        self._scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.epochs, warmup, cfg.lr))
        return self._scheduler

    @property
    def epoch(self) -> int:
        return self._scheduler.last_epoch if self._scheduler is not None else 0

    def forward(self, model: nn.Module, images: torch.Tensor):
        return model(images, return_features=self.teacher is not None and model.training)

    def logits(self, outputs) -> torch.Tensor:
        return outputs[0] if isinstance(outputs, tuple) else outputs

    def task_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets)

    def train_step(self, model, images, targets, optimizer, precision) -> StepResult:
        from ...models.clip_common import encode_image

        if self.teacher is not None and next(self.teacher.parameters()).device != images.device:
            self.teacher.to(images.device)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits, _local, g = self.forward(model, images)
            loss = self.task_loss(logits, targets)
            with torch.no_grad():
                g_teacher = encode_image(self.teacher, images)  # unnormalised, as the authors' KD target
            loss = loss + KD_WEIGHT * nn.functional.l1_loss(g, g_teacher)
        precision.backward(loss)
        precision.step(optimizer)
        return StepResult(float(loss.detach()), logits.detach().float())


def _affectnet_name(base: str, labels: tuple[str, ...]) -> str:
    return f"{base}_affectnet7" if labels and labels[0] == "neutral" else base


@register_recipe
class CEPromptStage1Recipe(ClipFerRecipe):
    """Stage 1 (EVA): ``fer-edge train --method ceprompt_stage1``; its checkpoint starts stage 2."""

    name = "ceprompt_stage1"
    aliases = ("ceprompt_stage1_affectnet7",)
    defaults = HParams(epochs=50, batch_size=128, lr=1e-4, extra={"warmup_epochs": 5, "fix_layer": 2})

    def model_name(self, labels: tuple[str, ...]) -> str:
        return _affectnet_name("ceprompt_stage1", labels)

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models import create_model

        model = create_model(self.model_name(labels), **self.model_kwargs(cfg))
        self.attach_teacher(model)
        return model

    def describe(self, cfg) -> dict[str, Any]:
        return {"recipe": self.name, "clip_weights": cfg.options.get("clip_weights"), "kd_weight": KD_WEIGHT}


@register_recipe
class CEPromptRecipe(ClipFerRecipe):
    """Stage 2 (CAT): ``fer-edge train --method ceprompt`` with ``options["stage1_weights"]``."""

    name = "ceprompt"
    aliases = ("ceprompt_affectnet7",)
    defaults = HParams(epochs=10, batch_size=128, lr=2e-3, extra={"warmup_epochs": 2})

    def model_name(self, labels: tuple[str, ...]) -> str:
        return _affectnet_name("ceprompt", labels)

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models import create_model

        model = create_model(self.model_name(labels), **self.model_kwargs(cfg))
        stage1 = cfg.options.get("stage1_weights")
        if stage1:
            self._load_stage1(model, stage1, cfg)
        else:
            cfg.echo("WARNING: CEPrompt stage 2 without --stage1-weights: the image tower is not the EVA-tuned one")
        return model

    @staticmethod
    def _load_stage1(model, path, cfg) -> None:
        """Stage-1 image tower into the stage-2 model (the authors load it with strict=False)."""
        from ...checkpoint import load_checkpoint, read_foreign_checkpoint
        from ...models.ceprompt import checkpoint_filter_fn

        sd = load_checkpoint(path)[0] if str(path).endswith(".safetensors") else checkpoint_filter_fn(
            read_foreign_checkpoint(path))
        visual = {k: v for k, v in sd.items() if k.startswith("visual.")}
        if not visual:
            raise FerEdgeError(f"{path} holds no CEPrompt image tower; pass a stage-1 checkpoint")
        model.load_state_dict(visual, strict=False)
        cfg.echo(f"stage 2 starts from {len(visual)} stage-1 image-tower tensors of {path}")

    def optimizer(self, model, cfg):
        for name, p in model.named_parameters():  # only the prompt learner trains (SPEC 3.5)
            p.requires_grad_("prompt_learner" in name)
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, momentum=0.9,
                               weight_decay=WEIGHT_DECAY)

    def forward(self, model, images):
        return model(images)

    def train_step(self, model, images, targets, optimizer, precision) -> StepResult:
        return Recipe.train_step(self, model, images, targets, optimizer, precision)  # plain CE, no KD

    def describe(self, cfg) -> dict[str, Any]:
        return {"recipe": self.name, "clip_weights": cfg.options.get("clip_weights"),
                "stage1_weights": cfg.options.get("stage1_weights")}
