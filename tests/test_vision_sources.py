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
from fer_edge.vision.sources import CaptureSource, SourceEndedEarly, open_source

ASTRONAUT = "src/fer_edge/assets/astronaut.jpg"


class FakeCapture:
    """Delivers `frames` frames, then fails every read (a stream that dropped).

    `count`: the frame count the container claims (0: a live feed, which has none)."""

    def __init__(self, frames: int, opened: bool = True, count: int = 0):
        self.left, self.opened, self.count = frames, opened, count

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return float(self.count) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

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

    notes = []
    src = CaptureSource("rtsp://cam", "stream", opener, live=True, retries=2, backoff_s=0.001, warn=notes.append)
    got = []
    start = time.monotonic()
    with pytest.raises(SourceEndedEarly, match="stopped delivering frames after 5 frames and 2 reconnect") as info:
        for f in src:
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4] and info.value.frames == 5
    assert src.reconnects == 3 and time.monotonic() - start < 2  # one that worked, two that failed
    # each reconnect was announced, so a stalled run is not a silent one
    assert len(notes) == 3 and "reconnecting (1/2)" in notes[0] and "after 3 frames" in notes[0]


def test_a_video_file_over_the_network_ends_instead_of_replaying():
    """A stream with a frame count is a remote file: its end is the end, not a drop to reconnect."""
    opened = []

    def opener():
        opened.append(1)
        return FakeCapture(4, count=4)

    src = CaptureSource("http://host/clip.avi", "stream", opener, live=True, retries=3, backoff_s=0.001)
    assert not src.live and src.total == 4
    assert [f.index for f in src] == [0, 1, 2, 3] and len(opened) == 1
    short = CaptureSource("http://host/cut.avi", "stream", lambda: FakeCapture(2, count=40), live=True, retries=3)
    with pytest.raises(SourceEndedEarly, match="decoding stopped at frame 2 but its container lists 40 frames"):
        list(short)


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


def test_folder_skips_unreadable_images_and_sorts_numbers_naturally(tmp_path):
    good = cv2.imread(ASTRONAUT)
    for name in ("frame_10.jpg", "frame_2.jpg", "frame_1.png"):
        cv2.imwrite(str(tmp_path / name), good)
    (tmp_path / "frame_3.jpg").write_bytes(b"\xff\xd8 cut short")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.jpg").mkdir()  # a folder with an image's name is not an image
    (tmp_path / ".hidden").write_text("x")
    skipped = []
    src = open_source(tmp_path, on_skip=lambda *a: skipped.append(a))
    assert src.ignored == ["notes.txt", "sub.jpg"] and src.total == 4
    frames = [(f.index, f.name) for f in src]
    assert frames == [(0, "frame_1.png"), (1, "frame_2.jpg"), (3, "frame_10.jpg")]
    assert [(i, n) for i, n, _ in skipped] == [(2, "frame_3.jpg")] and "corrupt" in skipped[0][2]
    assert src.skipped == [("frame_3.jpg", skipped[0][2])]


def test_a_video_without_frames_fails_when_opened(tmp_path):
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64)).release()
    with pytest.raises(FerEdgeError, match="(no readable frames|cannot open video)"):
        open_source(empty)  # before any frame is asked for, so a caller creates no output for it


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
        # a video file served over HTTP has a frame count: it is read to its end, once (not replayed by reconnects)
        assert src.kind == "stream" and not src.live and src.total == 5
        frames = []
        for f in src:
            frames.append(f.image.shape)
            if len(frames) == 12:
                break
        src.close()
        assert frames == [(240, 320, 3)] * 5
    finally:
        server.shutdown()
