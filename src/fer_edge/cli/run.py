"""`fer-edge run`: the live pipeline on a camera, video, image, folder or stream."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        camera: Optional[int] = typer.Option(None, "--camera", help="camera index (0 = first camera)"),
        source: Optional[str] = typer.Option(None, "--source", help="video file, image, folder of images, or rtsp/http URL"),
        model: str = typer.Option("default", "--model", help="artifact path or registered name (see `fer-edge models`)"),
        backend: Optional[str] = typer.Option(None, "--backend", help="onnxruntime, openvino, tensorrt or torch (default: from the file type)"),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda[:N], or an OpenVINO device (GPU, NPU, AUTO)"),
        detector: Optional[str] = typer.Option(None, "--detector", help="face detector: blazeface (short range, tiles large frames), blazeface_full (full range) or haar (default: the pipeline's, blazeface)"),
        show: bool = typer.Option(False, "--show", help="show the annotated frames in a window (needs a display)"),
        output: Optional[Path] = typer.Option(None, "--output", help="annotated video (.mp4/.avi), image (.jpg/.png) or folder"),
        json_path: Optional[Path] = typer.Option(None, "--json", help="write JSON Lines: one record per frame with its faces"),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="stop after this many frames"),
        ema: float = typer.Option(0.6, "--ema", min=0.0, max=0.99, help="weight of the past in each face's probability average (0 = off)"),
        hysteresis: float = typer.Option(0.1, "--hysteresis", min=0.0, max=0.99, help="margin a new label must win by before it is shown"),
        stride: int = typer.Option(4, "--stride", min=1, help="video models: frames of a face between two clip-level predictions"),
    ) -> None:
        """Detect faces, recognise their expressions, track and smooth them; write/show the results.

        With a video model (a DFER-CLIP export folder or either graph of its split pair) each tracked face
        gets a clip-level expression every --stride frames once 16 of its frames are buffered."""
        from rich.console import Console

        from ..errors import FerEdgeError

        console = Console(stderr=True, soft_wrap=True)
        if camera is None and source is None:
            raise FerEdgeError("no input: pass --camera N or --source PATH_OR_URL")
        if camera is not None and source is not None:
            raise FerEdgeError("pass either --camera or --source, not both")
        if show:
            problem = _display_problem()
            if problem:
                if output is None and json_path is None:
                    raise FerEdgeError(f"--show cannot open a window: {problem}; use --output FILE instead")
                console.print(f"[yellow]warning:[/] --show ignored: {problem}")
                show = False
        runner = _Runner(console, output, json_path, show)
        runner.go(camera, source, model, backend, device, detector, max_frames, ema, hysteresis, stride)


def _display_problem() -> str | None:
    """Why no OpenCV window can be opened here, or None if one can."""
    import os
    import sys

    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (DISPLAY is not set)"
    try:
        cv2.namedWindow("fer-edge")
        cv2.destroyWindow("fer-edge")
    except cv2.error:
        return ("this OpenCV has no GUI support (opencv-python-headless); "
                "pip install opencv-python in its place for windows")
    return None


class _Runner:
    """One run: pull frames, run the pipeline, write every requested output, report where they went."""

    def __init__(self, console, output: Path | None, json_path: Path | None, show: bool):
        self.console = console
        self.output, self.json_path, self.show = output, json_path, show
        self.writer = None
        self.images_written: list[Path] = []
        self.json_file = None
        self.frames = 0
        self.faces = 0

    def go(self, camera, source, model, backend, device, detector, max_frames, ema, hysteresis, stride=4) -> None:
        import time

        from ..pipeline import Pipeline
        from ..vision.sources import open_source

        src = open_source(source=source, camera=camera)
        with src:
            chosen = {"detector": detector} if detector else {}  # None: the pipeline's default detector
            pipe = Pipeline(model=model, backend=backend, device=device, ema=ema, hysteresis=hysteresis,
                            stride=stride, **chosen)
            self.console.print(f"{src.kind} [bold]{src.name}[/] -> {pipe.model!r}, detector {pipe.detector.name}")
            self._open_json()
            interrupted = False
            start = time.perf_counter()
            try:
                interrupted = self._loop(src, pipe, max_frames)
            finally:
                self._close(src, pipe, time.perf_counter() - start, interrupted)

    def _loop(self, src, pipe, max_frames) -> bool:
        import json
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        total = src.total if src.total is None or max_frames is None else min(src.total, max_frames)
        if total is None and max_frames is not None:
            total = max_frames
        fps = None
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        try:
            with Progress(*columns, console=self.console, transient=True) as progress:
                task = progress.add_task("frames", total=total)
                for frame in src:
                    t0 = time.perf_counter()
                    faces = pipe(frame.image)
                    dt = time.perf_counter() - t0
                    fps = 1 / dt if fps is None else 0.9 * fps + 0.1 / max(dt, 1e-6)
                    self.frames += 1
                    self.faces += len(faces)
                    if self.json_file is not None:
                        record = {"frame": frame.index, "time": round(frame.time, 4), "faces": [f.to_dict() for f in faces]}
                        if frame.name:
                            record["image"] = frame.name
                        self.json_file.write(json.dumps(record) + "\n")
                        self.json_file.flush()
                    if self.output is None and not self.show and self.json_file is None:
                        labels = ", ".join(f"#{f.track_id} {f.label}" + ("" if f.warming_up else f" {f.confidence:.0%}")
                                           for f in faces) or "no face"
                        progress.console.print(f"frame {frame.index}{' ' + frame.name if frame.name else ''}: {labels}")
                    if self.output is not None or self.show:
                        from ..vision.draw import draw_results

                        annotated = draw_results(frame.image, faces, fps if src.kind not in ("image", "folder") else None)
                        self._write(annotated, frame, src)
                        if self.show and self._show(annotated):
                            return True
                    progress.advance(task)
                    if max_frames is not None and self.frames >= max_frames:
                        break
        except KeyboardInterrupt:
            return True
        return False

    def _open_json(self) -> None:
        if self.json_path is not None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_file = open(self.json_path, "w")

    def _write(self, annotated, frame, src) -> None:
        import cv2

        from ..errors import FerEdgeError
        from ..vision.sources import IMAGE_SUFFIXES

        out = self.output
        if out is None:
            return
        suffix = out.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            if self.writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                h, w = annotated.shape[:2]
                fps = src.fps or (25.0 if src.live else 5.0)
                self.writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[suffix]), fps, (w, h))
                if not self.writer.isOpened():
                    raise FerEdgeError(f"cannot write video {out}: this OpenCV has no encoder for {suffix}; try .avi")
                self.size = (w, h)
            if (annotated.shape[1], annotated.shape[0]) != self.size:  # folders of mixed sizes
                annotated = cv2.resize(annotated, self.size)
            self.writer.write(annotated)
            return
        if suffix in IMAGE_SUFFIXES:
            path = out if src.total == 1 else out.with_name(f"{out.stem}_{frame.index:06d}{out.suffix}")
        elif suffix:
            raise FerEdgeError(f"--output {out}: unknown file type {suffix}; use .mp4/.avi, .jpg/.png, or a folder")
        else:
            name = Path(frame.name).stem + ".jpg" if frame.name else f"frame_{frame.index:06d}.jpg"
            path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), annotated):
            raise FerEdgeError(f"cannot write image {path}: check the folder is writable")
        self.images_written.append(path)

    def _show(self, annotated) -> bool:
        """Show a frame; True when the user closed the window or pressed q/Esc."""
        import cv2

        cv2.imshow("fer-edge", annotated)
        key = cv2.waitKey(1) & 0xFF
        return key in (ord("q"), 27) or cv2.getWindowProperty("fer-edge", cv2.WND_PROP_VISIBLE) < 1

    def _close(self, src, pipe, elapsed: float, interrupted: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.json_file is not None:
            self.json_file.close()
        if self.show:
            import cv2

            cv2.destroyAllWindows()
        how = "stopped (Ctrl-C / window closed)" if interrupted else "done"
        fps = self.frames / elapsed if elapsed > 0 and self.frames else 0.0
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in pipe.timings.mean_ms().items())
        self.console.print(f"{how}: {self.frames} frames, {self.faces} faces, {fps:.1f} frames/s ({stages} per frame)")
        if self.output is not None and (self.writer is not None or self.images_written):
            if self.writer is not None:
                where = self.output
            elif len(self.images_written) == 1:
                where = self.images_written[0]
            else:
                where = f"{len(self.images_written)} images in {self.images_written[0].parent}"
            self.console.print(f"annotated output: {where}")
        if self.json_path is not None:
            self.console.print(f"JSON Lines: {self.json_path}")
