"""Expression label sets and the mapping of each dataset's order onto one canonical vocabulary.

Datasets number the same expressions differently (FER2013: 0 = angry; RAF-DB: 0 = surprise). Every
artifact carries its label names in output order, and anything that compares across datasets maps
through these canonical names.
"""
from __future__ import annotations

from .errors import FerEdgeError

CANONICAL = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")

# Output orders of the datasets and released models, as lists of canonical names.
LABEL_SETS: dict[str, tuple[str, ...]] = {
    # FER2013 (Goodfellow et al.), also mini-Xception's output order.
    "fer2013": ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    # FER+ majority labels as stored in ../shared/data: FER2013 order plus contempt.
    "ferplus": ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"),
    # RAF-DB basic emotions, 1-based labels in the list files: 1 surprise ... 7 neutral.
    "rafdb": ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"),
    # AffectNet: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt.
    "affectnet7": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"),
    "affectnet8": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"),
    # CAER-S folder order (alphabetical): Anger Disgust Fear Happy Neutral Sad Surprise.
    "caers": ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    # DFEW / FERV39k (7) and MAFW (11) as DFER-CLIP numbers them.
    "dfew": ("happy", "sad", "neutral", "anger", "surprise", "disgust", "fear"),
    # MAFW in annotation/preprocessing.py's order; the last three have no canonical name.
    "mafw": ("happy", "sad", "neutral", "anger", "surprise", "disgust", "fear",
             "contempt", "anxiety", "helplessness", "disappointment"),
}

DISPLAY = {
    "neutral": "Neutral", "happy": "Happy", "sad": "Sad", "surprise": "Surprise", "fear": "Fear",
    "disgust": "Disgust", "anger": "Anger", "contempt": "Contempt",
}


class UnknownLabelError(FerEdgeError, KeyError):
    """A label set or expression name fer-edge does not know. A FerEdgeError (one line for the user)
    that is also a KeyError, for callers that fall back on unknown names."""

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0]) if self.args else ""


def label_set(name: str) -> tuple[str, ...]:
    """Label names (output order) of a known dataset/model family."""
    if not isinstance(name, str) or name not in LABEL_SETS:
        raise UnknownLabelError(f"unknown label set {name!r}; known: {', '.join(sorted(LABEL_SETS))}")
    return LABEL_SETS[name]


def remap_indices(src: tuple[str, ...] | list[str], dst: tuple[str, ...] | list[str]) -> list[int]:
    """For each class of `src`, its index in `dst` (-1 where `dst` lacks it)."""
    pos = {n: i for i, n in enumerate(dst)}
    return [pos.get(n, -1) for n in src]


# Spellings found in data set folder names and list files, mapped to canonical names.
ALIASES = {
    "neutral": "neutral", "neutrality": "neutral",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "fear": "fear", "fearful": "fear", "afraid": "fear",
    "disgust": "disgust", "disgusted": "disgust",
    "anger": "anger", "angry": "anger",
    "contempt": "contempt",
}


def canonical_name(name: str) -> str:
    """Canonical expression name for a spelling such as "Angry", "happiness" or "Disgusted"."""
    key = name.strip().lower().replace("-", "").replace("_", "") if isinstance(name, str) else None
    if key not in ALIASES:
        shown = name if isinstance(name, str) and len(name) <= 60 else f"{str(name)[:57]}..."
        raise UnknownLabelError(f"{shown!r} is not a known expression name (known: {', '.join(sorted(ALIASES))})")
    return ALIASES[key]
