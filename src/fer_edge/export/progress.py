"""Progress of the long steps of an export, as items done / total, for one callback.

One mechanism for every method and target: the quantizers count the calibration items their data
source hands out, the reports count the faces they evaluate, the fallback counts its candidate
groups. Whoever shows it (the CLI's rich bars, with elapsed time and ETA) gets ``(task, done, total)``
and nothing else; a task whose ``done`` reached ``total`` is complete.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")


class Counter:
    """Counts the items of one task. A source read once more than its length (NNCF's extra statistics
    pass, a rewound calibration reader) starts a new pass, reported as ``"<task> (pass 2)"``, so
    ``done`` never exceeds ``total`` and every pass ends at ``total``."""

    def __init__(self, report: ProgressFn | None, task: str, total: int):
        self.report, self.task, self.total = report, task, max(int(total), 1)
        self.done, self.passes = 0, 1
        self._send()

    @property
    def label(self) -> str:
        return self.task if self.passes == 1 else f"{self.task} (pass {self.passes})"

    def advance(self, n: int = 1) -> None:
        if self.done >= self.total:
            self.passes, self.done = self.passes + 1, 0
        self.done = min(self.done + n, self.total)
        self._send()

    def each(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, counting one per item handed out."""
        for item in items:
            self.advance()
            yield item

    def _send(self) -> None:
        if self.report is not None:
            self.report(self.label, self.done, self.total)
