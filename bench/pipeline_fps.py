"""Benchmark (not a test): end-to-end frames per second of the live pipeline and where the time goes.

Runs ``fer_edge.Pipeline`` over a video, after a short warm-up, and reports frames per second with and
without video decoding, plus the mean time per frame of each stage (detect / align / classify /
track+smooth). Speeds are only comparable between runs on the same machine; the stage split (as
shares of one run) is the figure that transfers.

    python bench/pipeline_fps.py                                   # the sample video, default model
    python bench/pipeline_fps.py --video clip.mp4 --detector haar --model my.onnx --json result.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_video.mp4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--detector", default="blazeface")
    ap.add_argument("--tile-rows", default=None, help="BlazeFace tiling rows ('auto', 0 = whole frame only)")
    ap.add_argument("--frames", type=int, default=0, help="frames to time (0 = the whole video)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from fer_edge import Pipeline

    if not args.video.is_file():
        print(f"video not found: {args.video}", file=sys.stderr)
        return 2
    options = {}
    if args.tile_rows is not None:
        options["tile_rows"] = args.tile_rows if args.tile_rows == "auto" else int(args.tile_rows)
    pipe = Pipeline(model=args.model, detector=args.detector, backend=args.backend, device=args.device,
                    detector_options=options)
    cap = cv2.VideoCapture(str(args.video))
    ok, frame = cap.read()
    if not ok:
        print(f"cannot read {args.video}", file=sys.stderr)
        return 2
    h, w = frame.shape[:2]
    for _ in range(args.warmup):
        pipe(frame)
    pipe.reset()
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    decode_s, faces, n = 0.0, 0, 0
    start = time.perf_counter()
    while not args.frames or n < args.frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        decode_s += time.perf_counter() - t0
        if not ok:
            break
        faces += len(pipe(frame))
        n += 1
    wall = time.perf_counter() - start
    cap.release()

    stages = pipe.timings.totals()
    pipeline_s = sum(stages.values())
    result = {
        "video": str(args.video), "frames": n, "resolution": f"{w}x{h}", "faces": faces,
        "model": repr(pipe.model), "detector": args.detector, "tile_rows": getattr(pipe.detector, "tile_rows", None),
        "fps_end_to_end": n / wall, "fps_pipeline_only": n / pipeline_s,
        "ms_per_frame": {k: 1000 * v / n for k, v in stages.items()},
        "share": {k: v / pipeline_s for k, v in stages.items()},
        "decode_ms_per_frame": 1000 * decode_s / n,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "opencv": cv2.__version__},
    }
    print(f"{n} frames {w}x{h}, {faces} faces ({faces / n:.1f}/frame), {pipe.model!r}, detector {args.detector}")
    print(f"end to end (decode + pipeline): {result['fps_end_to_end']:.2f} frames/s")
    print(f"pipeline only:                  {result['fps_pipeline_only']:.2f} frames/s")
    print(f"  {'decode':<13} {result['decode_ms_per_frame']:7.1f} ms/frame")
    for k in stages:
        print(f"  {k:<13} {result['ms_per_frame'][k]:7.1f} ms/frame  {100 * result['share'][k]:5.1f}% of the pipeline")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
