"""Streaming cost of DFER-CLIP: split graphs (encode one new frame + temporal head) vs re-encoding
the whole 16-frame clip for every prediction, measured in ONE run on this machine (ONNX Runtime, CPU).

    .venv/bin/python bench/dfer_stream_cost.py [--threads 2] [--arch ViT-B-32] [--repeats 5]

Weights are random (CLIP ViT-B/32 shapes, random init): timing does not depend on their values.
Prints medians and the ratios; speeds vary with machine load, so compare ratios from one run.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="ViT-B-32", choices=["ViT-B-32", "ViT-B-16"])
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=5, help="rounds; each times the clip once, a frame 4x, the head 50x")
    ap.add_argument("--strides", default="1,4,8", help="prediction strides to report, in frames")
    args = ap.parse_args()

    import torch

    import fer_edge
    from fer_edge.bench.timing import measure_interleaved
    from fer_edge.models import create_model
    from fer_edge.models.dfer_clip import export_graph_onnx

    torch.manual_seed(0)
    model = create_model("dfer_clip", arch=args.arch).eval()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = {g: export_graph_onnx(model, g, Path(tmp) / f"{g}.onnx")
                 for g in ("classifier", "frame_encoder", "temporal_head")}
        export_s = time.perf_counter() - t0
        sizes = {g: p.stat().st_size / 2**20 for g, p in paths.items()}
        del model
        loaded = {g: fer_edge.load(p, threads=args.threads) for g, p in paths.items()}

        rng = np.random.default_rng(0)
        clip = rng.random((1, 16, 3, 224, 224), dtype=np.float32)
        frame = clip[:, 0]
        feats = rng.standard_normal((1, 16, loaded["temporal_head"].engine.inputs[0].shape[-1])).astype(np.float32)

        fns = {"clip": lambda: loaded["classifier"].run(clip), "frame": lambda: loaded["frame_encoder"].run(frame),
               "head": lambda: loaded["temporal_head"].run(feats)}
        # round-robin, one warm-up round; per round: 1 clip, 4 frame encodes, 50 head runs
        stats = measure_interleaved(list(fns.values()), warmup=1, runs=args.repeats, repeats=[1, 4, 50])
        t_clip, t_frame, t_head = (st.p50_ms / 1e3 for st in stats)

    print(f"DFER-CLIP {args.arch}, random-init weights, ONNX Runtime CPU, {args.threads} threads, "
          f"opset 17 fp32 (export {export_s:.1f} s)")
    print(f"  graph sizes: clip {sizes['classifier']:.0f} MB, frame encoder {sizes['frame_encoder']:.0f} MB, "
          f"temporal head {sizes['temporal_head']:.1f} MB")
    print(f"  median: full clip (16 frames) {t_clip * 1e3:.1f} ms | one frame encode {t_frame * 1e3:.1f} ms | "
          f"temporal head {t_head * 1e3:.3f} ms")
    split = t_frame + t_head
    print(f"  per prediction at stride 1: split {split * 1e3:.1f} ms vs re-encode {t_clip * 1e3:.1f} ms "
          f"-> re-encoding costs {t_clip / split:.1f}x the split graphs")
    for stride in (int(s) for s in args.strides.split(",")):
        # every frame is encoded once either way on the split path; predictions come every `stride` frames
        split_per_pred = stride * t_frame + t_head
        print(f"  stride {stride}: per prediction split {split_per_pred * 1e3:.1f} ms vs re-encode "
              f"{t_clip * 1e3:.1f} ms (ratio {t_clip / split_per_pred:.2f}x); per frame "
              f"{split_per_pred / stride * 1e3:.1f} ms vs {t_clip / stride * 1e3:.1f} ms")
    print(f"  head share of a split prediction: {100 * t_head / split:.2f}%")


if __name__ == "__main__":
    main()
