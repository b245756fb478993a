"""Video expression recognition end to end: `fer-edge export` of DFER-CLIP (clip graph + split pair,
INT8 frame encoder), `fer_edge.load` of the bundle or either graph, the streaming pipeline against the
monolithic graph, and `fer-edge run` on the sample video.

A reduced CLIP (same code paths as ViT-B/32, ~1% of the compute) keeps the module under a minute.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("open_clip")

import fer_edge  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.runtimes import Model, VideoModel  # noqa: E402

FRAMES = 16


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, shared_data):
    from fer_edge.export.orchestrate import ExportOptions, run_export
    from fer_edge.models.dfer_clip import TINY_ARCH

    faces = shared_data / "faces"
    if not faces.is_dir():
        pytest.skip(f"no face photos at {faces}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(3)
        out = tmp_path_factory.mktemp("dfer_export")
        return run_export(ExportOptions(method="dfer_clip", random_init=True, model_kwargs={"arch": TINY_ARCH},
                                        formats=("onnx", "openvino"), int8=True, int8_targets=("onnxruntime",),
                                        calib_data=str(faces), output=str(out)))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def files(bundle) -> dict[str, Path]:
    """graph (+ "_int8") -> the ONNX file; graph + "_fp32.xml"/"_fp16.xml" -> the OpenVINO IRs."""
    out = {}
    for a in bundle.artifacts:
        graph = a.get("graph", "classifier")
        key = graph + ("_int8" if a["precision"] == "int8" else "" if a["kind"] == "onnx" else f"_{a['precision']}.xml")
        out[key] = bundle.folder / a["file"]
    return out


@pytest.fixture(scope="module")
def real_clips(shared_data):
    from fer_edge.data.faces import load_faces
    from fer_edge.models import get_config

    faces = load_faces(str(shared_data / "faces"), input_spec=get_config("dfer_clip").input, limit=None)
    return faces.clips(FRAMES)[:3]


def test_export_writes_linked_pair_verified_against_the_clip_graph(bundle, files):
    assert set(files) == {f"{g}{s}" for g in ("classifier", "frame_encoder", "temporal_head")
                          for s in ("", "_fp32.xml", "_fp16.xml")} | {"frame_encoder_int8"}
    enc = fer_edge.load(files["frame_encoder"], pair=False).metadata
    head = fer_edge.load(files["temporal_head"], pair=False).metadata
    full = fer_edge.load(files["classifier"]).metadata
    assert (enc.graph, enc.output.kind, enc.input.layout) == ("frame_encoder", "features", "NCHW")
    assert (head.graph, head.input.frames, head.labels) == ("temporal_head", FRAMES, full.labels)
    # each graph names its partner (the monolithic graph names both)
    assert enc.extra["temporal_head"] == files["temporal_head"].name
    assert head.extra["frame_encoder"] == files["frame_encoder"].name
    assert (full.extra["frame_encoder"], full.extra["temporal_head"]) == (files["frame_encoder"].name,
                                                                          files["temporal_head"].name)
    parity = {p["artifact"]: p for p in bundle.parity}
    assert all(p["ok"] for p in parity.values()), parity
    assert {f.name for f in files.values() if "int8" not in f.name} <= set(parity)  # every FP32/FP16 file
    ir = fer_edge.load(files["frame_encoder_fp16.xml"], pair=False).metadata
    assert ir.extra["temporal_head"] == files["temporal_head_fp16.xml"].name  # partners of the same format
    split = [p for p in parity.values() if "split pair" in p["artifact"]]
    assert len(split) == 1 and split[0]["max_abs_diff"] <= 1e-4 and split[0]["faces"] >= 2
    # INT8: the encoder only, agreement-based report (pseudo-clips have no clip labels), head linked
    (rep,) = bundle.int8_reports
    assert rep["artifact"] == files["frame_encoder_int8"].name and rep["top1_change"] is None
    assert 0 <= rep["top1_agreement"] <= 100 and rep["max_logit_diff"] > 0  # int8 is not bit-equal
    q = fer_edge.load(files["frame_encoder_int8"])
    assert isinstance(q, VideoModel) and q.encoder.metadata.precision == "int8"
    assert q.head.metadata.precision == "fp32"
    assert (bundle.folder / "reports" / "int8_onnxruntime.md").is_file()
    assert files["frame_encoder_int8"].name in (bundle.folder / "README.md").read_text()


def test_load_bundle_or_either_graph_gives_the_pair(bundle, files, real_clips):
    full = fer_edge.load(files["classifier"])
    assert isinstance(full, Model)  # the monolithic clip graph stays a Model
    want = full.predict_clips(real_clips)
    for path in (bundle.folder, files["frame_encoder"], files["temporal_head"]):
        video = fer_edge.load(path)
        assert isinstance(video, VideoModel) and video.frames == FRAMES and video.labels == full.labels
        got = video.predict_clips(real_clips)
        np.testing.assert_allclose(got.raw, want.raw, rtol=0, atol=1e-4)
        assert got.names == want.names
    assert isinstance(fer_edge.load(files["frame_encoder"], pair=False), Model)
    # f32: OpenVINO would pick bf16 on CPUs that have it; the option reaches both graphs of the pair
    for video in (fer_edge.load(bundle.folder, backend="openvino", precision="f32"),
                  fer_edge.load(files["temporal_head_fp32.xml"], precision="f32")):
        assert isinstance(video, VideoModel) and video.backend == "openvino"
        assert video.encoder.metadata.precision == video.head.metadata.precision == "fp32"
        np.testing.assert_allclose(video.predict_clips(real_clips).raw, want.raw, rtol=0, atol=1e-3)
    with pytest.raises(FerEdgeError, match="predict_clips"):
        fer_edge.load(bundle.folder).predict(real_clips[0])


def test_stream_push_many_equals_push_one_at_a_time(bundle, real_clips):
    video = fer_edge.load(bundle.folder)
    one, many = video.stream(stride=1), video.stream(stride=1)
    for t in range(FRAMES + 1):
        frame = [(k, clip[t % FRAMES]) for k, clip in enumerate(real_clips)]  # three tracks in one frame
        singles = [one.push(k, crop) for k, crop in frame]
        batched = many.push_many(frame)
        assert [p is None for p in singles] == [p is None for p in batched] == [t < FRAMES - 1] * len(frame)
        for a, b in zip(singles, batched):
            if a is not None:
                np.testing.assert_allclose(b.raw, a.raw, rtol=0, atol=1e-4)
    with pytest.raises(FerEdgeError, match="one crop per track"):
        many.push_many([(0, real_clips[0][0]), (0, real_clips[0][1])])


def test_missing_partner_is_a_clear_error(files, tmp_path):
    lone = tmp_path / files["frame_encoder"].name
    lone.write_bytes(files["frame_encoder"].read_bytes())
    with pytest.raises(FerEdgeError, match="temporal_head.*copy the whole export folder"):
        fer_edge.load(lone)


def _run_pipeline(pipe, video: Path, frames: int):
    import cv2

    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        for _ in range(frames):
            ok, frame = cap.read()
            assert ok
            results = pipe(frame)
            out.append([(r, crop) for r, crop in zip(results, pipe.last_crops)])
    finally:
        cap.release()
    return out


def test_streaming_pipeline_equals_the_clip_graph_on_the_same_crops(bundle, files, sample_video):
    from fer_edge.pipeline import Pipeline

    pipe = Pipeline(model=bundle.folder, stride=4)
    assert pipe.video and pipe.stream.frames == FRAMES
    per_frame = _run_pipeline(pipe, sample_video, 22)
    full = fer_edge.load(files["classifier"])
    crops: dict[int, list[np.ndarray]] = {}
    checked = 0
    for faces in per_frame:
        for r, crop in faces:
            crops.setdefault(r.track_id, []).append(crop)
            n = len(crops[r.track_id])
            assert r.clip_frames == min(n, FRAMES)
            if n < FRAMES:
                assert r.warming_up and r.label == f"warming up {n}/{FRAMES}" and r.to_dict()["label"] is None
                continue
            assert not r.warming_up and r.label in full.labels
            if r.clip_new:  # a prediction at n = 16, 20, ...: the head on this track's last 16 crops
                assert (n - FRAMES) % 4 == 0
                want = full.predict_clips([crops[r.track_id][-FRAMES:]])
                np.testing.assert_allclose(r.probs, want.probs[0], rtol=0, atol=1e-5)
                checked += 1
    assert checked >= 1, {k: len(v) for k, v in crops.items()}
    # buffers of tracks the tracker has dropped are gone
    assert set(pipe.stream.tracks) <= {t.id for t in pipe.tracker.tracks}


def test_pipeline_refuses_a_clip_graph_without_its_pair(files, tmp_path):
    from fer_edge.pipeline import Pipeline

    lone = tmp_path / "clip.onnx"
    lone.write_bytes(files["classifier"].read_bytes())
    with pytest.raises(FerEdgeError, match="split pair"):
        Pipeline(model=lone)


def test_fer_edge_run_writes_clip_labels_per_track(bundle, files, sample_video, tmp_path):
    import cv2

    from fer_edge.cli.main import main

    js, out = tmp_path / "out.jsonl", tmp_path / "out.avi"
    # the monolithic clip graph is given: the pipeline runs the pair it names
    rc = main(["run", "--model", str(files["classifier"]), "--source", str(sample_video), "--json", str(js),
               "--output", str(out), "--max-frames", "20", "--stride", "2"])
    assert rc == 0
    labels = set(fer_edge.load(files["classifier"]).labels)
    seen: dict[int, int] = {}
    clip_tracks = set()
    for record in (json.loads(line) for line in js.read_text().splitlines()):
        for face in record["faces"]:
            tid = face["track_id"]
            seen[tid] = seen.get(tid, 0) + 1
            clip = face["clip"]
            assert clip["length"] == FRAMES and clip["frames"] == min(seen[tid], FRAMES)  # ids are stable
            if seen[tid] < FRAMES:
                assert face["label"] is None and clip["status"] == f"warming up {seen[tid]}/{FRAMES}"
            else:
                assert clip["status"] == "ready" and face["label"] in labels
                assert set(face["probs"]) == labels and abs(sum(face["probs"].values()) - 1) < 1e-3
                assert clip["new"] == ((seen[tid] - FRAMES) % 2 == 0)
                clip_tracks.add(tid)
    assert clip_tracks, seen
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
