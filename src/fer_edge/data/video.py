"""Video expression data sets in the DFER-CLIP annotation-list layout (DFEW, FERV39k, MAFW), numpy only.

Each list file has one clip per line, ``<frame_dir> <num_frames> <label>``: a folder of the clip's
face-cropped frames (taken in lexicographic order, so names must be zero-padded), the frame count
the sampling uses, and the 0-based label. Clips are sampled TSN-style into 16 frames: one random frame
in each of 16 equal segments for training, the segment centres otherwise (the authors' loader).

Lists are looked up as ``<root>/annotation/<NAME>`` or ``<root>/<NAME>``:
DFEW ``DFEW_set_<fold>_<split>.txt``, FERV39k ``FERV39K_<split>.txt``, MAFW ``MAFW_set_<fold>_<split>.txt``.
Relative frame folders are resolved against ``<root>``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from ..runtimes.clip_stream import segment_centres
from .samples import FaceSamples, convert_color, read_image

SEGMENTS = 16
DFEW_LABELS = LABEL_SETS["dfew"]  # DFEW and FERV39k
MAFW_LABELS = LABEL_SETS["mafw"]
FOLDS = (1, 2, 3, 4, 5)


def tsn_train_indices(num_frames: int, segments: int = SEGMENTS, rng: random.Random | None = None) -> list[int]:
    """One random frame per equal segment; a clip shorter than `segments` repeats its last frame."""
    rng = rng or random
    avg = num_frames // segments
    if avg > 0:
        return [i * avg + rng.randrange(avg) for i in range(segments)]
    return segment_centres(max(num_frames, 1), segments)  # 0..n-1 then the last frame repeated


@dataclass
class VideoSamples(FaceSamples):
    """Clips instead of images: ``paths`` are frame folders, ``load`` returns (16, H, W, 3) uint8.

    Sampling is random for the ``train`` split and segment centres for every other split (the
    trainer renames its held-out part of train to ``validation``, which is then evaluated on centres).
    """

    num_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    segments: int = SEGMENTS

    def __post_init__(self) -> None:
        super().__post_init__()
        self.num_frames = np.asarray(self.num_frames, dtype=np.int64)
        if len(self.num_frames) != len(self.targets):
            raise ValueError(f"{len(self.num_frames)} frame counts for {len(self.targets)} clips")

    def frame_files(self, i: int) -> list[Path]:
        files = sorted(p for p in Path(self.paths[i]).iterdir() if p.is_file())
        if not files:
            raise FerEdgeError(f"clip folder {self.paths[i]} has no frames; check --data-path and the list file")
        return files

    def indices(self, i: int) -> list[int]:
        n = int(self.num_frames[i])
        return tsn_train_indices(n, self.segments) if self.split == "train" else segment_centres(n, self.segments)

    def load(self, i: int, color: str = "RGB") -> np.ndarray:
        files = self.frame_files(i)
        # The list's count drives the sampling (as in the authors' loader); a count larger than the
        # folder (a known MAFW inconsistency) is capped instead of failing mid-epoch.
        picks = [min(p, len(files) - 1) for p in self.indices(i)]
        frames = [convert_color(read_image(files[p]), color) for p in picks]
        h, w = frames[0].shape[:2]
        if any(f.shape[:2] != (h, w) for f in frames):
            import cv2

            frames = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h)) for f in frames]
        return np.stack(frames)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "VideoSamples":
        idx = np.asarray(indices, dtype=np.int64)
        return VideoSamples(self.name, self.split, self.labels, self.targets[idx],
                            paths=[self.paths[i] for i in idx], notes=list(self.notes),
                            num_frames=self.num_frames[idx], segments=self.segments)


def find_list(root: Path, name: str) -> Path:
    for cand in (root / "annotation" / name, root / name):
        if cand.is_file():
            return cand
    raise FerEdgeError(f"annotation list {name} not found in {root} or {root / 'annotation'}; "
                       "point --data-path at the folder that holds the authors' list files")


def read_annotation_list(path: Path, root: Path, labels: tuple[str, ...], name: str, split: str) -> VideoSamples:
    """Parse ``<frame_dir> <num_frames> <label>`` lines into VideoSamples."""
    dirs, counts, targets = [], [], []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FerEdgeError(f"{path.name} is not a UTF-8 text list; give the authors' annotation .txt file") from None
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 3:
            raise FerEdgeError(f"{path.name}:{ln}: expected '<frame_dir> <num_frames> <label>', got {line!r}")
        if not (parts[-2].isdigit() and parts[-1].isdigit()):
            raise FerEdgeError(f"{path.name}:{ln}: <num_frames> and <label> must be whole numbers, got {line[:120]!r}")
        folder, count, label = " ".join(parts[:-2]), int(parts[-2]), int(parts[-1])
        if not 0 <= label < len(labels):
            raise FerEdgeError(f"{path.name}:{ln}: label {label} outside 0..{len(labels) - 1}")
        p = Path(folder)
        dirs.append(p if p.is_absolute() else root / p)
        counts.append(count)
        targets.append(label)
    if not dirs:
        raise FerEdgeError(f"{path} lists no clips")
    missing = [d for d in dirs[:20] if not d.is_dir()]
    if missing:
        raise FerEdgeError(f"{path.name}: clip folder {missing[0]} does not exist; the list's paths must be "
                           "absolute or relative to --data-path (the authors' annotation/preprocessing.py rewrites them)")
    return VideoSamples(name, split, labels, np.asarray(targets), paths=dirs, num_frames=np.asarray(counts))


def read_dfew(root: Path, split: str, fold: int) -> VideoSamples:
    return read_annotation_list(find_list(root, f"DFEW_set_{fold}_{split}.txt"), root, DFEW_LABELS, f"dfew-fold{fold}", split)


def read_mafw(root: Path, split: str, fold: int) -> VideoSamples:
    return read_annotation_list(find_list(root, f"MAFW_set_{fold}_{split}.txt"), root, MAFW_LABELS, f"mafw-fold{fold}", split)


def read_ferv39k(root: Path, split: str) -> VideoSamples:
    return read_annotation_list(find_list(root, f"FERV39K_{split}.txt"), root, DFEW_LABELS, "ferv39k", split)
