"""CLIP building blocks shared by the CLIP-based methods (CEPrompt, UA-FER, DFER-CLIP).

Built on open_clip's ``VisionTransformer`` / ``TextTransformer`` modules (constructed from a config,
never downloaded) because their parameter names are exactly OpenAI's, so an OpenAI or OpenCLIP
checkpoint loads without renaming. The methods need more than open_clip's ``forward`` gives (all
ViT tokens after ``ln_post``, prompt tokens that overwrite sequence positions inside the
transformer, text encoders fed with learned embeddings instead of token ids), so this module runs
the towers block by block itself.

The API, in use order:

* :func:`build_visual` / :func:`build_text` -- towers of a named architecture (``ViT-B-16``,
  ``ViT-B-32``) or a reduced :class:`ClipArch` for tests; QuickGELU as in OpenAI CLIP.
* :func:`read_clip_state_dict` -- tensors of a local OpenAI ``.pt`` (TorchScript archive, read
  without executing it) or OpenCLIP ``.pt``/``.bin``/``.safetensors`` file, in OpenAI naming, fp32.
* :func:`load_clip_weights` -- load such a file into the towers, report matched tensors loudly.
* :func:`tokenize`, :func:`encode_texts` -- class-prompt strings -> text features.
* :func:`visual_tokens`, :func:`encode_image` -- image -> all tokens after ``ln_post`` / projected CLS.
* :func:`text_from_embeddings` -- text features from prompt embeddings (learned context vectors,
  optional deep prompts), the shared core of prompt learners.
* :func:`fold` / :class:`ConstantFeatures` -- run an input-independent text branch once and keep
  its result as a constant, so deployment graphs are image -> logits.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import FerEdgeError

log = logging.getLogger(__name__)

# Mean/std the authors' CEPrompt / UA-FER code normalises with (ImageNet's, not CLIP's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipArch:
    """Shapes of a CLIP ViT model. ``ARCHS`` holds the OpenAI ones; tests use reduced copies."""

    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int = 12
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    embed_dim: int = 512
    context_length: int = 77
    vocab_size: int = 49408

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def reduced(self, **changes) -> "ClipArch":
        return replace(self, **changes)


ARCHS: dict[str, ClipArch] = {
    "ViT-B-16": ClipArch(patch_size=16),
    "ViT-B-32": ClipArch(patch_size=32),
}


def get_arch(arch: str | ClipArch) -> ClipArch:
    if isinstance(arch, ClipArch):
        return arch
    try:
        return ARCHS[arch]
    except KeyError:
        raise FerEdgeError(f"unknown CLIP architecture {arch!r}; known: {', '.join(ARCHS)}") from None


def build_visual(arch: str | ClipArch = "ViT-B-16") -> nn.Module:
    """open_clip ``VisionTransformer`` with OpenAI CLIP's shapes and QuickGELU, randomly initialised."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    a = get_arch(arch)
    return VisionTransformer(
        image_size=a.image_size, patch_size=a.patch_size, width=a.vision_width, layers=a.vision_layers,
        heads=a.vision_heads, mlp_ratio=4.0, output_dim=a.embed_dim, act_layer=QuickGELU,
    )


def build_text(arch: str | ClipArch = "ViT-B-16") -> nn.Module:
    """open_clip ``TextTransformer`` (causal mask, EOT pooling) with OpenAI CLIP's shapes, QuickGELU."""
    from open_clip.transformer import QuickGELU, TextTransformer

    a = get_arch(arch)
    return TextTransformer(
        context_length=a.context_length, vocab_size=a.vocab_size, width=a.text_width, heads=a.text_heads,
        layers=a.text_layers, output_dim=a.embed_dim, act_layer=QuickGELU,
    )


# --- reading CLIP weights ------------------------------------------------------------------------

