"""`fer-edge serve` for real: the CLI starts uvicorn on 127.0.0.1, the tests send HTTP and WebSocket
requests with the shared face photos and video frames, and compare with `fer-edge run --json`."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed: pip install 'fer-edge[serve]'")
pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-edge[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'fer-edge[serve]'")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")

MAX_REQUEST = 6 * 1024 * 1024
MAX_STREAMS = 2
PROB_TOL = 1.5e-4  # records round to 4 decimals; another batch composition may move the last digit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_edge.cli.main", *args], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `fer-edge serve` on a free loopback port; yields its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fer_edge.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--max-batch", "8", "--max-delay-ms", "10", "--workers", "4", "--max-streams", str(MAX_STREAMS),
             "--max-request-mb", str(MAX_REQUEST / 2**20), "--max-pixels", "30000000", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"fer-edge serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"fer-edge serve did not become ready: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def run_records(face_photos, tmp_path_factory) -> dict[str, dict]:
    """`fer-edge run --json` on the photos folder (independent images): image name -> record."""
    out = tmp_path_factory.mktemp("run") / "faces.jsonl"
    folder = face_photos[0].parent
    result = _cli("run", "--source", str(folder), "--json", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {r["image"]: r for r in records}


def _same_faces(got: list[dict], want: list[dict], tol: float = 0.0) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: g[k] for k in ("track_id", "box", "score", "keypoints", "label", "raw_label")} == \
               {k: w[k] for k in ("track_id", "box", "score", "keypoints", "label", "raw_label")}
        for key in ("probs", "smoothed_probs"):
            assert g[key].keys() == w[key].keys()
            assert np.allclose(list(g[key].values()), list(w[key].values()), atol=tol, rtol=0), (key, g, w)


def test_health_readiness_and_docs(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["method"] == "mini_xception"
    assert ready["model"]["max_batch"] == 8
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/v1/faces", "/v1/predict", "/healthz", "/readyz"} <= set(paths)


def test_faces_equal_run_json(server, face_photos, run_records):
    """Raw bytes and multipart uploads give the records `fer-edge run --json` writes for the same files."""
    for photo in face_photos:
        want = run_records[photo.name]
        raw = httpx.post(f"{server}/v1/faces", content=photo.read_bytes(), headers={"content-type": "image/jpeg"},
                         timeout=60)
        assert raw.status_code == 200, raw.text
        record = raw.json()
        assert (record["frame"], record["time"], "image" in record) == (0, 0.0, False)
        assert record["faces"] == want["faces"]  # one request at a time: the very same engine calls as `run`
        form = httpx.post(f"{server}/v1/faces", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
                          timeout=60)
        assert form.status_code == 200, form.text
        assert (form.json()["image"], form.json()["faces"]) == (photo.name, want["faces"])
    assert sum(len(r["faces"]) for r in run_records.values()) > len(face_photos)  # multiface.jpg has several


def test_concurrent_clients_no_errors(server, face_photos, run_records):
    """12 requests at once from 6 clients: all answered, each with its own image's faces."""
    photos = [face_photos[i % len(face_photos)] for i in range(12)]

    async def go():
        limits = httpx.Limits(max_connections=6)
        async with httpx.AsyncClient(base_url=server, limits=limits, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/faces", content=p.read_bytes(),
                                                      headers={"content-type": "image/jpeg"}) for p in photos))

    before = _metric(server, "fer_edge_batch_size_sum")
    answers = asyncio.run(go())
    assert [a.status_code for a in answers] == [200] * len(photos)
    for photo, answer in zip(photos, answers):
        _same_faces(answer.json()["faces"], run_records[photo.name]["faces"], PROB_TOL)
    crops = sum(len(run_records[p.name]["faces"]) for p in photos)
    assert _metric(server, "fer_edge_batch_size_sum") - before == crops  # every face went through the batcher


