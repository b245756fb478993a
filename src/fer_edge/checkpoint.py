"""Checkpoints: our format (safetensors + metadata) and safe reading of the authors' files.

Our format is a ``.safetensors`` file whose header metadata holds the artifact metadata JSON under
``fer_edge`` plus the source checkpoint's sha256. Foreign checkpoints (the authors' ``.pth`` files,
often ``{'state_dict': ..., 'recorder': <pickled object>}`` with ``module.`` prefixes) are read by
:mod:`fer_edge.torch_files`, whose restricted unpickler reads every pickle record of the file,
rebuilds plain tensors and containers and turns every other class into an inert placeholder: no
code from the file is ever executed (its docstring gives the allow-list and why).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import FerEdgeError
from .metadata import METADATA_KEY, ArtifactMetadata


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- our format ------------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, state_dict: dict, meta: ArtifactMetadata) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: meta.to_json()})
    return path


def read_checkpoint_metadata(path: str | Path) -> ArtifactMetadata | None:
    from safetensors import safe_open

    name = Path(path).name
    try:
        with safe_open(str(path), framework="np") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types; a missing file is an OSError
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FerEdgeError(f"{' '.join(name.split())} is not a readable safetensors file ({why})") from None
    return ArtifactMetadata.from_json(header[METADATA_KEY], source=name) if METADATA_KEY in header else None


def load_checkpoint(path: str | Path) -> tuple[dict, ArtifactMetadata | None]:
    """(state_dict, metadata) from our safetensors file."""
    from safetensors.torch import load_file

    path = existing_file(path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise FerEdgeError(f"{path.name} is not a readable safetensors checkpoint ({_first_line(exc)})") from None
    return tensors, read_checkpoint_metadata(path)  # its own one-line errors name the bad field


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# --- the authors' files --------------------------------------------------------------------------

def read_foreign_checkpoint(path: str | Path) -> dict:
    """The tensors of an authors' checkpoint as a flat state dict, without executing pickled code.

    Accepts ``{'state_dict': sd, ...}``, ``{'model': sd}``, ``{'net': sd}`` or a bare state dict, in
    torch's zip or legacy layout (read by :mod:`fer_edge.torch_files`; the authors' recorder objects
    become inert placeholders), our safetensors or Keras ``.h5``; strips DataParallel's ``module.``.
    """
    import torch

    from .torch_files import read_torch_file

    path = existing_file(path)
    if path.suffix == ".safetensors":
        return load_checkpoint(path)[0]
    if path.suffix.lower() in (".h5", ".hdf5"):  # Keras weights, read with h5py (no TensorFlow)
        from .keras_h5 import read_keras_h5

        return {k: torch.from_numpy(v) for k, v in read_keras_h5(path).items()}
    sd = _find_state_dict(read_torch_file(path))
    if sd is None:
        raise FerEdgeError(f"{path.name} holds no state dict (looked for 'state_dict', 'model', 'net' or tensors)")
    tensors = {_strip_prefix(k): v for k, v in sd.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise FerEdgeError(f"{path.name} holds a state dict without tensors; not a model checkpoint")
    return tensors


def check_checkpoint_file(path: str | Path, flag: str | None = None) -> None:
    """Refuse a weights file now that a loader would refuse later, so no model is built for nothing.
    `flag`: the option that named the file, for the message when it does not exist.

    Cheap: a safetensors file's header is read; a PyTorch file's pickles and storage records are all
    checked but no tensor bytes are read. Keras ``.h5`` files are read by h5py only, never checked here.
    """
    from .torch_files import read_torch_file

    path = existing_file(path, flag)
    if path.suffix == ".safetensors":
        read_checkpoint_metadata(path)
    elif path.suffix.lower() not in (".h5", ".hdf5"):
        read_torch_file(path, materialize=False)


def _find_state_dict(obj: Any) -> dict | None:
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net", "module"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    return None


def _strip_prefix(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def existing_file(path: str | Path, flag: str | None = None) -> Path:
    """`path` as a Path if it is a file, else a one-line error naming `flag` (the option that gave it)."""
    p = Path(path)
    if not p.is_file():
        raise FerEdgeError(f"{flag + ' ' if flag else 'checkpoint '}{p}: file not found; check the path")
    return p


# --- loading into a model ------------------------------------------------------------------------

def load_into(model, path: str | Path, *, method: str, strict: bool = True) -> dict[str, list[str]]:
    """Load our checkpoint or the authors' file into `model`; report missing/unexpected keys.

    A checkpoint whose metadata names another method, or whose tensors do not fit, is refused with
    a one-line message. Keys the model deliberately does not keep (modules the original builds but
    never runs) are listed by the model's ``ignored_checkpoint_keys()`` and reported, not hidden.
    `model` is a registered model (:class:`fer_edge.models.deployment.FerModel`).
    """
    path = existing_file(path)
    meta = None
    if path.suffix == ".safetensors":
        sd, meta = load_checkpoint(path)
        if meta is not None and meta.method != method:
            raise FerEdgeError(
                f"{path.name} is a checkpoint for {meta.method!r}, not {method!r}; use --method {meta.method}"
            )
    else:
        sd = read_foreign_checkpoint(path)
    if meta is None and model.config.checkpoint_filter is not None:
        sd = model.config.checkpoint_filter(sd, model)
    return load_state_dict_checked(model, sd, source=path.name, method=method, strict=strict)


def load_state_dict_checked(model, sd: dict, *, source: str, method: str, strict: bool = True) -> dict[str, list[str]]:
    ignored = set(model.ignored_checkpoint_keys(sd))
    sd = {k: v for k, v in sd.items() if k not in ignored}
    own = model.state_dict()
    wrong_shape = [k for k, v in sd.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if wrong_shape:
        k = wrong_shape[0]
        raise FerEdgeError(
            f"{source} does not fit {method}: {k} is {tuple(sd[k].shape)} in the file but "
            f"{tuple(own[k].shape)} in the model ({len(wrong_shape)} such tensors); wrong method or class count?"
        )
    result = model.load_state_dict(sd, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if not (set(sd) & set(own)):
        raise FerEdgeError(f"{source} shares no tensor names with {method}: it is a checkpoint for another model")
    if strict and (missing or unexpected):
        raise FerEdgeError(
            f"{source} does not match {method}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    return {"missing": missing, "unexpected": unexpected, "ignored": sorted(ignored)}


def describe_load(report: dict[str, list[str]]) -> str:
    return json.dumps({k: len(v) for k, v in report.items()})
