from fer_edge.cli.main import main


def test_info_lists_backends_and_install_hints(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` fails, as on a box without it
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "CPUExecutionProvider" in out
    assert "fer-edge[tensorrt]" in out  # the missing engine names its extra
