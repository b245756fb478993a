"""Energy per inference on NVIDIA Jetson, from `tegrastats` power rails.

`tegrastats --interval MS` prints one line per interval with the board's power rails, e.g.
``VDD_IN 5076mW/5076mW`` (Orin: total input power, instantaneous/average) or ``POM_5V_IN 3154/3154``
(Xavier/Nano: mW). We sample it in the background while a benchmark runs and turn the mean input
power into millijoules per inference. Where `tegrastats` is absent (desktops), nothing is measured.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time

# Total-input rails, best first: what the whole module draws.
_RAILS = ("VDD_IN", "POM_5V_IN", "VDD_SYS_5V0")
_RAIL_RE = re.compile(r"\b(" + "|".join(_RAILS) + r")\s+(\d+)(?:mW)?/(\d+)(?:mW)?")


def input_power_mw(line: str) -> float | None:
    """The instantaneous total input power (mW) in one tegrastats line, or None if it has none."""
    found = {m.group(1): float(m.group(2)) for m in _RAIL_RE.finditer(line)}
    for rail in _RAILS:
        if rail in found:
            return found[rail]
    return None


class PowerSampler:
    """Background tegrastats reader: ``with PowerSampler() as p: ...; p.mean_mw``.

    `available` is False where tegrastats is not installed; then the sampler does nothing.
    """

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats"):
        self.interval_ms = interval_ms
        self.command = shutil.which(command)
        self.samples: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.seconds = 0.0

    @property
    def available(self) -> bool:
        return self.command is not None

    def __enter__(self) -> "PowerSampler":
        self._start = time.perf_counter()
        if self.available:
            self._proc = subprocess.Popen([self.command, "--interval", str(self.interval_ms)],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            mw = input_power_mw(line)
            if mw is not None:
                self.samples.append(mw)

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def mean_mw(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None

    def millijoules_per_item(self, items: int) -> float | None:
        """Mean input power x measured time / items processed (whole-board energy, idle draw included)."""
        if self.mean_mw is None or items <= 0:
            return None
        return self.mean_mw * self.seconds / items
