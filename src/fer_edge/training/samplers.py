"""Class-balanced sampling (AffectNet's recipe in POSTER V2, CEPrompt and UA-FER), DDP-aware.

Samples are drawn with replacement with probability proportional to 1 / (count of their class), as
``torchsampler.ImbalancedDatasetSampler`` does, so each class is seen about equally often. Under
torchrun every rank draws the same seeded sequence and takes its own interleaved share.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Sampler


def class_balanced_weights(targets) -> np.ndarray:
    t = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(t)
    return 1.0 / counts[t]


class ClassBalancedSampler(Sampler[int]):
    def __init__(self, targets, num_samples: int | None = None, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.weights = torch.as_tensor(class_balanced_weights(targets), dtype=torch.double)
        self.total = num_samples or len(self.weights)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.total / self.world_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        per_rank = len(self)
        idx = torch.multinomial(self.weights, per_rank * self.world_size, replacement=True, generator=g)
        return iter(idx[self.rank::self.world_size].tolist())
