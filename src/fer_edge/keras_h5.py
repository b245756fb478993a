"""Read the weights of a Keras ``.h5``/``.hdf5`` model with h5py alone (no TensorFlow).

Keras 2 stores weights under ``model_weights/<layer>/<layer>[_N]/<weight>:0``. We flatten them to
``"<layer>/<weight>"`` -> numpy array; the model family's checkpoint filter maps those onto PyTorch
names and layouts. The architecture JSON (``model_config``) is returned too, for checks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import FerEdgeError, require


def read_keras_h5(path: str | Path) -> dict[str, np.ndarray]:
    """Flat ``{"<layer>/<weight>": array}`` of a Keras h5 file (full model or weights-only)."""
    h5py = require("h5py", "train", "reading Keras .h5 weights")
    try:
        f = h5py.File(str(path), "r")
    except OSError as exc:
        raise FerEdgeError(f"{Path(path).name} is not a readable HDF5 file ({exc})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise FerEdgeError(f"{Path(path).name} is not a Keras weights file (no layer_names)")
        out: dict[str, np.ndarray] = {}
        for layer in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer]
            for wname in (_text(n) for n in group.attrs.get("weight_names", [])):
                short = wname.split("/")[-1].split(":")[0]
                out[f"{layer}/{short}"] = np.asarray(group[wname], dtype=np.float32)
        return out


def read_keras_config(path: str | Path) -> dict | None:
    """The model architecture JSON stored in a full-model h5 file, or None for weights-only files."""
    h5py = require("h5py", "train", "reading Keras .h5 weights")
    with h5py.File(str(path), "r") as f:
        cfg = f.attrs.get("model_config")
        return json.loads(_text(cfg)) if cfg is not None else None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
