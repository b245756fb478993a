"""Prometheus metrics of one server: requests, latency, batch sizes, errors, open streams.

Each server has its own registry (not the process-global one), so two apps in one process (tests,
or a server embedded in a bigger program) never share or clash on counters.
"""
from __future__ import annotations

from ..errors import require

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServeMetrics:
    def __init__(self, max_batch: int):
        prom = require("prometheus_client", "serve", "fer-edge serve's metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter("fer_edge_requests", "Requests answered, by endpoint and HTTP status",
                                     ["endpoint", "status"], registry=self.registry)
        self.latency = prom.Histogram("fer_edge_request_seconds", "Time to answer a request (WebSocket: a frame)",
                                      ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        batch_buckets = sorted({1, 2, 4, 8, 16, 32, 64, max_batch} & set(range(1, max_batch + 1)))
        self.batch_size = prom.Histogram("fer_edge_batch_size", "Face crops per classifier call (dynamic batching)",
                                         buckets=batch_buckets, registry=self.registry)
        self.errors = prom.Counter("fer_edge_errors", "Requests refused or failed, by endpoint and reason",
                                   ["endpoint", "reason"], registry=self.registry)
        self.faces = prom.Counter("fer_edge_faces", "Faces found in uploaded images and stream frames",
                                  registry=self.registry)
        self.streams = prom.Gauge("fer_edge_streams_open", "WebSocket streams open now", registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
