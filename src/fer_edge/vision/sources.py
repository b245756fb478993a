"""Where frames come from: a camera, a video file, an image, a folder of images, or a network stream.

Every source is an iterator of :class:`Frame` and fails with a one-line :class:`FerEdgeError` that says
what to do (camera that does not open, missing or undecodable file, stream that drops). Network
streams are opened with OpenCV's open/read timeouts and reconnected a bounded number of times, so a
dead stream ends the run with a message instead of hanging it.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import FerEdgeError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Frame:
    index: int  # 0-based position in the source
    time: float  # seconds: position in a video file, else since the source was opened
    image: np.ndarray  # BGR uint8
    name: str | None = None  # file name, for image and folder sources


class FrameSource:
    """Base: iterate to get frames; `close()` (or a with-block) releases the device or file."""

    kind: str = "source"
    live: bool = False  # cameras and streams: frames come in real time, there is no end or total

    def __init__(self, name: str):
        self.name = name
        self.fps: float | None = None
        self.total: int | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_image(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), np.uint8) if path.stat().st_size else np.zeros(0, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise FerEdgeError(f"cannot decode image {path}: the file is empty, corrupt or not an image")
    return image


class ImageSource(FrameSource):
    kind = "image"

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path
        self.image = _read_image(path)  # fail now, before any output is created
        self.total = 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image, self.path.name)


class FolderSource(FrameSource):
    kind = "folder"

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FerEdgeError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.total = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            yield Frame(i, float(i), _read_image(p), p.name)


class CaptureSource(FrameSource):
    """An OpenCV VideoCapture: video file, camera, or (with reconnects) a network stream.

    Args:
        opener: returns a fresh, opened capture (tests pass fakes here).
        retries: reconnect attempts after a live source stops delivering frames (0 for files).
        backoff_s: wait before the first reconnect, doubled after each failed one.
    """

    def __init__(self, name: str, kind: str, opener: Callable[[], object], live: bool, retries: int = 0,
                 backoff_s: float = 0.5):
        super().__init__(name)
        self.kind, self.live = kind, live
        self._opener, self.retries, self.backoff_s = opener, int(retries), float(backoff_s)
        self.reconnects = 0
        self.cap = self._open()
        if self.cap is None or not self.cap.isOpened():
            raise FerEdgeError(self._open_error())
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if (count > 0 and not live) else None

    def _open(self):
        """Open quietly: a failure is reported as one FerEdgeError, not OpenCV's warning lines."""
        logging = getattr(getattr(cv2, "utils", None), "logging", None)
        previous = logging.setLogLevel(logging.LOG_LEVEL_ERROR) if logging is not None else None
        try:
            return self._opener()
        finally:
            if previous is not None:
                logging.setLogLevel(previous)

    def _open_error(self) -> str:
        if self.kind == "camera":
            return (f"camera {self.name} could not be opened: check that it is connected, that this user may use it "
                    f"and that no other program holds it, or pass --source FILE")
        if self.kind == "stream":
            return f"stream {self.name} could not be opened: check the URL and that the server is reachable"
        return f"cannot open video {self.name}: it is corrupt or in a format OpenCV cannot decode"

    def __iter__(self) -> Iterator[Frame]:
        index, start = 0, time.monotonic()
        failures = 0
        while True:
            ok, image = self.cap.read()
            if ok and image is not None:
                failures = 0
                t = (index / self.fps if self.fps else time.monotonic() - start) if not self.live \
                    else time.monotonic() - start
                yield Frame(index, float(t), image)
                index += 1
                continue
            if not self.live:
                if index == 0:
                    raise FerEdgeError(f"video {self.name} has no readable frames: it is empty or corrupt")
                return  # end of file
            failures += 1
            if failures > self.retries:
                raise FerEdgeError(
                    f"{self.kind} {self.name} stopped delivering frames after {index} frames and "
                    f"{self.retries} reconnect attempts; check the {self.kind} and run again")
            self._reconnect(failures)

    def _reconnect(self, attempt: int) -> None:
        self.cap.release()
        time.sleep(self.backoff_s * 2 ** (attempt - 1))
        self.reconnects += 1
        cap = self._open()
        self.cap = cap if cap is not None else _ClosedCapture()

    def close(self) -> None:
        self.cap.release()


class _ClosedCapture:
    def isOpened(self) -> bool:
        return False

    def read(self):
        return False, None

    def release(self) -> None:
        pass


def _stream_opener(url: str, timeout_s: float) -> Callable[[], object]:
    ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    return lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def open_source(source: str | Path | None = None, camera: int | None = None, *, retries: int = 3,
                timeout_s: float = 5.0, backoff_s: float = 0.5) -> FrameSource:
    """Open exactly one of `camera` (index) or `source` (file, folder, image or URL)."""
    if (source is None) == (camera is None):
        raise FerEdgeError("give exactly one input: --camera N or --source PATH_OR_URL")
    if camera is not None:
        index = int(camera)
        return CaptureSource(str(index), "camera", lambda: cv2.VideoCapture(index), live=True,
                             retries=retries, backoff_s=backoff_s)
    text = str(source)
    if _URL.match(text) and not text.startswith("file://"):
        return CaptureSource(text, "stream", _stream_opener(text, timeout_s), live=True, retries=retries,
                             backoff_s=backoff_s)
    path = Path(text[7:] if text.startswith("file://") else text).expanduser()
    if not path.exists():
        raise FerEdgeError(f"input not found: {path}; check the path (or use --camera N for a camera)")
    if path.is_dir():
        return FolderSource(path)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise FerEdgeError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return CaptureSource(str(path), "video", lambda: cv2.VideoCapture(str(path)), live=False)
