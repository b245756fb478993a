"""The HTTP/WebSocket application of `fer-edge serve` (FastAPI on an ASGI server such as uvicorn).

Endpoints:
    POST /v1/faces     an image (JPEG/PNG body, or multipart field ``image``) -> the faces, as one
                       record of ``fer-edge run --json``
    POST /v1/predict   face crops (a JPEG/PNG body, or multipart fields ``crops``) -> predictions
    WS   /v1/stream    binary JPEG/PNG frames in, one JSON record per frame out; tracking and
                       smoothing carry over between the frames of one connection
    GET  /healthz      the process answers;  GET /readyz: the model is loaded and serving
    GET  /metrics      Prometheus metrics;    GET /docs: the OpenAPI documentation

Every refusal is a 4xx with one line of JSON, ``{"error": "..."}``; the server keeps serving.
Decoding, detection and alignment run in a thread pool; the classifier calls of concurrent requests
are merged by the dynamic batcher (see :mod:`fer_edge.serve.batching`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..errors import FerEdgeError
from .engine import ServeEngine, ServeOptions
from .errors import RequestError
from .images import decode_image
from .metrics import ServeMetrics

log = logging.getLogger("fer_edge.serve")
ROUTES = ("/healthz", "/readyz", "/metrics", "/v1/faces", "/v1/predict", "/v1/stream")
RAW_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
_IMAGE_BODY = {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_TYPES}
               | {"multipart/form-data": {"schema": {"type": "object", "properties": {
                   "image": {"type": "string", "format": "binary"}}}}}, "required": True}
_CROPS_BODY = {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_TYPES}
               | {"multipart/form-data": {"schema": {"type": "object", "properties": {
                   "crops": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}},
               "required": True}


def create_app(options: ServeOptions, engine: ServeEngine | None = None):
    """The application; the model loads here, so a bad --model fails before the server listens."""
    metrics = ServeMetrics(options.max_batch)
    engine = engine or ServeEngine(options, on_batch=metrics.batch_size.observe)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        engine.close()

    app = FastAPI(title="fer-edge", summary="Facial expression recognition: faces, crops and streams",
                  lifespan=lifespan)
    app.state.engine, app.state.metrics = engine, metrics
    _add_error_handlers(app)
    app.add_middleware(_BodyLimit, max_bytes=options.max_request_bytes)
    app.add_middleware(_Metrics, metrics=metrics)  # outermost: counts the body limit's refusals too
    _add_routes(app, engine, metrics)
    return app


async def _in_pool(engine: ServeEngine, fn, *args):
    return await asyncio.get_running_loop().run_in_executor(engine.executor, fn, *args)


def _add_routes(app: FastAPI, engine: ServeEngine, metrics: ServeMetrics) -> None:
    max_pixels = engine.options.max_pixels

    @app.get("/healthz", summary="The process is up")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and requests are served")
    async def readyz():
        if not engine.ready:
            return JSONResponse({"status": "not ready", "error": "the server is shutting down"}, status_code=503)
        return {"status": "ready", "model": engine.describe()}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/v1/faces", summary="Faces of one image: boxes, labels, probabilities (a `fer-edge run --json` record)",
              openapi_extra={"requestBody": _IMAGE_BODY})
    async def faces(request: Request):
        (name, data), = await _uploads(request, "image", 1)
        image = await _in_pool(engine, decode_image, data, max_pixels)
        found = await _in_pool(engine, engine.faces, image)
        metrics.faces.inc(len(found))
        record = {"frame": 0, "time": 0.0, "faces": found}
        if name:
            record["image"] = name
        return record

    @app.post("/v1/predict", summary="Expressions of face crops (already cut out; any size, resized by the model)",
              openapi_extra={"requestBody": _CROPS_BODY})
    async def predict(request: Request):
        uploads = await _uploads(request, "crops", engine.options.max_crops)
        feeds = await _in_pool(engine, lambda: engine.prepare([decode_image(d, max_pixels) for _, d in uploads]))
        outputs = await asyncio.wrap_future(engine.batcher.enqueue(feeds))  # joins concurrent requests' batch
        return {"predictions": engine.finish(outputs)}

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket):
        await ws.accept()
        pipe = await _in_pool(engine, engine.open_stream)
        if pipe is None:
            metrics.errors.labels("/v1/stream", "too many streams").inc()
            await ws.close(code=1013, reason=f"all {engine.options.max_streams} stream slots are taken; retry later")
            return
        metrics.streams.inc()
        try:
            await _stream_frames(ws, pipe, engine, metrics)
        except WebSocketDisconnect:  # the client left while a reply was on its way
            pass
        finally:
            metrics.streams.dec()
            engine.close_stream(pipe)


async def _stream_frames(ws, pipe, engine: ServeEngine, metrics: ServeMetrics) -> None:
    """One connection's frames, in order, through its own pipeline (tracks and smoothing carry over)."""
    index = 0
    limit, max_pixels = engine.options.max_request_bytes, engine.options.max_pixels

    def process(data: bytes) -> list[dict]:
        return [f.to_dict() for f in pipe(decode_image(data, max_pixels))]

    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        start = time.perf_counter()
        data = message.get("bytes")
        try:
            if data is None:
                raise RequestError(415, "send each frame as a binary message of JPEG or PNG bytes, not text")
            if len(data) > limit:
                raise RequestError(413, f"the frame is {len(data)} bytes, over this server's limit of {limit}")
            found = await _in_pool(engine, process, data)
        except RequestError as exc:
            metrics.errors.labels("/v1/stream", _reason(exc.status)).inc()
            await ws.send_json({"error": str(exc), "status": exc.status})
            continue
        metrics.faces.inc(len(found))
        metrics.latency.labels("/v1/stream").observe(time.perf_counter() - start)
        metrics.requests.labels("/v1/stream", "200").inc()
        await ws.send_json({"frame": index, "faces": found})
        index += 1


