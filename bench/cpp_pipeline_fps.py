"""Benchmark (not a test): the C++ pipeline (libfer_edge) against the Python pipeline, same video,
same model, same backend, measured in one run.

The video is decoded once into memory, so both sides time the pipeline alone (detect, align,
classify, track + smooth), not the decoder. Rounds alternate between the contenders, so load from
other processes hits them alike; each contender's frames per second is the median over rounds and
the ratios come from those medians. Contenders:

- ``python``: ``fer_edge.Pipeline`` as users run it with ``backend=openvino`` (classifier on
  OpenVINO; its BlazeFace on ONNX Runtime, the Python default);
- ``python-ov``: the same with BlazeFace on OpenVINO too (the engine the C++ side uses);
- ``cpp``: libfer_edge through its C API (ctypes; one call per frame), everything on OpenVINO.

    python bench/cpp_pipeline_fps.py                      # sample video, default model, 3 rounds
    python bench/cpp_pipeline_fps.py --frames 105 --rounds 5 --json cpp_fps.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_video.mp4"
STAGES = ("detect", "align", "classify", "track_smooth")


def read_frames(video: Path, limit: int) -> list:
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {video}")
    return frames


def python_contender(model_path: Path, precision: str | None, ov_detector: bool):
    import fer_edge
    from fer_edge.pipeline import Pipeline
    from fer_edge.vision.detectors import ASSETS, BlazeFaceDetector

    options = {"precision": precision} if precision else {}
    model = fer_edge.load(model_path, backend="openvino", **options)
    detector = "blazeface"
    if ov_detector:
        import openvino as ov

        compiled = ov.Core().compile_model(str(ASSETS / "blazeface.onnx"), "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        detector = BlazeFaceDetector(infer=lambda x: (lambda o: (o["regressors"], o["classificators"]))(compiled(x)))
    pipe = Pipeline(model=model, detector=detector)

    def run(frames):
        pipe.reset()
        start = time.perf_counter()
        faces = sum(len(pipe(f)) for f in frames)
        elapsed = time.perf_counter() - start
        return elapsed, faces, pipe.timings.mean_ms()

    return run


def cpp_contender(model_path: Path, precision: str | None):
    import build_lib
    import fer_edge_c

    lib_path, why = build_lib.ensure_built()
    if lib_path is None:
        raise SystemExit(why)
    lib = fer_edge_c.load_library(lib_path)
    model = fer_edge_c.Model(lib, model_path, options={"precision": precision} if precision else {})
    pipe = fer_edge_c.Pipeline(model)

    def run(frames):
        pipe.reset()
        before = {s: pipe.stage_seconds(s) for s in STAGES}
        n0 = pipe.frames
        start = time.perf_counter()
        faces = sum(pipe.process_raw(f) for f in frames)
        elapsed = time.perf_counter() - start
        count = max(pipe.frames - n0, 1)
        return elapsed, faces, {s: 1000.0 * (pipe.stage_seconds(s) - before[s]) / count for s in STAGES}

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--model", type=Path, default=ROOT / "src" / "fer_edge" / "assets" / "mini_xception.onnx")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3, help="frames run by each contender before timing")
    ap.add_argument("--precision", default="fp32", help="OpenVINO inference precision for the classifier on both sides")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    frames = read_frames(args.video, args.frames)
    contenders = {
        "python": python_contender(args.model, args.precision, ov_detector=False),
        "python-ov": python_contender(args.model, args.precision, ov_detector=True),
        "cpp": cpp_contender(args.model, args.precision),
    }
    for run in contenders.values():
        run(frames[: args.warmup])
    results = {name: [] for name in contenders}
    for r in range(args.rounds):
        order = list(contenders) if r % 2 == 0 else list(contenders)[::-1]  # alternate who goes first
        for name in order:
            elapsed, faces, stages = contenders[name](frames)
            results[name].append({"fps": len(frames) / elapsed, "faces": faces, "stages_ms": stages})
            print(f"round {r + 1} {name:9s} {len(frames) / elapsed:6.2f} frames/s, {faces} faces", flush=True)
    summary = {}
    for name, rounds in results.items():
        fps = statistics.median(x["fps"] for x in rounds)
        stages = {s: statistics.median(x["stages_ms"][s] for x in rounds) for s in STAGES}
        summary[name] = {"fps": fps, "faces": rounds[0]["faces"], "stages_ms": stages}
    h, w = frames[0].shape[:2]
    print(f"\n{len(frames)} frames {w}x{h}, model {args.model.name}, OpenVINO precision {args.precision}, "
          f"median of {args.rounds} alternating rounds")
    print(f"{'':10s} {'fps':>7s} " + " ".join(f"{s + ' ms':>16s}" for s in STAGES))
    for name, s in summary.items():
        print(f"{name:10s} {s['fps']:7.2f} " + " ".join(f"{s['stages_ms'][k]:16.2f}" for k in STAGES))
    ratios = {f"cpp/{name}": summary["cpp"]["fps"] / summary[name]["fps"] for name in ("python", "python-ov")}
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"video": str(args.video), "frames": len(frames), "resolution": [w, h],
                                         "model": args.model.name, "precision": args.precision, "rounds": args.rounds,
                                         "machine": platform.processor() or platform.machine(),
                                         "results": summary, "per_round": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
