"""`fer-edge export`: a method + weights -> verified ONNX / OpenVINO / INT8 artifacts in one folder."""
from __future__ import annotations

import sys
from typing import Optional

import typer


def _split(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t.strip() for t in text.split(",") if t.strip())


class _Bars:
    """The export's console: its step lines, a live step line (elapsed time keeps running while a
    step that cannot be counted works) and one bar per counted task (done / total, elapsed, ETA).
    A bar goes when its task completes or the next step starts, so the display stays bounded."""

    def __init__(self, console):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                                 transient=True, redirect_stdout=False, redirect_stderr=False)
        self.step = None
        self.tasks: dict[str, object] = {}

    def __enter__(self) -> "_Bars":
        return self

    def __exit__(self, *exc) -> None:
        if self.step is not None:
            self.progress.stop()

    def _started(self) -> None:
        """The display starts with the first step: options refused up front leave only their error line."""
        if self.step is None:
            self.progress.start()
            self.step = self.progress.add_task("exporting", total=None)

    def log(self, msg: str) -> None:
        self._started()
        self.progress.console.print(f"[dim]{msg}[/]", highlight=False, soft_wrap=True)
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.progress.reset(self.step, description=msg.split("] ", 1)[-1], total=None)

    def update(self, name: str, done: int, total: int) -> None:
        self._started()
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = self.progress.add_task(f"  {name}", total=total)
        self.progress.update(task, completed=done, total=total)
        if done >= total:
            self.progress.remove_task(self.tasks.pop(name))


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        method: str = typer.Option(..., "--method", "-m", help="registered method (fer-edge models)"),
        weights: Optional[str] = typer.Option(None, "--weights", "-w",
                                              help="our .safetensors checkpoint or the authors' released file"),
        random_init: bool = typer.Option(False, "--random-init", help="export random weights (plumbing tests only)"),
        clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help="local CLIP weights file (CLIP methods)"),
        formats: str = typer.Option("onnx,openvino", "--format", help="comma list: onnx, openvino"),
        int8: bool = typer.Option(False, "--int8", help="also make calibrated INT8 artifacts"),
        int8_targets: Optional[str] = typer.Option(None, "--int8-targets", show_default=False,
                                                   help="with --int8, comma list: onnxruntime, tensorrt, openvino "
                                                        "[default: all three]"),
        calib_data: Optional[str] = typer.Option(None, "--calib-data",
                                                 help="with --int8: folder of face photos, npz of aligned faces, "
                                                      "or e.g. fer2013:train"),
        calib_size: Optional[int] = typer.Option(None, "--calib-size", show_default=False,
                                                 help="with --int8: number of calibration faces [default: 300]"),
        val_data: Optional[str] = typer.Option(None, "--val-data",
                                               help="with --int8: held-out labelled faces for the accuracy report"),
        val_size: Optional[int] = typer.Option(None, "--val-size", help="use at most this many validation faces"),
        verify_data: Optional[str] = typer.Option(None, "--verify-data",
                                                  help="real faces for the PyTorch parity check (default: calib/val data)"),
        max_drop: Optional[float] = typer.Option(None, "--max-drop", show_default=False,
                                                 help="with --int8: top-1 points INT8 may lose before layers fall back "
                                                      "to float [default: 1.0]"),
        quantizer: Optional[str] = typer.Option(None, "--quantizer", show_default=False,
                                                help="with the tensorrt INT8 target: Q/DQ maker, onnxruntime or "
                                                     "modelopt [default: onnxruntime]"),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="output folder (default exports/METHOD)"),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (17 to 23)"),
        verbose: bool = typer.Option(False, "--verbose", help="show third-party output (quantizer warnings, NNCF, "
                                                              "exporters) here instead of OUTPUT/export.log"),
    ) -> None:
        """Export a method to ONNX and OpenVINO (verified against PyTorch), optionally INT8 for
        ONNX Runtime, TensorRT and OpenVINO with an accuracy report per artifact."""
        from rich.console import Console

        from ..calibrate.report import describe_change
        from ..export.orchestrate import ExportOptions, run_export

        # the file is fixed now: third-party output is redirected during the export, fer-edge's is not
        console = Console(file=sys.stderr)
        opts = ExportOptions(
            method=method, weights=weights, random_init=random_init, clip_weights=clip_weights,
            formats=_split(formats), int8=int8, int8_targets=_split(int8_targets), calib_data=calib_data,
            calib_size=calib_size, val_data=val_data, val_size=val_size, verify_data=verify_data,
            max_drop=max_drop, output=output, opset=opset, quantizer=quantizer, verbose=verbose,
            command="fer-edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else "",
        )
        with _Bars(console) as bars:
            opts.log, opts.progress = bars.log, bars.update
            bundle = run_export(opts)
        out = Console()
        out.print(f"[bold green]exported[/] {method} -> {bundle.folder}")
        for a in bundle.artifacts:
            out.print(f"  {a['file']}  ({a['kind']}, {a['precision']})")
        out.print(f"  parity faces: {bundle.data.get('parity', '?')}", soft_wrap=True, highlight=False)
        for p in bundle.parity:
            out.print(f"  parity {p['artifact']}: max |diff| {p['max_abs_diff']:.2e} on {p['faces']} real faces")
        for r in bundle.int8_reports:
            out.print(f"  int8 {r['target']}: {describe_change(r)}, agreement {r['top1_agreement']:.2f}%  "
                      f"-> reports/int8_{r['target']}.md", soft_wrap=True, highlight=False)