def read_clip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local CLIP checkpoint, OpenAI names (``visual.*``, ``token_embedding.weight`` ...), fp32.

    Accepts OpenAI's released ``.pt`` files (TorchScript archives: only the tensors of the archive's
    pickle are read, the TorchScript code is never run), OpenCLIP state dicts (``.pt``/``.bin``,
    ``.safetensors``) and ``{'state_dict': ...}`` wrappers; strips ``module.`` and OpenCLIP's ``text.``
    tower prefix. PyTorch files are read by :func:`fer_edge.torch_files.read_torch_file` (no pickled
    code runs); a file it refuses stays refused.
    """
    from ..torch_files import Placeholder, UnreadableTorchFile, read_torch_file

    p = Path(path)
    if not p.is_file():
        raise FerEdgeError(f"CLIP weights not found: {p}; pass --clip-weights with a local OpenAI/OpenCLIP file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(p))
        except Exception as exc:
            raise FerEdgeError(f"{p.name} is not a readable safetensors file ({exc})") from None
    else:
        try:
            obj = read_torch_file(p)
        except UnreadableTorchFile as exc:
            raise FerEdgeError(f"{p.name} is not a CLIP checkpoint this loader reads ({exc.reason}); "
                               "use OpenAI's ViT-B-16.pt / ViT-B-32.pt or an OpenCLIP .bin/.safetensors file") from None
        sd = _torchscript_tensors(obj, p.name) if isinstance(obj, Placeholder) else _state_dict_of(obj, p.name)
    out = {}
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            continue
        k = k[len("module."):] if k.startswith("module.") else k
        k = k[len("text."):] if k.startswith("text.") else k  # OpenCLIP CustomTextCLIP layout
        out[k] = v.float() if v.is_floating_point() else v
    if not out:
        raise FerEdgeError(f"{p.name} holds no tensors; not a CLIP checkpoint")
    return out


def _state_dict_of(obj, name: str) -> dict:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise FerEdgeError(f"{name} holds a {type(obj).__name__}, not a CLIP state dict")
    return obj


def _torchscript_tensors(root, name: str) -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript archive's module tree, named by their attribute path (``visual.conv1.weight``)."""
    found: dict[str, torch.Tensor] = {}
    try:
        _collect_tensors(root, "", found, set())
    except RecursionError:
        raise FerEdgeError(f"{name} nests its objects too deeply to be a CLIP checkpoint") from None
    if not found:
        raise FerEdgeError(f"{name} holds no tensors; not a CLIP checkpoint")
    return found


def _collect_tensors(obj, prefix: str, out: dict, seen: set) -> None:
    if isinstance(obj, torch.Tensor):
        out.setdefault(prefix, obj)
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    state = getattr(obj, "state", obj)
    if isinstance(state, tuple) and state and isinstance(state[-1], dict):  # (dict, slots) states
        state = state[-1]
    if isinstance(state, dict):
        for k, v in state.items():
            if isinstance(k, str) and not k.startswith("_"):
                _collect_tensors(v, f"{prefix}.{k}" if prefix else k, out, seen)