def _metric(server: str, name: str, labels: str = "") -> float:
    for line in httpx.get(f"{server}/metrics").text.splitlines():
        if line.startswith(name + labels + " ") or line.startswith(name + "{" + labels + "}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_predict_crops_equal_load(server, aligned_face_crops):
    """Aligned crops (sent as lossless PNG) get the probabilities of fer_edge.load(...).predict."""
    import cv2

    import fer_edge

    crops = aligned_face_crops
    want = fer_edge.load("default").predict(crops)
    files = [("crops", (f"{i}.png", cv2.imencode(".png", c)[1].tobytes(), "image/png")) for i, c in enumerate(crops)]
    answer = httpx.post(f"{server}/v1/predict", files=files, timeout=60)
    assert answer.status_code == 200, answer.text
    got = answer.json()["predictions"]
    assert [p["label"] for p in got] == want.names
    np.testing.assert_allclose([list(p["probs"].values()) for p in got], want.probs, atol=1e-5, rtol=0)
    one = httpx.post(f"{server}/v1/predict", content=files[0][1][1], headers={"content-type": "image/png"})
    assert one.json()["predictions"][0]["label"] == want.names[0]

    async def each_alone():  # one crop per request, all at once: the batcher merges and splits them
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/predict", content=f[1][1], headers={"content-type": "image/png"})
                                          for f in files))

    answers = asyncio.run(each_alone())
    probs = [list(a.json()["predictions"][0]["probs"].values()) for a in answers]
    np.testing.assert_allclose(probs, want.probs, atol=1e-5, rtol=0)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


BAD_REQUESTS = [
    ("not an image", "post", "/v1/faces", dict(content=b"hello world", headers={"content-type": "image/jpeg"}), 415),
    ("empty body", "post", "/v1/faces", dict(content=b"", headers={"content-type": "image/png"}), 400),
    ("wrong content type", "post", "/v1/faces", dict(content=b"{}", headers={"content-type": "application/json"}), 415),
    ("no content type", "post", "/v1/faces", dict(content=b"\xff\xd8\xff"), 415),
    ("truncated jpeg header", "post", "/v1/faces", dict(content=b"\xff\xd8\xff\xe0\x00", headers={"content-type": "image/jpeg"}), 400),
    ("corrupt png data", "post", "/v1/faces", dict(content=_png_header(64, 64) + b"\x00" * 50, headers={"content-type": "image/png"}), 400),
    ("decompression bomb", "post", "/v1/faces", dict(content=_png_header(100_000, 100_000) + b"\x00" * 50,
                                                       headers={"content-type": "image/png"}), 413),
    ("body over the limit", "post", "/v1/faces", dict(content=b"\xff\xd8\xff" + b"\x00" * MAX_REQUEST,
                                                        headers={"content-type": "image/jpeg"}), 413),
    ("streamed body over the limit", "post", "/v1/faces", dict(content=_chunks(b"\x00" * (MAX_REQUEST + 1)),
                                                                 headers={"content-type": "image/jpeg"}), 413),
    ("multipart without the field", "post", "/v1/faces", dict(files={"photo": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}), 400),
    ("malformed multipart", "post", "/v1/faces", dict(content=b"garbage", headers={"content-type": "multipart/form-data; boundary=xyz"}), 400),
    ("crops not images", "post", "/v1/predict", dict(files=[("crops", ("a.png", b"nope", "image/png"))]), 415),
    ("wrong method", "get", "/v1/faces", {}, 405),
    ("unknown path", "get", "/v2/everything", {}, 404),
]


