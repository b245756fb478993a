"""`fer-edge models`: list the registered methods and artifacts.

A list shows one row a method with its label order (what a user needs to read the output); a
pattern that names one method shows everything about it, licence and paper included.
"""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(pattern: str = typer.Argument("*", help="a method name, or a glob over method names")) -> None:
        """List registered methods with their labels and input; one method's name shows its licence and paper."""
        from rich.console import Console

        from .. import artifacts

        console = Console()
        try:
            from ..models import get_config, list_models
        except ImportError:
            console.print("PyTorch is not installed: only the named artifacts are listed (pip install 'fer-edge[torch]').")
            names = []
        else:
            names = list_models(pattern)
            if not names:
                console.print(f"no method matches {pattern!r}; `fer-edge models` lists them all")
                raise typer.Exit(2)
            configs = [get_config(n) for n in names]
            console.print(_detail(configs[0]) if len(configs) == 1 else _table(configs))
        console.print("named artifacts: " + ", ".join(artifacts.names()))


def _input(cfg) -> str:
    h, w = cfg.input.size
    return f"{cfg.input.color} {h}x{w}"


def _table(configs):
    from rich import box
    from rich.table import Table

    table = Table(title="methods (fer-edge models NAME for output, licence and paper)", box=box.SIMPLE_HEAD)
    table.add_column("method", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("labels, in output order", overflow="fold")
    for c in configs:
        table.add_row(c.name, c.task, _input(c), " ".join(c.labels))
    return table


def _detail(cfg):
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [("method", cfg.name), ("task", cfg.task),
            ("labels", ", ".join(f"{i}={name}" for i, name in enumerate(cfg.labels))),
            ("input", f"{_input(cfg)}, resize {cfg.input.resize}, face template {cfg.input.face_template}"),
            ("output", cfg.output.kind), ("weights licence", cfg.licence),
            ("embedded weights", cfg.embedded_weights or "none: pass your checkpoint"),
            ("paper", cfg.paper or "-"), ("notes", cfg.notes or "-")]
    for key, value in rows:
        table.add_row(key, value)
    return table
