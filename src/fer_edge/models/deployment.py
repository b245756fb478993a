"""The deployment contract: which graphs a method deploys, and how they relate.

Every registered model derives from :class:`FerModel`. Export, parity checks, INT8, the bundle
manifest and the PyTorch runtime ask it one question, :meth:`FerModel.deployment`, and loop over
the answer; nothing probes a model for optional hooks. A plain classifier deploys itself. A CLIP
method deploys a graph with its text side folded into constants. A video method deploys its whole
clip graph plus an edge pair (a per-frame encoder and a temporal head) whose members name each other
as partners, so the pair is found from either file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata

CLASSIFIER = "classifier"


@dataclass
class Graph:
    """One graph a method deploys."""

    name: str  # the metadata's graph kind: classifier, frame_encoder, temporal_head
    module: nn.Module  # eval mode
    example: torch.Tensor  # tracing input of batch 2 (a temporal head's is a feature sequence)
    metadata: ArtifactMetadata
    partners: tuple[str, ...] = ()  # graphs deployed together with this one (an edge pair)
    # what the graph must output for an input, computed by the unfolded model; None where the graph
    # is its own reference (nothing folded). Parity checks of folded graphs compare against it.
    reference: Callable[[torch.Tensor], Any] | None = None


class FerModel(nn.Module):
    """Base of every registered model: the contract between a model and its deployed graphs.

    Subclasses override :meth:`deployment` when they deploy more than (or something else than)
    themselves, and :meth:`ignored_checkpoint_keys` when the authors' checkpoints hold tensors the
    model deliberately does not keep. ``fer_cfg`` is set by :func:`fer_edge.models.create_model`.
    """

    fer_cfg = None  # the MethodConfig, set by create_model

    @property
    def config(self):
        if self.fer_cfg is None:
            raise FerEdgeError("build the model with fer_edge.models.create_model so that it carries its config")
        return self.fer_cfg

    def deployment(self) -> list[Graph]:
        """The graphs this method deploys; the first is the one `fer-edge export` names after the method."""
        return [Graph(CLASSIFIER, self.eval(), self.example_input(), self.config.metadata())]

    def deployed(self, name: str) -> Graph:
        """One graph of :meth:`deployment` by its metadata kind, or a one-line error naming the others."""
        graphs = {g.name: g for g in self.deployment()}
        if name not in graphs:
            raise FerEdgeError(f"{type(self).__name__} deploys no {name!r} graph; it deploys {', '.join(graphs)}")
        return graphs[name]

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the images it takes; reduced configurations of a method override it."""
        return tuple(self.config.input.size)

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """A tracing input shaped like the model's images (channels from the colour, its input size)."""
        h, w = self.input_size
        return torch.rand(batch, 1 if self.config.input.color == "GRAY" else 3, h, w)

    def ignored_checkpoint_keys(self, state_dict: dict) -> list[str]:
        """Keys of the authors' checkpoints this model deliberately does not keep (reported, not hidden)."""
        return []
