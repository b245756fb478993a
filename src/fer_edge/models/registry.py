"""Model registry and factory, in the style of timm: one file per method family registers its
variants; `create_model(name, ...)` is the single entry point.

Each registered variant carries a :class:`MethodConfig` (labels, preprocessing, output kind, licence,
the filter that maps the authors' checkpoint names onto ours) as data, so exporters, trainers and the
runtime all read one source of truth.

This module does not import torch; the model files do.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata, InputSpec, OutputSpec


@dataclass
class MethodConfig:
    """Everything about a method variant that is data rather than code."""

    name: str
    family: str  # the model file it comes from, e.g. "poster_v2"
    labels: tuple[str, ...]
    input: InputSpec
    output: OutputSpec = field(default_factory=OutputSpec)
    task: str = "image"
    licence: str = "unknown"  # licence of the weights this variant is normally used with
    paper: str = ""
    embedded_weights: str | None = None  # file in fer_edge/assets with shipped weights
    # the authors' state dict -> ours: filter(state_dict, model) -> state_dict (None: names already ours)
    checkpoint_filter: Callable[[dict, Any], dict] | None = None
    notes: str = ""

    def metadata(self, **overrides: Any) -> ArtifactMetadata:
        meta = ArtifactMetadata(
            method=self.name,
            labels=list(self.labels),
            input=replace(self.input),
            output=replace(self.output),
            task=self.task,
            licence=self.licence,
        )
        for k, v in overrides.items():
            setattr(meta, k, v)
        return meta.validate()


_MODELS: dict[str, Callable[..., Any]] = {}
_CONFIGS: dict[str, MethodConfig] = {}


def register_model(cfg: MethodConfig):
    """Decorator: register a model constructor under `cfg.name`."""

    def wrap(fn: Callable[..., Any]):
        if cfg.name in _MODELS:
            raise ValueError(f"model {cfg.name!r} registered twice")
        _MODELS[cfg.name] = fn
        _CONFIGS[cfg.name] = cfg
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    _import_families()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def get_config(name: str) -> MethodConfig:
    _import_families()
    if name not in _CONFIGS:
        from ._families import UNAVAILABLE

        hint = ""
        if UNAVAILABLE:
            missing = ", ".join(f"{fam} (needs {pkg})" for fam, pkg in sorted(UNAVAILABLE.items()))
            hint = f"; not loaded here: {missing}: pip install 'fer-edge[train]'"
        raise FerEdgeError(f"unknown method {name!r}; available: {', '.join(list_models())}{hint}")
    return _CONFIGS[name]


def create_model(name: str, *, pretrained: bool = False, checkpoint_path: str | None = None, **kwargs: Any):
    """Build a registered model.

    Args:
        pretrained: load the weights embedded in the package (methods that ship them).
        checkpoint_path: our safetensors checkpoint, or the authors' released file (mapped through
            the method's checkpoint filter).
        kwargs: passed to the constructor (e.g. ``num_classes``).
    """
    cfg = get_config(name)
    try:
        model = _MODELS[name](**kwargs)
    except ImportError as exc:  # a method's optional package (open_clip for the CLIP methods)
        from ..errors import MissingDependencyError
        from ._families import OPTIONAL_PACKAGES

        missing = (exc.name or "").split(".")[0]
        if missing not in OPTIONAL_PACKAGES:
            raise
        raise MissingDependencyError(missing, "train", f"the {name} method") from None
    model.fer_cfg = cfg
    if checkpoint_path is not None:
        from ..checkpoint import load_into

        load_into(model, checkpoint_path, method=name)
    elif pretrained:
        if not cfg.embedded_weights:
            raise FerEdgeError(f"{name} ships no weights; pass --weights with a checkpoint file")
        from ..artifacts import ASSETS
        from ..checkpoint import load_into

        load_into(model, ASSETS / cfg.embedded_weights, method=name)
    return model


def _import_families() -> None:
    # Importing the package registers every family (each file decorates its constructors).
    from . import _families  # noqa: F401
