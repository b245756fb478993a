"""Entry point of the `fer-edge` console script.

Commands are registered from their own modules (``fer_edge.cli.<name>``), each of which exposes
``register(app)`` and imports heavy libraries only inside its command function, so ``fer-edge --help``
is instant and `run` on an edge box never imports PyTorch.
"""
from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from ..errors import FerEdgeError

COMMAND_MODULES = ("run", "models", "export", "build_engine", "import_ckpt", "train", "bench", "info")

app = typer.Typer(
    name="fer-edge",
    help="Facial expression recognition on the edge: run, export, quantize, train and benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Facial expression recognition on the edge: run, export, quantize, train and benchmark."""

for _mod in COMMAND_MODULES:
    try:
        module = importlib.import_module(f"{__package__}.{_mod}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.{_mod}":
            continue  # command not part of this build
        raise
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line, not a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except FerEdgeError as exc:
        from rich.markup import escape  # messages name extras like fer-edge[tensorrt]: not markup

        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
