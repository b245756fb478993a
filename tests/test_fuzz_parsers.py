"""Property-based fuzzing of everything fer-edge parses from a user's file.

Artifact metadata (the JSON itself, ONNX ``metadata_props``, OpenVINO ``rt_info``, the safetensors
header, the TensorRT ``<engine>.json`` sidecar, an export folder's manifest), the ``labels=`` and
``input_size=`` overrides, face-data specs and npz files, data set list files and label names.

The property everywhere: a mutated or garbage input gives either a valid, *sane* result or a
FerEdgeError whose message is one line; no other exception type escapes. Examples are derandomized
(the same on every run) and few, so the file stays fast; ``FER_EDGE_FUZZ_SCALE=20`` runs 20 times as
many random (not derandomized) examples, for a longer hunt.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import fer_edge  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.metadata import ArtifactMetadata, read_sidecar  # noqa: E402

SCALE = max(1, int(os.environ.get("FER_EDGE_FUZZ_SCALE", "1")))
_COMMON = dict(derandomize=SCALE == 1, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PURE = settings(max_examples=300 * SCALE, deadline=5_000, **_COMMON)  # pure functions: many examples
FILES = settings(max_examples=30 * SCALE, deadline=20_000, **_COMMON)  # a file written, a model opened
FEW = settings(max_examples=12 * SCALE, deadline=60_000, **_COMMON)  # a PyTorch model built per example

MAX_SIDE = 4096  # the documented bound on input height/width (fer_edge.metadata)
FACES = np.random.default_rng(0).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)


def refused_or(fn, *args, **kwargs):
    """fn(*args, **kwargs), or None where it raised a one-line FerEdgeError; anything else fails."""
    try:
        return fn(*args, **kwargs)
    except FerEdgeError as exc:
        msg = str(exc)
        assert msg.strip() and msg.splitlines() == [msg], f"not one line: {msg!r}"
        assert len(msg) < 1000, f"unbounded message ({len(msg)} characters)"
        return None


def assert_sane(meta: ArtifactMetadata) -> None:
    """What an accepted metadata must be, whatever file it came from."""
    inp = meta.input
    assert len(inp.size) == 2 and all(type(s) is int and 1 <= s <= MAX_SIDE for s in inp.size)
    assert all(isinstance(n, str) and n and n == n.strip() and n.isprintable() for n in meta.labels)
    assert len(set(meta.labels)) == len(meta.labels) and (meta.labels or meta.graph == "frame_encoder")
    assert len(inp.mean) in (1, inp.channels) and len(inp.std) in (1, inp.channels)
    assert all(type(v) is float and math.isfinite(v) for v in (*inp.mean, *inp.std, inp.scale, inp.face_scale))
    assert min(inp.std) > 0 and inp.scale > 0 and inp.face_scale > 0
    assert inp.layout != "NTCHW" or (type(inp.frames) is int and inp.frames >= 1)
    assert isinstance(meta.extra, dict) and isinstance(meta.method, str) and meta.method
    trt = meta.extra.get("tensorrt", {})  # what runtimes.tensorrt reads from an engine's sidecar
    assert isinstance(trt, dict) and (trt.get("dla_core") is None or type(trt["dla_core"]) is int)
    assert "compute_capability" not in trt or all(type(c) is int for c in trt["compute_capability"])
    for link in ("frame_encoder", "temporal_head"):  # runtimes.video joins them to the artifact's folder
        assert not meta.extra.get(link) or Path(meta.extra[link]).name == meta.extra[link]
    back = ArtifactMetadata.from_json(meta.to_json())
    assert back.to_json() == meta.to_json()  # accepted metadata writes back and reads the same


# --- strategies ----------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers(-5, 5) | st.integers() | st.integers(-10**30, 10**30)
           | st.floats() | st.text(max_size=12) | st.sampled_from(["", " ", "a\nb", "NCHW", "GRAY", "logits"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

# type and value changes of an existing field
RETYPES = [
    lambda v: [v], lambda v: {"v": v}, lambda v: None, lambda v: json.dumps(v), lambda v: True,
    lambda v: -v if isinstance(v, (int, float)) else v, lambda v: v * 10**12 if isinstance(v, (int, float)) else v,
    lambda v: float("nan") if isinstance(v, (int, float)) else v,
    lambda v: v[:-1] if isinstance(v, (list, str)) else v, lambda v: v + v if isinstance(v, (list, str)) else v,
    lambda v: [-x if isinstance(x, (int, float)) else x for x in v] if isinstance(v, list) else v,
    lambda v: [0 if isinstance(x, (int, float)) else "" for x in v] if isinstance(v, list) else v,
]


@functools.cache
def default_doc() -> dict:
    return fer_edge.load("default", backend="onnxruntime", device="cpu").metadata.to_dict()


@functools.cache
def seed_docs() -> tuple[dict, ...]:
    """Valid documents the code writes: the default model's, a clip model's, a split pair's head."""
    base = default_doc()
    clip = copy.deepcopy(base)
    clip["input"].update(layout="NTCHW", frames=16, color="RGB", mean=[0.0] * 3, std=[1.0] * 3, sampling="uniform-16")
    clip["task"] = "video"
    head = copy.deepcopy(clip)
    head["graph"] = "temporal_head"
    head["extra"] = {"frame_encoder": "m_frame_encoder.onnx", "quantization": {"float_layers": ["fc"]},
                     "tensorrt": {"dla_core": None, "trt_version": "10.3.0", "compute_capability": [8, 7]}}
    return base, clip, head


