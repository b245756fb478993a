"""CEPrompt (Zhou et al., TCSVT 2024): CLIP ViT-B/16 as a cosine classifier against class prompts.

Faithful to the authors' code (``HaoliangZhou/CEPrompt`` @ 7c502b0, described in
``shared/reference/ceprompt/SPEC.md``):

* image tower = CLIP ViT-B/16; ``ln_post`` on all 197 tokens, projected by ``projection_dist``;
* head = ``alpha * l2n_C(top16-mean over patches(L T^T)) + (1 - alpha) * l2n_C(g T^T)`` with
  per-token/per-class L2 normalisations and no temperature (:class:`GlobalLocalHead`);
* stage 1 ("EVA") scores against frozen CLIP text features of
  ``"a photo of a {name} facial expression, a type of facial expression."``;
* stage 2 ("CAT") adds a MaPLe-style prompt learner: 2 learned context vectors replace "a photo" in
  ``"a photo of {name}."``, and 8 deep text prompts, projected 512 -> 768, OVERWRITE sequence
  positions 1..2 (the first two patch tokens) before image blocks 1..8. Both kinds of deep prompt
  are rounded to fp16 and back, as the released code does.

UA-FER's network is CEPrompt's stage-1 network with other prompts and alpha, so the image tower,
head, frozen-text classifier, deployment graph and checkpoint filter live here and ``ua_fer`` reuses
them. Everything on the text side is input-independent: :meth:`ClipFerNet.deploy_module` folds it
into constants, giving an image -> logits graph without the text tower.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from ..metadata import InputSpec, OutputSpec
from .clip_common import (IMAGENET_MEAN, IMAGENET_STD, ClipArch, build_text, build_visual, encode_texts, fold,
                          get_arch, l2_normalize, load_clip_weights, read_clip_state_dict, read_token_embedding,
                          text_from_embeddings, tokenize, visual_tokens)
from .deployment import CLASSIFIER, FerModel, Graph
from .registry import MethodConfig, register_model

# The authors' prompts use these words for our canonical label names.
PROMPT_WORDS = {"disgust": "disgusted"}
STAGE1_TEMPLATE = "a photo of a {} facial expression, a type of facial expression."
STAGE2_TEMPLATE = "a photo of {}."
CTX_INIT = "a photo of"
# Official image-tower names (CEPrompt stage 1, UA-FER) -> ours (open_clip VisionTransformer under `visual.`).
_IMAGE_ROOTS = ("conv1.", "class_embedding", "positional_embedding", "ln_pre.", "transformer.", "ln_post.")


def prompt_words(labels: Sequence[str]) -> list[str]:
    return [PROMPT_WORDS.get(n, n) for n in labels]


def fp16_round(x: torch.Tensor) -> torch.Tensor:
    """The released code's ``.half()`` before concatenating prompts into the fp32 sequence."""
    return x.half().to(x.dtype)


class GlobalLocalHead(nn.Module):
    """Projected tokens + class text features -> (logits, local features, global feature).

    Every step is a separate float op (projection, L2 norms, matmul, TopK, mean, class-axis L2,
    blend): the exporter keeps this whole head out of INT8 because the class margins are small.
    """

    def __init__(self, alpha: float, topk: int):
        super().__init__()
        self.alpha, self.topk = float(alpha), int(topk)

    def forward(self, tokens: torch.Tensor, proj: torch.Tensor, text: torch.Tensor):
        feats = tokens @ proj                         # (B, 1+N, D)
        g = l2_normalize(feats[:, 0])                 # global (CLS) embedding
        local = l2_normalize(feats[:, 1:])            # per-patch embeddings
        t = text.t()
        s_local = (local @ t).topk(self.topk, dim=1).values.mean(dim=1)  # per class over patches
        s_global = g @ t
        logits = self.alpha * l2_normalize(s_local) + (1.0 - self.alpha) * l2_normalize(s_global)
        return logits, local, g


