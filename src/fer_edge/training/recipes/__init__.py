"""Training recipes: what is specific to a method, as data plus a few overridable hooks.

A method's recipe module defines a :class:`Recipe` subclass and registers it with
:func:`register_recipe`; :class:`~fer_edge.training.trainer.Trainer` never needs editing for a new
method. Hooks, in the order the trainer calls them:

``hparams(dataset)`` default epochs / batch / lr (and anything else) per data set ->
``model_name(labels)`` registry variant for the label count -> ``build_model(cfg, labels)`` ->
``transforms(cfg, spec, train)`` -> ``sampler_kind(cfg)`` -> ``optimizer(model, cfg)`` ->
``scheduler(optimizer, cfg)`` (stepped once per epoch) -> per batch ``train_step(...)``, which by
default calls ``forward`` and ``loss``; evaluation calls ``predict`` (logits).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ...errors import FerEdgeError
from ...metadata import InputSpec
from ..precision import Precision


@dataclass
class HParams:
    """Defaults a recipe gives for one data set; CLI flags override them."""

    epochs: int
    batch_size: int
    lr: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    loss: float
    logits: torch.Tensor  # detached, for running training accuracy
    skipped: bool = False  # update skipped (fp16 overflow)


class Recipe:
    """Base recipe: Adam, cross-entropy, horizontal flip, one backward per step."""

    name = "base"  # registry name of the method (the --method value)
    aliases: tuple[str, ...] = ()  # other --method values it serves (e.g. the 8-class variant)
    defaults = HParams(epochs=30, batch_size=64, lr=1e-3)
    per_dataset: dict[str, dict[str, Any]] = {}  # dataset -> overrides of `defaults` fields / extra keys
    balanced_datasets: tuple[str, ...] = ()  # data sets trained with the class-balanced sampler
    find_unused_parameters = False  # DDP flag, for models with branches some steps do not use

    # --- hyper-parameters -------------------------------------------------------------------------
    def hparams(self, dataset: str) -> HParams:
        over = dict(self.per_dataset.get(dataset, {}))
        fields_ = {k: over.pop(k) for k in ("epochs", "batch_size", "lr") if k in over}
        return replace(self.defaults, **fields_, extra={**self.defaults.extra, **over})

    # --- model ------------------------------------------------------------------------------------
    def model_name(self, labels: tuple[str, ...]) -> str:
        return self.name

    def build_model(self, cfg, labels: tuple[str, ...]) -> nn.Module:
        from ...models import create_model

        return create_model(self.model_name(labels), num_classes=len(labels), **cfg.model_kwargs)

    def input_spec(self, model: nn.Module, cfg) -> InputSpec:
        """The preprocessing the model is trained with (and that its checkpoint metadata records)."""
        from ...models import get_config

        spec = replace(get_config(self.model_name(tuple(cfg.labels))).input)
        size = getattr(model, "input_size", None)
        if size is not None:  # reduced configurations may train at another size
            spec.size = tuple(size)
        return spec

    # --- data -------------------------------------------------------------------------------------
    def transforms(self, cfg, spec: InputSpec, train: bool):
        from torchvision.transforms import v2

        from ..datasets import ImageTransform

        return ImageTransform(spec, [v2.RandomHorizontalFlip(0.5)] if train else [])

    def sampler_kind(self, cfg) -> str:
        """"balanced" (class-balanced, with replacement) or "shuffle"; the user's --sampler wins."""
        chosen = getattr(cfg, "sampler", "auto")
        if chosen != "auto":
            return chosen
        return "balanced" if cfg.dataset in self.balanced_datasets else "shuffle"

    # --- optimisation -----------------------------------------------------------------------------
    def trainable(self, model: nn.Module):
        return [p for p in model.parameters() if p.requires_grad]

    def optimizer(self, model: nn.Module, cfg) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.trainable(model), lr=cfg.lr)

    def scheduler(self, optimizer: torch.optim.Optimizer, cfg):
        return None

    def forward(self, model: nn.Module, images: torch.Tensor):
        return model(images)

    def logits(self, outputs) -> torch.Tensor:
        """The (B, C) logits inside whatever `forward` returns (a tensor by default)."""
        return outputs

    def loss(self, outputs, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.logits(outputs), targets)

    def train_step(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                   optimizer: torch.optim.Optimizer, precision: Precision) -> StepResult:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            out = self.forward(model, images)
            loss = self.loss(out, targets)
        precision.backward(loss)
        precision.step(optimizer)
        return StepResult(float(loss.detach()), self.logits(out).detach().float())

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return self.logits(self.forward(model, images)).float()

    # --- bookkeeping ------------------------------------------------------------------------------
    def describe(self, cfg) -> dict[str, Any]:
        """Recipe facts for the training log (what a reader needs to know how the model was trained)."""
        return {"recipe": self.name}


def sam_train_step(recipe: Recipe, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                   optimizer, precision: Precision) -> StepResult:
    """Two-pass SAM update (optimizer is :class:`~fer_edge.training.sam.SAM`); loss = mean of both passes,
    as POSTER V2's meters report it."""
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        out = recipe.forward(model, images)
        loss1 = recipe.loss(out, targets)
    precision.backward(loss1)
    logits = recipe.logits(out).detach().float()
    if not precision.unscale(optimizer):
        optimizer.zero_grad(set_to_none=True)
        precision.update()
        return StepResult(float(loss1.detach()), logits, skipped=True)
    optimizer.first_step(zero_grad=True)
    with precision.autocast():
        loss2 = recipe.loss(recipe.forward(model, images), targets)
    precision.backward(loss2)
    if not precision.unscale(optimizer):
        optimizer.restore()
        optimizer.zero_grad(set_to_none=True)
        precision.update(overflow=True)
        return StepResult(float(loss1.detach()), logits, skipped=True)
    optimizer.second_step(zero_grad=True)
    precision.update()
    return StepResult(0.5 * (float(loss1.detach()) + float(loss2.detach())), logits)


_RECIPES: dict[str, type[Recipe]] = {}
# method -> module of fer_edge.training.recipes that registers it (imported on first use)
RECIPE_MODULES = {"poster_v2": "poster_v2", "poster_v2_8cls": "poster_v2", "mini_xception": "mini_xception",
                  "ceprompt": "ceprompt", "ceprompt_stage1": "ceprompt", "ceprompt_affectnet7": "ceprompt",
                  "ceprompt_stage1_affectnet7": "ceprompt", "ua_fer": "ua_fer", "ua_fer_affectnet7": "ua_fer",
                  "ua_fer_affectnet8": "ua_fer", "dfer_clip": "dfer_clip", "dfer_clip_mafw": "dfer_clip"}


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    for n in (cls.name, *cls.aliases):
        _RECIPES[n] = cls
    return cls


def get_recipe(method: str) -> Recipe:
    if method not in _RECIPES and method in RECIPE_MODULES:
        try:
            importlib.import_module(f"{__name__}.{RECIPE_MODULES[method]}")
        except ModuleNotFoundError as exc:
            if not (exc.name or "").endswith(RECIPE_MODULES[method]):
                raise
    if method not in _RECIPES:
        known = sorted(set(_RECIPES) | {m for m, mod in RECIPE_MODULES.items() if _module_exists(mod)})
        raise FerEdgeError(f"no training recipe for {method!r}; trainable methods: {', '.join(known)}")
    return _RECIPES[method]()


def _module_exists(mod: str) -> bool:
    return importlib.util.find_spec(f"{__name__}.{mod}") is not None


def list_recipes() -> list[str]:
    return sorted(m for m, mod in RECIPE_MODULES.items() if _module_exists(mod))
