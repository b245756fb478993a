"""Backends take only the options they declare, spell reduced precision one way, list their devices for
`fer-edge info`, and release their engine on close (or at the end of a ``with`` block)."""
from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

import fer_edge
from fer_edge.errors import FerEdgeError
from fer_edge.metadata import ArtifactMetadata, InputSpec
from fer_edge.runtimes import BACKENDS, LoadedModel, Model, VideoModel, backend_class
from fer_edge.runtimes.base import Backend, BackendInfo, TensorInfo

LOADABLE = ["onnxruntime", "openvino", "torch"]  # engines installed here; TensorRT is checked by declaration
ENGINE = {"onnxruntime": "onnxruntime", "openvino": "openvino", "torch": "torch", "tensorrt": None}
RELEASED = {"onnxruntime": "session", "openvino": "compiled", "torch": "module"}  # what close drops


def _class(name: str) -> type[Backend]:
    if ENGINE[name]:
        pytest.importorskip(ENGINE[name])
    return backend_class(name)


def _load(name: str, **options):
    _class(name)
    return fer_edge.load("default", backend=name, device="cpu", **options)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and type(err.value) is FerEdgeError, text
    return text


# --- unknown options ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*LOADABLE, "tensorrt"])
def test_a_misspelt_option_is_refused_with_its_close_match(name):
    """TensorRT is not installed here: the declaration refuses the typo before any engine is needed."""
    cls = _class(name)
    with pytest.raises(FerEdgeError) as err:
        fer_edge.load("default", backend=name, device="cpu", precison="fp32")
    text = _one_line(err)
    assert f"unknown option precison= for the {name} backend (did you mean precision?)" in text
    assert text.endswith("it takes: " + ", ".join(cls.options))


def test_a_misspelt_load_keyword_is_suggested():
    with pytest.raises(FerEdgeError, match=r"unknown option label= .*did you mean labels\?"):
        fer_edge.load("default", backend="onnxruntime", label=["a"])


@pytest.mark.parametrize("name,option,why", [
    ("tensorrt", "threads", "it runs on the GPU"),
    ("onnxruntime", "performance_hint", "an OpenVINO setting"),
    ("openvino", "max_batch", "a TensorRT engine-build setting"),
    ("torch", "graph_optimization", "an ONNX Runtime setting"),
])
def test_another_backends_option_is_named_as_such(name, option, why):
    _class(name)
    with pytest.raises(FerEdgeError) as err:
        fer_edge.load("default", backend=name, device="cpu", **{option: 4})
    text = _one_line(err)
    assert text.startswith(f"{option} is not an option of the {name} backend ({why}") and "); it takes: " in text


def test_every_backends_options_are_known_to_the_others():
    """Each option (or older name) of one backend is taken by each other backend or has a reason why not."""
    classes = {n: _class(n) for n in BACKENDS}
    for name, cls in classes.items():
        for other, ocls in classes.items():
            missing = set(cls.options) | set(cls.renamed)
            missing -= set(ocls.options) | set(ocls.renamed) | set(ocls.not_options)
            assert other == name or not missing, f"{other} says nothing about {name}'s {sorted(missing)}"


@pytest.mark.parametrize("name", [*LOADABLE, "tensorrt"])
def test_declaration_is_the_constructors_keywords(name):
    cls = _class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    assert {p.name for p in params if p.kind is p.KEYWORD_ONLY} == set(cls.options)
    assert not any(p.kind is p.VAR_KEYWORD for p in params)  # nothing is swallowed


# --- bad values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,option,value,allowed", [
    ("onnxruntime", "threads", 0, "an integer >= 1"),
    ("onnxruntime", "graph_optimization", "max", "one of none, basic, extended, all"),
    ("openvino", "precision", "int3", "one of fp32, fp16, bf16"),
    ("openvino", "static_batch", "4", "an integer >= 1"),
    ("torch", "precision", "int8", "one of fp32, fp16, bf16"),
    ("torch", "threads", True, "an integer >= 1"),
    ("tensorrt", "max_batch", 0, "an integer >= 1"),
    ("tensorrt", "precision", "bf16", "one of fp32, fp16, int8"),
])
def test_a_bad_value_is_refused_in_one_line(name, option, value, allowed):
    _class(name)
    with pytest.raises(FerEdgeError) as err:
        fer_edge.load("default", backend=name, device="cpu", **{option: value})
    assert _one_line(err).startswith(f"{option}={value!r} is not valid for the {name} backend: pass {allowed} (")


# --- one spelling of precision --------------------------------------------------------------------
@pytest.mark.parametrize("name", LOADABLE)
def test_precision_fp32_runs_full_precision_on_every_backend(name, faces):
    ref = fer_edge.load("default", backend="onnxruntime", device="cpu").predict(faces).probs
    model = _load(name, precision="FP32")  # any case
    assert model.info().details["precision"] == "fp32"
    np.testing.assert_allclose(model.predict(faces).probs, ref, atol=1e-4)


