"""The executed-cost counter on a hand-countable model: unused modules, bare parameters, inline matmuls."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fer_edge.models.profile import profile_model  # noqa: E402


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, groups=1)  # 8*3*9 + 8 params
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # 8*9 + 8
        self.norm = nn.LayerNorm(8)  # 16
        self.fc = nn.Linear(8, 4)  # 36
        self.scale = nn.Parameter(torch.ones(4))  # bare: counted as executed, not as leaf
        self.unused = nn.Linear(100, 100)  # built, never run

    def forward(self, x):
        x = self.dw(self.conv(x))  # (B, 8, 5, 5)
        t = self.norm(x.flatten(2).transpose(1, 2))  # (B, 25, 8)
        a = t @ t.transpose(1, 2)  # (B, 25, 25), inner 8
        return self.fc(a @ t) * self.scale  # (B, 25, 8) inner 25 -> (B, 25, 4)


def test_counts_by_hand():
    prof = profile_model(Toy(), torch.zeros(2, 3, 5, 5))
    leaf = (8 * 27 + 8) + (8 * 9 + 8) + 16 + 36
    assert prof.params_leaf == leaf
    assert prof.params_executed == leaf + 4
    assert prof.params_total == leaf + 4 + 100 * 100 + 100
    assert prof.macs["conv"] == 2 * 8 * 25 * 27 + 2 * 8 * 25 * 9
    assert prof.macs["norm"] == 2 * 25 * 8
    assert prof.macs["matmul"] == 2 * 25 * 25 * 8 + 2 * 25 * 8 * 25
    assert prof.macs["linear"] == 2 * 25 * 4 * 8
    assert prof.module_macs == prof.total_macs - prof.macs["matmul"]


def test_restores_training_mode():
    model = Toy().train()
    profile_model(model, torch.zeros(1, 3, 5, 5))
    assert model.training
