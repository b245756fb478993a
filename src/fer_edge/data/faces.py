"""Real faces from whatever the user has: for export verification, INT8 calibration, accuracy
reports and benchmarks (``--verify-data``, ``--calib-data``, ``--val-data``, ``bench --data``).

Accepted sources:

* a dataset spec ``fer2013:train`` / ``ferplus:public_test`` (files found by
  :func:`fer_edge.data.fer2013.data_root`), or ``PATH.npz:SPLIT`` for any npz with a ``split`` array;
* an ``.npz`` of aligned faces: ``images`` (N,H,W) gray or (N,H,W,3) BGR uint8, optional ``labels``
  (and ``classes`` naming them);
* a folder of photos, run through the SAME detector and aligner as the runtime
  (:mod:`fer_edge.vision`), so the calibration sees the crops the deployed model will see.

Faces stay uint8 crops here; :meth:`FaceSet.tensors` turns them into model input with the one
runtime preprocessing (:func:`fer_edge.preprocess.preprocess_images`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FerEdgeError
from ..metadata import InputSpec, check_labels, short_repr
from .fer2013 import load_fer2013, load_ferplus

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# dataset spec name -> reader of one split (files found by fer_edge.data.fer2013.data_root)
DATASETS = {"fer2013": load_fer2013, "ferplus": load_ferplus}


@dataclass
class FaceSet:
    """Aligned face crops (uint8, gray HxW or BGR HxWx3), optional labels, and where they came from."""

    images: list[np.ndarray]
    labels: np.ndarray | None = None
    label_names: list[str] | None = None  # names of the label indices (canonical names)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def subset(self, n: int | None, seed: int = 0) -> "FaceSet":
        """A reproducible random subset of `n` faces (all of them when n is None or larger)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise FerEdgeError(f"--calib-size must be positive, got {n}")
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        labels = None if self.labels is None else self.labels[idx]
        return FaceSet([self.images[i] for i in idx], labels, self.label_names,
                       f"{self.source} (random subset of {n}, seed {seed})", list(self.notes))

    def tensors(self, spec: InputSpec) -> np.ndarray:
        """Model input, through the runtime's own preprocessing: (N, C, H, W) for image models,
        (N, T, C, H, W) pseudo-clips for video models (see :meth:`clips`)."""
        from ..preprocess import preprocess_clips, preprocess_images

        if spec.layout == "NTCHW":
            return preprocess_clips(self.clips(spec.frames), spec)
        return preprocess_images(self.images, spec)

    def clip_indices(self, frames: int) -> np.ndarray:
        """(N, frames) face indices of the pseudo-clips of :meth:`clips`."""
        n = len(self.images)
        return (np.arange(n)[:, None] + np.arange(frames)[None, :]) % n

    def clips(self, frames: int) -> list[list[np.ndarray]]:
        """One pseudo-clip per face: it and the next `frames - 1` faces (cyclic). Real faces in every
        frame, so a video model's calibration sees real activation ranges; not real motion."""
        return [[self.images[j] for j in row] for row in self.clip_indices(frames)]

    def relabel(self, model_labels: list[str]) -> "FaceSet":
        """Labels re-indexed to the model's output order by canonical name; faces whose class the
        model does not have are dropped (e.g. FER+ contempt for a 7-class model)."""
        if self.labels is None:
            return self
        if self.label_names is None or list(self.label_names) == list(model_labels):
            bad = self.labels[(self.labels < 0) | (self.labels >= len(model_labels))]
            if len(bad):
                raise FerEdgeError(f"{self.source} has label {int(bad[0])} but the model has "
                                   f"{len(model_labels)} classes; name the classes in the npz (`classes`)")
            return self
        pos = {n: i for i, n in enumerate(model_labels)}
        mapping = np.array([pos.get(n, -1) for n in self.label_names])
        if (mapping < 0).all():
            raise FerEdgeError(f"none of the classes of {self.source} ({', '.join(self.label_names)}) are "
                               f"classes of the model ({', '.join(model_labels)})")
        new = mapping[self.labels]
        keep = np.flatnonzero(new >= 0)
        notes = list(self.notes)
        if len(keep) < len(new):
            notes.append(f"{len(new) - len(keep)} faces of classes the model lacks were left out")
        return FaceSet([self.images[i] for i in keep], new[keep], list(model_labels), self.source, notes)


