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
    # what the deploy graph must equal, computed by the unfolded model (None: nothing folded)
    reference: Any = None
    split: list[GraphSource] = field(default_factory=list)  # the edge pair, where the model has one


def load_source(method: str, weights: str | Path | None = None, *, random_init: bool = False,
                clip_weights: str | Path | None = None, model_kwargs: dict[str, Any] | None = None) -> ExportSource:
    """Build `method` with its weights; refuse to export random weights unless asked to.

    Methods that ship weights (the default ``mini_xception``) use them when `weights` is None.
    `weights` may be our safetensors checkpoint or the authors' file (the method's checkpoint filter
    maps it). The graphs come from the model's declared deployment
    (:meth:`fer_edge.models.deployment.FerModel.deployment`): the first is the method's graph (a
    text tower folded into constants where it has one), the rest an edge pair where it has one.
    `model_kwargs` go to the model builder (e.g. a reduced architecture for tests).
    """
    require("torch", "torch", "export")
    from ..checkpoint import check_checkpoint_file, sha256_file
    from ..models import create_model, get_config

    cfg = get_config(method)
    kwargs: dict[str, Any] = dict(model_kwargs or {})
    if clip_weights is not None:
        check_checkpoint_file(clip_weights, "--clip-weights")  # missing, refused or broken: before the model is built
        kwargs["clip_weights"] = str(clip_weights)
    sha = None
    if weights is not None:
        check_checkpoint_file(weights, "--weights")
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
    main, *pair = model.deployment()
    for graph in (main, *pair):
        graph.module.eval()
        graph.metadata.source_sha256 = sha
        graph.metadata.extra = {**graph.metadata.extra, "weights": described}
    split = [GraphSource(g.name, g.module, g.metadata, g.example) for g in pair]
    return ExportSource(method=method, module=main.module, metadata=main.metadata, weights=described,
                        reference=main.reference, split=split)