@st.composite
def mutated_docs(draw, seeds=seed_docs):
    """A seed document with 1..3 fields dropped, added, replaced or changed in type or value."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 3))):
        extra = doc.get("extra") if isinstance(doc.get("extra"), dict) else {}
        containers = [c for c in (doc, doc.get("input"), doc.get("output"), extra, extra.get("tensorrt"))
                      if isinstance(c, dict)]
        target = draw(st.sampled_from(containers))
        op = draw(st.sampled_from(["drop", "replace", "add", "retype", "retype"]))
        if op == "add" or not target:
            target[draw(st.text(max_size=10) | st.sampled_from(["frames", "temporal_head", "tensorrt"]))] = \
                draw(JSON_VALUES)
            continue
        key = draw(st.sampled_from(sorted(target)))
        if op == "drop":
            del target[key]
        elif op == "replace":
            target[key] = draw(JSON_VALUES)
        else:
            target[key] = draw(st.sampled_from(RETYPES))(target[key])
    return doc


def metadata_text(docs=mutated_docs()):
    """What an artifact may hold as metadata: mutated documents as JSON, truncated JSON, garbage."""
    return st.one_of(
        docs.map(json.dumps),
        st.tuples(docs.map(json.dumps), st.integers(0, 400)).map(lambda t: t[0][: t[1]]),
        JSON_VALUES.map(json.dumps),
        st.text(max_size=40),
    )


# --- the metadata JSON ---------------------------------------------------------------------------

@PURE
@given(doc=mutated_docs())
def test_mutated_metadata_is_sane_or_refused_in_one_line(doc):
    for meta in (refused_or(ArtifactMetadata.from_dict, doc), refused_or(ArtifactMetadata.from_json, json.dumps(doc))):
        if meta is not None:
            assert_sane(meta)


@PURE
@given(value=JSON_VALUES)
def test_any_json_document_is_sane_or_refused(value):
    meta = refused_or(ArtifactMetadata.from_json, json.dumps(value))
    if meta is not None:
        assert_sane(meta)


@PURE
@given(data=st.binary(max_size=200) | st.text(max_size=60).map(str.encode))
def test_random_bytes_are_refused_in_one_line(data):
    assert refused_or(ArtifactMetadata.from_json, data) is None


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 50_000, "[" * 999 + "]" * 999])
def test_deeply_nested_json_is_refused_in_one_line(text):
    assert refused_or(ArtifactMetadata.from_json, text) is None


def test_accepted_values_are_checked_not_just_parsed():
    """Values json accepts but a model cannot use are refused, naming the field."""
    cases = {("input", "size"): [64, 10**9], ("input", "std"): [0.0], ("input", "scale"): float("nan"),
             ("labels",): ["anger"] * 7, ("input", "frames"): "16", ("extra",): {"temporal_head": "../../x.onnx"}}
    for path, value in cases.items():
        doc = copy.deepcopy(default_doc())
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(FerEdgeError, match=path[-1]):
            ArtifactMetadata.from_json(json.dumps(doc))


# --- labels= and input_size= overrides ----------------------------------------------------------

LABEL_LISTS = (st.lists(st.text(max_size=6), min_size=0, max_size=9) | st.lists(st.sampled_from("abcdefg"), min_size=7,
               max_size=7) | st.lists(JSON_VALUES, max_size=8) | JSON_VALUES).filter(lambda v: v is not None)


@FILES
@given(labels=LABEL_LISTS)
def test_labels_override_is_used_as_given_or_refused(labels):
    model = refused_or(fer_edge.load, "default", backend="onnxruntime", device="cpu", labels=labels)
    if model is not None:
        assert model.labels == list(labels) and len(set(model.labels)) == 7
        assert_sane(model.metadata)


@FILES
@given(size=(JSON_VALUES | st.tuples(st.integers(-3, 70), st.integers(-3, 70)) | st.sampled_from([64, (64, 64), 0]))
       .filter(lambda v: v is not None))
def test_input_size_override_is_used_or_refused(size):
    model = refused_or(fer_edge.load, "default", backend="onnxruntime", device="cpu", input_size=size)
    if model is not None:
        assert model.metadata.input.size == (64, 64)  # the graph's fixed size: nothing else may be accepted
        assert model.predict(FACES).probs.shape == (2, 7)


# --- metadata inside real artifacts ------------------------------------------------------------

@functools.cache
def tiny_onnx():
    """A 7-class classifier of 1x8x8 inputs (Flatten + MatMul), without metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 7)).astype(np.float32) * 0.1, "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx, model


