"""Build (or reuse) cpp/build/libfer_edge.so for the Python-side tests and the benchmark.

`make cpp-test` builds everything first; this only configures when cpp/build is absent and then
lets Ninja bring the library up to date (a no-op when it is). Returns None with a reason when the
tools are missing, so tests can skip with it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "cpp" / "build"


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def ensure_built(target: str = "fer_edge") -> tuple[Path | None, str]:
    """(path of libfer_edge.so, "") or (None, why it could not be built)."""
    cmake, ninja = _tool("cmake"), _tool("ninja")
    if not cmake or not ninja:
        return None, "cmake and ninja are needed to build libfer_edge (make cpp-test installs them)"
    try:
        import openvino.utils as ovu
    except ImportError:
        return None, "the openvino wheel (its CMake config) is needed to build libfer_edge"
    if not (BUILD / "build.ninja").exists():
        cfg = subprocess.run([cmake, "-S", str(ROOT / "cpp"), "-B", str(BUILD), "-G", "Ninja",
                              f"-DCMAKE_MAKE_PROGRAM={ninja}", f"-DOpenVINO_DIR={ovu.get_cmake_path()}"],
                             capture_output=True, text=True)
        if cfg.returncode:
            return None, "configuring libfer_edge failed: " + (cfg.stdout + cfg.stderr).strip().splitlines()[-1]
    build = subprocess.run([ninja, "-C", str(BUILD), "-j2", target], capture_output=True, text=True)
    if build.returncode:
        raise RuntimeError("building libfer_edge failed:\n" + build.stdout[-4000:] + build.stderr[-2000:])
    return BUILD / "libfer_edge.so", ""