class ClipFerNet(FerModel):
    """CLIP image tower + global/local head; subclasses say where the class text features come from."""

    deploy_class: type = None  # set below: ClipFerDeploy; UA-FER's subclass adds its evidential outputs

    def __init__(self, labels: Sequence[str], *, alpha: float, topk: int = 16, arch: str | ClipArch = "ViT-B-16"):
        super().__init__()
        self.labels = tuple(labels)
        self.arch = get_arch(arch)
        self.visual = build_visual(self.arch)
        self.head = GlobalLocalHead(alpha, topk)

    # subclasses -------------------------------------------------------------------------------------
    def text_features(self) -> torch.Tensor:
        """(C, D) L2-normalised class text features."""
        raise NotImplementedError

    def visual_prompts(self) -> list[torch.Tensor]:
        """Deep prompts that overwrite image tokens 1.. before blocks 1..n (none by default)."""
        return []

    # forward ----------------------------------------------------------------------------------------
    def forward_features(self, images: torch.Tensor, text: torch.Tensor | None = None,
                         prompts: Sequence[torch.Tensor] | None = None):
        """(logits, local (B,N,D), global (B,D)) as the authors' forward returns them."""
        text = self.text_features() if text is None else text
        prompts = self.visual_prompts() if prompts is None else prompts
        tokens = visual_tokens(self.visual, images, deep_prompts=prompts)
        return self.head(tokens, self.visual.proj, text)

    def forward(self, images: torch.Tensor, return_features: bool = False):
        """Logits; with ``return_features`` (training with KD) (logits, local, global) through one call,
        so DistributedDataParallel sees the forward."""
        out = self.forward_features(images)
        return out if return_features else out[0]

    @property
    def input_size(self) -> tuple[int, int]:
        """Training/export input size (reduced configurations use smaller images)."""
        return (self.arch.image_size, self.arch.image_size)

    def deployment(self) -> list[Graph]:
        """One graph: the image tower and the head, the text side folded into constants."""
        return [Graph(CLASSIFIER, self.deploy_module(), self.example_input(), self.config.metadata(),
                      reference=self.deploy_reference)]

    def deploy_reference(self, images: torch.Tensor):
        """What the folded graph must output, computed by the full model: its logits."""
        return self(images)

    def deploy_module(self) -> nn.Module:
        """image -> logits (UA-FER: evidence, uncertainty); the text side folded into constants."""
        prompts = fold(lambda: torch.stack(self.visual_prompts())) if self.visual_prompts() else None
        return self.deploy_class(self.visual, self.head, fold(self.text_features), prompts).eval()


class ClipFerDeploy(nn.Module):
    """The deployment graph: the image tower, the head, and the folded text side as buffers."""

    def __init__(self, visual: nn.Module, head: GlobalLocalHead, text: torch.Tensor,
                 prompts: torch.Tensor | None = None):
        super().__init__()
        self.visual, self.head = visual, head
        self.register_buffer("text_features", text)      # (C, D), unit rows
        self.register_buffer("visual_prompts", prompts)  # (n, P, width), already fp16-rounded, or None

    def forward(self, images: torch.Tensor):
        prompts = None if self.visual_prompts is None else list(self.visual_prompts.unbind(0))
        tokens = visual_tokens(self.visual, images, deep_prompts=prompts)
        return self.head(tokens, self.visual.proj, self.text_features)[0]


ClipFerNet.deploy_class = ClipFerDeploy


class FrozenTextClipFer(ClipFerNet):
    """Scores against frozen CLIP text features of fixed prompts (CEPrompt stage 1, UA-FER).

    The authors call the frozen CLIP text tower on every forward; its output never changes, so it
    is computed once from ``--clip-weights`` and kept as the buffer ``class_embeddings`` (raw,
    unnormalised), which our checkpoints store. Without CLIP weights the buffer is random and the
    model refuses to export or load an authors' checkpoint (their files hold no text tower).
    """

    def __init__(self, labels: Sequence[str], *, template: str, alpha: float, topk: int = 16,
                 arch: str | ClipArch = "ViT-B-16", clip_weights: str | Path | None = None):
        super().__init__(labels, alpha=alpha, topk=topk, arch=arch)
        self.prompts = [template.format(w) for w in prompt_words(labels)]
        self.register_buffer("class_embeddings", torch.randn(len(self.labels), self.arch.embed_dim))
        self.text_ready = False
        if clip_weights is not None:
            text = build_text(self.arch)
            load_clip_weights(clip_weights, visual=self.visual, text=text)
            self.set_class_embeddings(fold(lambda: encode_texts(text, self.prompts)))

    def set_class_embeddings(self, raw: torch.Tensor) -> None:
        """Install precomputed (C, D) CLIP text features of ``self.prompts``."""
        if tuple(raw.shape) != tuple(self.class_embeddings.shape):
            raise FerEdgeError(f"class embeddings must be {tuple(self.class_embeddings.shape)}, got {tuple(raw.shape)}")
        self.class_embeddings.copy_(raw)
        self.text_ready = True

    def text_features(self) -> torch.Tensor:
        return l2_normalize(self.class_embeddings)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "class_embeddings" in state_dict:  # our checkpoints carry the folded text
            self.text_ready = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def deploy_module(self) -> nn.Module:
        if not self.text_ready:
            raise FerEdgeError("this model has no CLIP text features yet: build it with --clip-weights "
                               "(the authors' checkpoint holds no text tower)")
        return super().deploy_module()


