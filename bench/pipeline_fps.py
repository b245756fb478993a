"""Benchmark (not a test): end-to-end frames per second of the live pipeline and where the time goes.

Runs ``fer_edge.Pipeline`` over a video, after a short warm-up, and reports frames per second with and
without video decoding, plus the mean time per frame of each stage (detect / align / classify /
track+smooth). Speeds are only comparable between runs on the same machine; the stage split (as
shares of one run) is the figure that transfers.

    python bench/pipeline_fps.py                                   # the sample video, default model
    python bench/pipeline_fps.py --video clip.mp4 --detector haar --model my.onnx --json result.json

Several ``--detector`` options compare detectors in one run (same video, same process); ``NAME:ROWS``
sets BlazeFace's tile rows for that entry. Faces found by the first entry are the reference: each other
entry reports how many of them it also found (IoU > 0.3), besides its own count and its speed ratio.

    python bench/pipeline_fps.py --detector blazeface --detector blazeface_full --detector blazeface_full:2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_video.mp4"


def _parse_detector(entry: str) -> tuple[str, dict]:
    name, _, rows = entry.partition(":")
    return name, ({"tile_rows": rows if rows == "auto" else int(rows)} if rows else {})


def run_once(args, detector: str, options: dict) -> tuple[dict, list]:
    """Time the pipeline with one detector over the video; also return each frame's face boxes."""
    from fer_edge.bench.pipeline import measure_pipeline

    boxes: list = []
    res = measure_pipeline(args.video, model=args.model, detector=detector, backend=args.backend,
                           device=args.device, max_frames=args.frames or None, warmup=args.warmup,
                           detector_options=options, boxes=boxes)
    stages = {k: v for k, v in res["stages_ms"].items() if k != "decode"}
    busy = sum(stages.values())
    res["share"] = {k: v / busy for k, v in stages.items()}
    res["ms_per_frame"] = stages
    print(f"{res['frames']} frames {res['resolution']}, {res['faces']} faces ({res['faces'] / res['frames']:.1f}/frame), "
          f"{res['model']}, detector {res['detector']}")
    print(f"end to end (decode + pipeline): {res['fps']:.2f} frames/s")
    print(f"pipeline only:                  {res['fps_pipeline_only']:.2f} frames/s")
    print(f"  {'decode':<13} {res['stages_ms']['decode']:7.1f} ms/frame")
    for k, ms in stages.items():
        print(f"  {k:<13} {ms:7.1f} ms/frame  {100 * res['share'][k]:5.1f}% of the pipeline")
    return res, boxes


def compare(results: list[dict], boxes: list[list]) -> None:
    """Each entry against the first: faces found, reference faces also found, detection and pipeline speed."""
    from fer_edge.vision.detectors import iou_matrix

    ref, ref_boxes = results[0], boxes[0]
    ref_faces = max(ref["faces"], 1)
    print(f"\ncompared with {ref['detector']} (same run; ratios > 1 mean faster / more):")
    print(f"  {'detector':<20} {'faces':>6} {'of ref':>8} {'detect ms':>10} {'detect x':>9} {'fps x':>7}")
    for res, bxs in zip(results, boxes):
        found = sum(int((iou_matrix(r, b) > 0.3).any(axis=1).sum()) for r, b in zip(ref_boxes, bxs))
        res["ref_faces_found"] = found
        res["detect_speedup"] = ref["ms_per_frame"]["detect"] / res["ms_per_frame"]["detect"]
        res["pipeline_speedup"] = res["fps_pipeline_only"] / ref["fps_pipeline_only"]
        print(f"  {res['detector']:<20} {res['faces']:>6} {found / ref_faces:>8.0%} {res['ms_per_frame']['detect']:>10.1f} "
              f"{res['detect_speedup']:>9.2f} {res['pipeline_speedup']:>7.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--detector", action="append", help="detector name, NAME:ROWS for BlazeFace tile rows; "
                    "repeat to compare (default: the pipeline's default detector)")
    ap.add_argument("--tile-rows", default=None, help="BlazeFace tiling rows ('auto', 0 = whole frame only)")
    ap.add_argument("--frames", type=int, default=0, help="frames to time (0 = the whole video)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from fer_edge.pipeline import DEFAULT_DETECTOR

    if not args.video.is_file():
        print(f"video not found: {args.video}", file=sys.stderr)
        return 2
    results, boxes = [], []
    for entry in args.detector or [DEFAULT_DETECTOR]:
        name, options = _parse_detector(entry)
        if args.tile_rows is not None and not options:
            options = _parse_detector(f"{name}:{args.tile_rows}")[1]
        res, bxs = run_once(args, name, options)
        results.append(res)
        boxes.append(bxs)
    if len(results) > 1:
        compare(results, boxes)
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "numpy": np.__version__, "opencv": cv2.__version__}
    if args.json:
        out = dict(results[0], machine=machine) if len(results) == 1 else {"runs": results, "machine": machine}
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
