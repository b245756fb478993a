"""UA-FER's evidential loss against values worked out by hand (fractions in the comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_edge.training.evidential import EvidentialLoss, annealing_coefficient, kl_to_uniform_dirichlet  # noqa: E402

# Sample A: logits (0.5, -1, 2), class 0 -> evidence (0.5, 0, 2), alpha (1.5, 1, 3), S = 11/2,
#   p = (3/11, 2/11, 6/11); squared error = (8/11)^2 + (2/11)^2 + (6/11)^2 = 104/121;
#   variance = sum p(1-p) / (S+1) = (72/121) / (13/2) = 144/1573;
#   alpha~ (target evidence removed) = (1, 1, 3): KL = lnG(5) - lnG(3) - lnG(3) + 2(psi(3) - psi(5)) = ln 6 - 7/6.
# Sample B: logits (0, 0, 0), class 2 -> alpha (1, 1, 1), S = 3, p = 1/3 each;
#   squared error = 2/9 + 4/9 = 2/3; variance = 3 * (2/9) / 4 = 1/6; alpha~ = (1, 1, 1): KL = 0.
LOGITS = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
TARGET = torch.tensor([0, 2])
SE = (104 / 121 + 2 / 3) / 2
VAR = (144 / 1573 + 1 / 6) / 2
KL = (math.log(6) - 7 / 6) / 2


def test_kl_to_uniform_dirichlet_by_hand():
    kl = kl_to_uniform_dirichlet(torch.tensor([[1.0, 1.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64))
    assert kl.tolist() == pytest.approx([math.log(6) - 7 / 6, 0.0], abs=1e-12)


@pytest.mark.parametrize("epoch,coef", [(0, 0.0), (5, 0.5), (10, 1.0), (25, 1.0)])
def test_paper_loss_with_annealed_kl(epoch, coef):
    assert annealing_coefficient(epoch, 10) == coef
    loss, parts = EvidentialLoss(annealing_epochs=10)(LOGITS, TARGET, epoch=epoch)
    assert float(parts["squared_error"]) == pytest.approx(SE, abs=1e-12)
    assert float(parts["variance"]) == pytest.approx(VAR, abs=1e-12)
    assert float(parts["kl"]) == pytest.approx(KL, abs=1e-12)
    assert float(loss) == pytest.approx(SE + VAR + coef * KL, abs=1e-12)


def test_authors_code_mode_is_squared_error_only():
    for epoch in (0, 5, 50):
        loss, _ = EvidentialLoss(authors_code=True)(LOGITS, TARGET, epoch=epoch)
        assert float(loss) == pytest.approx(SE, abs=1e-12)


def test_gradients_push_evidence_towards_the_target():
    logits = torch.tensor([[0.2, 0.1, 0.3]], requires_grad=True)
    loss, _ = EvidentialLoss()(logits, torch.tensor([0]), epoch=10)
    loss.backward()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 2]  # raise the target, lower the wrong evidence


def test_matches_the_authors_check_values(reference_dir):
    # SPEC.md section 2.3: golden logits, labels [0, 3], epoch 0.
    g = np.load(reference_dir / "ua_fer" / "golden.npz")
    logits = torch.from_numpy(g["logits"]).double()
    target = torch.tensor([0, 3])
    loss_fn = EvidentialLoss(authors_code=True)
    per_sample = [float(loss_fn(logits[i:i + 1], target[i:i + 1])[1]["squared_error"]) for i in range(2)]
    variance = [float(loss_fn(logits[i:i + 1], target[i:i + 1])[1]["variance"]) for i in range(2)]
    assert per_sample == pytest.approx([0.84620, 0.87964], abs=1e-5)
    assert variance == pytest.approx([0.08086, 0.08091], abs=1e-5)
