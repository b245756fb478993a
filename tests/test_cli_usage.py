"""Every usage error of every command is typer's short usage message and exit code 2, never a traceback.

The cases are generated from the CLI itself (each command's options and their types), so a command or
option added later is covered without editing this file.
"""
from __future__ import annotations

import enum
import subprocess
import sys
import typing

import pytest
import typer

from fer_edge.cli.main import app, main

COMMANDS = typer.main.get_command(app).commands


def _base_type(param) -> type | None:
    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        annotation = args[0]
    return annotation if isinstance(annotation, type) else None


def _options(command):
    return [p for p in command.params if p.param_type_name == "option" and p.opts[0] != "--help"]


def _cases():
    for name, command in sorted(COMMANDS.items()):
        yield pytest.param([name, "--no-such-option"], id=f"{name}-unknown-option")
        for opt in _options(command):
            flag = opt.opts[0]
            if opt.is_flag:
                yield pytest.param([name, f"{flag}=yes"], id=f"{name}{flag}-flag-with-value")
                continue
            yield pytest.param([name, flag], id=f"{name}{flag}-without-value")
            kind = _base_type(opt)
            if kind in (int, float):
                yield pytest.param([name, flag, "not-a-number"], id=f"{name}{flag}-not-a-number")
                for bound, outside in ((opt.min, -1), (opt.max, +1)):
                    if bound is not None:
                        value = bound + outside * (1 if kind is int else 0.5)
                        yield pytest.param([name, flag, str(value)], id=f"{name}{flag}-out-of-range")
            elif kind is not None and issubclass(kind, enum.Enum):
                yield pytest.param([name, flag, "no-such-choice"], id=f"{name}{flag}-bad-choice")
        if any(p.required for p in command.params):
            yield pytest.param([name], id=f"{name}-missing-required")
    yield pytest.param(["no-such-command"], id="unknown-command")
    yield pytest.param(["--no-such-option"], id="root-unknown-option")


CASES = list(_cases())


def test_cases_cover_every_command():
    named = {case.values[0][0] for case in CASES}
    assert set(COMMANDS) <= named
    assert len(CASES) > 3 * len(COMMANDS)  # options, not just unknown ones


@pytest.mark.parametrize("argv", CASES)
def test_usage_error_is_short_and_exits_2(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert "Traceback" not in text
    assert "Usage:" in text or "Error" in text
    assert len(text.strip().splitlines()) <= 8, text


def test_console_script_usage_error_has_no_traceback():
    """The installed entry point, as a user runs it (not only the in-process main)."""
    out = subprocess.run([sys.executable, "-m", "fer_edge.cli.main", "run", "--max-frames", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "--max-frames" in out.stderr


def test_version_and_help_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fer-edge ")
    assert main(["run", "--help"]) == 0


def test_exit_code_raised_inside_a_command_is_returned(monkeypatch):
    """typer.Exit(n) from a command (e.g. 130 after Ctrl-C, 1 when some inputs failed) is the process's code."""
    probe = typer.Typer()

    @probe.command()
    def fail() -> None:
        raise typer.Exit(130)

    @probe.command()
    def other() -> None:
        pass

    monkeypatch.setattr("fer_edge.cli.main.app", probe)
    assert main(["fail"]) == 130


@pytest.mark.parametrize("extra,needle", [
    (["--lr", "-1"], "--lr"),
    (["--device", "no-such-device"], "--device"),
    (["--device", "cuda:7"], "--device"),
    (["--recipe-opt", "no_equals_sign"], "--recipe-opt"),
    (["--select-metric", "f1"], "--select-metric"),
])
def test_train_option_values_are_checked_before_training(extra, needle, capsys, tmp_path):
    pytest.importorskip("torch", reason="training needs PyTorch")
    import torch

    if needle == "--device" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    code = main(["train", "--method", "mini_xception", "--dataset", "fer2013", "--data-path", str(tmp_path),
                 "--output", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert needle in err and len(err.strip().splitlines()) == 1, err