def test_precision_bf16_on_torch_is_autocast(faces):
    model = _load("torch", precision="bf16")
    assert model.info().details["precision"] == "bf16" and "bf16" in model.info().precision_note


def test_precision_fp16_on_onnxruntime_cpu_says_what_would_do_it():
    with pytest.raises(FerEdgeError) as err:
        _load("onnxruntime", precision="fp16")
    assert "device='tensorrt'" in _one_line(err)


@pytest.mark.parametrize("name,old,value", [("openvino", {"precision": "f32"}, "fp32"),
                                            ("torch", {"autocast": "bf16"}, "bf16")])
def test_older_spellings_still_work_and_read_the_common_one(name, old, value):
    assert _load(name, **old).info().details["precision"] == value


def test_both_spellings_at_once_are_refused():
    with pytest.raises(FerEdgeError, match=r"autocast= is another spelling of precision="):
        _load("torch", precision="bf16", autocast="bf16")


# --- devices --------------------------------------------------------------------------------------
def test_available_devices_are_what_the_engines_report():
    ort = pytest.importorskip("onnxruntime")
    assert "cpu" in backend_class("onnxruntime").available_devices()
    assert backend_class("onnxruntime").available_devices()["cpu"] == "CPUExecutionProvider"
    assert len(backend_class("onnxruntime").available_devices()) <= len(ort.get_available_providers())
    ov = pytest.importorskip("openvino")
    assert list(backend_class("openvino").available_devices()) == list(ov.Core().available_devices)


def test_fer_edge_info_lists_each_backends_available_devices(monkeypatch, capsys):
    from fer_edge.cli.main import main

    cls = _class("onnxruntime")
    monkeypatch.setattr(cls, "available_devices", classmethod(lambda c: {"cpu": "probe-device-9"}))
    assert main(["info"]) == 0
    assert "cpu (probe-device-9)" in capsys.readouterr().out


# --- lifetime -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOADABLE)
def test_with_block_closes_once_and_predict_after_close_is_one_error(name, faces):
    with _load(name) as model:
        assert isinstance(model, LoadedModel) and not model.closed
        assert len(model.predict(faces)) == len(faces)
    assert model.closed and getattr(model.engine, RELEASED[name]) is None
    model.close()  # a second close does nothing
    for call in (lambda: model.predict(faces), lambda: model.predict([]), lambda: model.run(np.zeros((1, 1, 64, 64))),
                 model.info):
        with pytest.raises(FerEdgeError) as err:
            call()
        assert "closed" in _one_line(err)


class _Counting(Backend):
    """A graph of a video pair without an engine: counts its closes."""

    name = "counting"

    def __init__(self, inputs: list, outputs: list):
        super().__init__("counting.onnx")
        self._in, self._out, self.closes = inputs, outputs, 0

    @classmethod
    def available_devices(cls):
        return {"cpu": ""}

    inputs = property(lambda self: self._in)
    outputs = property(lambda self: self._out)
    device = property(lambda self: "cpu")

    def read_metadata(self):
        return None

    def info(self):
        return BackendInfo(self.name, "cpu", "0")

    def run(self, feeds):
        first = next(iter(feeds.values()))
        return {self._out[0].name: np.zeros((len(first), 3), np.float32)}

    def close(self):
        self.closes += 1


def _video_model() -> VideoModel:
    spec = InputSpec(size=(8, 8), color="GRAY", mean=(0.0,), std=(1.0,), frames=2)
    enc = ArtifactMetadata(method="toy", labels=["a", "b", "c"], graph="frame_encoder", input=spec)
    head = ArtifactMetadata(method="toy", labels=["a", "b", "c"], graph="temporal_head", input=spec)
    encoder = _Counting([TensorInfo("input", [-1, 1, 8, 8], "float32")], [TensorInfo("f", [-1, 3], "float32")])
    temporal = _Counting([TensorInfo("input", [-1, 2, 3], "float32")], [TensorInfo("logits", [-1, 3], "float32")])
    return VideoModel(Model(encoder, enc), Model(temporal, head))


def test_video_model_close_closes_both_graphs_once():
    video = _video_model()
    clip = [np.zeros((8, 8, 3), np.uint8)] * 2
    with video as same:
        assert same is video and isinstance(video, LoadedModel)
        assert len(video.predict_clips([clip])) == 1
    video.close()
    assert video.closed and (video.encoder.engine.closes, video.head.engine.closes) == (1, 1)
    for clips in ([clip], []):
        with pytest.raises(FerEdgeError) as err:
            video.predict_clips(clips)
        assert "closed" in _one_line(err)


def test_load_is_annotated_with_the_common_protocol():
    from fer_edge.runtimes import load

    assert typing.get_type_hints(load)["return"] is LoadedModel
    members = {n for n in dir(LoadedModel) if not n.startswith("_")} | {"__enter__", "__exit__"}
    for cls in (Model, VideoModel):
        assert all(hasattr(cls, m) for m in members - {"metadata"}), cls
