"""Each data set reader on a tiny layout built from real FER2013 faces: right files, right labels.

Every written image's true expression is kept in `truth` (file name -> canonical name); a reader is
right when ``labels[target]`` of each sample it returns equals that truth.
"""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from fer_edge.data.catalog import open_dataset
from fer_edge.data.folders import read_caers, read_image_folder
from fer_edge.data.lists import read_affectnet, read_rafdb
from fer_edge.data.fer_csv import read_fer2013_csv
from fer_edge.data.splits import stratified_split
from fer_edge.errors import FerEdgeError
from fer_edge.labels import LABEL_SETS

FER = LABEL_SETS["fer2013"]
RAF = LABEL_SETS["rafdb"]
AFF8 = LABEL_SETS["affectnet8"]


@pytest.fixture(scope="module")
def faces(fer2013):
    """Two real training faces per FER2013 class: [(48x48 uint8, canonical name)]."""
    images = fer2013["images"]  # NpzFile decompresses on every access: read once
    train = np.flatnonzero(fer2013["split"] == "train")
    labels = fer2013["labels"][train]
    out = []
    for k, name in enumerate(FER):
        for i in train[np.flatnonzero(labels == k)[:2]]:
            out.append((images[i], name))
    return out


def _check(ds, truth):
    assert len(ds) == len(truth)
    got = {p.name: ds.labels[t] for p, t in zip(ds.paths, ds.targets)}
    assert got == truth


def test_poster_numbered_folders_are_rafdb_labels(tmp_path, faces):
    truth = {}
    for split in ("train", "valid"):  # POSTER's main.py evaluates on valid/
        for j, (img, name) in enumerate(faces):
            folder = tmp_path / split / str(RAF.index(name) + 1)  # RAF-DB label = folder 1..7
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{split}_{j}.png"), img)
            truth.setdefault(split, {})[f"{split}_{j}.png"] = name
    ds = read_image_folder(tmp_path, "train", dataset="rafdb")
    assert ds.labels == RAF
    _check(ds, truth["train"])
    _check(open_dataset("rafdb", tmp_path, "test"), truth["valid"])
    # pixels survive (PNG is lossless) and grey faces come out as RGB
    i = next(i for i, p in enumerate(ds.paths) if p.name == "train_0.png")
    np.testing.assert_array_equal(ds.load(i)[..., 0], faces[0][0])
    assert ds.load(i, "GRAY").shape == (48, 48)
    with pytest.raises(FerEdgeError, match="numbered"):
        read_image_folder(tmp_path, "train")  # numbers mean nothing without a data set


def test_named_folders_and_caers(tmp_path, faces):
    spelling = {"anger": "Angry", "disgust": "disgusted", "fear": "Fear", "happy": "Happiness",
                "sad": "Sad", "surprise": "Surprise", "neutral": "Neutral"}
    caers = {"anger": "Anger", "happy": "Happy", "disgust": "Disgust", "fear": "Fear", "sad": "Sad",
             "surprise": "Surprise", "neutral": "Neutral"}
    truth = {}
    for j, (img, name) in enumerate(faces):
        for root, names in (("named", spelling), ("caers", caers)):
            d = tmp_path / root / "train" / names[name]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{j}.png"), img)
        truth[f"{j}.png"] = name
    ds = read_image_folder(tmp_path / "named", "train")
    _check(ds, truth)
    assert ds.labels == tuple(sorted(ds.labels, key=lambda n: sorted(spelling.values()).index(spelling[n])))
    c = read_caers(tmp_path / "caers", "train")
    assert c.labels == LABEL_SETS["caers"]
    _check(c, truth)
    with pytest.raises(FerEdgeError, match="test folder"):
        read_caers(tmp_path / "caers", "test")


def test_rafdb_partition_file_with_aligned_images(tmp_path, faces):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "Image" / "aligned").mkdir(parents=True)
    lines, truth = [], {"train": {}, "test": {}}
    for j, (img, name) in enumerate(faces):
        split = "train" if j % 2 == 0 else "test"
        stem = f"{split}_{j:05d}"
        cv2.imwrite(str(tmp_path / "Image" / "aligned" / f"{stem}_aligned.jpg"), img)
        lines.append(f"{stem}.jpg {RAF.index(name) + 1}")
        truth[split][f"{stem}_aligned.jpg"] = name
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for split in ("train", "test"):
        _check(read_rafdb(tmp_path, split), truth[split])


