"""A Triton server on this machine from the `nvidia-pytriton` wheel (python backend only), for
tests and benchmarks on a box without Docker or a GPU.

The wheel pins numpy<2, so it lives in a virtual environment of its own (:func:`ensure_venv`).
Starting its ``tritonserver`` by hand needs what PyTriton itself arranges: the python-backend stub
of this Python version copied into a backend folder, the wheel's bundled libraries and this Python's
``libpython`` on ``LD_LIBRARY_PATH``, and the venv's ``bin`` first on ``PATH``; fer-edge is made
importable in that venv by a ``.pth`` file naming this checkout's sources.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import FerEdgeError

# what the python-backend models import (fer-edge's runtime needs), at versions that accept numpy<2
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "tritonclient[http]>=2.40", "numpy<2", "opencv-python-headless>=4.8,<4.12",
                "onnxruntime>=1.17")
READY_MARK = ".fer-edge-triton-ready"


class ModelLoadError(FerEdgeError):
    """Triton itself ran but a model of the repository did not load: a fault of the repository."""


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def ensure_venv(venv: Path, timeout: float = 600) -> Path:
    """The venv with nvidia-pytriton (created and installed from the package registry the first time)."""
    mark = venv / READY_MARK
    wanted = "\n".join(REQUIREMENTS)
    if mark.is_file() and mark.read_text() == wanted:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        result = subprocess.run(pip + list(REQUIREMENTS), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise FerEdgeError(f"cannot create the nvidia-pytriton venv {venv}: {exc}") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FerEdgeError(f"cannot install nvidia-pytriton into {venv}: {tail[0]}")
    mark.write_text(wanted)
    return venv


def libpython_dir() -> Path:
    """The folder of this Python's shared library, which the python-backend stub links against."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise FerEdgeError("this Python is built without a shared libpython; Triton's python-backend stub needs "
                           "one (e.g. pyenv with PYTHON_CONFIGURE_OPTS=--enable-shared)")
    return Path(sysconfig.get_config_var("LIBDIR"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalTriton:
    """A running tritonserver on 127.0.0.1 (HTTP only); stop() ends it."""

    process: subprocess.Popen
    url: str  # host:port, as tritonclient takes it
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(venv: Path, repository: Path, workdir: Path, source_root: Path, *, ready_timeout: float = 120) -> LocalTriton:
    """Start tritonserver on a free loopback port and wait until every model is ready."""
    site = _site_packages(venv)
    dist = site / "pytriton" / "tritonserver"
    stub = dist / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}" / "triton_python_backend_stub"
    if not stub.is_file():
        raise FerEdgeError(f"nvidia-pytriton has no python-backend stub for Python {sys.version_info.major}."
                           f"{sys.version_info.minor}")
    backends = workdir / "backends"
    if backends.exists():
        shutil.rmtree(backends)
    shutil.copytree(dist / "backends", backends)
    shutil.copy2(stub, backends / "python" / stub.name)
    (site / "fer_edge_src.pth").write_text(str(source_root / "src") + "\n")
    port = free_port()
    env = {**os.environ,
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "LD_LIBRARY_PATH": os.pathsep.join([str(site / "nvidia_pytriton.libs"), str(libpython_dir()),
                                               os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("PYTHONPATH", None)
    log = workdir / "tritonserver.log"
    argv = [str(dist / "bin" / "tritonserver"), f"--model-repository={repository}", f"--backend-directory={backends}",
            f"--cache-directory={dist / 'caches'}", "--http-address=127.0.0.1", f"--http-port={port}",
            "--allow-grpc=false", "--allow-metrics=false", "--allow-gpu-metrics=false", "--log-verbose=0"]
    with open(log, "w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    server = LocalTriton(process, f"127.0.0.1:{port}", log)
    _wait_ready(server, ready_timeout)
    return server


def _wait_ready(server: LocalTriton, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            text = server.log.read_text(errors="replace")
            kind = ModelLoadError if "failed to load" in text else FerEdgeError
            raise kind(f"tritonserver exited with {server.process.returncode}: {_last_error(server.log)}")
        try:
            with urllib.request.urlopen(f"http://{server.url}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise FerEdgeError(f"tritonserver was not ready after {timeout:.0f} s: {_last_error(server.log)}")
        time.sleep(0.25)


def _last_error(log: Path) -> str:
    """The line that says why: a model's load failure first, else the last error line."""
    lines = log.read_text(errors="replace").splitlines()
    failed = [ln for ln in lines if "failed to load '" in ln]
    errors = [ln for ln in lines if ln.startswith("E") or "error" in ln.lower()]
    return ((failed or errors)[0 if failed else -1] if failed or errors else "see " + str(log))[:400]