def tiny_seeds() -> tuple[dict, ...]:
    doc = copy.deepcopy(default_doc())
    doc["input"]["size"] = [8, 8]
    return (doc,)


def _check_loaded(path: Path, **kwargs) -> None:
    """load(path) gives a sane model that predicts, or one FerEdgeError line."""
    model = refused_or(fer_edge.load, path, device="cpu", **kwargs)
    if model is not None:
        assert_sane(model.metadata)
        pred = refused_or(model.predict, FACES)  # a "features" output kind is refused here, in one line
        assert pred is None or pred.probs.shape == (2, len(model.labels))


@FILES
@given(text=metadata_text(mutated_docs(tiny_seeds)))
def test_onnx_metadata_props(text):
    onnx, proto = tiny_onnx()
    proto = copy.deepcopy(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "fer_edge", text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.onnx"
        onnx.save(proto, str(path))
        _check_loaded(path, backend="onnxruntime")


@FILES
@given(value=metadata_text(mutated_docs(tiny_seeds)) | JSON_VALUES,
       where=st.sampled_from([["fer_edge"], ["framework"], ["framework", "fer_edge"]]))
def test_openvino_rt_info(value, where):
    ov = pytest.importorskip("openvino")
    onnx, proto = tiny_onnx()
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(proto, str(Path(tmp) / "tiny.onnx"))
        model = ov.Core().read_model(str(Path(tmp) / "tiny.onnx"))
        try:
            model.set_rt_info(value, where)
        except Exception:  # a value OpenVINO itself cannot store is not a file anyone can have
            reject()
        ov.save_model(model, str(Path(tmp) / "tiny.xml"), compress_to_fp16=False)
        _check_loaded(Path(tmp) / "tiny.xml", backend="openvino", precision="f32")


def test_openvino_framework_rt_info_that_is_not_a_map():
    """An IR whose rt_info ``framework`` is a plain value has no fer-edge metadata (not a RuntimeError)."""
    ov = pytest.importorskip("openvino")
    onnx, proto = tiny_onnx()
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(proto, str(Path(tmp) / "tiny.onnx"))
        model = ov.Core().read_model(str(Path(tmp) / "tiny.onnx"))
        model.set_rt_info("onnx", ["framework"])
        ov.save_model(model, str(Path(tmp) / "tiny.xml"))
        with pytest.raises(FerEdgeError, match="no fer-edge metadata"):
            fer_edge.load(Path(tmp) / "tiny.xml", device="cpu")


@FILES
@given(text=metadata_text())
def test_safetensors_header(text):
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    from fer_edge.checkpoint import read_checkpoint_metadata

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={"fer_edge": text})
        meta = refused_or(read_checkpoint_metadata, path)
        if meta is not None:
            assert_sane(meta)


