"""INT8 vs FP32 speed per backend (ONNX Runtime, OpenVINO) on this machine, as ratios from ONE run.

Usage:
    python bench/int8_speed.py                       # exports the default model into a temp folder first
    python bench/int8_speed.py --bundle exports/poster_v2 --batch 1 --batch 8

The FP32 and INT8 artifacts of a backend are timed round-robin (one call each, in turn), so load from
other jobs on a shared machine hits both alike; the ratio is median FP32 latency / median INT8 latency.
The TensorRT Q/DQ graph is also timed on ONNX Runtime's CPU kernels to show why it is a separate
artifact (it is meant for TensorRT, not for ONNX Runtime on a CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

# (label, FP32 file suffix, INT8 file suffix, backend, options)
PAIRS = [
    ("onnxruntime", ".onnx", "_int8_onnxruntime.onnx", "onnxruntime", {}),
    ("onnxruntime (TensorRT Q/DQ graph)", ".onnx", "_int8_tensorrt_qdq.onnx", "onnxruntime", {}),
    ("openvino", "_fp32.xml", "_int8_openvino.xml", "openvino", {}),
    ("openvino, fp32 forced", "_fp32.xml", "_int8_openvino.xml", "openvino", {"precision": "f32"}),
]


def default_bundle(folder: Path) -> Path:
    from fer_edge.export.orchestrate import ExportOptions, run_export

    run_export(ExportOptions(method="mini_xception", int8=True, calib_data="fer2013:train", calib_size=300,
                             output=str(folder)))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="an export folder made with `fer-edge export --int8` (default: export mini_xception)")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default 1 and 32)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=20.0, help="per backend pair and batch")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every engine")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    import fer_edge
    from fer_edge.bench.machine import cpu_info
    from fer_edge.bench.timing import measure_interleaved

    folder = Path(args.bundle) if args.bundle else default_bundle(Path(tempfile.mkdtemp(prefix="fer_int8_bench_")))
    meta = json.loads((folder / "metadata.json").read_text())
    method = meta["method"]
    h, w = meta["input"]["size"]
    rng = np.random.default_rng(0)  # timing only: the values do not change the cost of these graphs
    results = []
    print(f"{method} from {folder}; CPU: {cpu_info().get('model', '?')}, {os.cpu_count()} cores, threads={args.threads}")
    print(f"{'backend':40s} {'batch':>5s} {'FP32 p50 ms':>12s} {'INT8 p50 ms':>12s} {'speed-up':>9s}")
    for label, fp_suffix, q_suffix, backend, opts in PAIRS:
        fp_path, q_path = folder / f"{method}{fp_suffix}", folder / f"{method}{q_suffix}"
        if not (fp_path.exists() and q_path.exists()):
            print(f"{label:40s} (missing {fp_path.name if not fp_path.exists() else q_path.name})")
            continue
        models = [fer_edge.load(str(p), backend=backend, device="cpu", threads=args.threads, **opts)
                  for p in (fp_path, q_path)]
        for batch in args.batch or [1, 32]:
            channels = 1 if meta["input"]["color"] == "GRAY" else 3
            x = rng.standard_normal((batch, channels, h, w)).astype(np.float32)
            fp, q = measure_interleaved([lambda m=m: m.run(x) for m in models], batch=batch, warmup=args.warmup,
                                        runs=args.runs, max_seconds=args.max_seconds)
            ratio = fp.p50_ms / q.p50_ms
            print(f"{label:40s} {batch:5d} {fp.p50_ms:12.3f} {q.p50_ms:12.3f} {ratio:8.2f}x")
            results.append({"backend": label, "batch": batch, "fp32": fp.to_dict(), "int8": q.to_dict(),
                            "speedup": ratio, "precision_note": models[0].info().precision_note})
    if args.json:
        Path(args.json).write_text(json.dumps({"method": method, "cpu": cpu_info(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