class CatPromptLearner(nn.Module):
    """CEPrompt's Conception-Appearance Tuner prompts (names as in the authors' ``CATPromptLearner``)."""

    def __init__(self, words: Sequence[str], arch: ClipArch, *, n_ctx: int = 2, depth: int = 9,
                 token_embedding: torch.Tensor | None = None):
        super().__init__()
        width, n_cls, length = arch.text_width, len(words), arch.context_length
        tokens = tokenize([STAGE2_TEMPLATE.format(w) for w in words], context_length=length)
        self.register_buffer("tokenized_prompts", tokens, persistent=False)  # only for the EOT position
        if token_embedding is not None:
            with torch.no_grad():
                emb = token_embedding[tokens]                          # (C, L, width)
                ctx = token_embedding[tokenize([CTX_INIT], context_length=length)[0, 1:1 + n_ctx]]
        else:
            emb = 0.02 * torch.randn(n_cls, length, width)
            ctx = 0.02 * torch.randn(n_ctx, width)
        self.ctx = nn.Parameter(ctx.clone())
        self.register_buffer("token_prefix", emb[:, :1].clone())          # SOT
        self.register_buffer("token_suffix", emb[:, 1 + n_ctx:].clone())  # "of {name}." EOT pad...
        self.proj = nn.Linear(width, arch.vision_width)  # the authors compute proj(ctx) and never use it
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(0.02 * torch.randn(n_ctx, width)) for _ in range(depth - 1)])
        layer = nn.Linear(width, arch.vision_width)
        self.compound_prompt_projections = nn.ModuleList(
            [nn.Linear(width, arch.vision_width) for _ in range(depth - 1)])
        for p in self.compound_prompt_projections:  # the authors deep-copy one layer: identical init
            p.load_state_dict(layer.state_dict())

    def prompt_embeddings(self) -> torch.Tensor:
        ctx = self.ctx.unsqueeze(0).expand(self.token_prefix.shape[0], -1, -1)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)

    def text_deep_prompts(self) -> list[torch.Tensor]:
        return [fp16_round(p) for p in self.compound_prompts_text]

    def visual_deep_prompts(self, rounded: bool = True) -> list[torch.Tensor]:
        out = [proj(p) for proj, p in zip(self.compound_prompt_projections, self.compound_prompts_text)]
        return [fp16_round(v) for v in out] if rounded else out


class CEPrompt(ClipFerNet):
    """CEPrompt's final (stage-2, CAT) model: prompted image tower, prompted text encoder, global/local head."""

    def __init__(self, labels: Sequence[str] = LABEL_SETS["rafdb"], *, alpha: float = 0.5, topk: int = 16,
                 n_ctx: int = 2, prompts_depth: int = 9, arch: str | ClipArch = "ViT-B-16",
                 clip_weights: str | Path | None = None):
        super().__init__(labels, alpha=alpha, topk=topk, arch=arch)
        self.text_encoder = build_text(self.arch)
        self.text_encoder.token_embedding = None  # not part of the authors' model; prompts come as embeddings
        token_embedding = None
        if clip_weights is not None:
            sd = read_clip_state_dict(clip_weights)
            load_clip_weights(clip_weights, visual=self.visual, text=self.text_encoder, state_dict=sd)
            token_embedding = read_token_embedding(clip_weights, state_dict=sd)
        self.prompt_learner = CatPromptLearner(prompt_words(self.labels), self.arch, n_ctx=n_ctx,
                                               depth=prompts_depth, token_embedding=token_embedding)

    def text_features(self) -> torch.Tensor:
        pl = self.prompt_learner
        raw = text_from_embeddings(self.text_encoder, pl.prompt_embeddings(), pl.tokenized_prompts,
                                   deep_prompts=pl.text_deep_prompts())
        return l2_normalize(raw)

    def visual_prompts(self) -> list[torch.Tensor]:
        return self.prompt_learner.visual_deep_prompts()


