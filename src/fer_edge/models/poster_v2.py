"""POSTER V2 (POSTER++, Mao et al. 2023, arXiv:2301.12149), faithful to the authors' released code.

Two branches look at the same face, both at 112x112 (the 224 input is nearest-subsampled, as the
original does with ``F.interpolate(x, size=112)``):

* an IR-50 image backbone truncated after its third stage (``ir_back``), whose three stage outputs
  are strided once more (``conv1..3``);
* a frozen MobileFaceNet landmark network (``face_landback``) whose three feature maps become the
  *queries* of three cross-attention scales (``attn1..3``) over the image features, each with a
  Swin-style relative position bias and a layer-scaled feed-forward (``ffn1..3``).

The three scales are embedded into 3 x 49 tokens (``embed_q/k/v``) and fused by a two-block ViT with
an SE gate on the CLS token (``VIT``).

Module names equal the official state-dict names (``shared/reference/poster_v2/keys.tsv``), so the
authors' checkpoints load after :func:`checkpoint_filter_fn`. Unlike the original, modules that are
built but never run (IR-50's output layer, the landmark GDC head, five unused ViT parts) are not
built at all: :meth:`PosterV2.ignored_checkpoint_keys` names their official keys so every load reports
them. Shapes are computed from ``x.shape`` with integer arithmetic and ``-1`` for the batch, so ONNX
exports keep a real dynamic batch (the original bakes its traced batch into the graph).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from ..metadata import InputSpec
from .deployment import FerModel
from .registry import MethodConfig, register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Cross-attention scales: channels come from MobileFaceNet (64, 128) and last_face_conv (256).
SCALE_DIMS = (64, 128, 256)
SCALE_HEADS = (2, 4, 8)
IR50_UNITS = (3, 4, 14)

# Official keys of modules the original builds but never runs (or runs and throws away).
_DEAD_PREFIXES = (
    "ir_back.output_layer.",
    "face_landback.output_layer.",
    "VIT.patch_embed.",
    "VIT.CON1.",
    "VIT.IRLinear1.",
    "VIT.IRLinear2.",
    "VIT.eca_block.",
)
_DEAD_BLOCK_PART = ".conv."  # VIT.blocks.N.conv: a Conv1d every ViT block owns and never calls


def _is_dead_key(key: str) -> bool:
    if key.startswith(_DEAD_PREFIXES):
        return True
    return key.startswith("VIT.blocks.") and _DEAD_BLOCK_PART in key


# --- small building blocks ------------------------------------------------------------------------

class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Linear -> exact (erf) GELU -> Linear, as in both the ffnK blocks and the ViT blocks."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


# --- landmark branch: MobileFaceNet trunk (face_landback) -----------------------------------------

class ConvBNPReLU(nn.Module):
    """MobileFaceNet's ``Conv_block``: conv without bias, BN, per-channel PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """MobileFaceNet's ``Linear_block``: conv without bias, BN, no activation."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DepthWise(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride), 1x1 project; residual add when asked."""

    def __init__(self, cin: int, cout: int, groups: int, stride: int = 1, residual: bool = False):
        super().__init__()
        self.conv = ConvBNPReLU(cin, groups)
        self.conv_dw = ConvBNPReLU(groups, groups, 3, stride, 1, groups=groups)
        self.project = ConvBN(groups, cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class DepthWiseStack(nn.Module):
    """MobileFaceNet's ``Residual``: a stack of residual DepthWise units (state under ``model.N``)."""

    def __init__(self, channels: int, units: int, groups: int):
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(channels, channels, groups, residual=True) for _ in range(units)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MobileFaceNetTrunk(nn.Module):
    """The 68-point landmark MobileFaceNet up to ``conv_6_sep``; its GDC head is not built (POSTER discards it)."""

    def __init__(self):
        super().__init__()
        self.conv1 = ConvBNPReLU(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBNPReLU(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, groups=128, stride=2)
        self.conv_3 = DepthWiseStack(64, 4, groups=128)
        self.conv_34 = DepthWise(64, 128, groups=256, stride=2)
        self.conv_4 = DepthWiseStack(128, 6, groups=256)
        self.conv_45 = DepthWise(128, 128, groups=512, stride=2)
        self.conv_5 = DepthWiseStack(128, 2, groups=256)
        self.conv_6_sep = ConvBNPReLU(128, 512)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.conv_23(self.conv2_dw(self.conv1(x)))
        out3 = self.conv_3(x)
        out4 = self.conv_4(self.conv_34(out3))
        features = self.conv_6_sep(self.conv_5(self.conv_45(out4)))
        return out3, out4, features


# --- image branch: IR-50, three stages (ir_back) --------------------------------------------------

class BottleneckIR(nn.Module):
    """ArcFace's ``bottleneck_IR``: BN-conv-PReLU-conv(stride)-BN plus a (subsampling) shortcut."""

    def __init__(self, cin: int, depth: int, stride: int):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # kernel 1: a pure subsample, as in the original
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def _ir_stage(cin: int, depth: int, units: int) -> nn.Sequential:
    return nn.Sequential(BottleneckIR(cin, depth, 2), *[BottleneckIR(depth, depth, 1) for _ in range(units - 1)])


class IR50Trunk(nn.Module):
    """IR-50 input layer and stages 1-3; the output layer (12.85 M params) is not built."""

    def __init__(self, units: tuple[int, int, int] = IR50_UNITS):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        self.body1 = _ir_stage(64, 64, units[0])
        self.body2 = _ir_stage(64, 128, units[1])
        self.body3 = _ir_stage(128, 256, units[2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.body1(self.input_layer(x))
        x2 = self.body2(x1)
        return x1, x2, self.body3(x2)


# --- landmark-to-image cross-attention -------------------------------------------------------------

def relative_position_index(ws: int) -> torch.Tensor:
    """Swin's (ws*ws, ws*ws) lookup into a ((2ws-1)^2, heads) bias table; token i = h*ws + w."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]) + (ws - 1)
    return rel[0] * (2 * ws - 1) + rel[1]


class WindowNorm(nn.Module):
    """``windowK``: channel-last LayerNorm; its output is both the shortcut and the attention tokens.

    At every supported input size a scale has exactly one window per image (window = feature size),
    so window partition/reverse are plain reshapes.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(x.permute(0, 2, 3, 1))  # (B, H, W, C)
        return x.flatten(1, 2), x


class LandmarkCrossAttention(nn.Module):
    """``attnK`` (GCViT-style global-query attention): landmark queries attend over image keys/values."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        # A structural constant, recomputed rather than loaded (checkpoint_filter_fn verifies the file's copy).
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_bias(self) -> torch.Tensor:
        n = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """x: image tokens (B, N, C); q: landmark queries (B, heads, N, head_dim)."""
        n, c = x.shape[1], x.shape[2]
        kv = self.qkv(x).reshape(-1, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ kv[0].transpose(-2, -1) + self.relative_bias()
        out = (attn.softmax(dim=-1) @ kv[1]).transpose(1, 2).reshape(-1, n, c)
        return self.proj(out)


class LayerScaleFFN(nn.Module):
    """``ffnK``: shortcut + gamma1 * attention, then a pre-norm MLP scaled by gamma2 (init 1e-5)."""

    def __init__(self, dim: int, drop_path: float, layer_scale: float = 1e-5):
        super().__init__()
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale))
        self.mlp = Mlp(dim, 4 * dim)
        self.norm = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, attn_out: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        x = shortcut + self.drop_path(self.gamma1 * attn_out.reshape_as(shortcut))
        return x + self.drop_path(self.gamma2 * self.mlp(self.norm(x)))


def _to_queries(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, C, H, W) landmark map -> (B, heads, H*W, C/heads); head h holds channels [h*dh, (h+1)*dh)."""
    return x.flatten(2).transpose(1, 2).unflatten(2, (heads, x.shape[1] // heads)).transpose(1, 2)


# --- token fusion and ViT head (VIT) -------------------------------------------------------------

class PatchProj(nn.Module):
    """``embed_v``: the only part of the original ``PatchEmbed`` that runs, a 1x1 conv to tokens."""

    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (qkv[0] @ qkv[1].transpose(-2, -1)) * self.scale
        return self.proj((attn.softmax(dim=-1) @ qkv[2]).transpose(1, 2).reshape(-1, n, c))


class ViTBlock(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6); the original's unused per-block Conv1d is not built."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SEGate(nn.Module):
    """``se_block``: x * sigmoid(L2(ReLU(L1(x)))) on the CLS feature."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.linear2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.linear2(torch.relu(self.linear1(x))))


class LinearHead(nn.Module):
    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class FusionViT(nn.Module):
    """``VIT``: CLS + position embedding, pre-norm blocks, final LayerNorm, SE gate, linear head."""

    def __init__(self, tokens: int, dim: int, depth: int, heads: int, classes: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.se_block = SEGate(dim)
        self.head = LinearHead(dim, classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The CLS token after the final LayerNorm (input of the SE gate)."""
        x = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.se_block(self.features(tokens)))


# --- the model ------------------------------------------------------------------------------------

class PosterV2(FerModel):
    """POSTER V2 (``pyramid_trans_expr2``) with official state-dict names.

    Args:
        num_classes: 7 (RAF-DB, AffectNet-7, CAER-S) or 8 (AffectNet-8) in the released checkpoints.
        img_size: input side; a multiple of 32. Both branches see ``img_size // 2`` (224 -> 112).
        ir_units: IR-50 units per stage, (3, 4, 14) as published. Fewer units give a reduced model
            for CPU tests/smoke training (state names stay a prefix of the official ones).
        vit_depth: ViT fusion blocks (2 as published).
        embed_dim: token width of the fusion (768 as published; must be divisible by ``vit_heads``).
        vit_heads: ViT attention heads (8, hard-coded in the original).
        freeze_landmarks: keep the MobileFaceNet weights frozen, as the authors train (its BN statistics
            still update in train mode, also as the original does).
    """

    def __init__(
        self,
        num_classes: int = 7,
        img_size: int = 224,
        ir_units: tuple[int, int, int] = IR50_UNITS,
        vit_depth: int = 2,
        embed_dim: int = 768,
        vit_heads: int = 8,
        freeze_landmarks: bool = True,
    ):
        super().__init__()
        if img_size % 32:
            raise FerEdgeError(f"POSTER V2 needs an input size that is a multiple of 32, got {img_size}")
        if embed_dim % vit_heads:
            raise FerEdgeError(f"embed_dim {embed_dim} must be divisible by vit_heads {vit_heads}")
        self.num_classes = num_classes
        self.img_size = img_size
        self.backbone_size = img_size // 2
        windows = (img_size // 8, img_size // 16, img_size // 32)
        self.heads = SCALE_HEADS

        self.face_landback = MobileFaceNetTrunk()
        self.ir_back = IR50Trunk(tuple(ir_units))
        self.last_face_conv = nn.Conv2d(512, SCALE_DIMS[2], 3, padding=1)
        drop_paths = [0.0, 0.125, 0.25]  # linspace(0, 0.5, 5)[:3] in the original; train-time only
        for k, (dim, heads, ws) in enumerate(zip(SCALE_DIMS, SCALE_HEADS, windows), start=1):
            setattr(self, f"conv{k}", nn.Conv2d(dim, dim, 3, 2, 1))
            setattr(self, f"window{k}", WindowNorm(dim))
            setattr(self, f"attn{k}", LandmarkCrossAttention(dim, heads, ws))
            setattr(self, f"ffn{k}", LayerScaleFFN(dim, drop_paths[k - 1]))
        self.embed_q = nn.Sequential(nn.Conv2d(SCALE_DIMS[0], embed_dim, 3, 2, 1), nn.Conv2d(embed_dim, embed_dim, 3, 2, 1))
        self.embed_k = nn.Sequential(nn.Conv2d(SCALE_DIMS[1], embed_dim, 3, 2, 1))
        self.embed_v = PatchProj(SCALE_DIMS[2], embed_dim)
        self.VIT = FusionViT(3 * windows[2] ** 2, embed_dim, vit_depth, vit_heads, num_classes)
        if freeze_landmarks:
            self.face_landback.requires_grad_(False)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.img_size, self.img_size)

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest 224 -> 112 (pixel [2i, 2j]), exactly the original's default ``F.interpolate``."""
        return F.interpolate(x, size=(self.backbone_size, self.backbone_size), mode="nearest")

    def tokens(self, x: torch.Tensor, debug: dict | None = None) -> torch.Tensor:
        """Image -> the (B, 3*n, embed_dim) fused tokens; fills `debug` with the golden intermediates."""
        out = {} if debug is None else debug
        x = self.subsample(x)
        face1, face2, face3 = self.face_landback(x)
        queries = [_to_queries(f, h) for f, h in zip((face1, face2, self.last_face_conv(face3)), self.heads)]
        irs = self.ir_back(x)
        out.update(face_feat3=face3, ir_feat3=irs[2])
        fused = []
        for k, (feat, q) in enumerate(zip(irs, queries), start=1):
            tokens, shortcut = getattr(self, f"window{k}")(getattr(self, f"conv{k}")(feat))
            attended = getattr(self, f"attn{k}")(tokens, q)
            out[f"attn{k}_out"] = attended
            fused.append(getattr(self, f"ffn{k}")(attended, shortcut).permute(0, 3, 1, 2))
        tokens = torch.cat(
            [self.embed_q(fused[0]).flatten(2).transpose(1, 2),
             self.embed_k(fused[1]).flatten(2).transpose(1, 2),
             self.embed_v(fused[2])],
            dim=1,
        )
        out["vit_tokens"] = tokens
        return tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.VIT(self.tokens(x))

    def forward_debug(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate the golden reference stores (same names), plus the logits."""
        out: dict[str, torch.Tensor] = {}
        cls = self.VIT.features(self.tokens(x, out))
        out["vit_cls"] = cls
        out["logits"] = self.VIT.head(self.VIT.se_block(cls))
        return out

    def ignored_checkpoint_keys(self, sd: dict) -> list[str]:
        """Official keys of modules the original builds but never runs; reported, not loaded."""
        return [k for k in sd if _is_dead_key(k)]


# --- official checkpoints ---------------------------------------------------------------------

def checkpoint_filter_fn(state_dict: dict, model: PosterV2) -> dict:
    """Official POSTER V2 state dict (``module.`` already stripped) -> ours.

    Names are identical; this checks the class count (to name the right variant) and the three
    ``relative_position_index`` constants (recomputed by the model, so a different copy in the file
    means it is not this architecture), then drops them.
    """
    head = state_dict.get("VIT.head.linear.weight")
    if head is not None and head.shape[0] != model.num_classes:
        hint = {7: "poster_v2", 8: "poster_v2_8cls"}.get(int(head.shape[0]), "a matching variant")
        raise FerEdgeError(
            f"this POSTER V2 checkpoint has {head.shape[0]} classes but the model has {model.num_classes}; use --method {hint}"
        )
    out = {}
    for key, value in state_dict.items():
        if key.endswith(".relative_position_index"):
            module = model.get_submodule(key.rsplit(".", 1)[0]) if key.startswith("attn") else None
            expected = getattr(module, "relative_position_index", None)
            if expected is None or tuple(value.shape) != tuple(expected.shape) or not torch.equal(value.long(), expected):
                raise FerEdgeError(f"{key} in the checkpoint is not the Swin relative index POSTER V2 uses: not a POSTER V2 checkpoint")
            continue
        out[key] = value
    return out


# --- the authors' pretrained backbones (training) ----------------------------------------------

@dataclass
class BackboneLoad:
    """What a backbone file contributed: counted so that a partial load is never silent."""

    name: str
    source: str
    expected: int
    matched: int
    renamed: str = ""
    skipped_unused: int = 0
    unmatched: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.name}: loaded {self.matched}/{self.expected} tensors from {self.source}"
        if self.renamed:
            text += f" ({self.renamed})"
        if self.skipped_unused:
            text += f"; {self.skipped_unused} of unused modules skipped"
        if self.unmatched:
            text += f"; {len(self.unmatched)} in the file matched nothing (e.g. {self.unmatched[:2]})"
        return text


def _v1_ir50_names(sd: dict, units: tuple[int, ...]) -> tuple[dict, str]:
    """POSTER V1 / face.evoLVe IR-50 files number all units as ``body.N``; V2 splits stages into body1-3."""
    if not any(k.startswith("body.") for k in sd) or any(k.startswith("body1.") for k in sd):
        return sd, ""
    starts = [0]
    for n in units:
        starts.append(starts[-1] + n)
    out = {}
    for key, value in sd.items():
        if key.startswith("body."):
            _, idx, rest = key.split(".", 2)
            i = int(idx)
            stage = next((s for s in range(len(units)) if starts[s] <= i < starts[s + 1]), None)
            if stage is None:
                continue  # units of IR-50's fourth stage, which POSTER V2 does not have
            key = f"body{stage + 1}.{i - starts[stage]}.{rest}"
        out[key] = value
    return out, "renamed body.N -> body1-3"


def _load_part(module: nn.Module, sd: dict, *, name: str, source: str, strip: str,
               dead: Callable[[str], bool], min_fraction: float) -> BackboneLoad:
    sd = {k[len(strip):] if k.startswith(strip) else k: v for k, v in sd.items()}
    renamed = ""
    if isinstance(module, IR50Trunk):
        sd, renamed = _v1_ir50_names(sd, tuple(len(getattr(module, f"body{i}")) for i in (1, 2, 3)))
    own = module.state_dict()
    matched = {k: v for k, v in sd.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    skipped = [k for k in sd if k not in matched and dead(strip + k)]
    unmatched = [k for k in sd if k not in matched and k not in skipped]
    report = BackboneLoad(name, source, len(own), len(matched), renamed, len(skipped), unmatched)
    if len(matched) < min_fraction * len(own):
        raise FerEdgeError(
            f"{report.summary()}: too few tensors match {name}; is this the authors' {name} file?"
        )
    module.load_state_dict(matched, strict=False)
    return report


def load_backbones(model: PosterV2, ir50: str | None = None, mobilefacenet: str | None = None, *,
                   echo: Callable[[str], None] | None = None) -> list[BackboneLoad]:
    """Load the authors' pretrained IR-50 (``ir50.pth``) and MobileFaceNet (``mobilefacenet_model_best.pth.tar``).

    The original loads IR-50 leniently and prints only a count, so a file with other names leaves the
    backbone random without complaint. Here every load says how many tensors matched of how many the
    model has; IR-50 must match at least 90 % (and V1-style ``body.N`` names are mapped onto body1-3),
    MobileFaceNet must match completely (the original loads it strictly).
    """
    from ..checkpoint import read_foreign_checkpoint

    echo = echo or (lambda line: print(line, file=sys.stderr))
    reports = []
    for path, module, name, strip, fraction in (
        (ir50, model.ir_back, "ir50", "ir_back.", 0.9),
        (mobilefacenet, model.face_landback, "mobilefacenet", "face_landback.", 1.0),
    ):
        if path is None:
            continue
        sd = read_foreign_checkpoint(path)
        report = _load_part(module, sd, name=name, source=str(path), strip=strip,
                            dead=lambda k, s=strip: _is_dead_key(k if k.startswith(s) else s + k),
                            min_fraction=fraction)
        echo(("WARNING: " if report.matched < report.expected else "") + report.summary())
        reports.append(report)
    return reports


# --- registered variants ------------------------------------------------------------------------

def _input_spec() -> InputSpec:
    # The authors resize pre-aligned crops to 224 (bilinear, PIL RGB) and normalise with ImageNet stats.
    return InputSpec(size=(224, 224), color="RGB", resize="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     face_template="rafdb")


_COMMON = dict(
    family="poster_v2",
    licence="MIT",  # Talented-Q/POSTER_V2 (code and released weights); the training datasets have their own terms
    paper="Mao et al., POSTER V2: A simpler and stronger facial expression recognition network, arXiv:2301.12149",
    checkpoint_filter=checkpoint_filter_fn,
)


@register_model(MethodConfig(
    name="poster_v2", labels=LABEL_SETS["rafdb"], input=_input_spec(),
    notes="7 classes in RAF-DB order; the AffectNet-7 and CAER-S checkpoints have the same shape: "
          "import them with --dataset affectnet7 / caer-s to record their label order.",
    **_COMMON,
))
def poster_v2(num_classes: int = 7, **kwargs) -> PosterV2:
    return PosterV2(num_classes=num_classes, **kwargs)


@register_model(MethodConfig(
    name="poster_v2_8cls", labels=LABEL_SETS["affectnet8"], input=_input_spec(),
    notes="8 classes in AffectNet-8 order (main_8.py / PosterV2_8cls.py).", **_COMMON,
))
def poster_v2_8cls(num_classes: int = 8, **kwargs) -> PosterV2:
    return PosterV2(num_classes=num_classes, **kwargs)
