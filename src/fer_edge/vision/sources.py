"""Where frames come from: a camera, a video file, an image, a folder of images, or a network stream.

Every source is an iterator of :class:`Frame` and fails with a one-line :class:`FerEdgeError` that says
what to do (camera that does not open, missing or undecodable file, stream that drops). Problems found
at open time (nothing readable) raise before the first frame, so no output is created for them. A
source that breaks after good frames raises :class:`SourceEndedEarly` at the break (a damaged video,
a stream that stays down), so the caller keeps what it has and can say that the input was incomplete.
A folder skips its unreadable images (reported through ``on_skip``) and reads the rest. Network
streams are opened with OpenCV's open/read timeouts and reconnected a bounded number of times, so a
dead stream ends the run with a message instead of hanging it.
"""
from __future__ import annotations

import os
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
# A container's frame count can be an estimate (duration x fps) in formats without a frame index:
# a shortfall this small is not called damage.
_COUNT_SLACK_FRAMES, _COUNT_SLACK_FRACTION = 1, 0.01


class SourceEndedEarly(FerEdgeError):
    """The source broke after some good frames (damaged video, stream that stayed down).

    The frames before it were delivered and are valid; ``frames`` says how many."""

    def __init__(self, message: str, frames: int):
        super().__init__(message)
        self.frames = frames


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

    def __init__(self, name: str, warn: Callable[[str], None] | None = None):
        self.name = name
        self.fps: float | None = None
        self.total: int | None = None
        self.warn = warn or (lambda message: None)  # notes for the user (reconnects); never errors

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_image(path: Path) -> np.ndarray:
    """Any readable image as BGR uint8 (grey, 16-bit and RGBA files are converted; EXIF rotation applied)."""
    try:
        data = np.fromfile(str(path), np.uint8)  # np.fromfile: unicode paths work on every OS
    except OSError as exc:
        raise FerEdgeError(f"cannot read image {path}: {exc.strerror or exc}; check that it exists and is readable") from None
    image = decode_image_bytes(data)
    if image is None:
        raise FerEdgeError(f"cannot decode image {path}: the file is empty, corrupt or not an image")
    return image


def decode_image_bytes(data: bytes | np.ndarray) -> np.ndarray | None:
    """Encoded image bytes -> BGR uint8 the way `fer-edge run` reads files (grey, 16-bit and RGBA
    converted, EXIF rotation applied); None when they are empty or not a decodable image."""
    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if not buffer.size:
        return None
    try:
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:  # e.g. more pixels than OpenCV's decoder limit
        return None


def _natural_key(path: Path) -> tuple:
    """Sort frame_2.jpg before frame_10.jpg (folders of numbered frames are often not zero-padded)."""
    parts = [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", path.name)]
    return parts, path.name


class ImageSource(FrameSource):
    kind = "image"

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None):
        super().__init__(str(path), warn)
        self.path = path
        self.image = _read_image(path)  # fail now, before any output is created
        self.total = 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image, self.path.name)


class FolderSource(FrameSource):
    """The images directly in a folder, in natural name order; unreadable ones are skipped, not fatal.

    Args:
        on_skip: called as ``on_skip(index, file_name, reason)`` for each image that cannot be read,
            in order with the frames, so a caller can report it where it happened.
    """

    kind = "folder"

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None,
                 on_skip: Callable[[int, str, str], None] | None = None):
        super().__init__(str(path), warn)
        try:
            entries = list(path.iterdir())
        except OSError as exc:
            raise FerEdgeError(f"cannot list folder {path}: {exc.strerror or exc}; check its permissions") from None
        self.files = sorted((p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key)
        # what a user might have expected to be read: other files and subfolders (hidden entries are not news)
        images = set(self.files)
        self.ignored = sorted(p.name for p in entries if p not in images and not p.name.startswith("."))
        if not self.files:
            n = len(self.ignored)
            others = f"; it holds {n} other {'entry' if n == 1 else 'entries'} (e.g. {self.ignored[0]})" if n else ""
            raise FerEdgeError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}){others}")
        self.total = len(self.files)
        self.on_skip = on_skip
        self.skipped: list[tuple[str, str]] = []  # (file name, reason); at most one per file of the folder

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            try:
                image = _read_image(p)
            except FerEdgeError as exc:
                self.skipped.append((p.name, str(exc)))
                if self.on_skip is not None:
                    self.on_skip(i, p.name, str(exc))
                continue
            yield Frame(i, float(i), image, p.name)


