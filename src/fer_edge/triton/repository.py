"""`fer-edge triton-repo`: a Triton Inference Server model repository from fer-edge artifacts.

Layout (one folder per model, version 1)::

    REPO/
      README.md                      how to start Triton on it
      <classifier>/config.pbtxt      onnxruntime | openvino | tensorrt_plan | python
      <classifier>/1/model.onnx      (model.xml + model.bin, model.plan; python: the artifact + model.py)
      fer_faces/config.pbtxt         python backend: frame -> faces (detect, align, classify by BLS)
      fer_faces/1/model.py
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FerEdgeError
from ..metadata import sidecar_path
from .artifacts import Classifier, describe
from .configs import NATIVE, Serving, classifier_config, faces_config
from .readme import write_readme

FACES_MODEL = "fer_faces"
KIND_SUFFIX = {"onnx": "onnx", "openvino": "openvino", "tensorrt": "trt"}
MODEL_PY = '''"""Written by `fer-edge triton-repo`: {what}.

Runs in Triton's python backend; needs fer-edge installed in that Python (pip install fer-edge).
"""
from fer_edge.triton.python_models import {cls} as TritonPythonModel  # noqa: F401
'''


@dataclass
class Repository:
    """What was written: model name -> (backend or platform, classifier source)."""

    folder: Path
    models: dict[str, str] = field(default_factory=dict)
    faces: str | None = None
    classifiers: list[tuple[str, Classifier]] = field(default_factory=list)


def model_name(clf: Classifier) -> str:
    m = clf.metadata
    base = f"{m.method}_{m.precision}_{KIND_SUFFIX[clf.kind]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", base).strip("._-") or "classifier"


def build_repository(artifacts: list[str], output: Path, serving: Serving, *, backend: str = "native",
                     names: list[str] | None = None, faces: bool = True, overwrite: bool = False) -> Repository:
    """Write the repository; every artifact is checked before anything is written.

    Args:
        backend: "native" (each artifact on its own Triton backend) or "python" (fer-edge's runtime
            inside Triton's python backend: the route when only the python backend is installed).
        names: model names, one per artifact (default: method_precision_kind).
        faces: add the face pipeline model, calling the first classifier.
    """
    serving.check()
    if backend not in ("native", "python"):
        raise FerEdgeError(f"--backend must be native or python, got {backend!r}")
    if not artifacts:
        raise FerEdgeError("no artifact given: pass one or more .onnx/.xml/.engine files (or 'default')")
    if names is not None and len(names) != len(artifacts):
        raise FerEdgeError(f"{len(names)} --name values for {len(artifacts)} artifacts: give one name per artifact")
    described = [describe(a) for a in artifacts]
    chosen = names or [model_name(c) for c in described]
    _check_names(chosen + ([FACES_MODEL] if faces else []))
    configs = [classifier_config(n, c, serving, backend, c.path.name) for n, c in zip(chosen, described)]
    _prepare(output, overwrite)
    repo = Repository(output)
    for name, clf, config in zip(chosen, described, configs):
        repo.models[name] = _write_classifier(output / name, clf, config, backend)
        repo.classifiers.append((name, clf))
    if faces:
        first_name, first = repo.classifiers[0]
        (output / FACES_MODEL / "1").mkdir(parents=True)
        (output / FACES_MODEL / "config.pbtxt").write_text(faces_config(FACES_MODEL, first_name, first, serving))
        (output / FACES_MODEL / "1" / "model.py").write_text(
            MODEL_PY.format(what=f"the face pipeline: frame -> faces, classified by {first_name}", cls="FacesModel"))
        repo.models[FACES_MODEL] = "python"
        repo.faces = FACES_MODEL
    write_readme(repo, serving, backend)
    return repo


def _check_names(names: list[str]) -> None:
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", n):
            raise FerEdgeError(f"model name {n!r}: use letters, digits, '_', '.' and '-' (it is a folder name)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FerEdgeError(f"model name {dupes[0]!r} is used twice (two artifacts of the same method, precision "
                           f"and kind, or --name {FACES_MODEL}); give each artifact its own --name")


def _prepare(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise FerEdgeError(f"-o {output} is a file; give a folder for the repository")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise FerEdgeError(f"-o {output} is not empty; pass --overwrite to replace it or choose a new folder")
        if not any((child / "config.pbtxt").is_file() for child in output.iterdir()):
            raise FerEdgeError(f"-o {output} holds files but no Triton models: not replacing it; choose a new folder")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def _write_classifier(folder: Path, clf: Classifier, config: str, backend: str) -> str:
    version = folder / "1"
    version.mkdir(parents=True)
    if backend == "python":
        for f in clf.files:
            shutil.copy2(f, version / f.name)
        side = sidecar_path(clf.path)
        if side.is_file():
            shutil.copy2(side, version / side.name)
        (version / "model.py").write_text(MODEL_PY.format(what=f"the classifier {clf.path.name} on fer-edge's runtime",
                                                          cls="ClassifierModel"))
        kind = "python"
    else:
        _, kind, target = NATIVE[clf.kind]
        shutil.copy2(clf.path, version / target)
        if clf.kind == "openvino":
            shutil.copy2(clf.files[1], version / "model.bin")
    (folder / "config.pbtxt").write_text(config)
    return kind
