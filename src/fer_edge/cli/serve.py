"""`fer-edge serve`: the model as an HTTP/WebSocket service on one machine (FastAPI on uvicorn)."""
from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str = typer.Option("default", "--model", help="artifact path or registered name (see `fer-edge models`)"),
        backend: Optional[str] = typer.Option(None, "--backend", help="onnxruntime, openvino, tensorrt or torch (default: from the file type)"),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda[:N], or an OpenVINO device"),
        detector: Optional[str] = typer.Option(None, "--detector", help="face detector: blazeface, blazeface_full or haar (default: blazeface)"),
        host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface; put a proxy with TLS in front)"),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="port to listen on"),
        max_batch: int = typer.Option(8, "--max-batch", min=1, help="most face crops in one classifier call (dynamic batching; 1 = off)"),
        max_delay_ms: float = typer.Option(0.0, "--max-delay-ms", min=0.0, max=1000.0, help="how long a batch waits for concurrent requests to join it (0: it takes those that queued while the engine was busy)"),
        workers: int = typer.Option(4, "--workers", min=1, help="threads decoding, detecting and aligning"),
        max_streams: int = typer.Option(8, "--max-streams", min=1, help="WebSocket streams open at once (more are refused with close code 1013)"),
        max_request_mb: float = typer.Option(8.0, "--max-request-mb", min=0.001, help="largest request body or stream frame, in MiB"),
        max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="largest image, in pixels (read from its header before decoding)"),
        detect_max_side: Optional[int] = typer.Option(None, "--detect-max-side", min=0, help="detect on images shrunk to this long side (default 2048, 0 = full size)"),
        ema: float = typer.Option(0.6, "--ema", min=0.0, max=0.99, help="streams: weight of the past in each face's probability average"),
        hysteresis: float = typer.Option(0.1, "--hysteresis", min=0.0, max=0.99, help="streams: margin a new label must win by"),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: critical, error, warning, info, debug"),
    ) -> None:
        """Serve faces (POST /v1/faces), crops (POST /v1/predict) and video streams (WS /v1/stream).

        Also GET /healthz, /readyz, /metrics (Prometheus) and /docs (OpenAPI). Uploaded images give the same records as `fer-edge run --json`; concurrent requests share classifier calls (--max-batch, --max-delay-ms). Stops on Ctrl-C.
        """
        from ..errors import require
        from ..serve import ServeOptions, create_app

        uvicorn = require("uvicorn", "serve", "fer-edge serve")
        check_address(host, port)  # before the model loads: a busy port is a one-line error, not uvicorn's log
        options = ServeOptions(model=model, backend=backend, device=device, detector=detector, max_batch=max_batch,
                               max_delay_ms=max_delay_ms, workers=workers, max_streams=max_streams,
                               max_request_bytes=int(max_request_mb * 1024 * 1024), max_pixels=max_pixels,
                               ema=ema, hysteresis=hysteresis, detect_max_side=detect_max_side)
        application = create_app(options)
        uvicorn.run(application, host=host, port=port, log_level=log_level, ws_max_size=options.max_request_bytes,
                    ws="websockets-sansio", timeout_graceful_shutdown=5)


def check_address(host: str, port: int) -> None:
    """Bind `host`:`port` once, as uvicorn will, and say in one line why that is impossible."""
    import errno
    import socket

    from ..errors import FerEdgeError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise FerEdgeError(f"--host {host!r} is not an address or a name this machine can resolve; "
                           "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            why = {errno.EADDRINUSE: f"port {port} is in use by another program; pick another --port",
                   errno.EADDRNOTAVAIL: f"{host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0",
                   errno.EACCES: f"port {port} needs privileges here; use a port above 1023"}
            raise FerEdgeError(f"cannot listen on {host}:{port}: "
                               + why.get(exc.errno, exc.strerror or str(exc))) from None
