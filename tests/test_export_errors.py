"""Clear one-line errors: no calibration data, no weights, bad specs (nothing is exported at random)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from fer_edge.errors import FerEdgeError  # noqa: E402


def _cli(args, capsys):
    from fer_edge.cli.main import main

    code = main(args)
    return code, capsys.readouterr().err


def test_int8_without_calibration_data_is_refused(tmp_path, capsys):
    from fer_edge.export.orchestrate import ExportOptions, run_export

    with pytest.raises(FerEdgeError, match="--calib-data"):
        run_export(ExportOptions(method="mini_xception", int8=True, output=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()  # refused before any work
    code, err = _cli(["export", "--method", "mini_xception", "--int8", "-o", str(tmp_path / "y")], capsys)
    assert code == 2 and "never calibrates on random data" in err and "Traceback" not in err


def test_method_without_weights_needs_weights(tmp_path, capsys):
    from fer_edge.models import list_models

    if "poster_v2" not in list_models():
        pytest.skip("poster_v2 is not registered in this build")
    code, err = _cli(["export", "--method", "poster_v2", "-o", str(tmp_path / "p")], capsys)
    assert code == 2 and "--weights" in err and "--random-init" in err
    code, err = _cli(["export", "--method", "poster_v2", "--weights", str(tmp_path / "nope.pth")], capsys)
    assert code == 2 and "not found" in err


def test_export_needs_real_faces_for_parity(tmp_path):
    from fer_edge.export.orchestrate import ExportOptions, run_export

    with pytest.raises(FerEdgeError, match="--verify-data"):
        run_export(ExportOptions(method="mini_xception", output=str(tmp_path / "x")))


def test_bad_specs(tmp_path):
    from fer_edge.calibrate.data import load_faces
    from fer_edge.export.orchestrate import ExportOptions, run_export

    with pytest.raises(FerEdgeError, match="not found"):
        load_faces(str(tmp_path / "missing.npz"))
    with pytest.raises(FerEdgeError, match="unknown dataset"):
        load_faces("imagenet:train")
    unlabelled = tmp_path / "faces.npz"
    np.savez(unlabelled, images=np.zeros((3, 48, 48), np.uint8))
    assert len(load_faces(str(unlabelled))) == 3
    with pytest.raises(FerEdgeError, match="no labels"):
        load_faces(str(unlabelled), what="validation", need_labels=True)
    with pytest.raises(FerEdgeError, match="unknown --format"):
        run_export(ExportOptions(method="mini_xception", formats=("tflite",), verify_data=str(unlabelled)))
    with pytest.raises(FerEdgeError, match="unknown --int8-targets"):
        run_export(ExportOptions(method="mini_xception", int8=True, calib_data=str(unlabelled),
                                 int8_targets=("coreml",)))


def test_dataset_split_selection(fer2013):
    from fer_edge.calibrate.data import load_faces

    faces = load_faces("fer2013:public_test", limit=50)
    assert len(faces) == 50 and faces.labelled and faces.images[0].shape == (48, 48)
    with pytest.raises(FerEdgeError, match="no faces in split"):
        load_faces("fer2013:private_test")


def test_old_opset_is_refused(tmp_path):
    from fer_edge.export import load_source
    from fer_edge.export.onnx import export_onnx

    src = load_source("mini_xception")
    with pytest.raises(FerEdgeError, match="opset 17"):
        export_onnx(src.module, src.metadata, tmp_path / "m.onnx", opset=13)