def stage1_model(labels: Sequence[str] = LABEL_SETS["rafdb"], **kwargs: Any) -> FrozenTextClipFer:
    """CEPrompt's stage-1 network (EVA): frozen CLIP text features of the stage-1 template, alpha 0.5."""
    kwargs.setdefault("alpha", 0.5)
    return FrozenTextClipFer(labels, template=STAGE1_TEMPLATE, **kwargs)


# --- checkpoints ---------------------------------------------------------------------------------

def checkpoint_filter_fn(sd: dict[str, torch.Tensor], model: ClipFerNet | None = None) -> dict[str, torch.Tensor]:
    """The authors' state dict (CEPrompt stage 1/2, UA-FER) -> ours.

    Image-tower names gain the ``visual.`` prefix and ``projection_dist`` becomes ``visual.proj``;
    ``text_encoder.*`` and ``prompt_learner.*`` keep their names. For frozen-text models the file has
    no text tower: the class embeddings computed from ``--clip-weights`` are kept (refused if absent).
    """
    out = {}
    for k, v in sd.items():
        if k == "projection_dist":
            out["visual.proj"] = v
        elif k.startswith(_IMAGE_ROOTS):
            out["visual." + k] = v
        else:
            out[k] = v
    if isinstance(model, FrozenTextClipFer) and "class_embeddings" not in out:
        if not model.text_ready:
            raise FerEdgeError("the authors' checkpoint holds no text tower: build the model with "
                               "--clip-weights (the OpenAI ViT-B/16 file) to compute the class embeddings")
        out["class_embeddings"] = model.class_embeddings.detach().clone()
    return out


# --- registry ------------------------------------------------------------------------------------

def input_spec() -> InputSpec:
    # Authors' test transform: Resize(224, bicubic) of 224x224 aligned faces, ToTensor, ImageNet mean/std.
    return InputSpec(name="input", layout="NCHW", size=(224, 224), color="RGB", resize="bicubic",
                     scale=1.0 / 255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD, face_template="rafdb")


_PAPER = ("Zhou, Huang, Zhang, Xu: CEPrompt: Cross-Modal Emotion-Aware Prompting for Facial Expression "
          "Recognition, IEEE TCSVT 34(11), 2024")


def _register(name: str, labels: tuple[str, ...], dataset: str, *, stage: int):
    """Register one variant: stage 2 (the final CEPrompt) or stage 1 (EVA, the start of stage 2)."""
    notes = (f"{dataset}. Outputs are blended cosine scores in [-1, 1]; softmax of them is nearly uniform, "
             "use the argmax (calibrate a temperature for confidences).") if stage == 2 else (
             f"{dataset}. CEPrompt stage 1 (EVA): the starting point of stage 2, also deployable on its own.")
    cfg = MethodConfig(
        name=name, family="ceprompt", labels=labels, input=input_spec(),
        output=OutputSpec(name="logits", kind="logits"),
        licence="unknown (authors' repository states none); CLIP weights: MIT (OpenAI)",
        paper=_PAPER, checkpoint_filter=checkpoint_filter_fn, notes=notes,
    )

    def build(**kwargs: Any):
        return CEPrompt(labels, **kwargs) if stage == 2 else stage1_model(labels, **kwargs)

    build.__name__ = name
    build.__doc__ = (f"CEPrompt stage-{stage} model for {dataset}; kwargs (clip_weights=, ...) go to "
                     f"{'CEPrompt' if stage == 2 else 'FrozenTextClipFer'}.")
    return register_model(cfg)(build)


ceprompt = _register("ceprompt", LABEL_SETS["rafdb"], "RAF-DB (7 classes)", stage=2)
ceprompt_affectnet7 = _register("ceprompt_affectnet7", LABEL_SETS["affectnet7"], "AffectNet (7 classes)", stage=2)
ceprompt_stage1 = _register("ceprompt_stage1", LABEL_SETS["rafdb"], "RAF-DB (7 classes)", stage=1)
ceprompt_stage1_affectnet7 = _register("ceprompt_stage1_affectnet7", LABEL_SETS["affectnet7"],
                                       "AffectNet (7 classes)", stage=1)
