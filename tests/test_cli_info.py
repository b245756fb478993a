from fer_edge.cli.main import main


def test_info_lists_backends_and_install_hints(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorrt" else real(name, *a))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "CPUExecutionProvider" in out
    assert "fer-edge[tensorrt]" in out  # the missing engine names its extra
