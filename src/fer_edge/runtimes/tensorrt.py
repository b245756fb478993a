"""Native TensorRT backend: `.engine`/`.plan` files, or an ONNX built into an engine on this GPU first.

Written for TensorRT 10.x (JetPack 6 ships 10.3) and 11.x with the name-based API both share:
``set_input_shape`` + ``set_tensor_address`` + ``execute_async_v3``. Device memory and the stream come
from cuda-python (:mod:`._cuda`), not pycuda and not torch (this module must not import torch).

Metadata: an engine cannot carry it, so it is read from the ``<engine>.json`` sidecar that
:func:`fer_edge.runtimes.tensorrt_build.build_engine` writes beside every engine.

Concurrency: one execution context per backend, guarded by a lock, so one model may be shared by several
threads (calls are serialised). For parallel GPU work create one model per thread: each gets its own
context, stream and buffers.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata, read_sidecar
from . import _cuda
from .base import Backend, BackendInfo, Option, TensorInfo
from .tensorrt_build import PRECISIONS, ShapeProfile, build_engine, import_tensorrt, parse_version


def parse_device(device: str) -> int:
    """"auto" / "cuda" / "gpu" / "cuda:N" -> GPU index; anything else is a clear error."""
    dev = str(device).lower()
    if dev in ("auto", "cuda", "gpu", "tensorrt"):
        return 0
    for prefix in ("cuda:", "gpu:"):
        if dev.startswith(prefix) and dev[len(prefix):].isdigit():
            return int(dev[len(prefix):])
    raise FerEdgeError(
        f"TensorRT runs only on NVIDIA GPUs; device {device!r} is not one (use 'cuda' or 'cuda:N', or "
        "backend='onnxruntime'/'openvino' for the CPU)"
    )


def check_batch(name: str, batch: int, limits: tuple[int, int], engine_name: str) -> None:
    """A batch outside the engine's optimization profile: say how to rebuild for it."""
    lo, hi = limits
    if lo <= batch <= hi:
        return
    if batch > hi:
        raise FerEdgeError(
            f"batch {batch} is larger than {engine_name} accepts (input {name!r}: batch {lo}..{hi}); split the "
            f"batch, or rebuild with `fer-edge build-engine MODEL.onnx --max-batch {batch}` "
            f"(or load the ONNX with max_batch={batch})"
        )
    raise FerEdgeError(
        f"batch {batch} is smaller than {engine_name} accepts (input {name!r}: batch {lo}..{hi}); rebuild with "
        f"`fer-edge build-engine MODEL.onnx --min-batch {batch}`"
    )


_BUILD = "; applies when an ONNX is built into an engine here"


