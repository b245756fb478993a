"""DFER-CLIP (Zhao & Patras, BMVC 2023): dynamic (video) expression recognition with CLIP.

Rebuilt from the specification of the authors' code (``zengqunzhao/DFER-CLIP``, commit d10d5a4):

* every frame of a 16-frame clip goes through CLIP's image tower (**ViT-B/32**, as the authors'
  ``main.py`` loads, not the B/16 the README suggests; B/16 is offered as ``vision="ViT-B-16"``);
* a one-layer transformer with a class token (``temporal_net``) pools the 16 frame features into a
  video feature, which is L2-normalised;
* the classifier is the text side: per class, 8 learnable class-specific context vectors followed by an
  LLM-written description of the expression, through CLIP's frozen text transformer;
* ``logits = video_feature @ text_features.T / 0.01``.

Details that change the numbers if they are got wrong (each one checked against the golden):
the input is pixels / 255 with **no mean/std normalisation**; CLIP blocks use QuickGELU while the
temporal feed-forward uses the *tanh* approximation of GELU; attention heads split channels as
(heads, 64); the EOT row of the text transformer is found from the token ids.

Deployment splits the model where its cost lies. The text side depends only on weights, so it is
folded into a constant (C, 512) matrix. On a stream, frame features do not change when the window
slides, so the edge graphs are a per-frame **encoder** (one face -> 512-d feature, 99% of the compute)
and a small **temporal head** (16 features -> logits); :mod:`fer_edge.runtimes.clip_stream` encodes
each frame once and runs only the head per prediction. The head keeps the L2 normalisation and the
/0.01 scale as separate float ops so that INT8 tools can leave them in float (a 1e-6 error in the
cosine is 1e-4 in the logits).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from ..metadata import ArtifactMetadata, InputSpec, OutputSpec
from .clip_common import ARCHS, ClipArch, build_text, build_visual, encode_image, fold, get_arch, l2_normalize
from .clip_common import load_clip_weights, text_from_embeddings, tokenize
from .deployment import CLASSIFIER, FerModel, Graph
from .registry import MethodConfig, register_model

# Class descriptions of models/Text.py::class_descriptor (rows 0-6: DFEW/FERV39k; 0-10: MAFW).
CLASS_DESCRIPTIONS = (
    "a smiling mouth, raised cheeks, wrinkled eyes, and arched eyebrows.",
    "tears, a downward turned mouth, drooping upper eyelids, and a wrinkled forehead.",
    "relaxed facial muscles, a straight mouth, a smooth forehead, and unremarkable eyebrows.",
    "furrowed eyebrows, narrow eyes, tightened lips, and flared nostrils.",
    "widened eyes, an open mouth, raised eyebrows, and a frozen expression.",
    "a wrinkled nose, lowered eyebrows, a tightened mouth, and narrow eyes.",
    "raised eyebrows, parted lips, a furrowed brow, and a retracted chin.",
    "one side of its mouth raised, one eyebrow lower and one raised, narrowed eyes, and a raised chin.",
    "a tensed forehead, tightly pressed lips, pupil dilation, and tensed facial muscles.",
    "drooping eyebrows, a downward gaze, a downturned mouth, and lacking expression.",
    "a downturned mouth, lowered eyebrows, narrowed eyes, and a sighing face.",
)

CLIP_FRAMES = 16
TEMPERATURE = 0.01  # logits = cos / 0.01; CLIP's own logit_scale is not used
# Test-time sampling of the authors' loader: 16 equal segments, the centre frame of each
# (int(n/16/2 + i*n/16)); a clip shorter than 16 frames repeats its last frame.
SAMPLING = "tsn-centre-16"

# A reduced CLIP for fast tests (same code paths, ~1% of the compute).
TINY_ARCH = ARCHS["ViT-B-32"].reduced(vision_width=64, vision_layers=2, vision_heads=2, text_width=64,
                                      text_layers=1, text_heads=2, embed_dim=64)


# --- text side -----------------------------------------------------------------------------------

class PromptLearner(nn.Module):
    """CoOp prompts: [SOT] ctx_1..ctx_M description [EOT], ctx learned per class (class-specific).

    ``token_prefix``/``token_suffix`` are the token embeddings of SOT and of description+EOT+padding,
    computed once from CLIP's token embedding; they are saved in checkpoints (as the authors' are).
    """

    def __init__(self, descriptions: Sequence[str], token_embedding: nn.Embedding, contexts: int = 8,
                 class_specific: bool = True, context_length: int = 77) -> None:
        super().__init__()
        width = token_embedding.weight.shape[1]
        prompts = [" ".join(["X"] * contexts) + " " + d for d in descriptions]
        tokens = tokenize(prompts, context_length=context_length)
        with torch.no_grad():
            emb = token_embedding(tokens).float()
        shape = (len(descriptions), contexts, width) if class_specific else (contexts, width)
        self.ctx = nn.Parameter(torch.randn(shape) * 0.02)
        self.register_buffer("token_prefix", emb[:, :1].clone())
        self.register_buffer("token_suffix", emb[:, 1 + contexts:].clone())
        self.register_buffer("tokenized_prompts", tokens, persistent=False)

    def forward(self) -> torch.Tensor:
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.token_prefix.shape[0], -1, -1)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)


# --- temporal head (module names as the authors' Temporal_Transformer_Cls) ---------------------------

class GELUTanh(nn.Module):
    """The hand-written tanh approximation of GELU of the authors' temporal net (not erf GELU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Attention(nn.Module):
    """Multi-head self-attention written as reshape + matmul (the authors' einsum exports as Einsum,
    which TensorRT and INT8 tools handle badly; the arithmetic is the same)."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, self.dim_head).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), GELUTanh(), nn.Dropout(0.0),
                                 nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TemporalTransformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Residual(PreNorm(dim, Attention(dim, heads, dim_head))),
                           Residual(PreNorm(dim, FeedForward(dim, mlp_dim)))])
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = ff(attn(x))
        return x


class TemporalNet(nn.Module):
    """Class token + learned positions + transformer over the 16 frame features; returns the class token."""

    def __init__(self, dim: int = 512, frames: int = CLIP_FRAMES, depth: int = 1, heads: int = 8,
                 dim_head: int = 64, mlp_dim: int = 1024) -> None:
        super().__init__()
        self.frames = frames
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, frames + 1, dim))
        self.temporal_transformer = TemporalTransformer(dim, depth, heads, dim_head, mlp_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        cls = self.cls_token.expand(features.shape[0], -1, -1)
        x = torch.cat([cls, features], dim=1) + self.pos_embedding
        return self.temporal_transformer(x)[:, 0]


# --- the model -------------------------------------------------------------------------------------

class DferClip(FerModel):
    """The trainable model: ``forward(clip (B, 16, 3, H, W) in [0, 1]) -> logits (B, C)``.

    Module names follow the authors' de-duplicated modules (``image_encoder``, ``text_encoder``,
    ``prompt_learner``, ``temporal_net``), so their checkpoints load through
    :func:`checkpoint_filter_fn` after dropping the aliased copies.
    """

    def __init__(self, num_classes: int = 7, descriptions: Sequence[str] | None = None,
                 arch: str | ClipArch = "ViT-B-32", clip_weights: str | Path | None = None, contexts: int = 8,
                 class_specific_contexts: bool = True, temporal_layers: int = 1, frames: int = CLIP_FRAMES) -> None:
        super().__init__()
        descriptions = tuple(descriptions or CLASS_DESCRIPTIONS[:num_classes])
        if len(descriptions) != num_classes:
            raise FerEdgeError(f"{num_classes} classes need {num_classes} descriptions, got {len(descriptions)}")
        self.frames = frames
        size = get_arch(arch).image_size
        self._frame_size = (size, size)  # reduced test configurations may use smaller frames
        self.image_encoder = build_visual(arch)
        self.text_encoder = build_text(arch)
        if clip_weights is not None:
            load_clip_weights(clip_weights, visual=self.image_encoder, text=self.text_encoder)
        self.prompt_learner = PromptLearner(descriptions, self.text_encoder.token_embedding, contexts,
                                            class_specific_contexts, self.text_encoder.positional_embedding.shape[0])
        # The token embedding (25 M numbers) is only needed to build the prompt buffers above.
        self.text_encoder.token_embedding = None
        for p in self.text_encoder.parameters():  # frozen in the authors' recipe
            p.requires_grad_(False)
        self.temporal_net = TemporalNet(self.feature_dim, frames, temporal_layers)

    @property
    def feature_dim(self) -> int:
        return self.text_encoder.text_projection.shape[1]

    # pieces ------------------------------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, D) per-frame features (after ln_post and proj, not normalised)."""
        return encode_image(self.image_encoder, frames)

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T, D); frames of one clip stay together (B-major reshape)."""
        if clips.dim() != 5 or clips.shape[1] != self.frames:
            raise FerEdgeError(f"DFER-CLIP takes clips (batch, {self.frames}, 3, H, W), got shape {tuple(clips.shape)}")
        b, t = clips.shape[:2]
        return self.encode_frames(clips.flatten(0, 1)).reshape(b, t, -1)

    def video_features(self, frame_features: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.temporal_net(frame_features))

    def text_features(self) -> torch.Tensor:
        """(C, D) L2-normalised class embeddings; depend on weights only."""
        pl = self.prompt_learner
        return l2_normalize(text_from_embeddings(self.text_encoder, pl(), pl.tokenized_prompts))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        video = self.video_features(self.frame_features(clips))
        return video @ self.text_features().t() / TEMPERATURE

    # deployment graphs ---------------------------------------------------------------------------------
    def temporal_head_module(self) -> "TemporalHead":
        """16 frame features -> logits, text side folded into a constant."""
        return TemporalHead(self.temporal_net, fold(self.text_features)).eval()

    def frame_encoder_module(self) -> "FrameEncoder":
        """One face crop (N, 3, H, W) -> (N, D) feature."""
        return FrameEncoder(self.image_encoder).eval()

    def deploy_module(self) -> "DferClipDeploy":
        """The whole clip -> logits with the text side folded in (no text encoder in the graph)."""
        return DferClipDeploy(self.frame_encoder_module(), self.temporal_head_module()).eval()

    @property
    def input_size(self) -> tuple[int, int]:
        return self._frame_size

    def deployment(self) -> list[Graph]:
        """The whole clip graph (text side folded) and the edge pair beside it: a per-frame encoder and a
        temporal head, partners of each other, so a stream encodes each frame once."""
        h, w = self.input_size
        return [
            Graph(CLASSIFIER, self.deploy_module(), torch.rand(2, self.frames, 3, h, w),
                  self.metadata_for(CLASSIFIER), reference=self),
            Graph("frame_encoder", self.frame_encoder_module(), torch.rand(2, 3, h, w),
                  self.metadata_for("frame_encoder"), partners=("temporal_head",)),
            Graph("temporal_head", self.temporal_head_module(), torch.randn(2, self.frames, self.feature_dim),
                  self.metadata_for("temporal_head"), partners=("frame_encoder",)),
        ]

    def metadata_for(self, graph: str) -> ArtifactMetadata:
        """Artifact metadata of one deployment graph, with this model's frame size and feature width."""
        meta = graph_metadata(self.config, graph, feature_dim=self.feature_dim)
        meta.input.size = tuple(self.input_size)
        return meta

    def ignored_checkpoint_keys(self, sd: dict) -> list[str]:
        # Present in the authors' state dict (the aliased CLIP) but unused by their forward.
        return [k for k in ("clip_model_.token_embedding.weight", "clip_model_.logit_scale") if k in sd]


