"""`fer-edge serve`: faces, crops and video streams over HTTP/WebSocket on one machine.

``create_app(ServeOptions(model=...))`` gives the ASGI application (FastAPI); the CLI runs it on
uvicorn. Needs the ``serve`` extra: ``pip install 'fer-edge[serve]'``.
"""
from __future__ import annotations

from .engine import ServeEngine, ServeOptions

__all__ = ["ServeOptions", "ServeEngine", "create_app"]


def create_app(options: ServeOptions, engine: ServeEngine | None = None):
    from ..errors import require

    require("fastapi", "serve", "fer-edge serve")
    from .app import create_app as _create

    return _create(options, engine)