@FILES
@given(data=st.binary(max_size=120) | st.just(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
def test_safetensors_files_that_are_not_safetensors(data):
    from fer_edge.checkpoint import read_checkpoint_metadata

    pytest.importorskip("safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.safetensors").write_bytes(data)
        meta = refused_or(read_checkpoint_metadata, Path(tmp) / "m.safetensors")
        assert meta is None


@FEW
@given(text=mutated_docs(lambda: (default_doc(),)).map(json.dumps))
def test_torch_checkpoint_end_to_end(text):
    pytest.importorskip("torch")
    from safetensors.numpy import load_file, save_file

    from fer_edge.artifacts import ASSETS

    tensors = load_file(str(ASSETS / "mini_xception.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file(tensors, str(path), metadata={"fer_edge": text})
        _check_loaded(path, backend="torch")


def test_torch_checkpoint_whose_metadata_does_not_fit_the_network(tmp_path):
    """The PyTorch backend's input tensor follows the metadata, so a wrong colour must be caught at load."""
    pytest.importorskip("torch")
    from safetensors.numpy import load_file, save_file

    from fer_edge.artifacts import ASSETS

    doc = copy.deepcopy(default_doc())
    doc["input"].update(color="RGB", mean=[0.5] * 3, std=[0.5] * 3)
    save_file(load_file(str(ASSETS / "mini_xception.safetensors")), str(tmp_path / "m.safetensors"),
              metadata={"fer_edge": json.dumps(doc)})
    model = refused_or(fer_edge.load, tmp_path / "m.safetensors", device="cpu")
    assert model is None or model.predict(FACES).probs.shape == (2, 7)


@PURE
@given(data=metadata_text().map(str.encode) | st.binary(max_size=80))
def test_tensorrt_sidecar(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.engine.json").write_bytes(data)
        meta = refused_or(read_sidecar, Path(tmp) / "m.engine")
        if meta is not None:
            assert_sane(meta)


@FILES
@given(manifest=JSON_VALUES.map(json.dumps).map(str.encode) | st.binary(max_size=40)
       | st.builds(lambda a: json.dumps({"artifacts": a}).encode(),
                   st.lists(st.fixed_dictionaries({"graph": st.just("frame_encoder"), "precision": st.just("fp32"),
                                                   "kind": st.just("onnx")}, optional={"file": JSON_VALUES}),
                            max_size=2) | JSON_VALUES))
def test_export_folder_manifest(manifest):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "manifest.json").write_bytes(manifest)
        assert refused_or(fer_edge.load, Path(tmp), device="cpu") is None  # the folder holds no model


# --- face data: specs, npz files, list files, label names -----------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A working folder with a valid npz, a broken one and a folder with a broken photo."""
    d = tmp_path_factory.mktemp("faces")
    np.savez(d / "faces.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, 0, 1]),
             classes=np.array(["Happy", "sad"]), split=np.array(["a", "b", "a", "b"]))
    (d / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "photos").mkdir()
    (d / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (d / "empty").mkdir()
    return d


def _safe_spec(text: str) -> bool:
    """Relative specs inside the working folder only (no scanning the whole disk for photos)."""
    return not text.startswith(("/", "\\", "~")) and ".." not in text


SPECS = st.one_of(
    st.text(max_size=30).filter(_safe_spec),
    st.builds("{}:{}".format, st.sampled_from(["fer2013", "ferplus", "rafdb", "faces.npz", "junk.npz", "x.npz", ""]),
              st.text(max_size=8)),
    st.sampled_from(["faces.npz", "junk.npz", "photos", "empty", ".", "faces.npz:a", "x" * 300, "x" * 300 + ":a"]),
)


def _assert_faces(faces) -> None:
    assert len(faces) > 0 and all(f.dtype == np.uint8 and (f.ndim == 2 or f.shape[-1] == 3) for f in faces.images)
    if faces.labels is not None:
        assert len(faces.labels) == len(faces) and faces.labels.min() >= 0
        assert faces.label_names is None or faces.labels.max() < len(faces.label_names)
    refused_or(faces.relabel, ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"])


@FILES
@given(spec=SPECS)
def test_face_data_specs(spec, data_dir):
    from fer_edge.data.faces import load_faces

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(data_dir)
        mp.setenv("FER_EDGE_DATA", str(data_dir / "empty"))  # dataset specs read no real data here
        faces = refused_or(load_faces, spec)
    if faces is not None:
        _assert_faces(faces)


ARRAYS = hnp.arrays(dtype=st.sampled_from([np.uint8, np.int64, np.float32, np.bool_, np.dtype("<U3")]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
NPZ_ARRAYS = st.fixed_dictionaries({}, optional={
    "images": ARRAYS | hnp.arrays(np.uint8, st.sampled_from([(3, 4, 4), (3, 4, 4, 3), (3, 0, 4), (3, 4, 4, 4)])),
    "labels": ARRAYS | hnp.arrays(np.int64, 3, elements=st.integers(-2, 9)),
    "classes": ARRAYS | st.lists(st.text(max_size=6) | st.sampled_from(["Happy", "happiness", "angry"]),
                                 max_size=4).map(lambda v: np.array(v, dtype=str)),
    "split": ARRAYS | hnp.arrays(np.dtype("<U1"), 3, elements=st.sampled_from("ab")),
})


@FILES
@given(arrays=NPZ_ARRAYS, split=st.none() | st.sampled_from(["a", "b", ""]))
def test_npz_faces(arrays, split):
    from fer_edge.data.faces import load_faces

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faces.npz"
        np.savez(path, **arrays)
        faces = refused_or(load_faces, f"{path}:{split}" if split is not None else str(path))
    if faces is not None:
        _assert_faces(faces)


def test_npz_with_objects_or_negative_labels_is_refused(tmp_path):
    from fer_edge.data.faces import load_faces

    np.savez(tmp_path / "objects.npz", images=np.array([{"x": 1}], dtype=object))
    np.savez(tmp_path / "negative.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([-1, 0]),
             classes=np.array(["happy", "sad"]))
    for name in ("objects.npz", "negative.npz"):
        assert refused_or(load_faces, str(tmp_path / name)) is None


LIST_TOKENS = st.sampled_from(["1", "0", "7", "8", "-3", "2.0", "2.5", "x", "nan", "inf", "1e400", "9" * 30, ""])
LIST_LINES = st.lists(st.tuples(st.sampled_from(["1", "2", "3", "train_00001.jpg", "test_0001.jpg", "a,b"]),
                                LIST_TOKENS | st.text(max_size=4)).map(" ".join), max_size=5).map("\n".join)
LIST_FILES = LIST_LINES.map(str.encode) | st.binary(max_size=30)


@FILES
@given(images=LIST_FILES, labels=LIST_FILES, split=LIST_FILES, partition=LIST_FILES)
def test_data_set_list_files(images, labels, split, partition):
    from fer_edge.data.lists import read_affectnet, read_id_lists, read_rafdb

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data in (("images.txt", images), ("image_class_labels.txt", labels), ("train_test_split.txt", split)):
            (root / "ids" / name).parent.mkdir(exist_ok=True)
            (root / "ids" / name).write_bytes(data)
        rows = refused_or(read_id_lists, root / "ids")
        assert rows is None or all(isinstance(f, str) and type(lab) is int and isinstance(tr, bool)
                                   for f, lab, tr in rows)
        (root / "raf" / "EmoLabel").mkdir(parents=True)
        (root / "raf" / "EmoLabel" / "list_patition_label.txt").write_bytes(partition)
        refused_or(read_rafdb, root / "raf", "train")
        (root / "aff").mkdir()
        (root / "aff" / "training.csv").write_bytes(b"subDirectory_filePath,expression\n" + partition.replace(b" ", b","))
        refused_or(read_affectnet, root / "aff", "train", 7)
        (root / "aff" / "training.csv").write_bytes(partition)
        refused_or(read_affectnet, root / "aff", "train", 8)


@PURE
@given(name=st.text(max_size=20) | JSON_VALUES | st.sampled_from(["Angry", " happiness ", "Dis-gusted", "rafdb"]))
def test_label_names(name):
    from fer_edge.labels import CANONICAL, LABEL_SETS, canonical_name, label_set

    canon = refused_or(canonical_name, name)
    assert canon is None or canon in CANONICAL
    labels = refused_or(label_set, name)
    assert labels is None or labels in LABEL_SETS.values()
    with pytest.raises(KeyError):  # callers that fall back on unknown names keep working
        canonical_name("no such expression")


@pytest.mark.parametrize("content", [b"clip_1 16 x\n", b"clip_1 sixteen 3\n", b"clip_1 16 -1\n", b"\xff\xfe\x00bad\n",
                                     b"clip_1 16\n", b"clip 1 16 2.5\n"])
def test_video_annotation_list_errors_are_one_line(content, tmp_path):
    from fer_edge.data.video import read_annotation_list

    lst = tmp_path / "DFEW_set_1_train.txt"
    lst.write_bytes(content)
    with pytest.raises(FerEdgeError) as info:
        read_annotation_list(lst, tmp_path, tuple("abcdefg"), "dfew-fold1", "train")
    assert "\n" not in str(info.value)


def test_safetensors_metadata_errors_name_the_field_not_a_broken_file(tmp_path):
    pytest.importorskip("safetensors")
    import json

    import torch
    from safetensors.torch import save_file

    from fer_edge.checkpoint import load_checkpoint
    from fer_edge.metadata import METADATA_KEY

    meta = json.loads(fer_edge.load("default").metadata.to_json())
    meta["labels"] = ["happy", "happy"]
    path = tmp_path / "dup.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    with pytest.raises(FerEdgeError) as info:
        load_checkpoint(path)
    assert "not a readable safetensors" not in str(info.value) and "label" in str(info.value)
