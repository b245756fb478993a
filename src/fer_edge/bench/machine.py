"""What machine a benchmark ran on: CPU model and ISA flags, GPU, engine versions, Jetson details.

Numbers without the machine are not reproducible; every benchmark result embeds this record.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

# CPU features that decide INT8/bf16 speed on x86 (VNNI: int8 dot products; AMX: tile matmul).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
             "fma", "f16c", "asimd", "asimddp", "sve", "i8mm", "bf16")

ENGINES = ("onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "torch", "numpy", "opencv-python-headless",
           "nncf", "fer-edge")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_info(cpuinfo_text: str | None = None) -> dict:
    text = _read("/proc/cpuinfo") if cpuinfo_text is None else cpuinfo_text
    model, flags = platform.processor() or platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return {
        "model": model,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": sorted(f for f in ISA_FLAGS if f in flags),
    }


def gpu_info() -> list[dict]:
    """NVIDIA GPUs via nvidia-smi (absent -> empty list)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2], "compute_capability": parts[3]})
    cuda = _cuda_version()
    for g in gpus:
        g["cuda"] = cuda
    return gpus


def _cuda_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    for token in out.split("CUDA Version:")[1:2]:
        return token.split()[0]
    return None


def jetson_info() -> dict | None:
    """Module, L4T/JetPack release and power mode on NVIDIA Jetson; None elsewhere."""
    release = _read("/etc/nv_tegra_release")
    model = _read("/proc/device-tree/model").strip("\x00\n ")
    if not release and "jetson" not in model.lower():
        return None
    info = {"module": model or None, "l4t": release.splitlines()[0] if release else None, "power_mode": None}
    if shutil.which("nvpmodel"):
        try:
            out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10).stdout
            info["power_mode"] = " ".join(out.split())
        except (subprocess.SubprocessError, OSError):
            pass
    return info


def versions() -> dict:
    found = {}
    for name in ENGINES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def machine_record() -> dict:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "jetson": jetson_info(),
        "versions": versions(),
    }
