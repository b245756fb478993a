"""`fer-edge models`: list the registered methods and artifacts."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(pattern: str = typer.Argument("*", help="glob over method names")) -> None:
        """List registered methods (with labels, input and licence) and named artifacts."""
        from rich.console import Console
        from rich.table import Table

        from .. import artifacts

        console = Console()
        try:
            from ..models import get_config, list_models
        except ImportError:
            console.print("PyTorch is not installed: only the named artifacts are listed (pip install 'fer-edge[torch]').")
            names = []
        else:
            names = list_models(pattern)
        table = Table(title="methods")
        for col in ("method", "task", "classes", "input", "output", "weights licence"):
            table.add_column(col)
        for name in names:
            c = get_config(name)
            h, w = c.input.size
            table.add_row(name, c.task, str(len(c.labels)), f"{c.input.color} {h}x{w}", c.output.kind, c.licence)
        if names:
            console.print(table)
        console.print("named artifacts: " + ", ".join(artifacts.names()))
