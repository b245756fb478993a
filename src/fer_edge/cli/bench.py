"""`fer-edge bench`: one table of latency, throughput and accuracy per artifact x backend x precision."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _batches(text: str) -> tuple[int, ...]:
    from ..errors import FerEdgeError

    try:
        values = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise FerEdgeError(f"--batch takes comma-separated integers such as 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise FerEdgeError(f"--batch needs positive batch sizes, got {text!r}")
    return values


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        artifacts: list[str] = typer.Argument(None, help="artifacts or registered names, optionally PATH@backend"),
        data: Optional[str] = typer.Option(None, help="labelled data for accuracy, e.g. fer2013:public_test or an npz"),
        limit: Optional[int] = typer.Option(None, min=1, help="use at most N labelled samples"),
        accuracy: bool = typer.Option(True, help="--no-accuracy: use --data for agreement only (untrained weights)"),
        batch: str = typer.Option("1,8,32", help="batch sizes, comma-separated"),
        warmup: int = typer.Option(10, min=0, help="untimed runs before measuring"),
        runs: int = typer.Option(50, min=1, help="timed runs per batch size"),
        threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for the engines"),
        device: str = typer.Option("auto", help="device for every artifact"),
        backends: Optional[str] = typer.Option(None, help="run every artifact on each of these backends (comma-separated)"),
        reference: bool = typer.Option(False, help="add PyTorch eager FP32 of each method as the reference row"),
        reference_weights: Optional[Path] = typer.Option(None, help="checkpoint for the PyTorch reference (methods without embedded weights)"),
        max_seconds: float = typer.Option(20.0, min=0.1, help="bound on the measured phase per batch size"),
        pipeline: bool = typer.Option(False, help="also measure the end-to-end pipeline on --source"),
        source: Optional[str] = typer.Option(None, help="video for --pipeline"),
        max_frames: Optional[int] = typer.Option(None, min=1, help="frames of --source to use"),
        json_out: Optional[Path] = typer.Option(None, "--json", help="write the JSON document here"),
        markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="write the Markdown table here"),
        plots: Optional[Path] = typer.Option(None, help="write PNG plots into this folder"),
    ) -> None:
        """Measure latency (p50/p90/p99), throughput per batch size and accuracy, with the machine recorded."""
        from rich.console import Console
        from rich.table import Table

        from ..bench import plots as bench_plots
        from ..bench import report
        from ..bench.machine import machine_record
        from ..bench.runner import BenchConfig, Target, run
        from ..errors import FerEdgeError

        from ..destinations import check_output_dir, check_output_file

        check_output_file(json_out, "--json", (".json",))
        check_output_file(markdown_out, "--markdown", (".md", ".markdown"))
        check_output_dir(plots, "--plots")
        console = Console()
        targets: list[Target] = []
        for spec in artifacts or []:
            if backends and "@" not in spec:
                targets += [Target.parse(f"{spec}@{b.strip()}") for b in backends.split(",")]
            else:
                targets.append(Target.parse(spec))
        if reference:
            targets = _reference_targets(targets, reference_weights) + targets
        if not targets and not pipeline:
            raise FerEdgeError("name at least one artifact (e.g. `fer-edge bench default`) or use --pipeline")
        cfg = BenchConfig(batches=_batches(batch), warmup=warmup, runs=runs, threads=threads, device=device,
                          max_seconds=max_seconds, accuracy=accuracy)
        eval_data = _load_data(data, limit) if data else None
        rows = run(targets, cfg, eval_data)[0] if targets else []
        pipe = None
        if pipeline:
            from ..bench.pipeline import measure_pipeline

            if not source:
                raise FerEdgeError("--pipeline needs --source VIDEO")
            model = targets[-1].path if targets else "default"
            pipe = measure_pipeline(source, model=model, max_frames=max_frames, device=device)
        conf = cfg.to_dict() | {"data": eval_data.source if eval_data else None,
                                "targets": [t.spec for t in targets]}
        doc = report.document(machine_record(), conf, rows, pipe)
        table = Table(title="fer-edge bench (latency at the smallest batch)")
        head, body = report.table_rows(doc)
        for h in head:
            table.add_column(h)
        for r in body:
            table.add_row(*r)
        if body:
            console.print(table)
        if pipe:
            stages = ", ".join(f"{k} {v:.1f} ms" for k, v in pipe["stages_ms"].items())
            console.print(f"pipeline: {pipe['fps']:.2f} frames/s end to end over {pipe['frames']} frames ({stages})")
        if json_out:
            console.print(f"JSON: {report.write_json(doc, json_out)}")
        if markdown_out:
            markdown_out.parent.mkdir(parents=True, exist_ok=True)
            markdown_out.write_text(report.markdown(doc))
            console.print(f"Markdown: {markdown_out}")
        if plots:
            for p in bench_plots.write_all(doc, plots):
                console.print(f"plot: {p}")


def _reference_targets(targets, weights):
    """A PyTorch eager FP32 target per method: the checkpoint given, or the embedded weights."""
    from .. import artifacts
    from ..bench.runner import Target
    from ..errors import FerEdgeError

    if weights is not None:
        return [Target(spec=f"{weights}@torch", path=str(weights), backend="torch", reference=True)]
    names = {t.path for t in targets if artifacts.is_registered(t.path)}
    if not names and targets:
        raise FerEdgeError("--reference needs --reference-weights CKPT for artifacts without embedded weights")
    return [Target(spec=f"{n}@torch", path=n, backend="torch", reference=True) for n in sorted(names)]


def _load_data(spec: str, limit):
    from ..data.faces import load_faces
    from ..errors import FerEdgeError

    if Path(spec).is_dir():
        raise FerEdgeError(f"--data {spec} is a folder of photos, which has no labels; accuracy needs labelled "
                           "faces: an .npz of aligned faces or a dataset spec such as fer2013:public_test")

    return load_faces(spec, what="benchmark", need_labels=True, limit=limit)
