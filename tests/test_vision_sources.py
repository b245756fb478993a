"""Frame sources: every input kind, clear errors, and bounded reconnects of a dropping stream."""
from __future__ import annotations

import functools
import http.server
import threading
import time

import cv2
import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.vision.sources import CaptureSource, open_source

ASTRONAUT = "src/fer_edge/assets/astronaut.jpg"


class FakeCapture:
    """Delivers `frames` frames, then fails every read (a stream that dropped)."""

    def __init__(self, frames: int, opened: bool = True):
        self.left, self.opened = frames, opened

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 0.0

    def read(self):
        if self.left > 0:
            self.left -= 1
            return True, np.zeros((4, 4, 3), np.uint8)
        return False, None

    def release(self):
        pass


def test_dropping_stream_reconnects_then_stops_with_a_message():
    opened = []

    def opener():  # first connection gives 3 frames; reconnects give 2, then nothing
        cap = FakeCapture(3 if not opened else (2 if len(opened) == 1 else 0), opened=len(opened) < 2)
        opened.append(cap)
        return cap

    src = CaptureSource("rtsp://cam", "stream", opener, live=True, retries=2, backoff_s=0.001)
    got = []
    start = time.monotonic()
    with pytest.raises(FerEdgeError, match="stopped delivering frames after 5 frames and 2 reconnect"):
        for f in src:
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4]
    assert src.reconnects == 3 and time.monotonic() - start < 2  # one that worked, two that failed


def test_stream_that_never_opens_is_an_error():
    with pytest.raises(FerEdgeError, match="could not be opened"):
        CaptureSource("rtsp://nowhere", "stream", lambda: FakeCapture(0, opened=False), live=True)


def test_image_folder_and_video_sources(tmp_path, sample_video):
    (img,) = list(open_source(ASTRONAUT))
    assert img.image.shape == (512, 512, 3) and img.name == "astronaut.jpg"
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("b.jpg", "a.png"):
        cv2.imwrite(str(folder / name), img.image)
    (folder / "notes.txt").write_text("not an image")
    assert [f.name for f in open_source(folder)] == ["a.png", "b.jpg"]
    video = open_source(sample_video)
    assert video.total == 105 and video.fps == pytest.approx(25)
    frames = []
    for f in video:
        frames.append(f)
        if len(frames) == 3:
            break
    video.close()
    assert [f.index for f in frames] == [0, 1, 2] and frames[2].time == pytest.approx(2 / 25)


def test_clear_errors(tmp_path):
    with pytest.raises(FerEdgeError, match="not found"):
        open_source(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(FerEdgeError, match="corrupt"):
        open_source(bad)
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"\x00" * 1000)
    with pytest.raises(FerEdgeError, match="corrupt"):
        list(open_source(bad_video))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerEdgeError, match="no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(FerEdgeError, match="exactly one"):
        open_source()


def test_camera_that_does_not_open():
    with pytest.raises(FerEdgeError, match="camera 97 could not be opened"):
        open_source(camera=97)


def test_http_stream(tmp_path):
    """A real network source: an MJPEG AVI served over HTTP (sequential, as from an IP camera)."""
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(5):
        writer.write(np.full((240, 320, 3), 40 * i, np.uint8))
    writer.release()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        try:
            src = open_source(f"http://127.0.0.1:{server.server_port}/v.avi", timeout_s=5)
        except FerEdgeError as exc:
            pytest.skip(f"this OpenCV build cannot read HTTP streams: {exc}")
        assert src.kind == "stream" and src.live
        frames = []
        for f in src:
            frames.append(f.image.shape)
            if len(frames) == 3:
                break
        src.close()
        assert frames == [(240, 320, 3)] * 3
    finally:
        server.shutdown()
