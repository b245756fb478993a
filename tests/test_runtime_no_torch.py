"""The runtime side (ONNX Runtime, OpenVINO) loads and runs the default model without importing torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import numpy as np
import fer_edge

faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
probs = {}
for backend in sys.argv[1:]:
    model = fer_edge.load("default", backend=backend, device="cpu")
    pred = model.predict(faces)
    assert pred.probs.shape == (3, 7) and abs(pred.probs.sum(1) - 1).max() < 1e-4
    probs[backend] = pred.probs
torch_modules = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH_MODULES", torch_modules)
assert not torch_modules, torch_modules
"""


@pytest.mark.parametrize("backends", [["onnxruntime"], ["onnxruntime", "openvino"]])
def test_runtime_does_not_import_torch(backends):
    for b in backends:
        pytest.importorskip(b)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *backends], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "TORCH_MODULES []" in proc.stdout
