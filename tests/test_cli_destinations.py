"""Output destinations are refused before any work starts, in one line."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fer_edge.destinations import check_output_dir, check_output_file
from fer_edge.cli.main import main
from fer_edge.errors import FerEdgeError


def test_file_destinations(tmp_path):
    check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json", (".json",))  # folders made later
    check_output_file(None, "--json")
    check_output_file(Path("-"), "--json")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (tmp_path, "is a folder"),
        (tmp_path / "r.txt", "unsupported file type .txt"),
        (blocker / "r.json", "is a file, not a folder"),
    ]
    for path, message in cases:
        with pytest.raises(FerEdgeError, match=message):
            check_output_file(path, "--json", (".json",))


def test_folder_destinations(tmp_path):
    check_output_dir(tmp_path / "plots", "--plots")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(FerEdgeError, match="is a file, not a folder"):
        check_output_dir(blocker, "--plots")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_unwritable_place_is_found_by_trying_even_as_root():
    with pytest.raises(FerEdgeError, match="cannot write in /proc"):
        check_output_file(Path("/proc/fer-edge-test/r.json"), "--json")


@pytest.mark.parametrize("flags,needle", [
    (["--json", "/proc/fer-edge-test/r.json"], "--json"),
    (["--markdown", "table.txt"], "--markdown"),
])
def test_bench_refuses_a_bad_destination_before_measuring(flags, needle, monkeypatch, capsys):
    import fer_edge.bench.runner as runner

    def must_not_run(*args, **kwargs):
        raise AssertionError("measured before checking the destination")

    monkeypatch.setattr(runner, "run", must_not_run)
    assert main(["bench", "default", *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
