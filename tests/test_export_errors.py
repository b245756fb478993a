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


def test_builtin_verification_faces_are_real_distinct_crops():
    from fer_edge.data.faces import builtin_faces
    from fer_edge.models import get_config

    spec = get_config("mini_xception").metadata().input
    faces = builtin_faces(spec)
    assert len(faces) >= 8 and "astronaut.jpg" in faces.source and not faces.labelled
    flat = np.stack([f.astype(np.float32).ravel() for f in faces.images])
    assert flat.std(1).min() > 10  # textured face crops, not blank frames
    assert len({f.tobytes() for f in faces.images}) == len(faces)  # every variant is a different input
    # the mirrored photo gives (close to) the mirrored crop: the detector and aligner really ran on the photo
    a, b = faces.images[0].astype(np.float32), faces.images[1][:, ::-1].astype(np.float32)
    assert np.abs(a - b).mean() < np.abs(a - a.mean()).mean()
    assert len(builtin_faces(spec, limit=3)) == 3


def test_export_without_user_data_verifies_on_the_shipped_photo(tmp_path, capsys):
    code = _cli_out(["export", "--method", "mini_xception", "--format", "onnx", "-o", str(tmp_path / "x")], capsys)
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "parity faces: built-in photo astronaut.jpg" in out.out
    readme = (tmp_path / "x" / "README.md").read_text()
    assert "built-in photo astronaut.jpg" in readme and "public-domain" in readme
    import json

    parity = json.loads((tmp_path / "x" / "reports" / "parity.json").read_text())
    assert parity and all(p["ok"] and p["faces"] >= 8 for p in parity)
    # one shipped photo is enough to check parity, never to calibrate
    with pytest.raises(FerEdgeError, match="never calibrates on random data"):
        from fer_edge.export.orchestrate import ExportOptions, run_export

        run_export(ExportOptions(method="mini_xception", int8=True, output=str(tmp_path / "y")))


def _cli_out(args, capsys):
    from fer_edge.cli.main import main

    capsys.readouterr()
    return main(args)


def test_bad_specs(tmp_path):
    from fer_edge.data.faces import load_faces
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
    from fer_edge.data.faces import load_faces

    faces = load_faces("fer2013:public_test", limit=50)
    assert len(faces) == 50 and faces.labelled and faces.images[0].shape == (48, 48)
    with pytest.raises(FerEdgeError, match="no split 'private_test'; choose one of public_test, train"):
        load_faces("fer2013:private_test")


def test_old_opset_is_refused(tmp_path):
    from fer_edge.export import load_source
    from fer_edge.export.onnx import export_onnx

    src = load_source("mini_xception")
    with pytest.raises(FerEdgeError, match="opset 17"):
        export_onnx(src.module, src.metadata, tmp_path / "m.onnx", opset=13)