def load_faces(spec: str | Path | None, *, what: str = "calibration", input_spec: InputSpec | None = None,
               need_labels: bool = False, limit: int | None = None, seed: int = 0) -> FaceSet:
    """Read faces from a dataset spec, an npz or a folder of photos (see the module docstring)."""
    if spec is None or str(spec).strip() == "":
        flag = "--calib-data" if what == "calibration" else "--val-data"
        raise FerEdgeError(
            f"INT8 {what} needs real faces and none were given: pass {flag} with a folder of face photos, "
            f"an npz of aligned faces, or a dataset spec such as fer2013:train (fer-edge never calibrates on random data)"
        )
    if not isinstance(spec, (str, Path)):
        raise FerEdgeError(f"{what} data must be a path or a dataset spec, not a {type(spec).__name__}")
    text = str(spec)
    path = Path(text)
    kind = _path_kind(path)
    if kind == "dir":
        faces = _from_photo_folder(path, input_spec, limit=limit, seed=seed)
    elif kind == "file" and path.suffix == ".npz":
        faces = _from_npz(path, split=None)
    elif ":" in text and kind == "missing":
        faces = _from_dataset_spec(text)
    else:
        raise FerEdgeError(
            f"{what} data {short_repr(text)} not found: give a folder of photos, an .npz of aligned faces, "
            f"or a dataset spec such as fer2013:train"
        )
    if len(faces) == 0:
        raise FerEdgeError(f"{what} data {short_repr(text)} holds no faces")
    if need_labels and not faces.labelled:
        raise FerEdgeError(f"{what} data {short_repr(text)} has no labels; accuracy needs labelled faces (an npz with "
                           f"`labels`, or a dataset spec such as fer2013:public_test)")
    return faces.subset(limit, seed)


def _canonical(name: str) -> str:
    """Canonical expression name where the npz uses a known spelling; other names are kept as given."""
    from ..labels import canonical_name

    try:
        return canonical_name(name)
    except KeyError:
        return name


def _path_kind(path: Path) -> str:
    """"dir", "file", "other" or "missing"; names the OS cannot even look up (too long) count as missing."""
    try:
        if path.is_dir():
            return "dir"
        if path.is_file():
            return "file"
        return "other" if path.exists() else "missing"
    except (OSError, ValueError):
        return "missing"


# --- sources ---------------------------------------------------------------------------------------

def _from_dataset_spec(text: str) -> FaceSet:
    name, _, split = text.rpartition(":")
    if name.endswith(".npz"):
        if _path_kind(Path(name)) != "file":
            raise FerEdgeError(f"dataset file not found: {short_repr(name)}")
        return _from_npz(Path(name), split=split)
    if name not in DATASETS:
        raise FerEdgeError(f"unknown dataset {short_repr(name)} in {short_repr(text)}; known: {', '.join(DATASETS)} "
                           f"(or PATH.npz:SPLIT, an .npz file, a folder of photos)")
    ds = DATASETS[name](split)
    return FaceSet(list(ds.images), ds.labels, list(ds.label_names), f"{name}:{split}")


NPZ_ARRAYS = ("images", "labels", "classes", "split")


