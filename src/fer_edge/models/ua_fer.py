"""UA-FER (Zhou, Huang, Xu, Neurocomputing 2024): uncertainty-aware CLIP ViT-B/16 expression recognition.

In the authors' code (``HaoliangZhou/UAFER`` @ 4dc7852, ``shared/reference/ua_fer/SPEC.md``) the
network is CEPrompt's stage-1 network (:class:`~fer_edge.models.ceprompt.FrozenTextClipFer`):
CLIP image tower, global (CLS) + local (top-16 patches) cosine scores against frozen CLIP text
features of the BARE class names, blended with alpha (0.1 RAF-DB, 0.3 AffectNet) -- the paper's
Multi-granularity Feature Decoupling. Relation Uncertainty Calibration reads the blended scores as
Dirichlet evidence: evidence = ReLU(logits), probs = (evidence + 1) / S, uncertainty = K / S.

The deployment graph outputs ``evidence`` (primary, OutputSpec kind "evidence", turned into
probabilities and uncertainty by :func:`fer_edge.postprocess.evidential`) and ``uncertainty``.
Because logits lie in [-1, 1], uncertainty lies in [0.5, 1]: a relative, not an absolute, measure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..labels import LABEL_SETS
from ..metadata import OutputSpec
from .ceprompt import ClipFerDeploy, FrozenTextClipFer, checkpoint_filter_fn, input_spec
from .clip_common import ClipArch
from .registry import MethodConfig, register_model

PROMPT_TEMPLATE = "{}"  # bare class names


def dirichlet(evidence: torch.Tensor) -> dict[str, torch.Tensor]:
    """alpha, strength S (B,1), probs alpha/S, uncertainty K/S (B,1), belief e/S from evidence (B,K).

    The same convention as :func:`fer_edge.postprocess.evidential` (numpy, runtime side).
    """
    alpha = evidence + 1.0
    strength = alpha.sum(dim=-1, keepdim=True)
    return {"alpha": alpha, "strength": strength, "probs": alpha / strength,
            "uncertainty": evidence.shape[-1] / strength, "belief": evidence / strength}


class EvidentialDeploy(ClipFerDeploy):
    """image -> (evidence (B,K), uncertainty (B,1)); ReLU and the reductions are float ops after the head."""

    def forward(self, images: torch.Tensor):
        evidence = torch.relu(super().forward(images))
        return evidence, dirichlet(evidence)["uncertainty"]


class UAFER(FrozenTextClipFer):
    deploy_class = EvidentialDeploy

    def __init__(self, labels: Sequence[str] = LABEL_SETS["rafdb"], *, alpha: float = 0.1, topk: int = 16,
                 arch: str | ClipArch = "ViT-B-16", clip_weights: str | Path | None = None):
        super().__init__(labels, template=PROMPT_TEMPLATE, alpha=alpha, topk=topk, arch=arch,
                         clip_weights=clip_weights)

    def deploy_reference(self, images: torch.Tensor):
        """What the deploy graph must output, computed by the full model: (evidence, uncertainty).
        The exporter's folded-graph check compares against this instead of the bare logits."""
        out = self.evidential_outputs(self(images))
        return out["evidence"], out["uncertainty"]

    @staticmethod
    def evidential_outputs(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The authors' ``evd_results``/``evidence_output``: evidence, alpha, strength, probs, uncertainty, belief."""
        evidence = torch.relu(logits)
        return {"evidence": evidence, **dirichlet(evidence)}


_PAPER = ("Zhou, Huang, Xu: UA-FER: Uncertainty-aware Representation Learning for Facial Expression "
          "Recognition, Neurocomputing 2024")


def _register(name: str, labels: tuple[str, ...], alpha: float, dataset: str):
    cfg = MethodConfig(
        name=name, family="ua_fer", labels=labels, input=input_spec(),
        output=OutputSpec(name="evidence", kind="evidence", extra=("uncertainty",)),
        licence="unknown (authors' repository states none); CLIP weights: MIT (OpenAI)",
        paper=_PAPER, checkpoint_filter=checkpoint_filter_fn,
        notes=(f"{dataset}, alpha={alpha}. Uncertainty = K/S lies in [0.5, 1] because the scores are "
               "bounded; compare it between faces rather than reading it as a probability."),
    )

    def build(**kwargs: Any) -> UAFER:
        kwargs.setdefault("alpha", alpha)
        return UAFER(labels, **kwargs)

    build.__name__ = name
    build.__doc__ = f"UA-FER for {dataset}; kwargs (clip_weights=, ...) go to :class:`UAFER`."
    return register_model(cfg)(build)


ua_fer = _register("ua_fer", LABEL_SETS["rafdb"], 0.1, "RAF-DB (7 classes)")
ua_fer_affectnet7 = _register("ua_fer_affectnet7", LABEL_SETS["affectnet7"], 0.3, "AffectNet (7 classes)")
ua_fer_affectnet8 = _register("ua_fer_affectnet8", LABEL_SETS["affectnet8"], 0.3, "AffectNet (8 classes)")