def test_rafdb_and_affectnet_id_lists(tmp_path, faces):
    """CEPrompt/UA-FER lists: RAF-DB labels 1..7, AffectNet labels as is (8 classes, *_8cls.txt)."""
    raf, aff = tmp_path / "raf", tmp_path / "aff"
    (raf / "EmoLabel").mkdir(parents=True)
    (raf / "Image" / "aligned_224").mkdir(parents=True)
    (aff / "affectnet_info").mkdir(parents=True)
    (aff / "imgs").mkdir()
    rows = {"raf": ([], [], []), "aff": ([], [], [])}
    truth = {("raf", True): {}, ("raf", False): {}, ("aff", True): {}, ("aff", False): {}}
    items = faces + [(faces[0][0], "contempt")]  # a contempt face for AffectNet-8
    for j, (img, name) in enumerate(items):
        is_train = j % 3 != 0
        fname = f"{j}.png"
        for key, lab, path in (("aff", AFF8.index(name), f"imgs/{fname}"),) + (
                (("raf", RAF.index(name) + 1, fname),) if name != "contempt" else ()):
            root = raf / "Image" / "aligned_224" if key == "raf" else aff / "imgs"
            cv2.imwrite(str(root / fname), img)
            ids, labs, split = rows[key]
            i = len(ids) + 1
            ids.append(f"{i} {path}")
            labs.append(f"{i} {lab}")
            split.append(f"{i} {int(is_train)}")
            truth[(key, is_train)][fname] = name
    for key, folder, suffix in (("raf", raf / "EmoLabel", ""), ("aff", aff / "affectnet_info", "_8cls")):
        for stem, lines in zip(("images", "image_class_labels", "train_test_split"), rows[key]):
            (folder / f"{stem}{suffix}.txt").write_text("\n".join(lines) + "\n")
    for is_train, split in ((True, "train"), (False, "test")):
        _check(read_rafdb(raf, split), truth[("raf", is_train)])
        a = read_affectnet(aff, split, 8)
        assert a.labels == AFF8
        _check(a, truth[("aff", is_train)])


def test_affectnet_official_csv_drops_contempt_for_7_and_non_expressions(tmp_path, faces):
    (tmp_path / "Manually_Annotated_Images" / "101").mkdir(parents=True)
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression", "valence", "arousal"]
    rows, truth8 = [], {}
    items = faces + [(faces[1][0], "contempt")]
    for j, (img, name) in enumerate(items):
        rel = f"101/{j}.jpg"
        cv2.imwrite(str(tmp_path / "Manually_Annotated_Images" / rel), img)
        rows.append([rel, 0, 0, 48, 48, "", AFF8.index(name), 0.1, 0.2])
        truth8[f"{j}.jpg"] = name
    cv2.imwrite(str(tmp_path / "Manually_Annotated_Images" / "101" / "x.jpg"), faces[0][0])
    rows.append(["101/x.jpg", 0, 0, 48, 48, "", 10, -2, -2])  # 10 = no face
    with open(tmp_path / "training.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + rows)
    a8 = read_affectnet(tmp_path, "train", 8)
    _check(a8, truth8)
    a7 = open_dataset("affectnet7", tmp_path, "train")
    _check(a7, {k: v for k, v in truth8.items() if v != "contempt"})
    assert a7.labels == LABEL_SETS["affectnet7"] and "dropped 2" in a7.notes[0]


def test_fer2013_csv_and_npz_agree(tmp_path, fer2013, shared_data):
    fer2013 = {k: fer2013[k] for k in ("split", "labels", "images")}
    idx = np.r_[np.flatnonzero(fer2013["split"] == "train")[:20], np.flatnonzero(fer2013["split"] == "public_test")[:10]]
    with open(tmp_path / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in idx:
            usage = "Training" if fer2013["split"][i] == "train" else "PublicTest"
            w.writerow([int(fer2013["labels"][i]), " ".join(map(str, fer2013["images"][i].ravel())), usage])
    tr = read_fer2013_csv(tmp_path / "fer2013.csv", "train")
    np.testing.assert_array_equal(tr.images, fer2013["images"][idx[:20]])
    np.testing.assert_array_equal(tr.targets, fer2013["labels"][idx[:20]])
    te = open_dataset("fer2013", tmp_path, "test")
    assert len(te) == 10 and te.labels == FER
    npz = open_dataset("fer2013", shared_data, "test")
    np.testing.assert_array_equal(npz.images[:10], te.images)
    np.testing.assert_array_equal(npz.targets[:10], te.targets)


def test_to_labels_maps_and_drops_missing_classes(shared_data):
    plus = open_dataset("ferplus", shared_data, "test")
    raf = plus.to_labels(RAF)  # RAF-DB has no contempt
    n_contempt = int((plus.targets == plus.labels.index("contempt")).sum())
    assert len(raf) == len(plus) - n_contempt and raf.notes
    for name in RAF:  # same faces per class, just renumbered
        assert (raf.targets == RAF.index(name)).sum() == (plus.targets == plus.labels.index(name)).sum()
    first = int(np.flatnonzero(plus.targets != plus.labels.index("contempt"))[0])
    np.testing.assert_array_equal(raf.images[0], plus.images[first])
    assert raf.labels[raf.targets[0]] == plus.labels[plus.targets[first]]


def test_stratified_split_is_seeded_and_keeps_classes():
    t = np.repeat(np.arange(4), [100, 10, 2, 1])
    keep, held = stratified_split(t, 0.2, seed=3)
    assert not set(keep) & set(held) and len(keep) + len(held) == len(t)
    assert np.bincount(t[held], minlength=4).tolist() == [20, 2, 1, 0]
    again = stratified_split(t, 0.2, seed=3)[1]
    np.testing.assert_array_equal(held, again)
    assert not np.array_equal(held, stratified_split(t, 0.2, seed=4)[1])


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(FerEdgeError, match="does not exist"):
        open_dataset("rafdb", tmp_path / "nope", "train")
    with pytest.raises(FerEdgeError, match="not a RAF-DB folder"):
        read_rafdb(tmp_path, "train")
    with pytest.raises(FerEdgeError, match="AffectNet train list"):
        read_affectnet(tmp_path, "train", 7)