class TensorRTBackend(Backend):
    name = "tensorrt"
    options = {
        "precision": Option("the engine's precision (int8 needs a Q/DQ ONNX); default fp16" + _BUILD,
                            choices=PRECISIONS),
        "min_batch": Option("the smallest batch of the engine's shape profile; default 1" + _BUILD, int, minimum=1),
        "opt_batch": Option("the batch the engine is tuned for; default 8, kept within min..max" + _BUILD, int,
                            minimum=1),
        "max_batch": Option("the largest batch of the engine's shape profile; default 32" + _BUILD, int, minimum=1),
        "cache_dir": Option("the folder of built engines; default: fer-edge's cache" + _BUILD, Path),
        "workspace_mb": Option("the builder's workspace memory in MiB" + _BUILD, int, minimum=1),
        "dla_core": Option("the Jetson DLA core to run on; default: the one the engine was built for", int,
                           minimum=0),
    }
    not_options = {
        "threads": "it runs on the GPU",
        "performance_hint": "an OpenVINO setting; TensorRT engines are tuned when built (opt_batch=)",
        "static_batch": "an OpenVINO setting; TensorRT engines take the batch range min_batch..max_batch",
        "graph_optimization": "an ONNX Runtime setting; TensorRT optimises when it builds the engine",
        "method": "it runs engines and ONNX files, which carry their metadata",
        "autocast": "a PyTorch setting; the common spelling is precision=",
    }

    @classmethod
    def available_devices(cls) -> dict[str, str]:
        import_tensorrt()  # no TensorRT, no devices: MissingDependencyError naming where it comes from
        infos = (_cuda.gpu_info(i) for i in range(_cuda.device_count()))
        return {f"cuda:{g.index}": f"{g.name} ({g.sm})" for g in infos}

    def __init__(self, path: str | Path, device: str = "auto", *, precision: str | None = None,
                 min_batch: int | None = None, opt_batch: int | None = None, max_batch: int | None = None,
                 cache_dir: str | Path | None = None, workspace_mb: int | None = None,
                 dla_core: int | None = None):
        super().__init__(path)
        self._device_index = parse_device(device)
        trt = import_tensorrt()
        self._trt = trt
        self._lock = threading.Lock()
        self.gpu = _cuda.gpu_info(self._device_index)
        _cuda.set_device(self._device_index)

        self.engine_path = Path(path)
        prebuilt = self.engine_path.suffix.lower() != ".onnx"
        if not prebuilt:
            profile = ShapeProfile.from_args(min_batch or 1, opt_batch, max_batch or 32)
            built = build_engine(self.engine_path, precision or "fp16", profile, cache_dir=cache_dir,
                                 workspace_mb=workspace_mb, device=self._device_index, dla_core=dla_core)
            self.engine_path = built.engine_path
        self._sidecar = read_sidecar(self.engine_path)
        if prebuilt:
            self._check_prebuilt(precision, min_batch, opt_batch, max_batch, cache_dir, workspace_mb)

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        built_for = (self._sidecar.extra.get("tensorrt", {}) if self._sidecar else {}).get("dla_core")
        self.dla_core = dla_core if dla_core is not None else built_for
        if self.dla_core is not None:  # a DLA engine must be deserialized onto its core
            self._runtime.DLA_core = int(self.dla_core)
        engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            raise FerEdgeError(self._deserialize_hint())
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise FerEdgeError(f"TensorRT could not create an execution context for {self.engine_path.name} "
                               "(usually out of GPU memory)")
        self._stream = _cuda.Stream()
        self._io = self._describe_io()
        self._buffers = {name: _cuda.DeviceBuffer() for name in self._io}

    # --- describe -------------------------------------------------------------------------------
    def _describe_io(self) -> dict[str, dict[str, Any]]:
        trt, engine = self._trt, self._engine
        io = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            entry = {
                "input": is_input,
                "dtype": np.dtype(trt.nptype(engine.get_tensor_dtype(name))),
                "shape": [int(d) for d in engine.get_tensor_shape(name)],
            }
            if is_input and entry["shape"] and entry["shape"][0] < 0:
                lo, _opt, hi = engine.get_tensor_profile_shape(name, 0)
                entry["batch"] = (int(lo[0]), int(hi[0]))
            io[name] = entry
        return io

    def _check_prebuilt(self, precision, *build_options) -> None:
        """A built engine has its precision and profile: building options for it are refused, not dropped."""
        if any(v is not None for v in build_options):
            raise FerEdgeError(f"{self.path.name} is a built engine: min_batch/opt_batch/max_batch/cache_dir/"
                               "workspace_mb apply when an ONNX is built; rebuild it with `fer-edge build-engine`")
        built = self._sidecar.precision if self._sidecar else None
        if precision is not None and built is not None and precision != built:
            raise FerEdgeError(f"{self.path.name} was built as {built}, not {precision}; rebuild it from the ONNX "
                               f"with `fer-edge build-engine MODEL.onnx --precision {precision}`")

    def _deserialize_hint(self) -> str:
        built = (self._sidecar.extra.get("tensorrt", {}) if self._sidecar else {})
        here = self._trt.__version__
        why = "engines only run on the GPU architecture and TensorRT version they were built with"
        if built.get("trt_version") and parse_version(built["trt_version"]) != parse_version(here):
            why = f"it was built with TensorRT {built['trt_version']} and this is {here}"
        elif built.get("compute_capability") and tuple(built["compute_capability"]) != self.gpu.compute_capability:
            cc = "".join(map(str, built["compute_capability"]))
            why = f"it was built for sm{cc} and this GPU ({self.gpu.name}) is {self.gpu.sm}"
        return (f"TensorRT cannot load {self.engine_path.name}: {why}; rebuild it here from the ONNX with "
                "`fer-edge build-engine MODEL.onnx`")

    def _tensors(self, inputs: bool) -> list[TensorInfo]:
        return [TensorInfo(n, list(e["shape"]), str(e["dtype"])) for n, e in self._io.items() if e["input"] == inputs]

    @property
    def inputs(self) -> list[TensorInfo]:
        return self._tensors(True)

    @property
    def outputs(self) -> list[TensorInfo]:
        return self._tensors(False)

    @property
    def device(self) -> str:
        return f"cuda:{self._device_index}"

    def read_metadata(self) -> ArtifactMetadata | None:
        return self._sidecar

    def info(self) -> BackendInfo:
        dtypes = {n: str(e["dtype"]) for n, e in self._io.items()}
        precision = self._sidecar.precision if self._sidecar else "unknown"
        return BackendInfo(
            self.name, self.device, self._trt.__version__,
            precision_note=f"engine precision {precision}",
            details={"gpu": self.gpu.name, "precision": precision, "dla_core": self.dla_core,
                     "compute_capability": self.gpu.sm, "engine": str(self.engine_path),
                     "io_dtypes": dtypes,
                     "batch_range": {n: e["batch"] for n, e in self._io.items() if "batch" in e}},
        )

    # --- run ------------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            ctx = self._context
            if ctx is None:
                raise FerEdgeError(f"the TensorRT engine {self.engine_path.name} is closed; load it again")
            _cuda.set_device(self._device_index)  # device selection is per host thread in CUDA
            keep = []  # host arrays must outlive the asynchronous copies
            for name, entry in self._io.items():
                if not entry["input"]:
                    continue
                if name not in feeds:
                    raise FerEdgeError(f"input {name!r} is missing; the engine takes {', '.join(self._input_names())}")
                arr = np.ascontiguousarray(feeds[name], dtype=entry["dtype"])
                self._check_shape(name, entry, arr.shape)
                if not ctx.set_input_shape(name, tuple(arr.shape)):
                    raise FerEdgeError(f"TensorRT refused shape {tuple(arr.shape)} for input {name!r}")
                buf = self._buffers[name]
                buf.upload(arr, self._stream)
                ctx.set_tensor_address(name, buf.ptr)
                keep.append(arr)
            results = {}
            for name, entry in self._io.items():
                if entry["input"]:
                    continue
                shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise FerEdgeError(f"output {name!r} has an unresolved shape {shape}; the engine is not usable here")
                host = np.empty(shape, dtype=entry["dtype"])
                buf = self._buffers[name]
                buf.ensure(max(host.nbytes, 1))
                ctx.set_tensor_address(name, buf.ptr)
                results[name] = host
            if not ctx.execute_async_v3(self._stream.handle):
                raise FerEdgeError(f"TensorRT failed to run {self.engine_path.name} (see the TensorRT log above)")
            for name, host in results.items():
                if host.nbytes:
                    self._buffers[name].download(host, self._stream)
            self._stream.synchronize()
            del keep
        # fp16 engines (TensorRT 11 strongly typed with fp16 I/O) hand back float16: callers get float32.
        return {n: (a.astype(np.float32) if a.dtype == np.float16 else a) for n, a in results.items()}

    def _input_names(self) -> list[str]:
        return [n for n, e in self._io.items() if e["input"]]

    def _check_shape(self, name: str, entry: dict, shape: tuple) -> None:
        want = entry["shape"]
        if len(shape) != len(want) or any(w >= 0 and w != g for w, g in zip(want, shape)):
            raise FerEdgeError(f"input {name!r} has shape {shape}, the engine expects {want} (-1 = any batch)")
        if "batch" in entry:
            check_batch(name, shape[0], entry["batch"], self.engine_path.name)

    def close(self) -> None:
        """Free the buffers and the stream, then the context before the engine and the runtime."""
        with self._lock:
            for buf in self._buffers.values():
                buf.free()
            self._buffers = {}
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            self._context = None
            self._engine = None
            self._runtime = None
