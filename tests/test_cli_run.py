"""`fer-edge run` end to end: the sample video, the demo photo, folders, and its error messages."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fer_edge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "src" / "fer_edge" / "assets" / "astronaut.jpg"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_video_json_and_annotated_output(tmp_path, sample_video, capsys):
    out, js = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    rc = main(["run", "--source", str(sample_video), "--json", str(js), "--output", str(out), "--max-frames", "6"])
    assert rc == 0
    records = _records(js)
    assert [r["frame"] for r in records] == list(range(6))
    assert [r["time"] for r in records] == pytest.approx([i / 25 for i in range(6)])
    # pedestrians face the camera in these frames: several faces each, with labels and boxes in the frame
    assert all(len(r["faces"]) >= 2 for r in records), [len(r["faces"]) for r in records]
    for face in records[-1]["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1080
        assert face["label"] in face["probs"] and 0 < face["confidence"] <= 1
        assert isinstance(face["track_id"], int)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (1080, 1920, 3)
        frames += 1
    assert frames == 6
    err = capsys.readouterr().err
    assert str(out) in err and str(js) in err


def test_make_demo_command_without_torch(tmp_path):
    """The exact `make demo` run, in a fresh interpreter that must never import PyTorch."""
    out, js = tmp_path / "demo" / "astronaut.jpg", tmp_path / "demo" / "astronaut.jsonl"
    code = (
        "import sys\n"
        "from fer_edge.cli.main import main\n"
        f"rc = main(['run', '--source', {str(ASTRONAUT)!r}, '--output', {str(out)!r}, '--json', {str(js)!r}])\n"
        "assert 'torch' not in sys.modules, 'the demo imported torch'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"annotated output: {out}" in proc.stderr and f"JSON Lines: {js}" in proc.stderr
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (512, 512, 3)
    assert (image != cv2.imread(str(ASTRONAUT))).any()  # annotated
    (record,) = _records(js)
    (face,) = record["faces"]
    assert record["image"] == "astronaut.jpg" and face["label"] == "happy"


def test_folder_in_folder_out(tmp_path, face_photos, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    for p in face_photos[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "annotated"
    assert main(["run", "--source", str(src), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.stem + ".jpg" for p in face_photos[:2])
    assert "2 images in" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--source", "does/not/exist.mp4"], "input not found"),
    (["--camera", "97"], "camera 97 could not be opened"),
    ([], "no input"),
    (["--source", str(ASTRONAUT), "--output", "x.weird"], "unknown file type"),
    (["--source", str(ASTRONAUT), "--detector", "nope"], "unknown face detector"),
])
def test_errors_are_one_clear_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_corrupt_image_is_reported(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    assert main(["run", "--source", str(bad)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_show_without_a_display(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    assert main(["run", "--source", str(ASTRONAUT), "--show"]) == 2
    assert "--show cannot open a window" in capsys.readouterr().err
    # with another output the run goes on and says why there is no window
    js = tmp_path / "a.jsonl"
    assert main(["run", "--source", str(ASTRONAUT), "--show", "--json", str(js)]) == 0
    assert "--show ignored" in capsys.readouterr().err and len(_records(js)) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child differs on Windows")
def test_ctrl_c_finishes_outputs_cleanly(tmp_path, sample_video):
    import signal
    import time

    out, js = tmp_path / "part.avi", tmp_path / "part.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge.cli.main", "run", "--source", str(sample_video),
                             "--output", str(out), "--json", str(js)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not js.exists() or len(js.read_text().splitlines()) < 2):
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err  # interrupted: a script must not take a partial run for a full one
    assert "stopped (Ctrl-C)" in err and str(out) in err
    written = len(_records(js))
    assert 2 <= written < 105
    cap = cv2.VideoCapture(str(out))
    # the video was closed properly (Ctrl-C may land between a frame's JSON line and its video frame)
    assert written - 1 <= int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) <= written
