"""TensorRT backend, engine builder and cache, fp16 ONNX conversion, `fer-edge build-engine`.

Two kinds of tests:
* `TestOnRealTensorRT` builds and runs the default model with real TensorRT on a real GPU and compares
  with ONNX Runtime. It skips (with the reason) wherever TensorRT or a GPU is missing, which is
  everywhere this project has been developed so far.
* Everything else runs anywhere: version branching, cache keys, Q/DQ detection, sidecar metadata, error
  messages, the CUDA error helper, and the builder/backend plumbing driven through a FAKE `tensorrt`
  module and a fake `cuda.bindings.runtime` that keeps "device" memory in host RAM and executes the
  network with ONNX Runtime. The fakes implement the documented TensorRT 10/11 Python API names the code
  calls (and, for 11.x, lack the removed ones such as BuilderFlag.FP16), so a call to a removed or
  misspelt API fails here. They prove the plumbing, not TensorRT's numerics.
"""
from __future__ import annotations

import ctypes
import enum
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fer_edge.errors import FerEdgeError, MissingDependencyError  # noqa: E402
from fer_edge.metadata import ArtifactMetadata, InputSpec, attach_to_onnx, read_sidecar, write_sidecar  # noqa: E402
from fer_edge.runtimes import _cuda  # noqa: E402
from fer_edge.runtimes import tensorrt_build as tb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ONNX = ROOT / "src" / "fer_edge" / "assets" / "mini_xception.onnx"


# ==================================================================================================
# Small ONNX graphs made here
# ==================================================================================================

def _meta(size=8, channels=1) -> ArtifactMetadata:
    return ArtifactMetadata(method="tiny", labels=["a", "b", "c"],
                            input=InputSpec(name="input", size=(size, size), color="GRAY" if channels == 1 else "RGB",
                                            mean=(0.5,) * channels, std=(0.5,) * channels))


def _int8_weight(w: np.ndarray, name: str, inits: list, nodes: list) -> str:
    """Symmetric per-output-channel int8 weight + its DequantizeLinear (axis 0): what TensorRT fuses."""
    scale = np.abs(w).reshape(len(w), -1).max(1).astype(np.float32) / 127
    q = np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.int8)
    inits += [numpy_helper.from_array(q, f"{name}_q"), numpy_helper.from_array(scale, f"{name}_s"),
              numpy_helper.from_array(np.zeros(len(w), np.int8), f"{name}_z")]
    nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"],
                                  axis=0, name=f"{name}_dq"))
    return f"{name}_dq"


