"""What `fer-edge export` was asked to do, checked as a whole before any heavy work.

Every option is validated here, without building a model or reading data, so a bad value or a
conflicting pair is refused at once with one line, not after minutes of export. Options that only
mean something for INT8 are None unless given, so giving them without ``--int8`` is a conflict, not
silently ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import FerEdgeError
from .onnx import MIN_OPSET
from .progress import ProgressFn

FORMATS = ("onnx", "openvino")
QUANTIZERS = ("onnxruntime", "modelopt")
PARITY_FACES = 16
DEFAULT_CALIB_SIZE = 300
DEFAULT_MAX_DROP = 1.0
MAX_OPSET = 23  # the newest opset torch 2.x's exporter writes (torch.onnx._constants.ONNX_MAX_OPSET)
# INT8-only options: (field, flag)
INT8_ONLY = (("int8_targets", "--int8-targets"), ("calib_data", "--calib-data"), ("calib_size", "--calib-size"),
             ("val_data", "--val-data"), ("val_size", "--val-size"), ("max_drop", "--max-drop"),
             ("quantizer", "--quantizer"))


@dataclass
class ExportOptions:
    method: str
    weights: str | None = None
    random_init: bool = False
    clip_weights: str | None = None
    formats: tuple[str, ...] = FORMATS
    int8: bool = False
    int8_targets: tuple[str, ...] | None = None  # None: every target
    calib_data: str | None = None
    calib_size: int | None = None  # None: DEFAULT_CALIB_SIZE
    val_data: str | None = None
    val_size: int | None = None
    verify_data: str | None = None
    max_drop: float | None = None  # top-1 points INT8 may lose; None: DEFAULT_MAX_DROP
    output: str | None = None
    opset: int = 17
    quantizer: str | None = None  # TensorRT Q/DQ maker; None: onnxruntime
    model_kwargs: dict = field(default_factory=dict)  # to the model builder (e.g. a reduced test architecture)
    parity_faces: int = PARITY_FACES
    command: str = ""
    verbose: bool = False  # third-party output to the console instead of <output>/export.log
    log: Callable[[str], None] = field(default=lambda msg: None)
    progress: ProgressFn | None = None  # (task, done, total) of the long steps


@dataclass(frozen=True)
class Plan:
    """The checked options, normalised: what run_export does."""

    folder: Path
    formats: tuple[str, ...]
    targets: tuple[str, ...]  # () without --int8
    calib_size: int
    max_drop: float
    quantizer: str


def check_options(opts: ExportOptions) -> Plan:
    """Refuse bad values and conflicting options with one line; touches no model and no data."""
    if opts.weights is not None and opts.random_init:
        raise FerEdgeError("--weights and --random-init conflict: export the checkpoint (drop --random-init) "
                           "or random weights for a plumbing test (drop --weights)")
    _need_file(opts.weights, "--weights")
    _need_file(opts.clip_weights, "--clip-weights")
    if not MIN_OPSET <= opts.opset <= MAX_OPSET:
        raise FerEdgeError(f"--opset {opts.opset} is not supported: fer-edge exports opset {MIN_OPSET} to {MAX_OPSET}")
    if opts.parity_faces < 2:
        raise FerEdgeError(f"parity needs at least 2 faces (to check the dynamic batch too), got {opts.parity_faces}")
    formats = _check_formats(opts.formats)
    if opts.verify_data is not None:
        check_data_spec(opts.verify_data, "--verify-data")
    folder = _check_output(opts.output, opts.method)
    if not opts.int8:
        given = [flag for name, flag in INT8_ONLY if getattr(opts, name) is not None]
        if given:
            raise FerEdgeError(f"{', '.join(given)} only apply with --int8; add --int8 or drop them "
                               f"(parity faces come from --verify-data)")
        return Plan(folder, formats, (), DEFAULT_CALIB_SIZE, DEFAULT_MAX_DROP, "onnxruntime")
    targets = _check_targets(opts.int8_targets)
    if not opts.calib_data:
        from ..data.faces import load_faces

        load_faces(None, what="calibration")  # its one-line error: no data, no INT8
    check_data_spec(opts.calib_data, "--calib-data")
    calib_size = DEFAULT_CALIB_SIZE if opts.calib_size is None else opts.calib_size
    _positive(calib_size, "--calib-size")
    if opts.val_data is not None:
        check_data_spec(opts.val_data, "--val-data")
    if opts.val_size is not None:
        if opts.val_data is None:
            raise FerEdgeError("--val-size needs --val-data (the validation faces it limits)")
        _positive(opts.val_size, "--val-size")
    max_drop = DEFAULT_MAX_DROP if opts.max_drop is None else float(opts.max_drop)
    if not math.isfinite(max_drop) or not -100.0 <= max_drop <= 100.0:
        raise FerEdgeError(f"--max-drop {opts.max_drop} is out of range: give top-1 points between -100 and 100")
    quantizer = opts.quantizer or "onnxruntime"
    if quantizer not in QUANTIZERS:
        raise FerEdgeError(f"unknown --quantizer {quantizer!r}; choose {' or '.join(QUANTIZERS)}")
    if opts.quantizer is not None and "tensorrt" not in targets:
        raise FerEdgeError("--quantizer chooses the TensorRT Q/DQ maker: add tensorrt to --int8-targets or drop it")
    return Plan(folder, formats, targets, calib_size, max_drop, quantizer)


def check_data_spec(spec: str, flag: str) -> None:
    """The face source exists (a folder, an .npz, DATASET:SPLIT or PATH.npz:SPLIT); reads nothing."""
    from ..data.faces import DATASETS

    path = Path(spec)
    try:
        if path.is_dir() or (path.suffix == ".npz" and path.is_file()):
            return
        name, sep, split = str(spec).rpartition(":")
        if sep and split and not path.exists() and (name in DATASETS or (name.endswith(".npz") and Path(name).is_file())):
            return
    except (OSError, ValueError):  # a name the file system cannot even look up
        pass
    raise FerEdgeError(f"{flag} {spec!r} not found: give a folder of photos, an .npz of aligned faces, "
                       f"or a dataset spec such as fer2013:train ({', '.join(DATASETS)})")


def _need_file(path: str | None, flag: str) -> None:
    from ..checkpoint import existing_file

    if path is not None:
        existing_file(path, flag)


def _positive(n: int, flag: str) -> None:
    if n < 1:
        raise FerEdgeError(f"{flag} must be positive, got {n}")


def _check_output(output: str | None, method: str) -> Path:
    from .manifest import MANIFEST, read_manifest

    from ..destinations import check_output_dir

    folder = Path(output or f"exports/{method}")
    check_output_dir(folder, "--output")
    if (folder / MANIFEST).is_file() and read_manifest(folder) is None:  # raises for unreadable JSON
        raise FerEdgeError(f"--output {folder} holds a {MANIFEST} that is not a fer-edge export's; "
                           f"choose another folder")
    return folder


def _check_formats(formats) -> tuple[str, ...]:
    return _choices(formats, FORMATS, "--format")


def _check_targets(targets) -> tuple[str, ...]:
    from ..calibrate.targets import ALIASES, TARGETS

    return tuple(TARGETS) if targets is None else _choices(targets, TARGETS, "--int8-targets", ALIASES)


def _choices(values, known, flag: str, aliases: dict[str, str] | None = None) -> tuple[str, ...]:
    """A comma list's values, lower-cased, aliases resolved, repeats dropped; each one of `known`."""
    aliases = aliases or {}
    out = tuple(dict.fromkeys(aliases.get(v.strip().lower(), v.strip().lower()) for v in values if v.strip()))
    bad = [v for v in out if v not in known]
    if bad:
        raise FerEdgeError(f"unknown {flag} {', '.join(bad)}; choose from {', '.join(known)}")
    if not out:
        raise FerEdgeError(f"{flag} is empty; choose from {', '.join(known)}")
    return out