async def _uploads(request: Request, field: str, most: int) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each image in the request: the whole body, or the form's `field` parts."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in RAW_TYPES:
        return [(None, await request.body())]
    if content_type != "multipart/form-data":
        shown = content_type or "none"
        raise RequestError(415, f"content type {shown} is not accepted; send image/jpeg, image/png, "
                                f"application/octet-stream or multipart/form-data with field '{field}'")
    try:
        form = await request.form(max_files=most, max_fields=most)
    except HTTPException as exc:  # starlette's parser: malformed multipart, too many parts
        raise RequestError(400, f"malformed multipart body: {exc.detail}") from None
    try:
        parts = [p for p in form.getlist(field) if isinstance(p, UploadFile)]
        if not parts:
            raise RequestError(400, f"the multipart body has no file field '{field}'")
        if len(parts) > most:
            raise RequestError(413, f"{len(parts)} files in field '{field}'; at most {most} per request")
        return [(p.filename, await p.read()) for p in parts]
    finally:
        await form.close()


def _reason(status: int) -> str:
    return {400: "bad input", 404: "not found", 405: "method not allowed", 413: "too large",
            415: "unsupported type", 422: "invalid", 503: "overloaded"}.get(status, str(status))


def _add_error_handlers(app: FastAPI) -> None:
    def one_line(status: int, message: str):
        return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)

    @app.exception_handler(RequestError)
    async def request_error(_request, exc: RequestError):
        return one_line(exc.status, str(exc))

    @app.exception_handler(FerEdgeError)
    async def fer_edge_error(_request, exc: FerEdgeError):  # input the pipeline refused
        return one_line(422, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        return one_line(exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        return one_line(422, f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg')}")

    @app.exception_handler(Exception)
    async def unexpected(_request, exc: Exception):
        log.exception("unexpected error")
        return one_line(500, f"internal error ({type(exc).__name__}); the server logged it")


class _BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413, declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"error": self._message(int(declared))}, status_code=413,
                                    headers={"connection": "close"})
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise RequestError(413, self._message(seen))
            return message

        return await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return f"the request body is {size} bytes or more, over this server's limit of {self.max_bytes}; send a smaller image"


class _Metrics:
    """ASGI middleware: count every HTTP answer by route and status, and time it."""

    def __init__(self, app, metrics: ServeMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def tracked(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route = scope.get("route")  # set by the router; absent when refused before routing
            path = route.path if route is not None else scope.get("path")
            endpoint = path if path in ROUTES else "other"  # unknown paths share one label: bounded series
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            if status[0] >= 400:
                self.metrics.errors.labels(endpoint, _reason(status[0])).inc()
