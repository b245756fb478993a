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

COMMAND_MODULES = ("run", "models", "export", "build_engine", "import_ckpt", "train", "bench", "info", "serve",
                   "triton_repo")

app = typer.Typer(
    name="fer-edge",
    help="Facial expression recognition on the edge: run, export, quantize, train and benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"fer-edge {version('fer-edge')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print fer-edge's version and exit."),
) -> None:
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
    """Run the CLI and return its exit code.

    0 success; 1 some inputs failed (the command says which); 2 a usage error or a one-line user
    error; 130 interrupted. Usage errors print typer's usual short usage message, never a traceback.
    """
    try:
        result = app(args=argv, standalone_mode=False)
    except FerEdgeError as exc:
        _print_error(str(exc))
        return 2
    except typer.TyperException as exc:  # typer's click: usage errors, bad parameters, missing options
        _show_usage_error(exc)
        return getattr(exc, "exit_code", 2)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        return 130
    except BrokenPipeError:  # `fer-edge run --json - | head`: the reader left, nothing more to say
        _silence_stdout()
        return 0
    # typer returns the code of a typer.Exit raised inside a command (130 for Ctrl-C); commands
    # themselves return None.
    return result if isinstance(result, int) else 0


def _print_error(message: str) -> None:
    from rich.markup import escape  # messages name extras like fer-edge[tensorrt]: not markup

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _show_usage_error(exc: typer.TyperException) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except ImportError:  # pragma: no cover - typer without rich
        exc.show()


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
