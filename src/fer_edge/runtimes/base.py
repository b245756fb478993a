"""The one interface every inference backend implements: declare, load, describe, run, close.

A backend knows how to open one kind of artifact on one engine and run raw tensors through it. It
knows nothing about faces, labels or preprocessing: :class:`fer_edge.runtimes.model.Model` adds
those, identically for every backend.

Options: each backend declares the keywords it takes in ``options`` (name -> :class:`Option`), and
:meth:`Backend.check_options` (which ``fer_edge.load`` calls before opening anything) refuses every
other keyword and every bad value in one line, so a typo never silently does nothing. One keyword
means the same on every backend: ``precision`` is the precision the engine may run float layers in
(``"fp32"`` keeps full fp32; ``"fp16"``/``"bf16"`` let it reduce them), not how the file stores them.
"""
from __future__ import annotations

import difflib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import FerEdgeError
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


@dataclass(frozen=True)
class Option:
    """One keyword a backend takes, as data: its type, the values allowed and what it does.

    ``None`` is always allowed and means the backend's default. ``spellings`` maps older spellings of
    a value (``"f32"``) to the value itself (``"fp32"``).
    """

    help: str
    kind: type = str  # str, int, or Path (a str or os.PathLike naming a folder/file)
    choices: tuple[str, ...] = ()  # the values a str option takes (any case); empty: any string
    minimum: int | None = None  # the smallest value an int option takes
    spellings: Mapping[str, str] = field(default_factory=dict)

    def check(self, backend: str, given: str, value: Any) -> Any:
        """The value in its canonical form, or a one-line FerEdgeError saying what is allowed."""
        if value is None:
            return None
        if self.kind is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if ok and (self.minimum is None or value >= self.minimum):
                return int(value)
            allowed = "an integer" + (f" >= {self.minimum}" if self.minimum is not None else "")
        elif self.kind is Path:
            if isinstance(value, (str, os.PathLike)) and str(value):
                return Path(value)
            allowed = "a path"
        elif isinstance(value, str) and not self.choices:
            return value
        else:
            key = self.spellings.get(value.lower(), value.lower()) if isinstance(value, str) else None
            chosen = [c for c in self.choices if c.lower() == key]
            if chosen:
                return chosen[0]
            allowed = "one of " + ", ".join(self.choices) if self.choices else "a string"
        raise FerEdgeError(f"{given}={value!r} is not valid for the {backend} backend: pass {allowed} ({self.help})")


class Backend(ABC):
    """Base class of all backends. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    options: ClassVar[Mapping[str, Option]] = {}  # the keywords the constructor takes, checked on load
    not_options: ClassVar[Mapping[str, str]] = {}  # other backends' options -> why this one has none
    renamed: ClassVar[Mapping[str, str]] = {}  # older option names still taken -> the option they spell

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # --- declare --------------------------------------------------------------------------------
    @classmethod
    def check_options(cls, options: Mapping[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
        """`options` by their current names with canonical values, or a one-line FerEdgeError naming an
        unknown option (with close matches among this backend's options and the names in `also`)."""
        checked: dict[str, Any] = {}
        for given, value in options.items():
            name = cls.renamed.get(given, given)
            spec = cls.options.get(name)
            if spec is None:
                raise FerEdgeError(cls._unknown(given, also))
            if name in checked:
                raise FerEdgeError(f"{given}= is another spelling of {name}= on the {cls.name} backend; "
                                   f"pass {name}= only")
            checked[name] = spec.check(cls.name, given, value)
        return checked

    @classmethod
    def _unknown(cls, given: str, also: Iterable[str]) -> str:
        takes = ", ".join(cls.options) or "none"
        if given in cls.not_options:
            return f"{given} is not an option of the {cls.name} backend ({cls.not_options[given]}); it takes: {takes}"
        close = difflib.get_close_matches(given, [*cls.options, *cls.renamed, *also], n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"unknown option {given}= for the {cls.name} backend{hint}; it takes: {takes}"

    @classmethod
    @abstractmethod
    def available_devices(cls) -> dict[str, str]:
        """The devices ``device=`` can name on this machine -> what each one is (`fer-edge info` lists
        them); MissingDependencyError when the engine is not installed."""

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

    @abstractmethod
    def close(self) -> None:
        """Release the engine (session, compiled model, GPU memory); called once, by `Model.close`."""
