"""UA-FER's evidential (Dirichlet) loss, after Sensoy et al. (NeurIPS 2018) as UA-FER's paper uses it.

For logits z and K classes: evidence e = ReLU(z), Dirichlet alpha = e + 1, strength S = sum(alpha),
expected probabilities p = alpha / S, uncertainty u = K / S (the convention of
:func:`fer_edge.postprocess.evidential`). With a one-hot target y the paper's loss is

    L = sum_k (y_k - p_k)^2 + p_k (1 - p_k) / (S + 1)              expected squared error
        + lambda_t * KL( Dir(alpha~) || Dir(1) ),  alpha~ = (alpha - 1)(1 - y) + 1
    lambda_t = min(1, epoch / annealing_epochs)

averaged over the batch. The authors' released code (``utils/edl_loss.py`` as configured in
``models/uafer.py``) computes the variance term and lambda_t but adds neither: only the first sum
is optimised. ``authors_code=True`` reproduces exactly that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.ua_fer import dirichlet

EVIDENCE_FUNCTIONS = {
    "relu": torch.relu,
    "exp": lambda z: torch.exp(torch.clamp(z, -10.0, 10.0)),
    "softplus": F.softplus,
}


def kl_to_uniform_dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """KL( Dir(alpha) || Dir(1,...,1) ) per row, (B,)."""
    k = alpha.shape[-1]
    s = alpha.sum(dim=-1)
    return (torch.lgamma(s) - torch.lgamma(alpha.new_tensor(float(k))) - torch.lgamma(alpha).sum(dim=-1)
            + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(s).unsqueeze(-1))).sum(dim=-1))


def annealing_coefficient(epoch: float, annealing_epochs: float) -> float:
    return min(1.0, float(epoch) / float(annealing_epochs)) if annealing_epochs > 0 else 1.0


class EvidentialLoss(nn.Module):
    """The evidential loss on logits; ``forward(logits, target, epoch)`` -> (loss, parts)."""

    def __init__(self, *, evidence: str = "relu", annealing_epochs: float = 10.0, authors_code: bool = False):
        super().__init__()
        if evidence not in EVIDENCE_FUNCTIONS:
            raise ValueError(f"evidence must be one of {sorted(EVIDENCE_FUNCTIONS)}, got {evidence!r}")
        self.evidence = EVIDENCE_FUNCTIONS[evidence]
        self.annealing_epochs = annealing_epochs
        self.authors_code = authors_code

    def forward(self, logits: torch.Tensor, target: torch.Tensor, epoch: float = 0.0):
        d = dirichlet(self.evidence(logits))
        y = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
        p, s = d["probs"], d["strength"]
        squared_error = ((y - p) ** 2).sum(dim=-1)
        variance = (p * (1.0 - p) / (s + 1.0)).sum(dim=-1)
        coef = annealing_coefficient(epoch, self.annealing_epochs)
        kl = kl_to_uniform_dirichlet((d["alpha"] - 1.0) * (1.0 - y) + 1.0)
        parts = {"squared_error": squared_error.mean(), "variance": variance.mean(), "kl": kl.mean(),
                 "annealing": torch.tensor(coef)}
        if self.authors_code:
            loss = parts["squared_error"]
        else:
            loss = parts["squared_error"] + parts["variance"] + coef * parts["kl"]
        return loss, parts
