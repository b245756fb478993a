"""`fer-edge export` hardening (issue 11), on the embedded default model:

* the manifest is the truth: a re-export removes the previous export's files (only those), and a file
  of an export folder that the manifest does not list, or whose sha256 differs, does not load;
* every option is checked before any heavy work, conflicting options are refused;
* accuracy differences are a signed change (INT8 - FP32, positive = better) everywhere;
* long steps report counted progress, third-party noise goes to <output>/export.log;
* the sensitive-layer fallback works with labelled calibration faces and no --val-data.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import sys
import warnings

import pytest

pytest.importorskip("torch")

import fer_edge  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402

CALIB = ["--calib-data", "fer2013:train", "--calib-size", "32"]


def _cli(args) -> tuple[int, str, str]:
    """`fer-edge ARGS` in-process: (exit code, stdout, stderr)."""
    from fer_edge.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _other_weights(folder):
    """A mini_xception checkpoint with other weights than the embedded ones (so another source hash)."""
    import torch

    from fer_edge.checkpoint import save_checkpoint
    from fer_edge.models import create_model, get_config

    model = create_model("mini_xception", pretrained=True)
    state = {k: (v * 1.01 if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    with torch.no_grad():
        return save_checkpoint(folder / "other.safetensors", state, get_config("mini_xception").metadata())


# --- 1. re-export into the same folder ----------------------------------------------------------

@pytest.fixture(scope="module")
def reexported(fer2013, tmp_path_factory):
    """INT8 export, then an FP32-only export with other weights into the same folder."""
    pytest.importorskip("openvino")
    tmp = tmp_path_factory.mktemp("reexport")
    out, stash = tmp / "bundle", tmp / "stash"
    code, _, err = _cli(["export", "-m", "mini_xception", "--int8", "--int8-targets", "onnxruntime", *CALIB,
                         "--max-drop", "100", "-o", str(out)])
    assert code == 0, err[-2000:]
    first = json.loads((out / "manifest.json").read_text())
    stash.mkdir()
    for name in ("mini_xception_int8_onnxruntime.onnx", "mini_xception.onnx"):
        shutil.copy(out / name, stash / name)
    (out / "notes.txt").write_text("the user's own file")
    code, _, err = _cli(["export", "-m", "mini_xception", "--weights", str(_other_weights(tmp)), "--format", "onnx",
                         "-o", str(out)])
    assert code == 0, err[-2000:]
    return {"out": out, "stash": stash, "first": first, "err": err,
            "second": json.loads((out / "manifest.json").read_text())}


def test_reexport_leaves_no_file_of_the_previous_export(reexported):
    out, first, second = reexported["out"], reexported["first"], reexported["second"]
    old = {f["file"] for f in first["files"]}
    assert {"mini_xception_int8_onnxruntime.onnx", "mini_xception_fp32.bin", "reports/int8_onnxruntime.json"} <= old
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    listed = {f["file"] for f in second["files"]}
    assert present == listed | {"manifest.json", "export.log", "notes.txt"}  # it lists all the export made
    assert not any("int8" in name or name.endswith((".xml", ".bin")) for name in present)
    assert (out / "notes.txt").read_text() == "the user's own file"  # not listed by any manifest: kept
    # the console says what went
    for name in ("mini_xception_int8_onnxruntime.onnx", "mini_xception_fp16.xml", "reports/int8_onnxruntime.md"):
        assert name in reexported["err"], name
    assert second["source_sha256"] != first["source_sha256"]
    assert [a["file"] for a in second["artifacts"]] == ["mini_xception.onnx"]


def test_a_stale_file_copied_back_does_not_load(reexported):
    out, stash = reexported["out"], reexported["stash"]
    shutil.copy(stash / "mini_xception_int8_onnxruntime.onnx", out)
    with pytest.raises(FerEdgeError, match="not listed in .*manifest.json"):
        fer_edge.load(out / "mini_xception_int8_onnxruntime.onnx")
    # the folder still loads what its manifest lists, whatever else lies there
    model = fer_edge.load(out)
    assert model.metadata.source_sha256 == reexported["second"]["source_sha256"]
    assert model.metadata.precision == "fp32"
    (out / "mini_xception_int8_onnxruntime.onnx").unlink()


def test_a_listed_file_replaced_by_another_export_does_not_load(reexported, tmp_path):
    out, stash = reexported["out"], reexported["stash"]
    keep = tmp_path / "current.onnx"
    shutil.copy(out / "mini_xception.onnx", keep)
    try:
        shutil.copy(stash / "mini_xception.onnx", out / "mini_xception.onnx")  # same name, first export's weights
        for target in (out / "mini_xception.onnx", out):
            with pytest.raises(FerEdgeError, match="sha256 mismatch"):
                fer_edge.load(target)
    finally:
        shutil.copy(keep, out / "mini_xception.onnx")
    assert fer_edge.load(out / "mini_xception.onnx").metadata.precision == "fp32"


def test_a_manifest_never_removes_files_outside_its_folder(tmp_path):
    from fer_edge.export.bundle import remove_previous_export
    from fer_edge.export.manifest import FORMAT

    folder, outside = tmp_path / "bundle", tmp_path / "precious.txt"
    folder.mkdir()
    outside.write_text("keep")
    (folder / "a.onnx").write_text("x")
    (folder / "manifest.json").write_text(json.dumps({"format": FORMAT, "artifacts": [], "files": [
        {"file": "a.onnx"}, {"file": "../precious.txt"}, {"file": str(outside)}]}))
    assert remove_previous_export(folder) == ["a.onnx"]
    assert outside.read_text() == "keep" and not (folder / "manifest.json").exists()


def test_another_tools_manifest_is_neither_obeyed_nor_overwritten(tmp_path):
    from fer_edge.export.manifest import check_listed
    from fer_edge.export.orchestrate import ExportOptions, run_export

    foreign = {"name": "my web app", "files": [{"file": "model.onnx"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(foreign))
    (tmp_path / "model.onnx").write_text("x")
    check_listed(tmp_path / "other.onnx")  # not an export folder: nothing to refuse
    with pytest.raises(FerEdgeError, match="not a fer-edge export's"):
        run_export(ExportOptions(method="mini_xception", output=str(tmp_path)))
    assert json.loads((tmp_path / "manifest.json").read_text()) == foreign and (tmp_path / "model.onnx").exists()
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(FerEdgeError, match="not valid JSON"):
        check_listed(tmp_path / "model.onnx")


# --- 2./3. options checked before any work -------------------------------------------------------

BAD_OPTIONS = [
    ({"opset": 11}, "--opset 11"),
    ({"opset": 99}, "--opset 99"),
    ({"weights": "w.safetensors", "random_init": True}, "--weights and --random-init conflict"),
    ({"int8_targets": ("onnxruntime",)}, "--int8-targets only apply with --int8"),
    ({"calib_data": "fer2013:train"}, "--calib-data only apply with --int8"),
    ({"max_drop": 2.0}, "--max-drop only apply with --int8"),
    ({"int8": True, "calib_data": "fer2013:train", "val_size": 10}, "--val-size needs --val-data"),
    ({"int8": True, "calib_data": "fer2013:train", "int8_targets": ("onnxruntime",), "quantizer": "modelopt"},
     "--quantizer chooses the TensorRT"),
    ({"int8": True, "calib_data": "fer2013:train", "max_drop": float("nan")}, "--max-drop nan is out of range"),
    ({"int8": True, "calib_data": "fer2013:train", "max_drop": 500.0}, "--max-drop 500.0 is out of range"),
    ({"int8": True, "calib_data": "fer2013:train", "calib_size": 0}, "--calib-size must be positive"),
    ({"int8": True, "calib_data": "nowhere/faces"}, "--calib-data 'nowhere/faces' not found"),
    ({"verify_data": "imagenet:val"}, "--verify-data 'imagenet:val' not found"),
    ({"formats": ()}, "--format is empty"),
    ({"int8": True, "calib_data": "fer2013:train", "quantizer": "tensorrt-llm"}, "unknown --quantizer"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS, ids=[m for _, m in BAD_OPTIONS])
def test_bad_options_are_refused_before_any_work(options, message, tmp_path, monkeypatch):
    import fer_edge.export as export
    from fer_edge.export.orchestrate import ExportOptions, run_export

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the options were checked")

    monkeypatch.setattr(export, "load_source", no_model)
    monkeypatch.chdir(tmp_path)  # relative paths in the options resolve here
    (tmp_path / "w.safetensors").write_bytes(b"")
    with pytest.raises(FerEdgeError, match=re.escape(message)) as err:
        run_export(ExportOptions(method="mini_xception", output=str(tmp_path / "out"), **options))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_refuses_conflicts_in_one_line(tmp_path):
    weights = _other_weights(tmp_path)
    for args, message in ((["--weights", str(weights), "--random-init"], "--weights and --random-init conflict"),
                          (["--opset", "11"], "--opset 11 is not supported"),
                          (["--int8-targets", "tensorrt"], "--int8-targets only apply with --int8"),
                          (["--output", str(weights)], "is a file, not a folder")):
        code, out, err = _cli(["export", "-m", "mini_xception", *args])
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
        assert err.strip().count("\n") == 0, err


def test_build_engine_checks_its_options_before_reading_the_onnx(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read before the options are checked")
    for args, message in ((["--precision", "int4"], "unknown --precision 'int4'"),
                          (["--workspace", "0"], "--workspace must be a positive"),
                          (["--dla-core", "-1"], "--dla-core is an index"),
                          (["--precision", "fp16", "--skip-qdq-check"], "--skip-qdq-check only applies"),
                          (["--min-batch", "8", "--max-batch", "4"], "1 <= min <= opt <= max")):
        code, _, err = _cli(["build-engine", str(onnx), *args])
        assert code == 2 and message in " ".join(err.split()), (args, err)


# --- 4./5. signed change, counted progress, quiet console ------------------------------------------

def test_int8_export_counts_its_progress_and_keeps_third_party_noise_in_the_log(fer2013, tmp_path, capfd):
    pytest.importorskip("nncf")
    from fer_edge.export.orchestrate import ExportOptions, run_export

    updates: list[tuple[str, int, int]] = []
    lines: list[str] = []
    out = tmp_path / "b"
    bundle = run_export(ExportOptions(method="mini_xception", formats=("onnx",), int8=True,
                                      int8_targets=("onnxruntime", "openvino"), calib_data="fer2013:train",
                                      calib_size=40, val_data="fer2013:public_test", val_size=70, max_drop=100.0,
                                      output=str(out),
                                      log=lines.append, progress=lambda *u: updates.append(u)))
    last = {}
    for task, done, total in updates:
        assert 0 <= done <= total, (task, done, total)
        last[task] = (done, total)
    # every counted task ran to its end, with the counts of its data
    assert last["INT8 onnxruntime: calibration"] == (3, 3)  # 40 faces in batches of 16
    assert last["INT8 openvino: calibration"] == (40, 40)  # NNCF takes faces one by one
    assert last["evaluating mini_xception.onnx"] == (70, 70)
    assert last["evaluating mini_xception_int8_openvino.xml"] == (70, 70)
    assert all(done == total for done, total in last.values()), last
    captured = capfd.readouterr()
    console = captured.out + captured.err
    log = (out / "export.log").read_text()
    for noise in ("TracerWarning", "Statistics collection"):  # torch.onnx export, NNCF's own bars
        assert noise not in console and noise in log, noise
    assert any(line.endswith("INT8 for onnxruntime: calibrating on 40 faces") for line in lines)
    assert all(line in log for line in lines)  # fer-edge's steps are in the log too

    # the change is signed and says which way: INT8 - FP32, positive = better
    from fer_edge.calibrate.report import describe_change

    for rep in bundle.int8_reports:
        change = rep["int8"]["top1"] - rep["fp32"]["top1"]
        assert rep["top1_change"] == pytest.approx(change, abs=1e-3)
        assert describe_change(rep).startswith(f"top-1 change {rep['top1_change']:+.2f} points (")
        md = (out / "reports" / f"int8_{rep['target']}.md").read_text()
        assert f"| top-1 | {rep['fp32']['top1']:.2f}% | {rep['int8']['top1']:.2f}% | {change:+.2f} |" in md
        assert "change = INT8 - FP32" in md
        assert f"top-1 change {rep['top1_change']:+.2f} points" in " ".join(lines)


def test_describe_change_says_a_gain_is_positive():
    from fer_edge.calibrate.report import describe_change, over_budget

    gain = {"top1_change": 2.67, "fp32": {"top1": 60.0}, "int8": {"top1": 62.67}}
    assert describe_change(gain) == "top-1 change +2.67 points (60.00% -> 62.67%)"
    loss = {**gain, "top1_change": -1.5}
    assert over_budget(loss, 1.0) and not over_budget(loss, 1.5) and not over_budget(gain, 0.0)


def test_the_guard_sends_every_python_channel_to_the_log_and_restores_them(tmp_path, capfd):
    from fer_edge.export.quiet import Guard

    noisy = logging.getLogger("nncf.test_guard")
    own = logging.StreamHandler(sys.stdout)
    noisy.addHandler(own)
    try:
        with Guard(tmp_path / "export.log") as guard:
            logging.warning("Axis 1 is out-of-range for weight 'w' with rank 1")  # ORT's root-logger warning
            noisy.warning("nncf says something")
            warnings.warn("a torch.onnx TracerWarning")
            print("an exporter's print")
            late = logging.getLogger("onnxruntime.test_guard_late")
            late.addHandler(logging.StreamHandler())  # made during the export: binds to the proxy
            late.propagate = False
            late.warning("late handler")
            with guard.paused():
                print("fer-edge's own line")
            guard.note("[ 1.0 s] a step")
        late.warning("after the export")
        assert noisy.handlers == [own]
        captured = capfd.readouterr()
        log = (tmp_path / "export.log").read_text()
        for text in ("Axis 1 is out-of-range", "nncf says something", "TracerWarning", "an exporter's print",
                     "late handler", "[ 1.0 s] a step"):
            assert text in log and text not in captured.out + captured.err, text
        assert "fer-edge's own line" in captured.out and "fer-edge's own line" not in log
        assert "after the export" in captured.err and "after the export" not in log
        assert guard.captured >= 5
        with Guard(tmp_path / "verbose.log", verbose=True):
            logging.getLogger("nncf.test_guard").warning("shown with --verbose")
        assert "shown with --verbose" in capfd.readouterr().out
    finally:
        noisy.removeHandler(own)
        logging.getLogger("onnxruntime.test_guard_late").handlers.clear()


# --- 6. fallback with labelled calibration faces and no --val-data ---------------------------------

def test_fallback_without_val_data_uses_the_labelled_calibration_faces(fer2013, tmp_path):
    """A zero budget and a real loss: on its 32 calibration faces (labelled, from fer2013:train), the
    ONNX Runtime INT8 model of the default model scores lower than FP32, so the fallback must run."""
    from fer_edge.export.orchestrate import ExportOptions, run_export

    bundle = run_export(ExportOptions(method="mini_xception", formats=("onnx",), int8=True,
                                      int8_targets=("onnxruntime",), calib_data="fer2013:train", calib_size=32,
                                      max_drop=0.0, output=str(tmp_path / "f")))
    rep = json.loads((bundle.folder / "reports" / "int8_onnxruntime.json").read_text())
    steps = rep["fallback"]
    assert steps[0]["float_layers"] == [] and steps[0]["top1_change"] < 0, steps[0]  # a real loss started it
    assert len(steps) >= 2 and all(len(s["float_layers"]) > 0 for s in steps[1:])
    assert rep["held_out"] is False and rep["faces"] == 32 and rep["data"].startswith("fer2013:train")
    assert any("not held out" in n for n in rep["notes"])
    assert rep["float_layers"] == steps[-1]["float_layers"]
    assert "(NOT held out)" in (bundle.folder / "reports" / "int8_onnxruntime.md").read_text()
