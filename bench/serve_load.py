"""Load test (not a test): concurrent clients against `fer-edge serve` and a local Triton, loopback only.

Every scenario starts its own server on 127.0.0.1 (a free port), runs N concurrent clients for a
fixed time, reads the server's batch-size counts, and stops the server: the script ends by itself.
Reported per scenario: requests/s, faces (crops)/s, p50/p99 latency, the batch-size histogram and
the errors (which must be 0). The dynamic-batching gain is measured in the same run, as the
throughput with batching over the throughput with batch 1, same clients, same payload.

    python bench/serve_load.py                                # 8 clients, 8 s per scenario
    python bench/serve_load.py --clients 16 --seconds 15 --json serve_load.json --markdown serve_load.md
    python bench/serve_load.py --no-triton                    # fer-edge serve only

Needs `pip install "fer-edge[serve,triton]"` (aiohttp, the clients, comes with tritonclient[http]).
Triton runs from the nvidia-pytriton wheel (python backend only; its venv is made under .cache/ the
first time, as by the tests), so its classifier runs fer-edge's ONNX Runtime inside the python backend.
Clients and servers share this machine's cores: the figures are of the whole box, not of a server alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces"


@dataclass
class Result:
    scenario: str
    clients: int
    seconds: float
    requests: int = 0
    items: int = 0  # crops classified (predict) or faces found (frames)
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    batches: dict[int, int] = field(default_factory=dict)  # batch size -> engine calls

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms or [np.nan])
        return {"scenario": self.scenario, "clients": self.clients, "seconds": round(self.seconds, 2),
                "requests": self.requests, "requests_per_s": round(self.requests / self.seconds, 1),
                "items_per_s": round(self.items / self.seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
                "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": self.errors,
                "batch_histogram": dict(sorted(self.batches.items()))}


async def _drive(send, clients: int, seconds: float, result: Result) -> None:
    """`clients` loops calling `send()` (returns items) until the deadline; bounded by time."""
    deadline = time.perf_counter() + seconds

    async def loop():
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                items = await send()  # not `result.items += await ...`: that reads the total before awaiting
                result.items += items
                result.requests += 1
                result.latencies_ms.append(1000 * (time.perf_counter() - t0))
            except Exception:  # noqa: BLE001 - counted, must stay 0
                result.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    result.seconds = time.perf_counter() - start


# --- payloads -----------------------------------------------------------------------------------

def load_payloads():
    """(photo bytes, aligned crops) from the shared face photos."""
    import cv2

    import fer_edge

    photos = sorted(FACES.glob("*.jpg"))
    if not photos:
        sys.exit(f"no face photos in {FACES}")
    pipe = fer_edge.Pipeline()
    crops = []
    for p in photos:
        pipe.reset_tracks()
        pipe(cv2.imread(str(p)))
        crops += pipe.last_crops
    small = [cv2.imencode(".jpg", cv2.resize(cv2.imread(str(p)), None, fx=0.5, fy=0.5))[1].tobytes() for p in photos]
    return small, crops


# --- fer-edge serve -----------------------------------------------------------------------------

def _start_serve(max_batch: int, max_delay_ms: float, workers: int):
    import httpx

    from fer_edge.triton.local_server import free_port

    port = free_port()
    log = tempfile.NamedTemporaryFile("w", prefix="fer-edge-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge.cli.main", "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--max-batch", str(max_batch), "--max-delay-ms", str(max_delay_ms),
                             "--workers", str(workers), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                log.close()
                os.unlink(log.name)  # started fine: nothing to look at
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"fer-edge serve did not start; see {log.name}")


def _serve_batches(url: str) -> dict[int, int]:
    """Engine calls per batch-size bucket, from the cumulative Prometheus histogram."""
    import httpx

    cumulative = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("fer_edge_batch_size_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            if le != "+Inf":
                cumulative[int(float(le))] = int(float(line.rsplit(" ", 1)[1]))
    out, below = {}, 0
    for size in sorted(cumulative):
        if cumulative[size] - below:
            out[size] = cumulative[size] - below  # calls with (previous bucket, size] rows
        below = cumulative[size]
    return out


def run_serve(name: str, endpoint: str, payloads, clients: int, seconds: float, max_batch: int,
              delay_ms: float, workers: int) -> Result:
    import aiohttp
    import cv2

    proc, url = _start_serve(max_batch, delay_ms, workers)
    result = Result(name, clients, seconds)
    try:
        photos, crops = payloads
        bodies = photos if endpoint == "/v1/faces" else [cv2.imencode(".png", c)[1].tobytes() for c in crops]
        kind = "image/jpeg" if endpoint == "/v1/faces" else "image/png"

        async def main():  # aiohttp, as tritonclient's aio client: the same client stack for both servers
            counter = iter(range(10**9))
            connector = aiohttp.TCPConnector(limit=clients)
            async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(60)) as c:
                async def send():
                    body = bodies[next(counter) % len(bodies)]
                    async with c.post(endpoint, data=body, headers={"content-type": kind}) as answer:
                        answer.raise_for_status()
                        data = await answer.json()
                    return len(data["faces"] if "faces" in data else data["predictions"])
                await _drive(send, clients, 1.0, Result("warm-up", clients, 1.0))
                before = _serve_batches(url)
                await _drive(send, clients, seconds, result)
                after = _serve_batches(url)
                result.batches = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return result


# --- Triton ---------------------------------------------------------------------------------------

def run_triton(name: str, model: str, payloads, clients: int, seconds: float, max_batch: int,
               delay_us: int) -> Result:
    import tritonclient.http as http
    import tritonclient.http.aio as aio

    import fer_edge
    from fer_edge.preprocess import preprocess_images
    from fer_edge.triton import Serving, build_repository, local_server

    photos, crops = payloads
    meta = fer_edge.load("default").metadata
    tensors = [preprocess_images([c], meta.input) for c in crops]
    work = Path(tempfile.mkdtemp(prefix="fer-edge-triton-"))
    repo = build_repository(["default"], work / "repo", Serving(max_batch=max_batch, max_delay_us=delay_us),
                            backend="python", names=["classifier"])
    server = local_server.start(local_server.ensure_venv(ROOT / ".cache" / "triton-venv"), repo.folder, work, ROOT)
    result = Result(name, clients, seconds)
    try:
        async def main():
            client = aio.InferenceServerClient(server.url, conn_limit=clients)
            counter = iter(range(10**9))
            try:
                async def send():
                    i = next(counter)
                    if model == "classifier":
                        x = tensors[i % len(tensors)]
                        inp = http.InferInput(meta.input.name, list(x.shape), "FP32")
                        inp.set_data_from_numpy(x)
                        await client.infer("classifier", [inp])
                        return 1
                    data = np.frombuffer(photos[i % len(photos)], np.uint8)
                    inp = http.InferInput("IMAGE", [len(data)], "UINT8")
                    inp.set_data_from_numpy(data)
                    answer = await client.infer(repo.faces, [inp])
                    return int(answer.as_numpy("BOXES").shape[0])
                await _drive(send, clients, 1.0, Result("warm-up", clients, 1.0))
                before = await _triton_batches(client)
                await _drive(send, clients, seconds, result)
                after = await _triton_batches(client)
                result.batches = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
            finally:
                await client.close()
        asyncio.run(main())
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


async def _triton_batches(client) -> dict[int, int]:
    stats = await client.get_inference_statistics("classifier")
    out = {}
    for entry in stats["model_stats"][0].get("batch_stats", []):
        out[int(entry["batch_size"])] = int(entry["compute_infer"]["count"])
    return out


# --- report ---------------------------------------------------------------------------------------

def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform(),
            "load_average_1min_at_start": round(os.getloadavg()[0], 2)}


def markdown(rows: list[dict], gains: dict, info: dict) -> str:
    head = "| scenario | clients | req/s | faces/s | p50 ms | p99 ms | errors | batch sizes (calls) |\n|---|---|---|---|---|---|---|---|\n"
    body = "".join(f"| {r['scenario']} | {r['clients']} | {r['requests_per_s']} | {r['items_per_s']} | {r['p50_ms']} | "
                   f"{r['p99_ms']} | {r['errors']} | {', '.join(f'{k}: {v}' for k, v in r['batch_histogram'].items())} |\n"
                   for r in rows)
    gain = "".join(f"- {k}: **x{v}** throughput with dynamic batching over batch 1\n" for k, v in gains.items())
    return (f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, load average "
            f"{info['load_average_1min_at_start']} at the start\n\n{head}{body}\n{gain}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0, help="measured time per scenario (after 1 s of warm-up)")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-delay-ms", type=float, default=2.0, help="the delay of the delayed scenarios (the others: 0)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--no-triton", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        sys.exit("--clients must be 1..256 and --seconds 0..600 (the load test is bounded)")
    info = machine()  # before the load: the load average says how busy the box was already
    payloads = load_payloads()
    c, s = args.clients, args.seconds
    b, d = args.max_batch, args.max_delay_ms
    results = [
        run_serve("serve crops, batch 1", "/v1/predict", payloads, c, s, 1, 0.0, args.workers),
        run_serve(f"serve crops, dynamic batch {b}, no delay", "/v1/predict", payloads, c, s, b, 0.0, args.workers),
        run_serve(f"serve crops, dynamic batch {b}, delay {d:g} ms", "/v1/predict", payloads, c, s, b, d, args.workers),
        run_serve(f"serve images, dynamic batch {b}, no delay", "/v1/faces", payloads, c, s, b, 0.0, args.workers),
    ]
    if not args.no_triton:
        results += [
            run_triton("triton classifier (python backend), batch 1", "classifier", payloads, c, s, 1, 0),
            run_triton(f"triton classifier (python backend), dynamic batch {b}, no delay", "classifier", payloads,
                       c, s, b, 0),
            run_triton(f"triton classifier (python backend), dynamic batch {b}, delay {d:g} ms", "classifier",
                       payloads, c, s, b, int(d * 1000)),
            run_triton(f"triton fer_faces pipeline (BLS), dynamic batch {b}, no delay", "faces", payloads, c, s, b, 0),
        ]
    rows = [r.summary() for r in results]

    def gain(i: int, base: int) -> float:
        return round(rows[i]["items_per_s"] / max(rows[base]["items_per_s"], 1e-9), 2)

    gains = {"fer-edge serve crops, no delay": gain(1, 0), f"fer-edge serve crops, delay {d:g} ms": gain(2, 0)}
    if not args.no_triton:
        gains |= {"Triton classifier, no delay": gain(5, 4), f"Triton classifier, delay {d:g} ms": gain(6, 4)}
    report = {"machine": info, "settings": vars(args) | {"json": str(args.json), "markdown": str(args.markdown)},
              "results": rows, "batching_gain": gains}
    text = markdown(rows, gains, info)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    if any(r["errors"] for r in rows):
        sys.exit("errors during the load test (see the table)")


if __name__ == "__main__":
    main()