def _from_npz(path: Path, split: str | None) -> FaceSet:
    """Faces of an npz (see the module docstring), every array checked against the others."""
    name = " ".join(path.name.split())
    z = _read_npz(path, name)
    if "images" not in z:
        raise FerEdgeError(f"{name} has no `images` array (expected (N,H,W) or (N,H,W,3) uint8 faces)")
    images = z["images"]
    if images.dtype != np.uint8 or not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)) \
            or min(images.shape[1:3], default=0) < 1:
        raise FerEdgeError(f"{name}: `images` must be uint8 (N,H,W) gray or (N,H,W,3) BGR faces, "
                           f"got {images.dtype} {images.shape}")
    n = len(images)
    labels = _npz_labels(z, name, n)
    names = _npz_classes(z, name) if "classes" in z else None
    if names is not None and labels is not None and len(labels) and labels.max() >= len(names):
        raise FerEdgeError(f"{name} has label {int(labels.max())} but `classes` names only {len(names)} classes")
    if split is not None:
        if "split" not in z:
            raise FerEdgeError(f"{name} has no `split` array, so {short_repr(split)} cannot be selected")
        splits = z["split"]
        if splits.shape != (n,):
            raise FerEdgeError(f"{name}: `split` must have one entry per image ({n}), got shape {splits.shape}")
        splits = splits.astype(str)
        mask = splits == split
        if not mask.any():
            known = sorted(set(splits.tolist()))
            shown = ", ".join(short_repr(k) for k in known[:10]) + (" ..." if len(known) > 10 else "")
            raise FerEdgeError(f"{name} has no faces in split {short_repr(split)} (splits: {shown})")
        images = images[mask]
        labels = None if labels is None else labels[mask]
    source = name + (f" split {short_repr(split)}" if split else "")
    return FaceSet(list(images), labels, names, source)


def _read_npz(path: Path, name: str) -> dict[str, np.ndarray]:
    """The arrays fer-edge uses from an npz; never unpickles (object arrays are refused)."""
    import zipfile

    fix = "save it with numpy.savez(path, images=..., labels=..., classes=...)"
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise FerEdgeError(f"cannot read {name} ({exc.strerror or exc})") from None
    if not is_zip:
        raise FerEdgeError(f"{name} is not an npz (zip) archive; {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single .npy array, not named arrays")
            return {k: z[k] for k in NPZ_ARRAYS if k in z.files}
    except Exception as exc:  # zipfile, zlib, numpy's format reader and the OS all raise their own types
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FerEdgeError(f"{name} is not a readable npz of face arrays ({why}); {fix}") from None


def _npz_labels(z: dict[str, np.ndarray], name: str, n: int) -> np.ndarray | None:
    if "labels" not in z:
        return None
    labels = z["labels"]
    if labels.dtype.kind not in "iu" or labels.shape != (n,):
        raise FerEdgeError(f"{name}: `labels` must be whole numbers, one per image ({n}), "
                           f"got {labels.dtype} {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise FerEdgeError(f"{name}: `labels` must be class indices >= 0, found {int(labels.min())}")
    return labels.astype(np.int64)


def _npz_classes(z: dict[str, np.ndarray], name: str) -> list[str]:
    """`classes` as canonical names where spelled as one (Angry -> anger), each distinct."""
    classes = z["classes"]
    if classes.ndim != 1 or classes.dtype.kind not in "US":
        raise FerEdgeError(f"{name}: `classes` must be a list of class names, got {classes.dtype} {classes.shape}")
    raw = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in classes.tolist()]
    return check_labels([_canonical(c) for c in raw], f"{name}: `classes`",
                        "give each class one distinct, non-empty name")


