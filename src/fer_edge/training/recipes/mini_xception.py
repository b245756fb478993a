"""mini-Xception (the default model) trained the way Arriaga et al. describe: Adam, cross-entropy,
small shifts/rotations/zoom and horizontal flips, reduce-on-plateau. Their Keras script used
ImageDataGenerator(rotation 10, shifts 0.1, zoom 0.1, hflip) and lr 1e-3 with ReduceLROnPlateau."""
from __future__ import annotations

import torch

from . import HParams, Recipe, register_recipe


@register_recipe
class MiniXceptionRecipe(Recipe):
    name = "mini_xception"
    defaults = HParams(epochs=100, batch_size=32, lr=1e-3)

    def transforms(self, cfg, spec, train: bool):
        from torchvision.transforms import v2

        from ..datasets import ImageTransform

        if not train:
            return ImageTransform(spec)
        return ImageTransform(spec, [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                                     v2.RandomHorizontalFlip(0.5)])

    def scheduler(self, optimizer, cfg):
        # Stepped per epoch by the trainer; plateau detection would need the validation loss, so a
        # fixed decay stands in for Keras' ReduceLROnPlateau.
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(cfg.epochs // 3, 1), gamma=0.5)

    def describe(self, cfg):
        return {"recipe": self.name, "optimizer": "Adam", "augment": "affine(10deg, 0.1 shift, 0.9-1.1 zoom), hflip",
                "scheduler": "StepLR x0.5 every epochs/3"}