class FrameEncoder(nn.Module):
    def __init__(self, image_encoder: nn.Module) -> None:
        super().__init__()
        self.image_encoder = image_encoder

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return encode_image(self.image_encoder, frames)


class TemporalHead(nn.Module):
    """features (B, T, D) -> logits (B, C). Normalisation, matmul and /0.01 are separate float ops."""

    def __init__(self, temporal_net: TemporalNet, classifier: torch.Tensor) -> None:
        super().__init__()
        self.temporal_net = temporal_net
        self.register_buffer("classifier", classifier)  # (C, D), unit rows

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        video = l2_normalize(self.temporal_net(features))
        return torch.matmul(video, self.classifier.t()) / TEMPERATURE


class DferClipDeploy(nn.Module):
    def __init__(self, encoder: FrameEncoder, head: TemporalHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        return self.head(self.encoder(clips.flatten(0, 1)).reshape(b, t, -1))


# --- weights -------------------------------------------------------------------------------------

_TEXT_PARTS = ("transformer.", "positional_embedding", "ln_final.", "text_projection")


def _our_name(key: str) -> str:
    if key.startswith("clip_model_.visual."):
        return "image_encoder." + key[len("clip_model_.visual."):]
    if key.startswith("clip_model_.") and key[len("clip_model_."):].startswith(_TEXT_PARTS):
        return "text_encoder." + key[len("clip_model_."):]
    return key  # prompt_learner., temporal_net., image_encoder., text_encoder., and the unused rest


def checkpoint_filter_fn(sd: dict[str, torch.Tensor], model: DferClip | None = None) -> dict[str, torch.Tensor]:
    """The authors' ``GenerateModel`` state dict (``module.`` already stripped) -> ours.

    Their model keeps CLIP three times (``image_encoder``, ``text_encoder`` and ``clip_model_``) and
    ``load_state_dict`` copies ``clip_model_`` last, so where both copies are present its values are the
    ones the model runs with (in a trained file they are equal anyway): the aliases are mapped last.
    ``clip_model_.token_embedding.weight``/``logit_scale`` pass through and are reported as ignored.
    """
    ordered = sorted(sd.items(), key=lambda kv: kv[0].startswith("clip_model_."))  # stable: aliases last
    return {_our_name(k): v for k, v in ordered}


# --- registry ------------------------------------------------------------------------------------

def _input_spec() -> InputSpec:
    # Authors' test transform: resize to 224x224 (no aspect keep), /255, NO mean/std.
    return InputSpec(name="clip", layout="NTCHW", size=(224, 224), color="RGB", resize="bilinear",
                     scale=1.0 / 255.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), frames=CLIP_FRAMES,
                     sampling=SAMPLING, face_template="rafdb")


