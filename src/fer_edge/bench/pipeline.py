"""End-to-end frames per second of the live pipeline, with the time split per stage."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import FerEdgeError


def measure_pipeline(source: str | Path, *, model="default", detector="blazeface", backend: str | None = None,
                     device: str = "auto", max_frames: int | None = None, warmup: int = 3,
                     detector_options: dict | None = None, boxes: list | None = None) -> dict:
    """Run `Pipeline` over a video (warm-up on its first frame, then every frame timed).

    Returns frames, faces, fps end to end (decode included) and pipeline-only, and mean ms per frame
    of decode, detect, align, classify and track+smooth. If `boxes` is a list, each frame's face
    boxes (an (F, 4) array) are appended to it, for comparing detectors.
    """
    import cv2
    import numpy as np

    from ..pipeline import Pipeline

    source = Path(source)
    if not source.is_file():
        raise FerEdgeError(f"video not found: {source}")
    pipe = Pipeline(model=model, detector=detector, backend=backend, device=device,
                    detector_options=detector_options)
    cap = cv2.VideoCapture(str(source))
    ok, frame = cap.read()
    if not ok:
        raise FerEdgeError(f"cannot decode {source}: not a readable video")
    height, width = frame.shape[:2]
    for _ in range(warmup):
        pipe(frame)
    pipe.reset()
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    decode_s, faces, frames = 0.0, 0, 0
    start = time.perf_counter()
    while max_frames is None or frames < max_frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        decode_s += time.perf_counter() - t0
        if not ok:
            break
        found = pipe(frame)
        faces += len(found)
        frames += 1
        if boxes is not None:
            boxes.append(np.array([f.box for f in found], np.float32).reshape(-1, 4))
    wall = time.perf_counter() - start
    cap.release()
    if frames == 0:
        raise FerEdgeError(f"{source} has no frames")
    totals = pipe.timings.totals()
    busy = sum(totals.values())
    detector_label = getattr(pipe.detector, "name", str(detector))
    if detector_options and "tile_rows" in detector_options:
        detector_label += f":{detector_options['tile_rows']}"
    return {
        "source": str(source),
        "resolution": f"{width}x{height}",
        "frames": frames,
        "faces": faces,
        "model": repr(pipe.model),
        "detector": detector_label,
        "tile_rows": getattr(pipe.detector, "tile_rows", None),
        "fps": frames / wall,
        "fps_pipeline_only": frames / busy if busy else None,
        "stages_ms": {"decode": 1000 * decode_s / frames} | {k: 1000 * v / frames for k, v in totals.items()},
    }
