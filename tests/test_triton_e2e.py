"""A real Triton Inference Server (the `tritonserver` of the nvidia-pytriton wheel, python backend only)
on 127.0.0.1 serving a `fer-edge triton-repo --backend python` repository: real faces in through
tritonclient's async HTTP API, the same probabilities as fer_edge out.

That binary has no onnxruntime/openvino/tensorrt backend, so the classifier runs through the python
backend (fer-edge's ONNX Runtime inside Triton); the native configs are schema-checked in
test_triton_repo.py. The nvidia-pytriton venv (it pins numpy<2) is created once under .cache/.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

aio = pytest.importorskip("tritonclient.http.aio", reason="tritonclient is not installed: pip install 'fer-edge[triton]'")
http = pytest.importorskip("tritonclient.http")

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "triton-venv"
CLASSIFIER = "classifier"


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    """(server url, repository) of a running tritonserver; skips with the reason where it cannot start."""
    from fer_edge.errors import FerEdgeError
    from fer_edge.triton import Serving, build_repository
    from fer_edge.triton import local_server

    work = tmp_path_factory.mktemp("triton")
    repo = build_repository(["default"], work / "repo", Serving(max_batch=16, max_delay_us=5000),
                            backend="python", names=[CLASSIFIER])
    try:
        local_server.libpython_dir()
        venv = local_server.ensure_venv(VENV)
        server = local_server.start(venv, repo.folder, work, ROOT)
    except local_server.ModelLoadError as exc:  # the server runs: the repository is at fault
        pytest.fail(f"Triton could not load the fer-edge models: {exc}; log: {work / 'tritonserver.log'}")
    except FerEdgeError as exc:
        pytest.skip(f"cannot start a local Triton server: {exc}")
    try:
        yield server.url, repo
    finally:
        server.stop()


def _run(coro):
    return asyncio.run(coro)


def test_classifier_on_triton_matches_fer_edge_load(triton, aligned_face_crops):
    """Preprocessed crops through Triton's classifier: the logits and probabilities of fer_edge.load."""
    from fer_edge.preprocess import preprocess_images

    import fer_edge

    url, _ = triton
    model = fer_edge.load("default")
    crops = aligned_face_crops
    x = preprocess_images(crops, model.metadata.input)
    want = model.predict(crops)

    async def go():
        client = aio.InferenceServerClient(url)
        try:
            inp = http.InferInput(model.metadata.input.name, list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            result = await client.infer(CLASSIFIER, [inp])
            config = await client.get_model_config(CLASSIFIER)
            return result.as_numpy(model.metadata.output.name), config
        finally:
            await client.close()

    logits, config = _run(go())
    got = model.postprocess({model.metadata.output.name: logits})
    np.testing.assert_allclose(got.probs, want.probs, atol=1e-5, rtol=0)
    assert got.names == want.names
    meta = fer_edge.ArtifactMetadata.from_json(config["parameters"]["fer_edge_metadata"]["string_value"])
    assert meta.labels == model.labels and meta.input == model.metadata.input


def test_faces_pipeline_on_triton_matches_pipeline(triton, face_photos):
    """One request per frame returns its faces: boxes, labels and probabilities of fer_edge.Pipeline;
    16 concurrent requests all succeed (their faces meet in the classifier's dynamic batcher)."""
    import cv2

    import fer_edge

    url, repo = triton
    pipe = fer_edge.Pipeline()
    want = {}
    for photo in face_photos:
        pipe.reset_tracks()
        want[photo.name] = pipe(cv2.imread(str(photo)))
    photos = [face_photos[i % len(face_photos)] for i in range(16)]

    async def go():
        client = aio.InferenceServerClient(url)
        try:
            async def one(photo):
                data = np.frombuffer(photo.read_bytes(), np.uint8)
                inp = http.InferInput("IMAGE", [len(data)], "UINT8")
                inp.set_data_from_numpy(data)
                return await client.infer(repo.faces, [inp])
            return await asyncio.gather(*(one(p) for p in photos))
        finally:
            await client.close()

    results = _run(go())
    for photo, result in zip(photos, results):
        faces = want[photo.name]
        assert len(faces) == result.as_numpy("BOXES").shape[0]
        np.testing.assert_allclose(result.as_numpy("BOXES"), np.array([f.box for f in faces]), atol=1e-3)
        np.testing.assert_allclose(result.as_numpy("KEYPOINTS"), np.array([f.keypoints for f in faces]), atol=1e-3)
        np.testing.assert_allclose(result.as_numpy("PROBS"), np.array([f.probs for f in faces]), atol=1e-5, rtol=0)
        assert [b.decode() for b in result.as_numpy("LABELS")] == [f.label for f in faces]
    assert sum(r.as_numpy("BOXES").shape[0] for r in results) > len(photos)  # multiface.jpg has several


def test_bad_frame_is_a_400_and_triton_keeps_serving(triton, face_photos):
    url, repo = triton
    small = min(face_photos, key=lambda p: p.stat().st_size)

    async def go():
        client = aio.InferenceServerClient(url)
        try:
            bad = http.InferInput("IMAGE", [11], "UINT8")
            bad.set_data_from_numpy(np.frombuffer(b"hello world", np.uint8))
            with pytest.raises(Exception) as refused:
                await client.infer(repo.faces, [bad])
            data = np.frombuffer(small.read_bytes(), np.uint8)
            good = http.InferInput("IMAGE", [len(data)], "UINT8")
            good.set_data_from_numpy(data)
            return refused.value, await client.infer(repo.faces, [good])
        finally:
            await client.close()

    error, result = _run(go())
    assert "not a JPEG or PNG" in str(error) and "400" in str(error)
    assert result.as_numpy("BOXES").shape[0] >= 1
