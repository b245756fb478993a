"""`fer-edge export`: a method + weights -> verified ONNX / OpenVINO / INT8 artifacts in one folder."""
from __future__ import annotations

import sys
from typing import Optional

import typer


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


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
        int8_targets: str = typer.Option("onnxruntime,tensorrt,openvino", "--int8-targets",
                                         help="comma list: onnxruntime, tensorrt, openvino"),
        calib_data: Optional[str] = typer.Option(None, "--calib-data",
                                                 help="folder of face photos, npz of aligned faces, or e.g. fer2013:train"),
        calib_size: int = typer.Option(300, "--calib-size", help="number of calibration faces"),
        val_data: Optional[str] = typer.Option(None, "--val-data",
                                               help="held-out labelled faces for the accuracy-drop report"),
        val_size: Optional[int] = typer.Option(None, "--val-size", help="use at most this many validation faces"),
        verify_data: Optional[str] = typer.Option(None, "--verify-data",
                                                  help="real faces for the PyTorch parity check (default: calib/val data)"),
        max_drop: float = typer.Option(1.0, "--max-drop", help="top-1 points INT8 may lose before layers fall back to float"),
        quantizer: str = typer.Option("onnxruntime", "--quantizer", help="TensorRT Q/DQ maker: onnxruntime or modelopt"),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="output folder (default exports/METHOD)"),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 17)"),
    ) -> None:
        """Export a method to ONNX and OpenVINO (verified against PyTorch), optionally INT8 for
        ONNX Runtime, TensorRT and OpenVINO with an accuracy-drop report per artifact."""
        from rich.console import Console

        from ..export.orchestrate import ExportOptions, run_export

        console = Console(stderr=True)
        opts = ExportOptions(
            method=method, weights=weights, random_init=random_init, clip_weights=clip_weights,
            formats=_split(formats), int8=int8, int8_targets=_split(int8_targets), calib_data=calib_data,
            calib_size=calib_size, val_data=val_data, val_size=val_size, verify_data=verify_data,
            max_drop=max_drop, output=output, opset=opset, quantizer=quantizer,
            command="fer-edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else "",
        )
        with console.status("exporting") as status:
            opts.log = lambda msg: (status.update(msg), console.print(f"[dim]{msg}[/]"))
            bundle = run_export(opts)
        out = Console()
        out.print(f"[bold green]exported[/] {method} -> {bundle.folder}")
        for a in bundle.artifacts:
            out.print(f"  {a['file']}  ({a['kind']}, {a['precision']})")
        out.print(f"  parity faces: {bundle.data.get('parity', '?')}", soft_wrap=True, highlight=False)
        for p in bundle.parity:
            out.print(f"  parity {p['artifact']}: max |diff| {p['max_abs_diff']:.2e} on {p['faces']} real faces")
        for r in bundle.int8_reports:
            drop = f"{r['top1_drop']:+.2f} points top-1" if r.get("top1_drop") is not None else "accuracy not measured"
            out.print(f"  int8 {r['target']}: {drop}, agreement {r['top1_agreement']:.2f}%  -> reports/int8_{r['target']}.md", soft_wrap=True)
