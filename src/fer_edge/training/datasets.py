"""Torch side of the data: `FaceSamples` -> (tensor, target) pairs, and transforms driven by InputSpec.

The transform order follows the authors' pipelines: resize to the model's input size, geometric and
colour augmentation on the uint8 image, scale and normalise with the metadata's mean/std, then
tensor-level augmentation such as RandomErasing (POSTER V2 erases after Normalize, so erased pixels
are 0 in normalised space).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.samples import FaceSamples
from ..metadata import InputSpec

_INTERP = {"nearest": "NEAREST", "bilinear": "BILINEAR", "bicubic": "BICUBIC", "area": "BILINEAR"}


class FaceTensorDataset(Dataset):
    """Loads sample i in the model's colour layout and applies `transform`."""

    def __init__(self, samples: FaceSamples, transform: Callable[[np.ndarray], torch.Tensor], color: str = "RGB"):
        self.samples, self.transform, self.color = samples, transform, color

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.transform(self.samples.load(i, self.color)), int(self.samples.targets[i])


class ImageTransform:
    """uint8 (H, W[, C]) -> normalised float (C, H, W): resize, `uint8_ops`, normalise, `tensor_ops`."""

    def __init__(self, spec: InputSpec, uint8_ops: Sequence[Callable] = (), tensor_ops: Sequence[Callable] = ()):
        from torchvision.transforms import InterpolationMode, v2

        self.resize = v2.Resize(tuple(spec.size), interpolation=getattr(InterpolationMode, _INTERP[spec.resize]),
                                antialias=True)
        self.uint8_ops = list(uint8_ops)
        self.tensor_ops = list(tensor_ops)
        c = spec.channels
        self.scale = float(spec.scale)
        self.mean = torch.tensor(spec.mean * (c if len(spec.mean) == 1 else 1), dtype=torch.float32).view(c, 1, 1)
        self.std = torch.tensor(spec.std * (c if len(spec.std) == 1 else 1), dtype=torch.float32).view(c, 1, 1)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(img))
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        t = self.resize(t)
        for op in self.uint8_ops:
            t = op(t)
        t = (t.float() * self.scale - self.mean) / self.std
        for op in self.tensor_ops:
            t = op(t)
        return t