def tiny_classifier(path: Path | None = None, *, qdq: bool = False, batch="batch"):
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm: a (batch, 1, 8, 8) -> (batch, 3) classifier.

    `qdq`: explicitly quantized the way TensorRT wants it (symmetric int8 Q/DQ on the input and on the
    Gemm's activation, per-channel int8 weights, float output): it passes ``check_trt_qdq``."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    b = numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b")
    fw = rng.normal(0, 0.5, (3, 4)).astype(np.float32)
    fb = numpy_helper.from_array(np.zeros(3, np.float32), "fb")
    inits = [b, fb]
    nodes = []
    first, flat = "input", "f"
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z"),
                  numpy_helper.from_array(np.array(0.01, np.float32), "fs"),
                  numpy_helper.from_array(np.array(0, np.int8), "fz")]
        nodes += [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])]
        first, flat = "dq", "f_dq"
        w_name, fw_name = _int8_weight(w, "w", inits, nodes), _int8_weight(fw, "fw", inits, nodes)
    else:
        inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(fw, "fw")]
        w_name, fw_name = "w", "fw"
    nodes += [
        helper.make_node("Conv", [first, w_name, "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
    ]
    if qdq:
        nodes += [helper.make_node("QuantizeLinear", ["f", "fs", "fz"], ["f_q"]),
                  helper.make_node("DequantizeLinear", ["f_q", "fs", "fz"], ["f_dq"])]
    nodes.append(helper.make_node("Gemm", [flat, fw_name, "fb"], ["logits"], transB=1, name="fc"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    attach_to_onnx(model, _meta())
    if path is not None:
        onnx.save(model, str(path))
    return model


def _ort_run(model, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


# ==================================================================================================
# A fake cuda.bindings.runtime: "device" memory is host memory, copies are memmove
# ==================================================================================================

class FakeCudaRuntime:
    def __init__(self, gpu_name=b"Fake GPU 4090", cc=(8, 9), devices=1):
        import cuda.bindings.runtime as real

        self.cudaError_t = real.cudaError_t
        self.cudaMemcpyKind = real.cudaMemcpyKind
        self.cudaGetErrorString = real.cudaGetErrorString
        self._ok = real.cudaError_t.cudaSuccess
        self.gpu_name, self.cc, self.devices = gpu_name, cc, devices
        self.allocations: dict[int, ctypes.Array] = {}
        self.current_device = None

    def cudaGetDeviceCount(self):
        return (self._ok, self.devices)

    def cudaSetDevice(self, i):
        self.current_device = i
        return (self._ok,)

    def cudaGetDeviceProperties(self, i):
        return (self._ok, types.SimpleNamespace(name=self.gpu_name + b"\0" * 8, major=self.cc[0], minor=self.cc[1]))

    def cudaMalloc(self, n):
        buf = ctypes.create_string_buffer(int(n))
        self.allocations[ctypes.addressof(buf)] = buf
        return (self._ok, ctypes.addressof(buf))

    def cudaFree(self, ptr):
        self.allocations.pop(int(ptr))
        return (self._ok,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(int(dst), int(src), int(n))
        return (self._ok,)

    def cudaStreamCreate(self):
        return (self._ok, 1234)

    def cudaStreamSynchronize(self, s):
        return (self._ok,)

    def cudaStreamDestroy(self, s):
        return (self._ok,)


# ==================================================================================================
# A fake `tensorrt` module with the documented 10.x / 11.x Python API names
# ==================================================================================================

class _DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    INT64 = 9


_NP = {_DataType.FLOAT: np.float32, _DataType.HALF: np.float16, _DataType.INT8: np.int8,
       _DataType.INT32: np.int32, _DataType.INT64: np.int64}
_ONNX_TO_DT = {TensorProto.FLOAT: _DataType.FLOAT, TensorProto.FLOAT16: _DataType.HALF,
               TensorProto.INT64: _DataType.INT64, TensorProto.INT32: _DataType.INT32}
MAGIC = b"FAKETRT1"


def make_fake_trt(version: str, io_dtype: str = "onnx"):
    """A module object standing in for `tensorrt` of `version`. `io_dtype="half"` makes engines report fp16 I/O."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []  # (what, detail) in call order, for assertions
    trt.DataType = _DataType
    trt.nptype = lambda dt: _NP[_DataType(dt)]

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        pass

    ILogger.Severity = Severity
    for s in Severity:
        setattr(ILogger, s.name, s)

    class Logger(ILogger):
        def __init__(self, severity=Severity.WARNING):
            self.severity = severity

        def log(self, severity, msg):
            pass

    trt.ILogger, trt.Logger = ILogger, Logger

    flags = {"STRONGLY_TYPED": 0, "PREFER_AOT_PYTHON_PLUGINS": 1} if major >= 11 else \
            {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", flags)
    builder_flags = {"TF32": 0, "REFIT": 1, "GPU_FALLBACK": 2} if major >= 11 else \
        {"FP16": 0, "INT8": 1, "TF32": 2, "REFIT": 3, "GPU_FALLBACK": 4}
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", builder_flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.DeviceType = enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1})
    trt.num_dla = 0  # DLA cores of the fake device (an AGX Orin has 2)
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})

    class IProgressMonitor:
        pass

    trt.IProgressMonitor = IProgressMonitor

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.model = None

    class ParserError:
        def __init__(self, node, op, desc):
            self._node, self._op, self._desc = node, op, desc

        def node(self):
            return self._node

        def node_name(self):
            return f"n{self._node}"

        def node_operator(self):
            return self._op

        def desc(self):
            return self._desc

        def code(self):
            return 8

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse_from_file(self, path):
            model = onnx.load(path)
            trt.calls.append(("parse", model))
            for k, node in enumerate(model.graph.node):
                if node.domain not in ("", "ai.onnx"):
                    self.errors.append(ParserError(k, node.op_type, f"no importer for\n{node.domain}.{node.op_type}"))
            self.network.model = model
            return not self.errors

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+timings"

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.pool, self.cache = [], [], {}, None
            self.progress_monitor = None
            self.default_device_type, self.DLA_core = trt.DeviceType.GPU, -1

        def set_flag(self, flag):
            self.flags.append(trt.BuilderFlag(flag).name)

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def add_optimization_profile(self, p):
            self.profiles.append(p)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            trt.calls.append(("timing_cache_loaded", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            self.logger = logger
            self.num_DLA_cores = trt.num_dla

        def create_network(self, flags=0):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            names = [m.name for m in trt.NetworkDefinitionCreationFlag if network.flags & (1 << int(m))]
            header = {"network_flags": names, "builder_flags": config.flags,
                      "profiles": [{k: [list(s) for s in v] for k, v in p.shapes.items()} for p in config.profiles],
                      "workspace": config.pool.get(trt.MemoryPoolType.WORKSPACE),
                      "device_type": trt.DeviceType(config.default_device_type).name, "dla_core": config.DLA_core}
            trt.calls.append(("build", header))
            head = json.dumps(header).encode()
            return MAGIC + len(head).to_bytes(4, "little") + head + network.model.SerializeToString()

    class Engine:
        def __init__(self, header, model):
            self.header, self.model = header, model
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            self.session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            self.io = []
            for vi, mode in [(i, "INPUT") for i in model.graph.input] + [(o, "OUTPUT") for o in model.graph.output]:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
                dt = _DataType.HALF if io_dtype == "half" else _ONNX_TO_DT[vi.type.tensor_type.elem_type]
                self.io.append((vi.name, trt.TensorIOMode[mode], dt, dims))

        @property
        def num_io_tensors(self):
            return len(self.io)

        def get_tensor_name(self, i):
            return self.io[i][0]

        def _entry(self, name):
            return next(e for e in self.io if e[0] == name)

        def get_tensor_mode(self, name):
            return self._entry(name)[1]

        def get_tensor_dtype(self, name):
            return self._entry(name)[2]

        def get_tensor_shape(self, name):
            return list(self._entry(name)[3])

        def get_tensor_profile_shape(self, name, index):
            lo, opt, hi = self.header["profiles"][index][name]
            return [lo, opt, hi]

        def create_execution_context(self):
            return Context(self)

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            batch = next(iter(self.shapes.values()))[0]
            return [batch if d < 0 else d for d in self.engine.get_tensor_shape(name)]

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream):
            feeds = {}
            for name, mode, dt, _ in self.engine.io:
                if mode == trt.TensorIOMode.INPUT:
                    shape = self.shapes[name]
                    dtype = np.dtype(_NP[dt])
                    n = int(np.prod(shape)) * dtype.itemsize
                    raw = (ctypes.c_char * n).from_address(self.addresses[name])
                    feeds[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.float32)
            outs = self.engine.session.run(None, feeds)
            for (name, mode, dt, _), y in zip([e for e in self.engine.io if e[1] == trt.TensorIOMode.OUTPUT], outs):
                y = np.ascontiguousarray(y.astype(_NP[dt]))
                ctypes.memmove(self.addresses[name], y.ctypes.data, y.nbytes)
            trt.calls.append(("execute", stream))
            return True

    class Runtime:
        def __init__(self, logger):
            self._dla = -1

        @property
        def DLA_core(self):  # noqa: N802 - TensorRT's name
            return self._dla

        @DLA_core.setter
        def DLA_core(self, core):  # noqa: N802
            trt.calls.append(("runtime_dla_core", core))
            self._dla = core

        def deserialize_cuda_engine(self, data):
            if not data.startswith(MAGIC):
                return None
            n = int.from_bytes(data[8:12], "little")
            header = json.loads(data[12:12 + n])
            model = onnx.ModelProto()
            model.ParseFromString(data[12 + n:])
            return Engine(header, model)

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def fake_gpu(monkeypatch):
    rt = FakeCudaRuntime()
    monkeypatch.setattr(_cuda, "runtime", lambda: rt)
    return rt


@pytest.fixture
def fake_trt(monkeypatch, fake_gpu):
    """Install a fake TensorRT of a given version: `fake_trt("10.3.0")`."""
    def install(version: str = "10.3.0", **kw):
        trt = make_fake_trt(version, **kw)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        return trt

    return install


@pytest.fixture
def tiny_onnx(tmp_path) -> Path:
    path = tmp_path / "tiny.onnx"
    tiny_classifier(path)
    return path


# ==================================================================================================
# Version branching: which flags and which ONNX each TensorRT version gets
# ==================================================================================================

@pytest.mark.parametrize("version, precision, network, builder, variant", [
    ("10.3.0", "fp32", (), (), "as-is"),
    ("10.3.0", "fp16", (), ("FP16",), "as-is"),
    ("10.3.0", "int8", (), ("INT8", "FP16"), "as-is"),
    ("10.11.0.33", "int8", (), ("INT8", "FP16"), "as-is"),
    ("10.12.0", "fp32", ("STRONGLY_TYPED",), (), "as-is"),
    ("10.12.0", "fp16", (), ("FP16",), "as-is"),
    ("10.12.0", "int8", ("STRONGLY_TYPED",), (), "as-is"),
    ("10.16.1", "int8", ("STRONGLY_TYPED",), (), "as-is"),
    ("11.0.0", "fp32", (), (), "as-is"),
    ("11.0.0", "fp16", (), (), "fp16"),
    ("11.4.1", "int8", (), (), "as-is"),
])
def test_plan_per_version(version, precision, network, builder, variant):
    plan = tb.TrtFeatures(tb.parse_version(version)).plan(precision)
    assert (plan.network_flags, plan.builder_flags, plan.onnx_variant) == (network, builder, variant)
    if version.startswith("11"):
        assert not {"FP16", "INT8"} & set(plan.builder_flags)  # removed in 11


def test_plan_refuses_old_tensorrt_and_unknown_precision():
    with pytest.raises(FerEdgeError, match="TensorRT 10 or newer"):
        tb.TrtFeatures((8, 6, 1)).plan("fp16")
    with pytest.raises(FerEdgeError, match="unknown precision 'bf16'"):
        tb.TrtFeatures((10, 3, 0)).plan("bf16")


def test_features_read_from_module_version():
    assert tb.TrtFeatures.from_module(types.SimpleNamespace(__version__="10.3.0.30")).version == (10, 3, 0)
    assert tb.TrtFeatures.from_module(types.SimpleNamespace(__version__="11.4.1")).strong_typing_always


@pytest.mark.parametrize("version", ["10.3.0", "10.12.0", "11.2.1"])
def test_fp16_build_uses_the_right_mechanism(fake_trt, tiny_onnx, tmp_path, version):
    trt = fake_trt(version)
    res = tb.build_engine(tiny_onnx, "fp16", cache_dir=tmp_path / "c")
    parsed = next(m for what, m in trt.calls if what == "parse")
    header = next(h for what, h in trt.calls if what == "build")
    weights = {i.name: i.data_type for i in parsed.graph.initializer}
    if version.startswith("10."):
        assert header["builder_flags"] == ["FP16"] and weights["w"] == TensorProto.FLOAT
    else:  # 11.x: no flag (it does not exist), the ONNX itself is fp16
        assert header["builder_flags"] == [] and weights["w"] == TensorProto.FLOAT16
        assert parsed.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # I/O stays fp32
    assert header["network_flags"] == []
    assert read_sidecar(res.engine_path).precision == "fp16"


def test_int8_build_on_1012_is_strongly_typed(fake_trt, tmp_path):
    trt = fake_trt("10.12.0")
    path = tmp_path / "q.onnx"
    tiny_classifier(path, qdq=True)
    tb.build_engine(path, "int8", cache_dir=tmp_path / "c")
    header = next(h for what, h in trt.calls if what == "build")
    assert header["network_flags"] == ["STRONGLY_TYPED"] and header["builder_flags"] == []


# ==================================================================================================
# Q/DQ detection and the precision rules
# ==================================================================================================

def test_qdq_detection():
    assert tb.count_qdq_nodes(tiny_classifier(qdq=True)) == 6  # 2 Q/DQ pairs + 2 weight DQs
    assert tb.count_qdq_nodes(tiny_classifier()) == 0


def test_qdq_detection_ignores_custom_domains():
    m = tiny_classifier()
    m.graph.node.append(helper.make_node("QuantizeLinear", ["logits"], ["x"], domain="com.microsoft"))
    assert tb.count_qdq_nodes(m) == 0


@pytest.mark.skipif(not DEFAULT_ONNX.exists(), reason="default model asset not built yet")
def test_default_model_has_no_qdq():
    assert tb.count_qdq_nodes(onnx.load(str(DEFAULT_ONNX))) == 0


def test_int8_without_qdq_is_refused_before_tensorrt_is_needed(tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed: the Q/DQ check comes first
    with pytest.raises(FerEdgeError, match=r"no QuantizeLinear/DequantizeLinear.*fer-edge export --int8"):
        tb.build_engine(tiny_onnx, "int8", cache_dir=tmp_path)


def test_asymmetric_qdq_is_refused_with_the_right_file_named(tmp_path, monkeypatch):
    assert tb.asymmetric_qdq(tiny_classifier(qdq=True)) == []
    m = tiny_classifier(qdq=True)
    z = next(i for i in m.graph.initializer if i.name == "z")
    z.CopyFrom(numpy_helper.from_array(np.array(128, np.uint8), "z"))  # ONNX Runtime's uint8 activations
    m.graph.node[0].name = "q_in"
    assert tb.asymmetric_qdq(m) == ["q_in", "dq"]
    path = tmp_path / "ort_int8.onnx"
    onnx.save(m, str(path))
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(FerEdgeError, match=r"uint8 or non-zero zero points \(e\.g\. q_in\).*_int8_tensorrt_qdq\.onnx"):
        tb.build_engine(path, "int8", cache_dir=tmp_path)


def _unquantized_fc(model):
    """The tiny Q/DQ graph with its Gemm fed float weights: TensorRT would run that layer in float."""
    fc = next(n for n in model.graph.node if n.name == "fc")
    fc.input[1] = "fw_plain"
    model.graph.initializer.append(numpy_helper.from_array(np.ones((3, 4), np.float32), "fw_plain"))
    return model


def test_int8_build_runs_the_trt_qdq_check_before_tensorrt_is_needed(tmp_path, monkeypatch):
    from fer_edge.calibrate.trt_qdq import check_trt_qdq

    assert check_trt_qdq(tiny_classifier(qdq=True)) == []
    path = tmp_path / "misplaced.onnx"
    onnx.save(_unquantized_fc(tiny_classifier(qdq=True)), str(path))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed: the placement check comes first
    with pytest.raises(FerEdgeError, match=r"misplaced\.onnx breaks 1 TensorRT Q/DQ rule.*Gemm fc: input 1 "
                                           r"\(fw_plain\) has no Q/DQ.*--skip-qdq-check") as err:
        tb.build_engine(path, "int8", cache_dir=tmp_path)
    assert "\n" not in str(err.value)
    # with the check skipped, the next thing the build needs is TensorRT itself
    with pytest.raises(MissingDependencyError):
        tb.build_engine(path, "int8", cache_dir=tmp_path, check_qdq=False)


def test_trt_qdq_check_accepts_layers_the_export_kept_in_float(fake_trt, tmp_path):
    """Layers listed in the metadata's quantization.float_layers (the sensitivity fallback) may lack Q/DQ."""
    fake_trt("10.12.0")
    model = _unquantized_fc(tiny_classifier(qdq=True))
    attach_to_onnx(model, _meta().replace(precision="int8", extra={"quantization": {"float_layers": ["fc"]}}))
    path = tmp_path / "fallback.onnx"
    onnx.save(model, str(path))
    res = tb.build_engine(path, "int8", cache_dir=tmp_path / "c")
    assert res.engine_path.is_file() and not res.cached


def test_qdq_graph_must_be_built_as_int8(tmp_path):
    with pytest.raises(FerEdgeError, match="--precision int8"):
        tb.check_precision_for_graph("fp16", 4, "q.onnx")
    tb.check_precision_for_graph("int8", 4, "q.onnx")  # fine


# ==================================================================================================
# Cache keys
# ==================================================================================================

BASE = dict(gpu_name="NVIDIA Orin", compute_capability=(8, 7), trt_version="10.3.0",
            shapes={"input": [[1, 1, 64, 64], [8, 1, 64, 64], [32, 1, 64, 64]]}, onnx_sha256="ab" * 32)


def _key(**changes):
    kw = {**BASE, **changes}
    plan = kw.pop("plan", tb.TrtFeatures(tb.parse_version(kw["trt_version"])).plan(kw.pop("precision", "fp16")))
    return tb.EngineKey.make(plan=plan, **kw)


def test_cache_key_is_stable():
    assert _key().digest == _key().digest and _key().name == _key().name
    assert len(_key().digest) == 16


@pytest.mark.parametrize("change", [
    {"gpu_name": "NVIDIA GeForce RTX 4090"},
    {"compute_capability": (8, 9)},
    {"trt_version": "10.7.0"},
    {"precision": "fp32"},
    {"shapes": {"input": [[1, 1, 64, 64], [8, 1, 64, 64], [64, 1, 64, 64]]}},
    {"shapes": {"input": [[1, 1, 64, 64], [4, 1, 64, 64], [32, 1, 64, 64]]}},
    {"onnx_sha256": "cd" * 32},
    {"dla_core": 0},
])
def test_cache_key_changes_with_each_component(change):
    assert _key(**change).digest != _key().digest
    assert _key(**change).name != _key().name


def test_cache_key_name_is_readable():
    name = _key(onnx_stem="Mini Xception").name
    assert name.startswith("mini-xception-fp16-sm87-trt10-3-0-") and name.endswith(_key().digest)
    assert _key().timing_cache_name() == "timing-nvidia-orin-sm87-trt10-3-0.cache"


def test_onnx_hash_covers_external_weights(tmp_path):
    m = tiny_classifier()
    path = tmp_path / "ext.onnx"
    onnx.save(m, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    loaded = onnx.load(str(path), load_external_data=False)
    before = tb.onnx_sha256(path, loaded)
    assert before != tb.sha256_file(path)
    data = tmp_path / "ext.onnx.data"
    blob = bytearray(data.read_bytes())
    blob[0] ^= 0xFF  # same graph file, different weights
    data.write_bytes(bytes(blob))
    assert tb.onnx_sha256(path, loaded) != before
    inline = tmp_path / "inline.onnx"
    fresh = tiny_classifier(inline)  # (onnx.save above moved m's weights out in place)
    assert tb.onnx_sha256(inline, fresh) == tb.sha256_file(inline)


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(tb.CACHE_ENV, raising=False)
    assert tb.default_cache_dir() == Path.home() / ".cache" / "fer-edge" / "engines"
    monkeypatch.setenv(tb.CACHE_ENV, str(tmp_path))
    assert tb.default_cache_dir() == tmp_path / "engines"
    assert tb.default_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_shape_profile():
    shapes = tb.ShapeProfile(2, 4, 16).shapes_for({"input": ["batch", 1, 64, 64]})
    assert shapes == {"input": [[2, 1, 64, 64], [4, 1, 64, 64], [16, 1, 64, 64]]}
    assert tb.ShapeProfile().shapes_for({"x": [1, 3, 8, 8]}) == {"x": [[1, 3, 8, 8]] * 3}  # static batch
    with pytest.raises(FerEdgeError, match="min <= opt <= max"):
        tb.ShapeProfile(8, 4, 16).validate()
    with pytest.raises(FerEdgeError, match="fixed image size"):
        tb.ShapeProfile().shapes_for({"x": ["batch", 3, "h", "w"]})


# ==================================================================================================
# The builder end to end through the fakes: cache reuse, timing cache, sidecar, output copy
# ==================================================================================================

def test_build_cache_reuse_and_timing_cache(fake_trt, tiny_onnx, tmp_path):
    trt = fake_trt("10.3.0")
    cache = tmp_path / "cache"
    first = tb.build_engine(tiny_onnx, "fp16", tb.ShapeProfile(1, 2, 4), cache_dir=cache, workspace_mb=64)
    assert not first.cached and first.engine_path.parent == cache
    assert first.engine_path.name == f"{first.key.name}.engine"
    timing = cache / first.key.timing_cache_name()
    assert timing.read_bytes() == b"+timings"  # created empty, saved back after the build
    header = next(h for what, h in trt.calls if what == "build")
    assert header["profiles"] == [{"input": [[1, 1, 8, 8], [2, 1, 8, 8], [4, 1, 8, 8]]}]
    assert header["workspace"] == 64 << 20

    again = tb.build_engine(tiny_onnx, "fp16", tb.ShapeProfile(1, 2, 4), cache_dir=cache)
    assert again.cached and again.engine_path == first.engine_path
    assert sum(what == "build" for what, _ in trt.calls) == 1  # no second build

    tb.build_engine(tiny_onnx, "fp16", tb.ShapeProfile(1, 2, 4), cache_dir=cache, force=True)
    loads = [d for what, d in trt.calls if what == "timing_cache_loaded"]
    assert loads == [b"", b"+timings"]  # the rebuild started from the saved timing cache
    other = tb.build_engine(tiny_onnx, "fp32", tb.ShapeProfile(1, 2, 4), cache_dir=cache)
    assert other.engine_path != first.engine_path


def test_build_writes_sidecar_and_copies_output(fake_trt, tiny_onnx, tmp_path):
    fake_trt("10.3.0")
    out = tmp_path / "dist" / "tiny.engine"
    res = tb.build_engine(tiny_onnx, "fp32", cache_dir=tmp_path / "c", output=out)
    assert res.engine_path == out and out.is_file()
    meta = read_sidecar(out)
    src = tb.onnx_metadata(onnx.load(str(tiny_onnx)))
    assert meta.labels == src.labels and meta.input == src.input and meta.precision == "fp32"
    info = meta.extra["tensorrt"]
    assert info["gpu_name"] == "Fake GPU 4090" and info["compute_capability"] == [8, 9]
    assert info["onnx_sha256"] == tb.sha256_file(tiny_onnx) and info["trt_version"] == "10.3.0"


def test_build_uses_env_cache_dir(fake_trt, tiny_onnx, tmp_path, monkeypatch):
    fake_trt("10.3.0")
    monkeypatch.setenv(tb.CACHE_ENV, str(tmp_path / "env"))
    res = tb.build_engine(tiny_onnx, "fp32")
    assert res.engine_path.parent == tmp_path / "env" / "engines"


def test_parser_errors_are_one_line(fake_trt, tmp_path):
    fake_trt("10.3.0")
    m = tiny_classifier()
    m.graph.node.append(helper.make_node("Mystery", ["logits"], ["y"], domain="my.ops"))
    m.graph.node.append(helper.make_node("Mystery2", ["y"], ["z"], domain="my.ops"))
    path = tmp_path / "bad.onnx"
    onnx.save(m, str(path))
    with pytest.raises(FerEdgeError) as err:
        tb.build_engine(path, "fp32", cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("TensorRT cannot parse bad.onnx: node n5 op Mystery: no importer for my.ops.Mystery")
    assert msg.endswith("(+1 more)")


def test_dla_build_and_load(fake_trt, tiny_onnx, tmp_path):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    trt = fake_trt("10.3.0")
    trt.num_dla = 2
    res = tb.build_engine(tiny_onnx, "fp16", cache_dir=tmp_path, dla_core=1)
    header = next(h for what, h in trt.calls if what == "build")
    assert header["device_type"] == "DLA" and header["dla_core"] == 1
    assert set(header["builder_flags"]) == {"FP16", "GPU_FALLBACK"}
    assert "-dla1-" in res.key.name and read_sidecar(res.engine_path).extra["tensorrt"]["dla_core"] == 1
    TensorRTBackend(res.engine_path)  # the sidecar says DLA core 1: the runtime is pointed at it
    assert ("runtime_dla_core", 1) in trt.calls
    with pytest.raises(FerEdgeError, match="fp16 or int8 only"):
        tb.build_engine(tiny_onnx, "fp32", cache_dir=tmp_path, dla_core=0)
    trt.num_dla = 0
    with pytest.raises(FerEdgeError, match="has 0 DLA core"):
        tb.build_engine(tiny_onnx, "fp16", cache_dir=tmp_path, dla_core=0, force=True)


def test_sidecar_round_trip(tmp_path):
    meta = _meta()
    key = _key()
    plan = tb.TrtFeatures((10, 3, 0)).plan("fp16")
    side = tb.engine_metadata(meta, key, plan, 12.345)
    write_sidecar(tmp_path / "m.engine", side)
    back = read_sidecar(tmp_path / "m.engine")
    assert back == side and back.precision == "fp16" and meta.precision == "fp32"
    assert back.extra["tensorrt"]["cache_key"] == key.name
    assert back.extra["tensorrt"]["profile"] == {"input": BASE["shapes"]["input"]}
    assert back.extra["tensorrt"]["build_seconds"] == 12.35


# ==================================================================================================
# The backend through the fakes
# ==================================================================================================

def test_backend_runs_onnx_and_matches_onnxruntime(fake_trt, tiny_onnx, tmp_path):
    import fer_edge

    trt = fake_trt("10.3.0")
    model = fer_edge.load(tiny_onnx, backend="tensorrt", precision="fp32", max_batch=4, cache_dir=tmp_path / "c")
    assert model.backend == "tensorrt" and model.device == "cuda:0"
    assert model.metadata.labels == ["a", "b", "c"]
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 8)).astype(np.float32)
    got = model.run(x)["logits"]
    np.testing.assert_allclose(got, _ort_run(tiny_classifier(), x), rtol=1e-5, atol=1e-6)
    assert any(what == "execute" and d == 1234 for what, d in trt.calls)  # ran on our stream
    info = model.info()
    assert info.details["batch_range"] == {"input": (1, 4)} and info.details["gpu"] == "Fake GPU 4090"


@pytest.mark.skipif(not DEFAULT_ONNX.exists(), reason="default model asset not built yet")
def test_default_name_on_tensorrt_builds_from_the_embedded_onnx(fake_trt, tmp_path):
    import fer_edge

    fake_trt("10.3.0")
    model = fer_edge.load("default", backend="tensorrt", precision="fp32", max_batch=4, cache_dir=tmp_path)
    ref = fer_edge.load("default", backend="onnxruntime", device="cpu")
    assert model.metadata.labels == ref.metadata.labels and model.metadata.precision == "fp32"
    x = np.random.default_rng(5).uniform(-1, 1, (2, 1, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(model.run(x)["logits"], ref.run(x)["logits"], rtol=1e-4, atol=1e-4)


def test_backend_fp16_io_is_converted(fake_trt, tiny_onnx, tmp_path):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("11.2.1", io_dtype="half")
    be = TensorRTBackend(tiny_onnx, precision="fp16", max_batch=4, cache_dir=tmp_path / "c")
    assert [t.dtype for t in be.inputs] == ["float16"]
    x = np.random.default_rng(2).normal(size=(2, 1, 8, 8)).astype(np.float32)
    y = be.run({"input": x})["logits"]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _ort_run(tiny_classifier(), x), atol=2e-2)
    be.close()


def test_backend_batch_beyond_profile_says_how_to_rebuild(fake_trt, tiny_onnx, tmp_path):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    be = TensorRTBackend(tiny_onnx, precision="fp32", min_batch=1, opt_batch=2, max_batch=4, cache_dir=tmp_path)
    be.run({"input": np.zeros((4, 1, 8, 8), np.float32)})  # the maximum itself is fine
    with pytest.raises(FerEdgeError, match=r"batch 5 is larger .*batch 1\.\.4.*--max-batch 5"):
        be.run({"input": np.zeros((5, 1, 8, 8), np.float32)})
    with pytest.raises(FerEdgeError, match="expects"):
        be.run({"input": np.zeros((2, 1, 9, 8), np.float32)})


def test_backend_buffers_are_reused_and_freed(fake_trt, fake_gpu, tiny_onnx, tmp_path):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    be = TensorRTBackend(tiny_onnx, precision="fp32", max_batch=8, cache_dir=tmp_path)
    be.run({"input": np.ones((8, 1, 8, 8), np.float32)})
    n = len(fake_gpu.allocations)
    be.run({"input": np.ones((2, 1, 8, 8), np.float32)})  # smaller: no new allocation
    assert len(fake_gpu.allocations) == n == 2
    be.close()
    assert fake_gpu.allocations == {}


def test_backend_threads_share_one_context(fake_trt, tiny_onnx, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    be = TensorRTBackend(tiny_onnx, precision="fp32", max_batch=8, cache_dir=tmp_path)
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(int(rng.integers(1, 9)), 1, 8, 8)).astype(np.float32) for _ in range(24)]
    with ThreadPoolExecutor(4) as pool:
        ys = list(pool.map(lambda x: be.run({"input": x})["logits"], xs))
    ref = tiny_classifier()
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(y, _ort_run(ref, x), rtol=1e-5, atol=1e-6)


def test_engine_from_another_version_names_both(fake_trt, tiny_onnx, tmp_path):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    engine = tmp_path / "old.engine"
    engine.write_bytes(b"not an engine for this runtime")
    side = tb.engine_metadata(_meta(), _key(trt_version="10.0.1"), tb.TrtFeatures((10, 3, 0)).plan("fp16"), 1.0)
    write_sidecar(engine, side)
    with pytest.raises(FerEdgeError, match=r"built with TensorRT 10\.0\.1 and this is 10\.3\.0.*build-engine"):
        TensorRTBackend(engine)


def test_model_close_frees_the_gpu_once_and_refuses_later_runs(fake_trt, fake_gpu, tiny_onnx, tmp_path):
    import fer_edge

    fake_trt("10.3.0")
    x = np.zeros((2, 1, 8, 8), np.float32)
    with fer_edge.load(tiny_onnx, backend="tensorrt", precision="fp32", max_batch=4, cache_dir=tmp_path) as model:
        model.run(x)
        assert fake_gpu.allocations
    assert model.closed and fake_gpu.allocations == {}
    model.close()  # idempotent
    with pytest.raises(FerEdgeError, match="closed"):
        model.run(x)
    with pytest.raises(FerEdgeError, match="closed"):
        model.engine.run({"input": x})  # the backend itself, under its lock


def test_built_engine_refuses_build_options_instead_of_dropping_them(fake_trt, tiny_onnx, tmp_path):
    import fer_edge
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    engine = TensorRTBackend(tiny_onnx, precision="fp32", max_batch=4, cache_dir=tmp_path).engine_path
    assert fer_edge.load(engine, precision="fp32").info().details["precision"] == "fp32"
    with pytest.raises(FerEdgeError, match=r"was built as fp32, not fp16.*--precision fp16"):
        fer_edge.load(engine, precision="fp16")
    with pytest.raises(FerEdgeError, match=r"is a built engine: .*max_batch.*build-engine"):
        fer_edge.load(engine, max_batch=8)


def test_available_devices_lists_the_gpus(fake_trt, fake_gpu, monkeypatch):
    from fer_edge.runtimes.tensorrt import TensorRTBackend

    fake_trt("10.3.0")
    assert TensorRTBackend.available_devices() == {"cuda:0": "Fake GPU 4090 (sm89)"}
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match="JetPack"):
        TensorRTBackend.available_devices()


def test_threads_are_refused_before_tensorrt_is_needed(tiny_onnx, monkeypatch):
    import fer_edge

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(FerEdgeError, match=r"^threads is not an option of the tensorrt backend \(it runs on the GPU\)"):
        fer_edge.load(tiny_onnx, backend="tensorrt", threads=4)


def test_backend_refuses_cpu_device(fake_trt, tiny_onnx):
    import fer_edge

    fake_trt("10.3.0")
    with pytest.raises(FerEdgeError, match="only on NVIDIA GPUs"):
        fer_edge.load(tiny_onnx, backend="tensorrt", device="cpu")


# ==================================================================================================
# Errors with the real environment: no TensorRT, no GPU
# ==================================================================================================

def test_no_tensorrt_names_the_extra_and_where_tensorrt_comes_from(tiny_onnx, monkeypatch):
    import fer_edge

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError) as err:
        fer_edge.load(tiny_onnx, backend="tensorrt")
    msg = str(err.value)
    assert "pip install 'fer-edge[tensorrt]'" in msg and "JetPack" in msg and "NVIDIA" in msg
    assert err.value.extra == "tensorrt"


def test_cli_prints_the_extra(tiny_onnx, monkeypatch, capsys):
    from fer_edge.cli.main import main

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["build-engine", str(tiny_onnx), "--precision", "fp32"]) == 2
    assert "fer-edge[tensorrt]" in capsys.readouterr().err.replace("\n", "")


def test_cli_builds_and_prints_path_and_key(fake_trt, tiny_onnx, tmp_path, capsys):
    from fer_edge.cli.main import main

    fake_trt("11.0.0")
    assert main(["build-engine", str(tiny_onnx), "--precision", "fp16", "--max-batch", "4",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out.replace("\n", "")
    engine = next((tmp_path / "c").glob("*.engine"))
    assert f"engine: {engine}" in out and f"cache key: {engine.stem}" in out


def _gpu_present() -> bool:
    try:
        return _cuda.device_count() > 0
    except Exception:
        return False


@pytest.mark.skipif(_gpu_present(), reason="this machine has a GPU; the no-GPU message cannot be produced")
def test_no_gpu_is_a_clear_error():
    pytest.importorskip("cuda.bindings.runtime")
    with pytest.raises(FerEdgeError, match=r"(driver|no CUDA GPU)"):
        _cuda.gpu_info(0)


# ==================================================================================================
# The cuda-bindings error helper
# ==================================================================================================

def test_cuda_check_unpacks_results():
    rt = pytest.importorskip("cuda.bindings.runtime")
    ok = rt.cudaError_t.cudaSuccess
    assert _cuda.check((ok,)) is None
    assert _cuda.check((ok, 7)) == 7
    assert _cuda.check((ok, 1, 2)) == (1, 2)
    assert _cuda.check(ok) is None


@pytest.mark.parametrize("code, name, hint", [
    ("cudaErrorMemoryAllocation", "cudaErrorMemoryAllocation", "out of memory"),
    ("cudaErrorNoDevice", "cudaErrorNoDevice", "no CUDA GPU is visible"),
    ("cudaErrorInsufficientDriver", "cudaErrorInsufficientDriver", "driver"),
    ("cudaErrorInvalidValue", "cudaErrorInvalidValue", None),
])
def test_cuda_check_raises_one_line(code, name, hint):
    rt = pytest.importorskip("cuda.bindings.runtime")
    err = getattr(rt.cudaError_t, code)
    for value in (err, int(err)):  # the enum, or a bare integer code
        with pytest.raises(FerEdgeError) as exc:
            _cuda.check((value, None), "copying input to the GPU")
        msg = str(exc.value)
        assert msg.startswith(f"copying input to the GPU failed: {name} (") and "\n" not in msg
        if hint:
            assert hint in msg


def test_cuda_check_unknown_code():
    pytest.importorskip("cuda.bindings.runtime")
    with pytest.raises(FerEdgeError, match="cudaError 987654"):
        _cuda.check((987654,))


# ==================================================================================================
# fp16 ONNX conversion (for TensorRT 11 strongly typed fp16)
# ==================================================================================================

from fer_edge.export.onnx_fp16 import convert_to_fp16  # noqa: E402


@pytest.mark.skipif(not DEFAULT_ONNX.exists(), reason="default model asset not built yet")
def test_fp16_default_model_matches_fp32():
    m = onnx.load(str(DEFAULT_ONNX))
    f = convert_to_fp16(m)
    assert any(i.data_type == TensorProto.FLOAT16 for i in f.graph.initializer)
    assert not any(i.data_type == TensorProto.FLOAT for i in f.graph.initializer)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 1, 64, 64)).astype(np.float32)
    ref, got = _ort_run(m, x), _ort_run(f, x)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() <= 2e-2 * max(1.0, np.abs(ref).max())
    p = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)  # noqa: E731
    assert np.abs(p(got) - p(ref)).max() < 5e-3
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert tb.onnx_metadata(f).precision == "fp16" and tb.onnx_metadata(m).precision != "fp16"


def test_fp16_tiny_model_matches_and_keeps_io_fp32():
    m = tiny_classifier()
    f = convert_to_fp16(m)
    assert f.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert f.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.name: i.data_type for i in f.graph.initializer}["w"] == TensorProto.FLOAT16
    assert [n.op_type for n in f.graph.node].count("Cast") == 2
    x = np.random.default_rng(4).normal(size=(5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_ort_run(f, x), _ort_run(m, x), atol=1e-2)
    assert m.graph.initializer[0].data_type == TensorProto.FLOAT  # the input model is untouched


def test_fp16_keeps_fp32_where_required():
    """Resize scales stay fp32, an fp32-only op (Range) runs between Casts, ints are untouched,
    Constant(value_float), ConstantOfShape and Cast(to=float) become fp16, weights clip to fp16 range."""
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([-1e9], np.float32), "big"),
        numpy_helper.from_array(np.array(0.0, np.float32), "start"),
        numpy_helper.from_array(np.array(1.0, np.float32), "step"),
    ]
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Shape", ["up"], ["shp"]),                              # int64, untouched
        helper.make_node("Constant", [], ["three"], value_float=3.0),
        helper.make_node("Mul", ["up", "three"], ["m"]),
        helper.make_node("Max", ["m", "big"], ["mx"]),                           # -1e9 -> -65504 still works
        helper.make_node("ReduceSum", ["mx"], ["total"], keepdims=0),            # scalar, float
        helper.make_node("Range", ["start", "total", "step"], ["rng"]),          # fp32-only op
        helper.make_node("ConstantOfShape", ["shp"], ["zeros"]),                 # default fp32 zeros
        helper.make_node("Add", ["mx", "zeros"], ["y0"]),
        helper.make_node("Cast", ["shp"], ["shp_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["shp_f"], ["n"], keepdims=0),
        helper.make_node("Div", ["y0", "n"], ["y"]),
    ]
    g = helper.make_graph(nodes, "edge", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4]),
                           helper.make_tensor_value_info("rng", TensorProto.FLOAT, ["n"])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    f = convert_to_fp16(m)
    types_ = {i.name: i.data_type for i in f.graph.initializer}
    assert types_["scales"] == TensorProto.FLOAT and types_["big"] == TensorProto.FLOAT16
    assert types_["start"] == TensorProto.FLOAT  # Range's inputs stay fp32
    big = numpy_helper.to_array(next(i for i in f.graph.initializer if i.name == "big"))
    assert np.isfinite(big).all() and big[0] == -65504
    assert next(n for n in f.graph.node if n.op_type == "Cast" and "shp" in n.input).attribute[0].i == TensorProto.FLOAT16
    x = np.array([[[[1.0, 2.0], [3.0, -4.0]]]], np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = ort.InferenceSession(f.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for r, o in zip(ref, got):
        assert o.dtype == np.float32
        np.testing.assert_allclose(o, r, rtol=2e-3)


def test_fp16_refuses_qdq_graphs():
    with pytest.raises(FerEdgeError, match="Q/DQ"):
        convert_to_fp16(tiny_classifier(qdq=True))


# ==================================================================================================
# No torch on the TensorRT side
# ==================================================================================================

def test_tensorrt_modules_do_not_import_torch():
    code = ("import sys, fer_edge.runtimes.tensorrt, fer_edge.runtimes.tensorrt_build, fer_edge.export.onnx_fp16, "
            "fer_edge.cli.build_engine; bad = [m for m in ('torch', 'tensorrt') if m in sys.modules]; "
            "assert not bad, bad")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ==================================================================================================
# Real TensorRT on a real GPU (skips elsewhere)
# ==================================================================================================

def _real_trt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (it comes from NVIDIA/JetPack, not from PyPI through fer-edge)"
    if not _gpu_present():
        return "no CUDA GPU is visible"
    if not DEFAULT_ONNX.exists():
        return "default model asset not built yet"
    return None


@pytest.mark.tensorrt
@pytest.mark.skipif(_real_trt_reason() is not None, reason=str(_real_trt_reason()))
class TestOnRealTensorRT:
    @pytest.mark.parametrize("precision, tol", [("fp32", 2e-2), ("fp16", 6e-2)])
    def test_default_model_matches_onnxruntime(self, precision, tol, tmp_path):
        """fp32 tolerance allows TF32 (on by default for fp32 builds on Ampere and newer)."""
        import fer_edge

        model = fer_edge.load(DEFAULT_ONNX, backend="tensorrt", precision=precision, max_batch=16,
                              cache_dir=tmp_path)
        ref = fer_edge.load(DEFAULT_ONNX, backend="onnxruntime", device="cpu")
        x = np.random.default_rng(0).uniform(-1, 1, (16, 1, 64, 64)).astype(np.float32)
        got, want = model.run(x)["logits"], ref.run(x)["logits"]
        assert np.abs(got - want).max() <= tol * max(1.0, np.abs(want).max())
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9
        assert model.metadata.precision == precision
        one = model.run(x[:1])["logits"]  # a different batch within the profile
        np.testing.assert_allclose(one, got[:1], atol=tol * max(1.0, np.abs(want).max()))

    def test_cache_hit_on_second_load(self, tmp_path):
        first = tb.build_engine(DEFAULT_ONNX, "fp16", cache_dir=tmp_path)
        second = tb.build_engine(DEFAULT_ONNX, "fp16", cache_dir=tmp_path)
        assert not first.cached and second.cached and first.engine_path == second.engine_path
        assert (tmp_path / first.key.timing_cache_name()).stat().st_size > 0
