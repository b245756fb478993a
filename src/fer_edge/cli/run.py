"""`fer-edge run`: the live pipeline on a camera, video, image, folder or stream.

Results (per-frame lines, or ``--json -``) go to stdout; progress, warnings and the summary go to
stderr. Every destination is checked before the model loads, so a bad ``--output``/``--json`` costs
nothing. An input that fails part-way (unreadable images of a folder, a damaged video, a stream that
stays down) does not lose the rest: it is reported where it happened, counted in the summary, and
the exit code says the run was incomplete.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from ..errors import FerEdgeError

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}
EXIT_INCOMPLETE, EXIT_INTERRUPTED = 1, 130
STDOUT = "-"


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
        output: Optional[Path] = typer.Option(None, "--output", help="annotated video (.mp4/.avi/.mkv/.mov), image (.jpg/.png/...) or folder (no extension)"),
        json_path: Optional[str] = typer.Option(None, "--json", help="write JSON Lines, one record per frame with its faces, to this file ('-': stdout)"),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="stop after this many frames (images of a folder)"),
        sequence: bool = typer.Option(False, "--sequence", help="the images of a folder are frames of one sequence: track and smooth faces across them (default: every image on its own)"),
        detect_max_side: Optional[int] = typer.Option(None, "--detect-max-side", min=0, help="detect faces on frames shrunk to at most this many pixels on the long side (default 2048, 0 = full size); faces are still cropped at full resolution"),
        ema: float = typer.Option(0.6, "--ema", min=0.0, max=0.99, help="weight of the past in each face's probability average (0 = off)"),
        hysteresis: float = typer.Option(0.1, "--hysteresis", min=0.0, max=0.99, help="margin a new label must win by before it is shown"),
        stride: int = typer.Option(4, "--stride", min=1, help="video models: frames of a face between two clip-level predictions"),
    ) -> None:
        """Detect faces, recognise their expressions, track and smooth them; write/show the results.

        Results go to stdout (a line per frame, or JSON Lines with --json -); progress and warnings to stderr.

        The images of a folder are independent photos unless --sequence says they are frames of one video.

        With a video model (a DFER-CLIP export folder or either graph of its split pair) each tracked face gets a clip-level expression every --stride frames once 16 of its frames are buffered.

        Exit status: 0 every input was processed; 1 some input failed (unreadable images skipped, a video ending before its frame count, a stream that stayed down; the rest is written); 2 nothing was run (bad option, input or output destination); 130 interrupted by Ctrl-C (outputs so far are closed properly).
        """
        from rich.console import Console

        from ..vision.sources import locate_source

        console = Console(stderr=True, soft_wrap=True)
        if camera is None and source is None:
            raise FerEdgeError("no input: pass --camera N or --source PATH_OR_URL")
        if camera is not None and source is not None:
            raise FerEdgeError("pass either --camera or --source, not both")
        if detect_max_side is not None and 0 < detect_max_side < 64:
            raise FerEdgeError(f"--detect-max-side {detect_max_side} is too small to find faces: "
                               "give 0 (full size) or at least 64 pixels")
        kind, path = locate_source(source=source, camera=camera)
        plan = _plan_outputs(output, json_path, kind, path, max_frames)
        if show:
            problem = _display_problem()
            if problem:
                if output is None and json_path is None:
                    raise FerEdgeError(f"--show cannot open a window: {problem}; use --output FILE instead")
                console.print(f"[yellow]warning:[/] --show ignored: {problem}")
                show = False
        runner = _Runner(console, plan, show, independent=kind == "folder" and not sequence)
        code = runner.go(camera, source, _PipelineOptions(model, backend, device, detector, ema, hysteresis, stride,
                                                          detect_max_side), max_frames)
        if code:
            raise typer.Exit(code)


def _display_problem() -> str | None:
    """Why no OpenCV window can be opened here, or None if one can."""
    import os

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


# --- destinations, checked before anything runs ------------------------------------------------

@dataclass
class _Plan:
    """Where results go. mode: "video" (one file), "image" (one file), "folder" (one image per frame) or None."""

    output: Path | None
    mode: str | None
    json: Path | None  # None: no JSON; Path("-"): stdout

    @property
    def json_to_stdout(self) -> bool:
        return self.json is not None and str(self.json) == STDOUT


def _plan_outputs(output: Path | None, json_path: str | None, kind: str, source: Path | None,
                  max_frames: int | None) -> _Plan:
    """Check every destination against the source before the first frame; one FerEdgeError if one is wrong."""
    mode = None if output is None else _output_mode(output, kind, max_frames)
    if output is not None:
        _check_writable(output if mode == "folder" else output.parent, f"--output {output}")
        if source is not None and _same(output, source):
            raise FerEdgeError(f"--output {output} is the input itself: its annotated copy would overwrite it; "
                               "choose another path")
        if mode == "video":
            _check_video_encoder(output)
    js = None if json_path is None else Path(json_path)
    if js is not None and json_path != STDOUT:
        if js.is_dir():
            raise FerEdgeError(f"--json {js} is a folder: give a file name, e.g. {js / 'results.jsonl'}")
        _check_writable(js.parent, f"--json {js}")
        for other, what in ((source, "the input"), (output, "--output")):
            if other is not None and _same(js, other):
                raise FerEdgeError(f"--json {js} is {what} as well: give it a file of its own")
    return _Plan(output, mode, js)


def _output_mode(output: Path, kind: str, max_frames: int | None) -> str:
    from ..vision.sources import IMAGE_SUFFIXES

    suffix = output.suffix.lower()
    if output.is_dir() or not suffix:
        if output.exists() and not output.is_dir():
            raise FerEdgeError(f"--output {output} is an existing file without an extension; "
                               "give a folder, or a file name ending in .mp4/.avi or .jpg/.png")
        return "folder"
    if suffix in VIDEO_SUFFIXES:
        if kind == "image":
            raise FerEdgeError(f"--output {output}: the input is one image; give an image file (.jpg/.png) or a folder")
        return "video"
    if suffix in IMAGE_SUFFIXES:
        if kind != "image" and max_frames != 1:
            many = "a folder of images" if kind == "folder" else f"a {kind}"
            raise FerEdgeError(f"--output {output} is one image but the input is {many}: give a folder "
                               f"(one annotated image per frame) or a video file ({'/'.join(VIDEO_SUFFIXES)})")
        return "image"
    raise FerEdgeError(f"--output {output}: unknown file type {suffix}; use {'/'.join(VIDEO_SUFFIXES)} for a video, "
                       f"{'/'.join(sorted(IMAGE_SUFFIXES))} for an image, or a folder (no extension)")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _check_writable(folder: Path, what: str) -> None:
    from ..destinations import check_writable

    check_writable(folder, what)


def _check_video_encoder(output: Path) -> None:
    """OpenCV builds differ in their encoders: find out now, not after the first frame."""
    import tempfile

    import cv2

    suffix = output.suffix.lower()
    with tempfile.TemporaryDirectory() as tmp:
        writer = cv2.VideoWriter(str(Path(tmp) / f"probe{suffix}"), cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[suffix]),
                                 5.0, (64, 64))
        ok = writer.isOpened()
        writer.release()
    if not ok:
        raise FerEdgeError(f"cannot write video {output}: this OpenCV has no encoder for {suffix}; try .avi")


# --- the run -------------------------------------------------------------------------------------

@dataclass
class _PipelineOptions:
    model: str
    backend: str | None
    device: str
    detector: str | None
    ema: float
    hysteresis: float
    stride: int
    max_detect_side: int | None  # None: the pipeline's default; 0: no limit

    def build(self):
        from ..pipeline import Pipeline

        chosen = {"detector": self.detector} if self.detector else {}  # None: the pipeline's default detector
        if self.max_detect_side is not None:
            chosen["max_detect_side"] = self.max_detect_side or None
        return Pipeline(model=self.model, backend=self.backend, device=self.device, ema=self.ema,
                        hysteresis=self.hysteresis, stride=self.stride, **chosen)


class _Runner:
    """One run: pull frames, run the pipeline, write every requested output, report where they went.

    Args:
        independent: every frame is an unrelated image (a folder without --sequence): tracks and
            smoothing start afresh for each.
    """

    def __init__(self, console, plan: _Plan, show: bool, independent: bool):
        self.console = console
        self.plan, self.show, self.independent = plan, show, independent
        self.writer = None
        self.size: tuple[int, int] | None = None
        self.images_written = 0
        self.last_image: Path | None = None
        self.json_file = None
        self.frames = self.faces = self.skipped = 0
        self.failure: str | None = None  # why the input ended early
        self.stopped: str | None = None  # why the run stopped before the input's end
        self._advance = lambda: None
        self._large_noted = False
        self.fps: float | None = None  # running average, drawn on video frames

    # -- messages
    def _note(self, text: str, style: str = "yellow", prefix: str = "warning") -> None:
        from rich.markup import escape

        self.console.print(f"[{style}]{prefix}:[/] {escape(text)}", highlight=False)

    def _on_skip(self, index: int, name: str, reason: str) -> None:
        self.skipped += 1
        self._note(f"skipped {name}: {reason}")
        self._json({"frame": index, "image": name, "error": reason})
        self._advance()

    def go(self, camera, source, options: _PipelineOptions, max_frames: int | None) -> int:
        """Run to the end of the input; returns the exit code (0, EXIT_INCOMPLETE or EXIT_INTERRUPTED)."""
        import time

        from rich.markup import escape

        from ..vision.sources import open_source

        src = open_source(source=source, camera=camera, warn=self._note, on_skip=self._on_skip)
        with src:
            pipe = options.build()
            self.console.print(f"{src.kind} [bold]{escape(src.name)}[/] -> {escape(repr(pipe.model))}, "
                               f"detector {pipe.detector.name}", highlight=False)
            self._announce(src, pipe)
            self._open_json()
            start = time.perf_counter()
            try:
                self._loop(src, pipe, max_frames)
            finally:
                self._close(src, pipe, time.perf_counter() - start)
        if self.stopped == "Ctrl-C":
            return EXIT_INTERRUPTED
        return EXIT_INCOMPLETE if (self.failure or self.skipped) else 0

    def _announce(self, src, pipe) -> None:
        from ..vision.sources import FolderSource

        ignored = src.ignored if isinstance(src, FolderSource) else []
        if ignored:
            shown = ", ".join(ignored[:3]) + (", ..." if len(ignored) > 3 else "")
            what = "entry of the folder is not an image" if len(ignored) == 1 else "entries of the folder are not images"
            self._note(f"{len(ignored)} {what}: ignored ({shown})", style="dim", prefix="note")
        if self.independent and pipe.video:
            self._note("a video model on independent images: each face stays 'warming up'; pass --sequence "
                       "if the folder holds the frames of one video")

    def _loop(self, src, pipe, max_frames) -> None:
        """Every frame of the source (or up to max_frames); records why it stopped early, if it did."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..vision.sources import SourceEndedEarly

        total = src.total if src.total is None or max_frames is None else min(src.total, max_frames)
        if total is None and max_frames is not None:
            total = max_frames
        lines = self.plan.output is None and not self.show and self.plan.json is None  # per-frame text on stdout
        # a bar on a terminal that also shows stdout would be torn by the result lines: they are the progress then
        bar = self.console.is_terminal and not ((lines or self.plan.json_to_stdout) and sys.stdout.isatty())
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        try:
            with Progress(*columns, console=self.console, transient=True, disable=not bar,
                          redirect_stdout=False, redirect_stderr=False) as progress:
                task = progress.add_task("images" if src.kind in ("image", "folder") else "frames", total=total)
                self._advance = lambda: progress.advance(task)
                for frame in src:
                    if self._frame(src, pipe, frame, lines):
                        self.stopped = "window closed"
                        return
                    progress.advance(task)
                    if max_frames is not None and self.frames >= max_frames:
                        if src.total is None or self.frames + self.skipped < src.total:
                            self.stopped = f"--max-frames {max_frames}"
                        return
        except SourceEndedEarly as exc:
            self.failure = str(exc)
            self._note(str(exc), style="bold red", prefix="error")
        except KeyboardInterrupt:
            self.stopped = "Ctrl-C"
        except BrokenPipeError:  # `fer-edge run ... --json - | head`: the reader has what it wanted
            self._silence_stdout()
            self.stopped = "stdout closed"

    def _frame(self, src, pipe, frame, lines: bool) -> bool:
        """One frame through the pipeline and out to every destination; True when the window was closed."""
        import time

        if self.independent:
            pipe.reset_tracks()
        self._note_large(frame.image, pipe)
        t0 = time.perf_counter()
        faces = pipe(frame.image)
        dt = max(time.perf_counter() - t0, 1e-6)
        self.fps = 1 / dt if self.fps is None else 0.9 * self.fps + 0.1 / dt
        self.frames += 1
        self.faces += len(faces)
        record = {"frame": frame.index, "time": round(frame.time, 4), "faces": [f.to_dict() for f in faces]}
        if frame.name:
            record["image"] = frame.name
        self._json(record)
        if lines:
            self._result_line(frame, faces)
        if self.plan.output is None and not self.show:
            return False
        from ..vision.draw import draw_results

        annotated = draw_results(frame.image, faces, self.fps if src.kind not in ("image", "folder") else None)
        self._write(annotated, frame, src)
        return self.show and self._show(annotated)

    def _note_large(self, image, pipe) -> None:
        side = pipe.max_detect_side
        h, w = image.shape[:2]
        if side is None or max(h, w) <= side or self._large_noted:
            return
        self._large_noted = True
        k = side / max(h, w)
        self._note(f"{w}x{h} input: faces are detected at {round(w * k)}x{round(h * k)} and classified from the "
                   "full-resolution image (--detect-max-side)", style="dim", prefix="note")

    def _result_line(self, frame, faces) -> None:
        labels = ", ".join(f"#{f.track_id} {f.label}" + ("" if f.warming_up else f" {f.confidence:.0%}")
                           for f in faces) or "no face"
        print(f"frame {frame.index}{' ' + frame.name if frame.name else ''}: {labels}", flush=True)

    def _open_json(self) -> None:
        js = self.plan.json
        if js is None:
            return
        if self.plan.json_to_stdout:
            self.json_file = sys.stdout
            return

        try:
            js.parent.mkdir(parents=True, exist_ok=True)
            self.json_file = open(js, "w", encoding="utf-8")
        except OSError as exc:
            raise FerEdgeError(f"cannot write --json {js}: {exc.strerror or exc}") from None

    def _json(self, record: dict) -> None:
        import json

        if self.json_file is not None:
            self.json_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.json_file.flush()

    @staticmethod
    def _silence_stdout() -> None:
        """After the reader of stdout left, later writes (and the interpreter's final flush) go nowhere."""
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

    def _write(self, annotated, frame, src) -> None:
        import cv2


        out, mode = self.plan.output, self.plan.mode
        if mode == "video":
            if self.writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                h, w = annotated.shape[:2]
                fps = src.fps or (25.0 if src.live else 5.0)
                self.writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[out.suffix.lower()]),
                                              fps, (w, h))
                if not self.writer.isOpened():
                    raise FerEdgeError(f"cannot write video {out}: OpenCV could not open it for writing")
                self.size = (w, h)
            if (annotated.shape[1], annotated.shape[0]) != self.size:  # folders of mixed sizes
                annotated = cv2.resize(annotated, self.size)
            self.writer.write(annotated)
            return
        if mode == "image":
            path = out
        else:  # a folder: the input's own file names, or numbered frames
            path = out / (frame.name or f"frame_{frame.index:06d}.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(path.suffix.lower(), annotated)
        try:
            if not ok:
                raise OSError("OpenCV cannot encode this image type")
            data.tofile(str(path))  # tofile: unicode paths work on every OS
        except OSError as exc:
            raise FerEdgeError(f"cannot write image {path}: {exc.strerror or exc}; check the disk and folder") from None
        self.images_written += 1
        self.last_image = path

    def _show(self, annotated) -> bool:
        """Show a frame; True when the user closed the window or pressed q/Esc."""
        import cv2

        cv2.imshow("fer-edge", annotated)
        key = cv2.waitKey(1) & 0xFF
        return key in (ord("q"), 27) or cv2.getWindowProperty("fer-edge", cv2.WND_PROP_VISIBLE) < 1

    def _close(self, src, pipe, elapsed: float) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.json_file is not None and not self.plan.json_to_stdout:
            self.json_file.close()
        if self.show:
            import cv2

            cv2.destroyAllWindows()
        self.console.print(self._summary(src, pipe, elapsed), highlight=False)
        if self.writer is not None:
            self.console.print(f"annotated output: {self.plan.output}", highlight=False)
        elif self.images_written == 1:
            self.console.print(f"annotated output: {self.last_image}", highlight=False)
        elif self.images_written:
            self.console.print(f"annotated output: {self.images_written} images in {self.last_image.parent}",
                               highlight=False)
        if self.plan.json is not None:
            self.console.print(f"JSON Lines: {'stdout' if self.plan.json_to_stdout else self.plan.json}", highlight=False)

    def _summary(self, src, pipe, elapsed: float) -> str:
        if self.failure:
            how = "incomplete"
        elif self.stopped:
            how = f"stopped ({self.stopped})"
        else:
            how = "done"
        unit = "image" if src.kind in ("image", "folder") else "frame"
        count = _plural(self.frames, unit) if src.total is None else f"{self.frames} of {_plural(src.total, unit)}"
        skipped = f", {self.skipped} skipped (unreadable)" if self.skipped else ""
        fps = self.frames / elapsed if elapsed > 0 and self.frames else 0.0
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in pipe.timings.mean_ms().items())
        return f"{how}: {count}{skipped}, {_plural(self.faces, 'face')}, {fps:.1f} {unit}s/s ({stages} per frame)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
