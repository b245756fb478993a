"""`fer-edge build-engine`: ONNX (or a Q/DQ ONNX for int8) -> TensorRT engine, built on this GPU and cached."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("build-engine")
    def build_engine_cmd(
        onnx: Path = typer.Argument(..., help="the ONNX to build (for int8: the TensorRT Q/DQ ONNX from `fer-edge export --int8`)"),
        precision: str = typer.Option("fp16", help="fp32, fp16 or int8 (int8 needs a Q/DQ ONNX)"),
        min_batch: int = typer.Option(1, help="smallest batch the engine accepts"),
        opt_batch: Optional[int] = typer.Option(None, help="batch TensorRT optimises for [default: 8, within min..max]"),
        max_batch: int = typer.Option(32, help="largest batch the engine accepts"),
        cache_dir: Optional[Path] = typer.Option(None, help="engine cache (default $FER_EDGE_CACHE/engines or ~/.cache/fer-edge/engines)"),
        output: Optional[Path] = typer.Option(None, help="also copy the engine (and its .json metadata) here"),
        workspace: Optional[int] = typer.Option(None, help="builder workspace limit in MB"),
        device: int = typer.Option(0, help="GPU index"),
        dla_core: Optional[int] = typer.Option(None, help="Jetson: build for this DLA core (fp16/int8; GPU fallback)"),
        force: bool = typer.Option(False, help="rebuild even if the cache has this engine"),
        verbose: bool = typer.Option(False, help="show TensorRT's builder log"),
        skip_qdq_check: bool = typer.Option(False, help="int8: build a Q/DQ graph made elsewhere even where "
                                            "fer-edge's TensorRT placement check flags it"),
    ) -> None:
        """Build a TensorRT engine for this GPU (engines are not portable: build on the target, e.g. the Jetson)."""
        from rich.console import Console

        from ..runtimes.tensorrt_build import ShapeProfile, build_engine

        profile = ShapeProfile.from_args(min_batch, opt_batch, max_batch)
        _check_args(onnx, precision, cache_dir=cache_dir, workspace=workspace, device=device, dla_core=dla_core,
                    skip_qdq_check=skip_qdq_check)
        console = Console()
        result = build_engine(onnx, precision, profile,
                              cache_dir=cache_dir, output=output, workspace_mb=workspace, device=device, dla_core=dla_core,
                              force=force, verbose=verbose, console=Console(stderr=True),
                              check_qdq=not skip_qdq_check)
        how = "reused from the cache" if result.cached else f"built in {result.seconds:.1f} s"
        console.print(f"engine: {result.engine_path}", highlight=False, soft_wrap=True)
        console.print(f"cache key: {result.key.name} ({how}; {result.plan.describe()})", highlight=False,
                      soft_wrap=True)


def _check_args(onnx: Path, precision: str, *, cache_dir: Optional[Path], workspace: Optional[int], device: int,
                dla_core: Optional[int], skip_qdq_check: bool) -> None:
    """Refuse bad values and conflicting options before the ONNX is read or TensorRT imported."""
    from ..errors import FerEdgeError
    from ..runtimes.tensorrt_build import PRECISIONS

    if precision not in PRECISIONS:
        raise FerEdgeError(f"unknown --precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if not onnx.is_file():
        raise FerEdgeError(f"ONNX file not found: {onnx}")
    if workspace is not None and workspace < 1:
        raise FerEdgeError(f"--workspace must be a positive number of MB, got {workspace}")
    for flag, index in (("--device", device), ("--dla-core", dla_core)):
        if index is not None and index < 0:
            raise FerEdgeError(f"{flag} is an index: 0 or more, got {index}")
    if dla_core is not None and precision == "fp32":
        raise FerEdgeError("DLA runs fp16 or int8 only: use --precision fp16 (or int8 with a Q/DQ ONNX)")
    if skip_qdq_check and precision != "int8":
        raise FerEdgeError("--skip-qdq-check only applies to --precision int8 (Q/DQ graphs)")
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise FerEdgeError(f"--cache-dir {cache_dir} is a file; give a folder")
