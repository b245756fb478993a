"""The PyTorch model an export starts from: method + weights -> eval-mode module + its metadata.

Kept apart from the ONNX writer so that every format (ONNX, OpenVINO from PyTorch, parity checks)
starts from exactly the same module and the same metadata.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FerEdgeError, require
from ..metadata import ArtifactMetadata


@dataclass
class ExportSource:
    method: str
    module: Any  # torch.nn.Module in eval mode: the deploy graph (image -> logits)
    metadata: ArtifactMetadata
    weights: str  # human-readable: "embedded", a checkpoint file name, or "random-init"
    full: Any = None  # the full model when the deploy graph differs from it (text side folded)


def load_source(method: str, weights: str | Path | None = None, *, random_init: bool = False,
                clip_weights: str | Path | None = None) -> ExportSource:
    """Build `method` with its weights; refuse to export random weights unless asked to.

    Methods that ship weights (the default ``mini_xception``) use them when `weights` is None.
    `weights` may be our safetensors checkpoint or the authors' file (the method's checkpoint filter
    maps it). Methods with a text tower fold it into constants in ``deploy_module()``.
    """
    require("torch", "torch", "export")
    from ..checkpoint import sha256_file
    from ..models import create_model, get_config

    cfg = get_config(method)
    kwargs: dict[str, Any] = {}
    if clip_weights is not None:
        if not Path(clip_weights).is_file():
            raise FerEdgeError(f"--clip-weights file not found: {clip_weights}")
        kwargs["clip_weights"] = str(clip_weights)
    sha = None
    if weights is not None:
        if not Path(weights).is_file():
            raise FerEdgeError(f"--weights file not found: {weights}; check the path")
        model = create_model(method, checkpoint_path=str(weights), **kwargs)
        described, sha = Path(weights).name, sha256_file(weights)
    elif random_init:
        model = create_model(method, **kwargs)
        described = "random-init (plumbing test only: predictions are meaningless)"
    elif cfg.embedded_weights:
        model = create_model(method, pretrained=True, **kwargs)
        described = f"embedded ({cfg.embedded_weights})"
        from ..artifacts import ASSETS

        if (ASSETS / cfg.embedded_weights).is_file():
            sha = sha256_file(ASSETS / cfg.embedded_weights)
    else:
        raise FerEdgeError(
            f"{method} ships no weights: pass --weights CHECKPOINT (ours or the authors' file); "
            f"--random-init exports random weights for plumbing tests only"
        )
    model.eval()
    deploy = model.deploy_module() if hasattr(model, "deploy_module") else model
    deploy.eval()
    meta = cfg.metadata(source_sha256=sha)
    meta.extra = {**meta.extra, "weights": described}
    return ExportSource(method=method, module=deploy, metadata=meta, weights=described,
                        full=model if deploy is not model else None)
