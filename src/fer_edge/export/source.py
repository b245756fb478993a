"""The PyTorch model an export starts from: method + weights -> eval-mode module + its metadata.

Kept apart from the ONNX writer so that every format (ONNX, OpenVINO from PyTorch, parity checks)
starts from exactly the same module and the same metadata.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FerEdgeError, require
from ..metadata import ArtifactMetadata


@dataclass
class GraphSource:
    """One graph of a method's edge split (e.g. DFER-CLIP's frame encoder and temporal head)."""

    graph: str  # metadata graph kind: frame_encoder | temporal_head
    module: Any  # eval-mode torch module
    metadata: ArtifactMetadata
    example: Any  # tracing input of batch 2 (the head's is a feature sequence, not pixels)


@dataclass
class ExportSource:
    method: str
    module: Any  # torch.nn.Module in eval mode: the deploy graph (image -> logits)
    metadata: ArtifactMetadata
    weights: str  # human-readable: "embedded", a checkpoint file name, or "random-init"
    full: Any = None  # the full model when the deploy graph differs from it (text side folded)
    split: list[GraphSource] = field(default_factory=list)  # the edge pair, where the model has one


def load_source(method: str, weights: str | Path | None = None, *, random_init: bool = False,
                clip_weights: str | Path | None = None, model_kwargs: dict[str, Any] | None = None) -> ExportSource:
    """Build `method` with its weights; refuse to export random weights unless asked to.

    Methods that ship weights (the default ``mini_xception``) use them when `weights` is None.
    `weights` may be our safetensors checkpoint or the authors' file (the method's checkpoint filter
    maps it). Methods with a text tower fold it into constants in ``deploy_module()``; video models
    that split into a per-frame encoder and a temporal head give the pair through ``split_graphs()``.
    `model_kwargs` go to the model builder (e.g. a reduced architecture for tests).
    """
    require("torch", "torch", "export")
    from ..checkpoint import sha256_file
    from ..models import create_model, get_config

    cfg = get_config(method)
    kwargs: dict[str, Any] = dict(model_kwargs or {})
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
    meta = model.metadata_for("classifier") if hasattr(model, "metadata_for") else cfg.metadata()
    meta.source_sha256 = sha
    meta.extra = {**meta.extra, "weights": described}
    split = []
    if hasattr(model, "split_graphs"):
        for graph, (module, example) in model.split_graphs().items():
            gmeta = model.metadata_for(graph)
            gmeta.source_sha256, gmeta.extra = sha, {**gmeta.extra, "weights": described}
            split.append(GraphSource(graph, module.eval(), gmeta, example))
    return ExportSource(method=method, module=deploy, metadata=meta, weights=described,
                        full=model if deploy is not model else None, split=split)
