"""The one interface every inference backend implements: load, describe, run.

A backend knows how to open one kind of artifact on one engine and run raw tensors through it. It
knows nothing about faces, labels or preprocessing: :class:`fer_edge.runtimes.model.Model` adds
those, identically for every backend.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..metadata import ArtifactMetadata


@dataclass
class TensorInfo:
    name: str
    shape: list  # ints, or strings / -1 for dynamic dimensions
    dtype: str


@dataclass
class BackendInfo:
    """What a benchmark or a log should record about how an artifact actually ran."""

    backend: str
    device: str
    version: str
    precision_note: str = ""  # e.g. "OpenVINO runs fp32 layers in bf16 on this CPU"
    details: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of all backends. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    extra: ClassVar[str]  # the pip extra that installs this backend's engine
    devices: ClassVar[tuple[str, ...]]  # devices the backend can be asked for

    def __init__(self, path: str | Path, device: str = "auto", **options: Any):
        self.path = Path(path)
        self.requested_device = device
        self.options = options

    # --- describe -------------------------------------------------------------------------------
    @property
    @abstractmethod
    def inputs(self) -> list[TensorInfo]: ...

    @property
    @abstractmethod
    def outputs(self) -> list[TensorInfo]: ...

    @property
    @abstractmethod
    def device(self) -> str:
        """The device actually used (after resolving "auto")."""

    @abstractmethod
    def read_metadata(self) -> ArtifactMetadata | None:
        """The metadata embedded in (or beside) the artifact, or None if it has none."""

    @abstractmethod
    def info(self) -> BackendInfo: ...

    # --- run ------------------------------------------------------------------------------------
    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on named float32 inputs; return every output by name."""

    def close(self) -> None:
        """Release engine resources (optional)."""