def _from_photo_folder(folder: Path, spec: InputSpec | None, *, limit: int | None, seed: int) -> FaceSet:
    """Detect and align every face in the photos, exactly as the runtime pipeline does."""
    import cv2

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FerEdgeError(f"{folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    if spec is None:
        raise FerEdgeError("a folder of photos needs the model's input spec to align faces")
    aligner = face_aligner(spec)
    faces, skipped = [], 0
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            skipped += 1
            continue
        crops = aligner(img)
        skipped += not crops
        faces.extend(crops)
        if limit is not None and len(faces) >= 4 * limit:
            break
    if not faces:
        raise FerEdgeError(f"no face was detected in the {len(files)} images of {folder}")
    notes = [f"{skipped} images without a detected face were skipped"] if skipped else []
    return FaceSet(faces, None, None, f"{folder} ({len(faces)} faces detected in {len(files)} images)", notes)


# --- the shipped face: parity checks without user data ---------------------------------------------

BUILTIN_PHOTO = "astronaut.jpg"  # NASA portrait, public domain (assets/astronaut.LICENSE.md)


def _photo_variants(img: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Deterministic edits of one real photo (flip, crops, brightness, gamma, blur, a small rotation):
    still real pixels, but each gives the detector/aligner and the model a different input."""
    import cv2

    h, w = img.shape[:2]
    rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 8, 1.0), (w, h),
                         borderMode=cv2.BORDER_REFLECT)
    gamma = (255 * (img / 255.0) ** 0.6).astype(np.uint8)
    return [
        ("original", img),
        ("mirrored", img[:, ::-1]),
        ("darker", cv2.convertScaleAbs(img, alpha=0.6, beta=0)),
        ("brighter", cv2.convertScaleAbs(img, alpha=1.25, beta=20)),
        ("gamma 0.6", gamma),
        ("blurred", cv2.GaussianBlur(img, (7, 7), 0)),
        ("rotated 8 deg", rot),
        ("zoomed crop", cv2.resize(img[h // 16: h * 3 // 4, w // 8: w * 7 // 8], (w, h))),
        ("mirrored darker", cv2.convertScaleAbs(img[:, ::-1], alpha=0.75, beta=0)),
        ("low contrast", cv2.convertScaleAbs(img, alpha=0.5, beta=64)),
    ]


def builtin_faces(spec: InputSpec, *, limit: int | None = None) -> FaceSet:
    """The face in the shipped public-domain photo and deterministic variants of that photo, each run
    through the runtime's detector and aligner like any photo folder.

    For the export's PyTorch parity check when the user gives no faces: it shows the artifact computes
    what PyTorch computes on real pixels. It is one person's face, so it is never calibration data.
    """
    import cv2

    from ..artifacts import ASSETS

    path = ASSETS / BUILTIN_PHOTO
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FerEdgeError(f"the shipped photo {path} is missing or unreadable; reinstall fer-edge or pass --verify-data")
    aligner = face_aligner(spec)
    faces, used = [], []
    for name, variant in _photo_variants(img):
        crops = aligner(np.ascontiguousarray(variant))
        if crops:
            faces.append(crops[0])
            used.append(name)
        if limit is not None and len(faces) >= limit:
            break
    if len(faces) < 2:
        raise FerEdgeError(f"the face detector found the face of the shipped photo {BUILTIN_PHOTO} in only "
                           f"{len(faces)} of its variants; pass --verify-data with real face photos")
    source = (f"built-in photo {BUILTIN_PHOTO} (public-domain NASA portrait, one face) in {len(faces)} "
              f"deterministic variants ({', '.join(used)}), detected and aligned like any photo")
    return FaceSet(faces, None, None, source)


def face_aligner(spec: InputSpec, detector: str = "blazeface"):
    """image -> list of aligned uint8 crops, through the runtime's detector and aligner
    (keypoint alignment onto the model's face template; a box crop for detectors without keypoints)."""
    try:
        from ..vision.align import align_face, box_crop
        from ..vision.detectors import create_detector
    except ImportError as exc:
        raise FerEdgeError(f"the face detector (fer_edge.vision) is unavailable ({exc}); "
                           f"pass an npz of aligned faces or a dataset spec instead") from None
    det = create_detector(detector)

    def align_all(img: np.ndarray) -> list[np.ndarray]:
        out = []
        for face in det(img):
            if face.keypoints is not None and len(face.keypoints) >= 4:
                crop, _ = align_face(img, face.keypoints, spec.size, spec.face_template, spec.face_scale)
            else:
                crop = box_crop(img, face.box, spec.size, spec.face_scale)
            out.append(crop)
        return out

    return align_all
