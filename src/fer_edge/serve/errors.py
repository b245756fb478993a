"""A client's mistake, with the HTTP status it gets: the server answers it in one line of JSON."""
from __future__ import annotations

from ..errors import FerEdgeError


class RequestError(FerEdgeError):
    """Bad input from a client (4xx); the message says what was wrong and what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