_NOTES = ("16-frame clips, test-time TSN sampling (centre of each of 16 equal segments). "
          "Authors resize with PIL bilinear; fer-edge uses OpenCV bilinear (tiny differences on downscaling).")


def graph_metadata(cfg: MethodConfig, graph: str = "classifier", **overrides: Any) -> ArtifactMetadata:
    """Artifact metadata for the monolithic classifier or one of the two edge graphs.

    Both edge graphs carry the clip length and sampling in their InputSpec so that a stream runner can
    rebuild clips from per-frame features; the encoder takes single frames (NCHW) and outputs features.
    """
    spec = cfg.input
    extra = {"feature_dim": overrides.pop("feature_dim", 512), "clip_frames": spec.frames, "sampling": spec.sampling}
    if graph == "classifier":
        return cfg.metadata(graph=graph, extra=extra, **overrides)
    if graph == "frame_encoder":
        inp = replace(spec, name="frame", layout="NCHW")
        return cfg.metadata(graph=graph, input=inp, output=OutputSpec(name="features", kind="features"),
                            extra=extra, **overrides)
    if graph == "temporal_head":
        inp = replace(spec, name="features")
        return cfg.metadata(graph=graph, input=inp, output=replace(cfg.output), extra=extra, **overrides)
    raise FerEdgeError(f"unknown DFER-CLIP graph {graph!r}; choose classifier, frame_encoder or temporal_head")


def _register(name: str, labels: tuple[str, ...], dataset: str):
    cfg = MethodConfig(
        name=name, family="dfer_clip", labels=labels, input=_input_spec(),
        output=OutputSpec(name="logits", kind="scaled_cosine"), task="video",
        licence="MIT (code); CLIP weights: MIT (OpenAI)",
        paper="Zhao & Patras, Prompting Visual-Language Models for Dynamic Facial Expression Recognition, BMVC 2023",
        checkpoint_filter=checkpoint_filter_fn, notes=f"{dataset}. " + _NOTES,
    )

    def build(**kwargs: Any) -> DferClip:
        kwargs.setdefault("num_classes", len(labels))
        return DferClip(**kwargs)

    build.__name__ = name
    build.__doc__ = f"DFER-CLIP for {dataset} ({len(labels)} classes); kwargs go to :class:`DferClip`."
    return register_model(cfg)(build)


dfer_clip = _register("dfer_clip", LABEL_SETS["dfew"], "DFEW / FERV39k")
dfer_clip_mafw = _register("dfer_clip_mafw", LABEL_SETS["mafw"], "MAFW")