class CaptureSource(FrameSource):
    """An OpenCV VideoCapture: video file, camera, or (with reconnects) a network stream.

    Args:
        opener: returns a fresh, opened capture (tests pass fakes here).
        live: frames come in real time with no end (camera, live stream): a stop is a drop, and is
            reconnected. A stream whose capture gives a frame count is a remote file and not live.
        retries: reconnect attempts after a live source stops delivering frames (0 for files).
        backoff_s: wait before the first reconnect, doubled after each failed one.
    """

    def __init__(self, name: str, kind: str, opener: Callable[[], object], live: bool, retries: int = 0,
                 backoff_s: float = 0.5, warn: Callable[[str], None] | None = None):
        super().__init__(name, warn)
        self.kind, self.live = kind, live
        self._opener, self.retries, self.backoff_s = opener, int(retries), float(backoff_s)
        self.reconnects = 0
        self.cap = self._open()
        if self.cap is None or not self.cap.isOpened():
            raise FerEdgeError(self._open_error())
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if live and kind == "stream" and count > 0:
            # a video file served over the network (live feeds have no frame count): it ends, and a
            # reconnect would replay it from the start
            self.live = live = False
        self.total = count if (count > 0 and not live) else None
        self._first = None
        if not live:  # a file that opens but decodes nothing fails now, before any output exists
            ok, image = self.cap.read()
            if not ok or image is None:
                self.cap.release()
                raise FerEdgeError(f"video {name} has no readable frames: it is empty or corrupt")
            self._first = image

    def _open(self):
        """Open quietly: a failure is reported as one FerEdgeError, not OpenCV's warning lines.

        FFmpeg's own decoder messages ("[h264 @ 0x...] error while decoding") are silenced too (read
        when FFmpeg first starts, so this holds for the process); set OPENCV_FFMPEG_LOGLEVEL to see them."""
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
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
            if self._first is not None:
                ok, image, self._first = True, self._first, None
            else:
                ok, image = self.cap.read()
            if ok and image is not None:
                failures = 0
                t = (index / self.fps if self.fps else time.monotonic() - start) if not self.live \
                    else time.monotonic() - start
                yield Frame(index, float(t), image)
                index += 1
                continue
            if not self.live:
                self._check_complete(index)
                return  # end of file
            failures += 1
            if failures > self.retries:
                raise SourceEndedEarly(
                    f"{self.kind} {self.name} stopped delivering frames after {index} frames and "
                    f"{self.retries} reconnect attempts; check the {self.kind} and run again", index)
            self.warn(f"{self.kind} {self.name} delivered no frame after {index} frames; "
                      f"reconnecting ({failures}/{self.retries})")
            self._reconnect(failures)

    def _check_complete(self, frames: int) -> None:
        """A file whose decoding stops well before the frame count its container gives is damaged."""
        if self.total is None:
            return
        slack = max(_COUNT_SLACK_FRAMES, int(self.total * _COUNT_SLACK_FRACTION))
        if frames < self.total - slack:
            raise SourceEndedEarly(
                f"video {self.name}: decoding stopped at frame {frames} but its container lists {self.total} "
                f"frames: the file is truncated or damaged (frames 0-{frames - 1} were read)", frames)

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


def locate_source(source: str | Path | None = None, camera: int | None = None) -> tuple[str, Path | None]:
    """What an input is, without opening it: (kind, path). kind is the source's ``kind`` ("camera",
    "stream", "folder", "image" or "video"); path is None for cameras and streams. A missing path is
    an error here already, so callers can check it before anything else."""
    if (source is None) == (camera is None):
        raise FerEdgeError("give exactly one input: --camera N or --source PATH_OR_URL")
    if camera is not None:
        return "camera", None
    text = str(source)
    if _URL.match(text) and not text.startswith("file://"):
        return "stream", None
    path = Path(text[7:] if text.startswith("file://") else text).expanduser()
    if not path.exists():
        raise FerEdgeError(f"input not found: {path}; check the path (or use --camera N for a camera)")
    if path.is_dir():
        return "folder", path
    return ("image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"), path


def open_source(source: str | Path | None = None, camera: int | None = None, *, retries: int = 3,
                timeout_s: float = 5.0, backoff_s: float = 0.5, warn: Callable[[str], None] | None = None,
                on_skip: Callable[[int, str, str], None] | None = None) -> FrameSource:
    """Open exactly one of `camera` (index) or `source` (file, folder, image or URL).

    `warn` receives notes worth telling the user (a stream reconnecting); `on_skip` the unreadable
    images of a folder (see :class:`FolderSource`)."""
    kind, path = locate_source(source, camera)
    live = dict(live=True, retries=retries, backoff_s=backoff_s, warn=warn)
    if kind == "camera":
        index = int(camera)
        return CaptureSource(str(index), "camera", lambda: cv2.VideoCapture(index), **live)
    if kind == "stream":
        return CaptureSource(str(source), "stream", _stream_opener(str(source), timeout_s), **live)
    if kind == "folder":
        return FolderSource(path, warn=warn, on_skip=on_skip)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise FerEdgeError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    if kind == "image":
        return ImageSource(path, warn=warn)
    return CaptureSource(str(path), "video", lambda: cv2.VideoCapture(str(path)), live=False, warn=warn)
