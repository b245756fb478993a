"""Third-party output of an export (quantizer warnings, NNCF's logger and bars, exporter prints) goes
to the export's log file instead of the console, so the console shows fer-edge's steps and progress.

Why each channel: ONNX Runtime's quantizer warns through the root logger ("Axis 1 is out-of-range"),
NNCF logs to stdout through its own handler and draws its own rich bars on stdout, torch logs through
its own handlers and ``warnings``, exporters ``print``. While the guard is active:

* the handlers of the root logger and of every logger of a noisy package are replaced by one
  handler writing to the log (restored afterwards);
* ``warnings.showwarning`` writes to the log;
* ``sys.stdout`` / ``sys.stderr`` are proxies that write to the log. A handler created meanwhile (a
  package imported during the export binds its StreamHandler to the proxy) keeps working afterwards:
  an inactive proxy passes everything through to the stream it replaced.

fer-edge's own messages are sent with :meth:`Guard.paused`, so they reach the console. ``verbose``
leaves every channel alone (the log then holds fer-edge's steps only). Output written by C/C++ code
straight to the process's file descriptors is not captured.
"""
from __future__ import annotations

import logging
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TextIO

NOISY_PACKAGES = ("nncf", "onnxruntime", "onnx", "onnxslim", "onnxscript", "openvino", "torch", "timm", "open_clip")


class _Proxy:
    """Stands in for sys.stdout/sys.stderr: to the log while active, to the original stream after."""

    def __init__(self, original: TextIO, guard: "Guard"):
        self._original, self._guard = original, guard

    def write(self, text: str) -> int:
        if self._guard.captures_now():
            return self._guard.write_captured(text)
        return self._original.write(text)

    def flush(self) -> None:
        if not self._guard.captures_now():
            self._original.flush()

    def isatty(self) -> bool:
        return False if self._guard.captures_now() else self._original.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ...: the original stream's
        return getattr(self._original, name)


class _LogHandler(logging.Handler):
    def __init__(self, guard: "Guard"):
        super().__init__(logging.DEBUG)
        self.guard = guard
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.guard.write_captured(self.format(record) + "\n")


class Guard:
    """Context manager: the export's log file, and (unless `verbose`) the third-party output in it."""

    def __init__(self, log_path: Path, verbose: bool = False):
        self.log_path, self.verbose = Path(log_path), verbose
        self.captured = 0  # third-party writes that went to the log
        self.capturing = False
        self._paused_in: int | None = None  # the thread sending fer-edge's own output, while it does
        self._file: TextIO | None = None
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
        self._streams: tuple[TextIO, TextIO] | None = None
        self._warnings: Any = None

    def note(self, line: str) -> None:
        """fer-edge's own step line, into the log."""
        if self._file is not None:
            self._file.write(line.rstrip("\n") + "\n")
            self._file.flush()

    def write_captured(self, text: str) -> int:
        if self._file is not None and text:
            self.captured += 1
            self._file.write(text)
            self._file.flush()
        return len(text)

    def captures_now(self) -> bool:
        return self.capturing and self._paused_in != threading.get_ident()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """fer-edge's own output (console messages, progress) while third-party output is captured: the
        proxies pass this thread's writes through meanwhile; other threads (a third-party progress bar's
        refresh thread) stay captured."""
        was, self._paused_in = self._paused_in, threading.get_ident()
        try:
            yield
        finally:
            self._paused_in = was

    def __enter__(self) -> "Guard":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.log_path.open("w", encoding="utf-8")
        if not self.verbose:
            self._capture()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.verbose:
            self._release()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _capture(self) -> None:
        handler = _LogHandler(self)
        noisy = [lg for name, lg in list(logging.root.manager.loggerDict.items())
                 if isinstance(lg, logging.Logger) and name.split(".")[0] in NOISY_PACKAGES and lg.handlers]
        for lg in [logging.root, *noisy]:
            self._saved.append((lg, list(lg.handlers), lg.propagate))
            lg.handlers = [handler]
            if lg is not logging.root:
                lg.propagate = False
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = self._show_warning
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Proxy(sys.stdout, self), _Proxy(sys.stderr, self)
        self.capturing = True

    def _release(self) -> None:
        self.capturing = False
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
        for lg, handlers, propagate in reversed(self._saved):
            lg.handlers, lg.propagate = handlers, propagate
        self._saved.clear()

    def _show_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        self.write_captured(warnings.formatwarning(message, category, filename, lineno, line))
