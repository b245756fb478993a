"""`fer-edge models` at a narrow terminal: every name whole, labels shown; one name shows its details."""
from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the method registry needs PyTorch (fer-edge[torch])")

from fer_edge.cli.main import main  # noqa: E402
from fer_edge.models import get_config, list_models  # noqa: E402


def test_list_keeps_every_name_whole_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    first_words = {line.split()[0] for line in out.splitlines() if line.split()}
    for name in list_models():
        assert name in first_words, f"{name} cut or missing"
    cfg = get_config("poster_v2")
    assert all(label in out for label in cfg.labels)


def test_one_name_shows_label_order_licence_and_paper(capsys):
    assert main(["models", "poster_v2"]) == 0
    out = capsys.readouterr().out
    cfg = get_config("poster_v2")
    assert ", ".join(f"{i}={n}" for i, n in enumerate(cfg.labels))[:40] in " ".join(out.split())
    assert cfg.licence in out and "POSTER V2" in out


def test_no_match_is_one_line_and_exit_2(capsys):
    assert main(["models", "no_such_method*"]) == 2
    assert "no method matches" in capsys.readouterr().out
