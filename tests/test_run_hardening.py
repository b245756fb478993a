"""`fer-edge run` on bad, odd and partial inputs: what a careful user expects.

A broken image in a folder is skipped and counted, photos of a folder are independent, a damaged
video says where it broke, destinations are checked before any work, data goes to stdout and logs to
stderr, and the exit code tells a script whether every input was processed (0), some failed (1) or
nothing ran (2).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "src" / "fer_edge" / "assets" / "astronaut.jpg"  # one happy face at x 178-272, y 81-175


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _astronaut() -> np.ndarray:
    return cv2.imread(str(ASTRONAUT))


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    return d


def test_broken_image_in_a_folder_is_skipped_and_counted(folder, tmp_path, capsys):
    cv2.imwrite(str(folder / "a.jpg"), _astronaut())
    (folder / "b_broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg at all")
    cv2.imwrite(str(folder / "c.png"), _astronaut())
    (folder / "notes.txt").write_text("not an image")
    js = tmp_path / "out.jsonl"
    assert main(["run", "--source", str(folder), "--json", str(js)]) == 1  # some input failed
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "b_broken.jpg" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped b_broken.jpg") and "corrupt" in warnings[0]
    assert "2 of 3 images, 1 skipped (unreadable)" in err
    assert "notes.txt" in err and "Traceback" not in err  # the other file is named once, not read
    records = _records(js)
    assert [(r["frame"], r.get("image"), len(r.get("faces", []))) for r in records] == \
        [(0, "a.jpg", 1), (1, "b_broken.jpg", 0), (2, "c.png", 1)]
    assert "corrupt" in records[1]["error"] and "faces" not in records[1]


def test_folder_images_are_independent_unless_sequence(folder, tmp_path):
    """Unrelated photos must not share tracks or smoothing; --sequence restores both."""
    image = _astronaut()
    cv2.imwrite(str(folder / "a.jpg"), image)
    cv2.imwrite(str(folder / "b.png"), cv2.GaussianBlur(image, (0, 0), 4))  # same place, another expression
    cv2.imwrite(str(folder / "c.jpg"), cv2.flip(image, 1))  # the face elsewhere
    js = tmp_path / "alone.jsonl"
    assert main(["run", "--source", str(folder), "--json", str(js)]) == 0
    alone = [r["faces"][0] for r in _records(js)]
    assert [f["track_id"] for f in alone] == [1, 1, 1]  # every photo starts afresh
    for f in alone:  # nothing carried over: the shown probabilities are the photo's own
        assert f["smoothed_probs"] == pytest.approx(f["probs"], abs=1e-4) and f["label"] == f["raw_label"]
    assert alone[1]["probs"]["happy"] < 0.5  # the blurred face really looks different
    # as a sequence: the same place keeps its track and its history, a new place is a new track
    assert main(["run", "--source", str(folder), "--json", str(js), "--sequence"]) == 0
    seq = [r["faces"][0] for r in _records(js)]
    assert [f["track_id"] for f in seq] == [1, 1, 2]
    assert seq[1]["smoothed_probs"]["happy"] > seq[1]["probs"]["happy"] + 0.2


def test_folder_output_keeps_every_file_name(folder, tmp_path):
    """a.jpg and a.png are two photos: their annotated copies must not overwrite each other."""
    cv2.imwrite(str(folder / "a.jpg"), _astronaut())
    cv2.imwrite(str(folder / "a.png"), _astronaut())
    out = tmp_path / "annotated"
    assert main(["run", "--source", str(folder), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.png"]


def _write_video(path: Path, frames: int) -> None:
    image = cv2.resize(_astronaut(), (256, 256))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for i in range(frames):
        writer.write(np.roll(image, i, axis=1))
    writer.release()


def test_damaged_video_says_where_decoding_stopped(tmp_path, capsys):
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    _write_video(whole, 30)
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    js = tmp_path / "cut.jsonl"
    assert main(["run", "--source", str(cut), "--json", str(js)]) == 1
    err = capsys.readouterr().err
    read = len(_records(js))
    assert 0 < read < 30
    assert f"decoding stopped at frame {read} but its container lists 30 frames" in err
    assert f"incomplete: {read} of 30 frames" in err and "done:" not in err
    # the intact file is a normal, complete run
    assert main(["run", "--source", str(whole), "--json", str(js)]) == 0
    assert len(_records(js)) == 30 and "done: 30 of 30 frames" in capsys.readouterr().err


def test_video_without_frames_fails_before_any_output(tmp_path, capsys):
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64)).release()
    js = tmp_path / "out.jsonl"
    assert main(["run", "--source", str(empty), "--json", str(js)]) == 2
    assert "empty or corrupt" in capsys.readouterr().err
    assert not js.exists()


def _bad_destination_cases(tmp_path: Path, folder: Path) -> list[tuple[list[str], str]]:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    image = folder / "a.jpg"
    cv2.imwrite(str(image), _astronaut())
    return [
        (["--source", str(image), "--output", str(tmp_path / "x.gif")], "unknown file type .gif"),
        (["--source", str(image), "--output", str(a_file / "out.jpg")], "is a file, not a folder"),
        (["--source", str(image), "--json", str(a_file / "deep" / "r.jsonl")], "is a file, not a folder"),
        (["--source", str(image), "--json", str(tmp_path)], "is a folder: give a file name"),
        (["--source", str(image), "--output", str(image)], "would overwrite it"),
        (["--source", str(folder), "--output", str(folder)], "would overwrite it"),
        (["--source", str(folder), "--output", str(tmp_path / "one.jpg")], "is one image but the input is a folder"),
        (["--source", str(image), "--output", str(tmp_path / "clip.mp4")], "the input is one image"),
        (["--source", str(image), "--output", str(tmp_path / "o.jpg"), "--json", str(tmp_path / "o.jpg")],
         "is --output as well"),
        (["--source", str(image), "--detect-max-side", "10"], "too small to find faces"),
    ]


def test_bad_destinations_are_refused_before_the_run(folder, tmp_path, capsys):
    for args, message in _bad_destination_cases(tmp_path, folder):
        assert main(["run", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err  # one line: no model was loaded, no frame was read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "plain.txt"]  # nothing was written


@pytest.mark.parametrize("place", ["locked folder", "pseudo file system"])
def test_unwritable_folder_is_refused(place, tmp_path, capsys):
    """Permission bits do not stop root, so /proc (where nobody may create files) stands in for root."""
    import os
    import sys

    if place == "locked folder" and os.geteuid() == 0:
        pytest.skip("root may write into a locked folder")
    if place == "pseudo file system" and not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    locked = tmp_path / "locked" if place == "locked folder" else Path("/proc")
    if place == "locked folder":
        locked.mkdir(mode=0o500)
    try:
        assert main(["run", "--source", str(ASTRONAUT), "--output", str(locked / "a.jpg")]) == 2
        assert "cannot write in" in capsys.readouterr().err
    finally:
        if place == "locked folder":
            locked.chmod(0o700)


def test_results_go_to_stdout_and_logs_to_stderr(capsys):
    assert main(["run", "--source", str(ASTRONAUT)]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert line.startswith("frame 0 astronaut.jpg: #1 happy") and "done:" in err and "frame 0" not in err
    assert main(["run", "--source", str(ASTRONAUT), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    (record,) = [json.loads(line) for line in out.splitlines()]  # JSON Lines only, nothing else on stdout
    assert record["image"] == "astronaut.jpg" and record["faces"][0]["label"] == "happy"
    assert "JSON Lines: stdout" in err


def test_odd_but_valid_images_are_all_read(tmp_path, capsys):
    """Grey, 16-bit and RGBA PNGs, a unicode path, and a photo without faces."""
    image = _astronaut()
    d = tmp_path / "фото ü"
    d.mkdir()
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(d / "1_grey.png"), grey)
    cv2.imwrite(str(d / "2_deep.png"), image.astype(np.uint16) * 257)
    cv2.imwrite(str(d / "3_rgba.png"), np.dstack([image, np.full(grey.shape, 255, np.uint8)]))
    ok, data = cv2.imencode(".jpg", image)
    data.tofile(str(d / "4_лицо.jpg"))
    cv2.imwrite(str(d / "5_empty.png"), np.full((240, 320, 3), 127, np.uint8))
    out, js = tmp_path / "annotated ü", tmp_path / "r.jsonl"
    assert main(["run", "--source", str(d), "--output", str(out), "--json", str(js)]) == 0
    records = _records(js)
    assert [len(r["faces"]) for r in records] == [1, 1, 1, 1, 0]
    for r in records[:4]:
        x1, y1, x2, y2 = r["faces"][0]["box"]
        assert 160 < x1 < x2 < 290 and 60 < y1 < y2 < 190, r
    assert records[3]["image"] == "4_лицо.jpg"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in d.iterdir())
    assert "done: 5 of 5 images" in capsys.readouterr().err


def test_max_frames_on_a_folder(folder, tmp_path, capsys):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        cv2.imwrite(str(folder / name), _astronaut())
    js = tmp_path / "r.jsonl"
    assert main(["run", "--source", str(folder), "--max-frames", "2", "--json", str(js)]) == 0
    assert [r["image"] for r in _records(js)] == ["a.jpg", "b.jpg"]
    assert "stopped (--max-frames 2): 2 of 3 images" in capsys.readouterr().err


def test_folders_without_images_say_what_they_hold(folder, capsys):
    assert main(["run", "--source", str(folder)]) == 2
    assert "holds no images" in capsys.readouterr().err
    (folder / "readme.txt").write_text("x")
    assert main(["run", "--source", str(folder)]) == 2
    assert "holds no images (.bmp" in (err := capsys.readouterr().err) and "it holds 1 other entry (e.g. readme.txt)" in err


def test_large_photo_is_detected_small_and_reported_full_size(tmp_path, capsys):
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(_astronaut(), (3072, 3072)))  # 6x
    js = tmp_path / "r.jsonl"
    assert main(["run", "--source", str(big), "--json", str(js), "--detect-max-side", "1024"]) == 0
    assert "3072x3072 input: faces are detected at 1024x1024" in capsys.readouterr().err
    x1, y1, x2, y2 = max(_records(js)[0]["faces"], key=lambda f: f["score"])["box"]
    assert 6 * 160 < x1 < x2 < 6 * 290 and 6 * 60 < y1 < y2 < 6 * 190  # her face, in full-size pixels


class _DroppingCapture:
    """A stream that delivers `frames` frames once, then nothing: every reconnect fails."""

    def __init__(self, frames: int):
        self.left = frames

    def isOpened(self):
        return True

    def get(self, prop):
        return 0.0  # a live feed: no frame count

    def read(self):
        if self.left > 0:
            self.left -= 1
            return True, np.full((120, 160, 3), 100, np.uint8)
        return False, None

    def release(self):
        pass


def test_stream_that_stays_down_keeps_what_it_got(tmp_path, monkeypatch, capsys):
    from fer_edge.vision import sources

    captures = iter([_DroppingCapture(3)])
    monkeypatch.setattr(sources, "_stream_opener", lambda url, timeout_s: lambda: next(captures, _DroppingCapture(0)))
    monkeypatch.setattr(sources.time, "sleep", lambda s: None)  # the backoff, not what is tested
    js = tmp_path / "r.jsonl"
    assert main(["run", "--source", "rtsp://camera.local/live", "--json", str(js)]) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "reconnecting" in line][0].endswith("reconnecting (1/3)")
    assert "stopped delivering frames after 3 frames and 3 reconnect attempts" in err and "incomplete: 3 frames" in err
    assert len(_records(js)) == 3
