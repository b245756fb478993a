"""The C++ example `fe_run` prints JSON Lines shaped like `fer-edge run --json -` (one record per frame
with its faces, FaceResult.to_dict fields), with the Python pipeline's values."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cpp" / "python"))
pytest.importorskip("openvino")

import fer_edge  # noqa: E402
from fer_edge.pipeline import Pipeline  # noqa: E402
from fer_edge.vision.detectors import ASSETS  # noqa: E402

from test_cpp_parity import ov_detector  # noqa: E402

FRAMES = 4


@pytest.fixture(scope="module")
def fe_run() -> Path:
    import build_lib

    path, why = build_lib.ensure_built("fe_run")
    if path is None:
        pytest.skip(why)
    return build_lib.BUILD / "examples" / "fe_run"


def test_fe_run_json_lines_match_the_python_pipeline(fe_run, sample_video):
    model = ASSETS / "mini_xception.onnx"
    out = subprocess.run([str(fe_run), str(model), str(sample_video), "--max-frames", str(FRAMES),
                          "--model-option", "precision=f32", "--option", "ema=0.5"],
                         capture_output=True, text=True, timeout=300, env={"FER_EDGE_ASSETS": str(ASSETS)})
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(FRAMES)) and "detect" in out.stderr
    py = Pipeline(model=fer_edge.load(model, backend="openvino", precision="fp32"), detector=ov_detector(), ema=0.5)
    cap = cv2.VideoCapture(str(sample_video))
    for record in records:
        ok, frame = cap.read()
        want = [f.to_dict() for f in py(frame)]
        assert len(record["faces"]) == len(want) > 0
        for got, exp in zip(record["faces"], want):
            assert set(got) == set(exp)
            assert (got["track_id"], got["label"], got["raw_label"]) == (exp["track_id"], exp["label"], exp["raw_label"])
            np.testing.assert_allclose(got["box"], exp["box"], atol=0.11)
            np.testing.assert_allclose(got["keypoints"], exp["keypoints"], atol=0.11)
            for key in ("probs", "smoothed_probs"):
                assert list(got[key]) == list(exp[key])  # same label order
                np.testing.assert_allclose(list(got[key].values()), list(exp[key].values()), atol=2e-4)
    cap.release()


def test_fe_run_refuses_a_bad_option_with_one_line(fe_run):
    out = subprocess.run([str(fe_run), str(ASSETS / "mini_xception.onnx"), str(ASSETS / "astronaut.jpg"),
                          "--option", "ema=2"], capture_output=True, text=True, timeout=120,
                         env={"FER_EDGE_ASSETS": str(ASSETS)})
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "ema" in out.stderr and "FE_ERR_INVALID_ARGUMENT" in out.stderr
