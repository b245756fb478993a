"""The little CUDA the TensorRT backend needs, through cuda-python (``cuda.bindings.runtime``).

Why cuda-bindings and not pycuda: pycuda compiles against the local CUDA toolkit on every install (slow
and fragile on Jetson); cuda-bindings ships prebuilt wheels and is what NVIDIA's own TensorRT samples use
since 10.x. Every call in cuda-bindings returns a tuple ``(cudaError_t, *values)`` instead of raising, so
all calls go through :func:`check`, which turns a failure into a one-line :class:`FerEdgeError`.

Device state in the CUDA runtime is per host thread: call :func:`set_device` in the thread that runs work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FerEdgeError, require

# Errors a user can do something about get a sentence saying what.
_HINTS = {
    "cudaErrorNoDevice": "no CUDA GPU is visible: TensorRT needs an NVIDIA GPU (check nvidia-smi and "
                         "CUDA_VISIBLE_DEVICES), or use backend='onnxruntime'/'openvino' on this machine",
    "cudaErrorInsufficientDriver": "no usable NVIDIA driver (absent, or older than this CUDA runtime): "
                                   "install/upgrade the driver, or use backend='onnxruntime'/'openvino'",
    "cudaErrorInvalidDevice": "that GPU index does not exist here; pick one of the devices nvidia-smi lists",
    "cudaErrorMemoryAllocation": "the GPU is out of memory: lower the batch size (or the engine's --max-batch)",
}


def runtime():
    """``cuda.bindings.runtime``, or a one-line error naming the extra that installs it."""
    return require("cuda.bindings.runtime", "tensorrt", "GPU memory for the TensorRT backend")


def _error_name(rt, err) -> tuple[str, str]:
    try:
        code = err if isinstance(err, rt.cudaError_t) else rt.cudaError_t(int(err))
    except (ValueError, TypeError):
        return f"cudaError {int(err)}", "unknown CUDA error"
    name = code.name
    try:
        _, desc = rt.cudaGetErrorString(code)
        desc = desc.decode() if isinstance(desc, bytes) else str(desc)
    except Exception:  # pragma: no cover - the lookup itself never needs a GPU
        desc = name
    return name, desc


def check(result: Any, what: str = "CUDA call") -> Any:
    """Unpack a cuda-bindings result ``(err, *values)``: the value(s) on success, else FerEdgeError.

    Returns None for calls that return only the error, the single value for ``(err, value)``, and a tuple
    for more values.
    """
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        name, desc = _error_name(runtime(), err)
        hint = _HINTS.get(name, "")
        raise FerEdgeError(f"{what} failed: {name} ({desc})" + (f"; {hint}" if hint else ""))
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class GpuInfo:
    """What identifies a GPU for engine compatibility: engines are tied to the architecture."""

    index: int
    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


def device_count() -> int:
    return int(check(runtime().cudaGetDeviceCount(), "counting CUDA devices"))


def set_device(index: int) -> None:
    check(runtime().cudaSetDevice(int(index)), f"selecting GPU {index}")


def gpu_info(index: int = 0) -> GpuInfo:
    rt = runtime()
    count = device_count()
    if not 0 <= index < count:
        raise FerEdgeError(f"GPU {index} does not exist: this machine has {count} CUDA device(s)")
    prop = check(rt.cudaGetDeviceProperties(int(index)), f"reading the properties of GPU {index}")
    name = prop.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return GpuInfo(int(index), str(name).strip(), (int(prop.major), int(prop.minor)))


class Stream:
    """A CUDA stream; ``handle`` is the integer TensorRT's ``execute_async_v3`` takes."""

    def __init__(self) -> None:
        self._rt = runtime()
        self._stream = check(self._rt.cudaStreamCreate(), "creating a CUDA stream")

    @property
    def handle(self) -> int:
        return int(self._stream)

    def synchronize(self) -> None:
        check(self._rt.cudaStreamSynchronize(self._stream), "waiting for the GPU")

    def close(self) -> None:
        if self._stream is not None:
            check(self._rt.cudaStreamDestroy(self._stream), "destroying a CUDA stream")
            self._stream = None


class DeviceBuffer:
    """Device memory that grows on demand (never shrinks), so steady-state runs allocate nothing."""

    def __init__(self, nbytes: int = 0) -> None:
        self._rt = runtime()
        self.ptr = 0
        self.nbytes = 0
        if nbytes:
            self.ensure(nbytes)

    def ensure(self, nbytes: int) -> int:
        """Make the buffer at least `nbytes` long; returns the device pointer."""
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(check(self._rt.cudaMalloc(int(nbytes)), f"allocating {nbytes} bytes on the GPU"))
            self.nbytes = int(nbytes)
        return self.ptr

    def upload(self, array: np.ndarray, stream: Stream) -> None:
        """Asynchronous host-to-device copy; `array` must stay alive until the stream is synchronised."""
        if not array.flags.c_contiguous:
            raise ValueError("upload needs a C-contiguous array")
        self.ensure(array.nbytes)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(self._rt.cudaMemcpyAsync(self.ptr, array.ctypes.data, array.nbytes, kind, stream._stream),
              "copying input to the GPU")

    def download(self, array: np.ndarray, stream: Stream) -> None:
        """Asynchronous device-to-host copy into `array` (valid after the stream is synchronised)."""
        if not array.flags.c_contiguous or array.nbytes > self.nbytes:
            raise ValueError("download needs a C-contiguous array no larger than the buffer")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(self._rt.cudaMemcpyAsync(array.ctypes.data, self.ptr, array.nbytes, kind, stream._stream),
              "copying output from the GPU")

    def __del__(self) -> None:  # a dropped backend must not leak GPU memory
        try:
            self.free()
        except Exception:  # interpreter shutdown: the CUDA runtime may already be gone
            pass

    def free(self) -> None:
        if self.ptr:
            check(self._rt.cudaFree(self.ptr), "freeing GPU memory")
            self.ptr = 0
            self.nbytes = 0
