"""User-facing errors.

Every problem a user can cause or fix (bad file, missing package, wrong input) is raised as a
:class:`FerEdgeError` whose message is one line saying what was wrong and what to do. The CLI prints
that line without a traceback; library users can catch the one type.
"""
from __future__ import annotations


class FerEdgeError(Exception):
    """A problem the user can fix; the message says what to do."""


class MissingDependencyError(FerEdgeError, ImportError):
    """An optional package is not installed; the message names the extra that brings it."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is needed{what} but is not installed: pip install 'fer-edge[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional module or raise a one-line error naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