def split_towers(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(visual state dict, text state dict) in the towers' own names, from a whole-CLIP state dict."""
    visual = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    text_roots = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
    text = {k: v for k, v in sd.items() if k.startswith(text_roots)}
    return visual, text


def load_clip_weights(path: str | Path, *, visual: nn.Module | None = None, text: nn.Module | None = None,
                      min_fraction: float = 0.99, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, int]:
    """Load a local CLIP file into the given towers; return matched/total counts per tower.

    ``state_dict``: the file's tensors when the caller has already read them (:func:`read_clip_state_dict`),
    so a 600 MB file is not read twice; ``path`` then only names it in messages.

    Logs (at WARNING, so users see it) how many tensors matched; raises FerEdgeError when a tower
    matches less than ``min_fraction`` of its tensors or a shape differs (wrong architecture, e.g.
    a ViT-B/32 file for a ViT-B/16 model), instead of silently running with random weights.
    """
    sd = read_clip_state_dict(path) if state_dict is None else state_dict
    vis_sd, text_sd = split_towers(sd)
    name = Path(path).name
    report: dict[str, int] = {}
    for what, module, part in (("visual", visual, vis_sd), ("text", text, text_sd)):
        if module is None:
            continue
        own = module.state_dict()
        matched = {k: v for k, v in part.items() if k in own}
        bad = [k for k, v in matched.items() if tuple(v.shape) != tuple(own[k].shape)]
        if bad:
            k = bad[0]
            raise FerEdgeError(
                f"{name} does not fit this CLIP {what} tower: {k} is {tuple(part[k].shape)} in the file but "
                f"{tuple(own[k].shape)} in the model ({len(bad)} such tensors); ViT-B/16 vs ViT-B/32 file?")
        if len(matched) < min_fraction * len(own):
            raise FerEdgeError(
                f"{name} matches only {len(matched)} of {len(own)} CLIP {what} tensors; "
                "is it an OpenAI/OpenCLIP CLIP checkpoint?")
        module.load_state_dict(matched, strict=False)
        report[f"{what}_matched"], report[f"{what}_total"] = len(matched), len(own)
        log.warning("CLIP weights %s: %s tower %d/%d tensors loaded", name, what, len(matched), len(own))
    report["token_embedding"] = int("token_embedding.weight" in sd)
    return report


def read_token_embedding(path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The (vocab, width) token embedding of a CLIP file (prompt learners build their buffers from it)."""
    sd = read_clip_state_dict(path) if state_dict is None else state_dict
    if "token_embedding.weight" not in sd:
        raise FerEdgeError(f"{Path(path).name} has no token_embedding.weight; it is not a full CLIP checkpoint")
    return sd["token_embedding.weight"]


# --- text ----------------------------------------------------------------------------------------

def tokenize(texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
    """CLIP BPE token ids (N, context_length); the vocabulary ships inside open_clip (no download)."""
    from open_clip.tokenizer import tokenize as _tok

    return _tok(list(texts), context_length=context_length)


def _overwrite(x: torch.Tensor, prompt: torch.Tensor, start: int) -> torch.Tensor:
    """x (B, L, D) with positions start..start+n-1 replaced by prompt (n, D): slice + concat, static shapes."""
    n = prompt.shape[0]
    p = prompt.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
    return torch.cat([x[:, :start], p, x[:, start + n:]], dim=1)


@contextlib.contextmanager
def plain_attention():
    """Disable nn.MultiheadAttention's fused inference kernel, which has no ONNX symbolic."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def run_blocks(transformer: nn.Module, x: torch.Tensor, *, attn_mask: torch.Tensor | None = None,
               deep_prompts: Sequence[torch.Tensor] | None = None, prompt_start: int = 1) -> torch.Tensor:
    """Run an open_clip ``Transformer`` on batch-first x; before block i (i = 1..len(deep_prompts))
    overwrite positions ``prompt_start..`` with ``deep_prompts[i-1]`` (MaPLe/CEPrompt-style deep prompts).

    While the TorchScript tracer runs (ONNX export, even under ``no_grad``) attention takes the plain
    path, so every exporter gets an exportable graph without knowing about the fused kernel.
    """
    deep_prompts = list(deep_prompts or ())
    with plain_attention() if torch.jit.is_tracing() else contextlib.nullcontext():
        for i, block in enumerate(transformer.resblocks):
            if 1 <= i <= len(deep_prompts):
                x = _overwrite(x, deep_prompts[i - 1], prompt_start)
            x = block(x, attn_mask=attn_mask)
    return x


def text_from_embeddings(text: nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor, *,
                         deep_prompts: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Projected text features (C, embed_dim) of prompt embeddings (C, L, width), unnormalised.

    ``tokens`` (C, L) only locate the EOT token (the largest id); the embeddings may hold learned
    context vectors in place of the template's words. ``text`` is an open_clip ``TextTransformer``
    (its ``token_embedding`` is not used and may be absent).
    """
    x = embeddings + text.positional_embedding.to(embeddings.dtype)
    x = run_blocks(text.transformer, x, attn_mask=text.attn_mask, deep_prompts=deep_prompts)
    x = text.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = text.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def encode_texts(text: nn.Module, prompts: Sequence[str]) -> torch.Tensor:
    """Projected, unnormalised text features (C, embed_dim) of prompt strings."""
    tokens = tokenize(prompts, context_length=text.positional_embedding.shape[0]).to(text.positional_embedding.device)
    return text_from_embeddings(text, text.token_embedding(tokens), tokens)


# --- image ---------------------------------------------------------------------------------------

def visual_tokens(visual: nn.Module, images: torch.Tensor, *,
                  deep_prompts: Sequence[torch.Tensor] | None = None, prompt_start: int = 1) -> torch.Tensor:
    """All tokens after ``ln_post``, unprojected: (B, 1 + patches, width), CLS first.

    ``deep_prompts`` overwrite positions ``prompt_start..`` before blocks 1..n (CEPrompt overwrites
    the first patch tokens; the sequence length is unchanged).
    """
    x = visual.conv1(images)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x)
    x = run_blocks(visual.transformer, x, deep_prompts=deep_prompts, prompt_start=prompt_start)
    return visual.ln_post(x)


def encode_image(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Projected CLS embedding (B, embed_dim), unnormalised: CLIP's image feature."""
    return visual_tokens(visual, images)[:, 0] @ visual.proj


def l2_normalize(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """x / ||x|| as explicit float ops (kept out of INT8 regions by the exporter)."""
    return x / x.norm(dim=dim, keepdim=True)


# --- folding -------------------------------------------------------------------------------------

class ConstantFeatures(nn.Module):
    """A text branch folded into a constant: returns the stored tensor (a buffer, saved with the model)."""

    def __init__(self, features: torch.Tensor):
        super().__init__()
        self.register_buffer("features", features.detach().clone())

    def forward(self) -> torch.Tensor:
        return self.features


def fold(branch: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Evaluate an input-independent branch once, without gradients, as a detached constant."""
    with torch.no_grad():
        return branch().detach().clone()