@pytest.mark.parametrize("what, method, path, kwargs, status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_one_line_json_errors(server, face_photos, what, method, path, kwargs, status):
    answer = getattr(httpx, method)(f"{server}{path}", timeout=60, **kwargs)
    assert answer.status_code == status, (what, answer.text)
    body = answer.json()
    assert list(body) == ["error"] and body["error"] and "\n" not in body["error"], body
    small = min(face_photos, key=lambda p: p.stat().st_size)
    again = httpx.post(f"{server}/v1/faces", content=small.read_bytes(), headers={"content-type": "image/jpeg"})
    assert again.status_code == 200 and again.json()["faces"]  # the server keeps serving


def test_metrics_count_requests_and_errors(server, face_photos):
    before_ok = _metric(server, "fer_edge_requests_total", 'endpoint="/v1/faces",status="200"')
    before_bad = _metric(server, "fer_edge_errors_total", 'endpoint="/v1/faces",reason="unsupported type"')
    small = min(face_photos, key=lambda p: p.stat().st_size)
    httpx.post(f"{server}/v1/faces", content=small.read_bytes(), headers={"content-type": "image/jpeg"})
    httpx.post(f"{server}/v1/faces", content=b"text", headers={"content-type": "text/plain"})
    assert _metric(server, "fer_edge_requests_total", 'endpoint="/v1/faces",status="200"') == before_ok + 1
    assert _metric(server, "fer_edge_errors_total", 'endpoint="/v1/faces",reason="unsupported type"') == before_bad + 1
    text = httpx.get(f"{server}/metrics").text
    assert 'fer_edge_request_seconds_bucket{endpoint="/v1/faces"' in text and "fer_edge_batch_size_bucket" in text


@pytest.fixture(scope="module")
def video_frames(sample_video, tmp_path_factory) -> tuple[list[bytes], Path]:
    """The first frames of the shared video as PNG bytes, and a folder holding the same files."""
    import cv2

    folder = tmp_path_factory.mktemp("frames")
    cap = cv2.VideoCapture(str(sample_video))
    frames = []
    for i in range(5):
        ok, frame = cap.read()
        assert ok
        data = cv2.imencode(".png", cv2.resize(frame, (960, 540)))[1].tobytes()
        (folder / f"frame_{i:02d}.png").write_bytes(data)
        frames.append(data)
    cap.release()
    return frames, folder


def _ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "/v1/stream"


def test_stream_tracks_and_smooths_like_run_sequence(server, video_frames, tmp_path):
    """A WebSocket stream gives `fer-edge run --sequence` results; two streams at once keep their own tracks;
    a bad message gets an error reply and the stream goes on."""
    frames, folder = video_frames
    out = tmp_path / "seq.jsonl"
    result = _cli("run", "--source", str(folder), "--sequence", "--json", str(out))
    assert result.returncode == 0, result.stderr
    want = [json.loads(line) for line in out.read_text().splitlines()]
    with ws_client.connect(_ws_url(server), max_size=None) as a, ws_client.connect(_ws_url(server), max_size=None) as b:
        a.send(frames[0])
        first_a = json.loads(a.recv())
        for i, data in enumerate(frames):  # b starts afresh though a has tracks already
            b.send(data)
            got = json.loads(b.recv())
            assert got["frame"] == i
            _same_faces(got["faces"], want[i]["faces"])
            if i == 2:
                b.send("not a frame")
                assert json.loads(b.recv())["status"] == 415
                b.send(b"\x89PNG but no")
                assert json.loads(b.recv())["status"] == 415
        _same_faces(first_a["faces"], want[0]["faces"])
        assert len({f["track_id"] for f in want[-1]["faces"]}) > 1
        # the smoothing did carry over: later frames' smoothed probabilities differ from their raw ones
        assert any(f["smoothed_probs"] != f["probs"] for f in want[-1]["faces"])


def test_stream_slots_are_bounded_and_freed(server, video_frames):
    frames, _ = video_frames
    with ws_client.connect(_ws_url(server)) as a, ws_client.connect(_ws_url(server)) as b:
        with ws_client.connect(_ws_url(server)) as c:
            with pytest.raises(Exception) as closed:
                c.recv(timeout=30)
            assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1013
        a.send(frames[0])
        assert "faces" in json.loads(a.recv(timeout=60))
    deadline = time.monotonic() + 30  # the server frees the slots of closed connections
    while _metric(server, "fer_edge_streams_open") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(server, "fer_edge_streams_open") == 0
    with ws_client.connect(_ws_url(server), max_size=None) as d:
        d.send(frames[0])
        assert json.loads(d.recv(timeout=60))["frame"] == 0
        d.send(b"\x89PNG" + b"\x00" * (MAX_REQUEST + 1))  # over the limit: the server closes with 1009
        with pytest.raises(Exception) as closed:
            d.recv(timeout=30)
        assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1009


def test_serve_bad_model_is_one_line_error(tmp_path):
    result = _cli("serve", "--model", str(tmp_path / "missing.onnx"), "--port", str(_free_port()))
    assert result.returncode == 2
    assert "artifact not found" in result.stderr and "Traceback" not in result.stderr


def test_serve_cli_listed():
    result = _cli("serve", "--help", env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0 and "--max-batch" in result.stdout and "--max-delay-ms" in result.stdout


def test_busy_port_is_one_line_before_the_model_loads(capsys):
    """A port another program holds: exit 2 and one line, not uvicorn's start-up log and exit 3."""
    import socket

    from fer_edge.cli.main import main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["serve", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and f"port {port} is in use" in err and len(err.strip().splitlines()) == 1
