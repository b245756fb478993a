"""ctypes binding of libfer_edge's C API, for the parity tests and the benchmark (not a product API).

Frames and crops go in as numpy arrays (no copy: pointer + stride), results come back as plain
dicts shaped like ``FaceResult.to_dict()`` but unrounded, so they compare with the Python pipeline.
"""
from __future__ import annotations

import ctypes as C
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "cpp" / "build"


class CError(Exception):
    """A failed call: `status` is the fe_status name, the message is the library's."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Image(C.Structure):
    _fields_ = [("data", C.c_void_p), ("width", C.c_int32), ("height", C.c_int32), ("stride", C.c_int32),
                ("channels", C.c_int32)]


class Face(C.Structure):
    _fields_ = [("box", C.c_float * 4), ("keypoints", C.c_float * 12), ("score", C.c_float), ("track_id", C.c_int64),
                ("label", C.c_int32), ("label_name", C.c_char_p), ("confidence", C.c_float), ("raw_label", C.c_int32),
                ("num_classes", C.c_int32), ("probs", C.POINTER(C.c_float)), ("smoothed_probs", C.POINTER(C.c_float)),
                ("has_uncertainty", C.c_int32), ("uncertainty", C.c_float), ("clip_length", C.c_int32),
                ("clip_frames", C.c_int32), ("clip_new", C.c_int32)]


def _sig(lib, name, res, *args):
    f = getattr(lib, name)
    f.restype, f.argtypes = res, list(args)


def load_library(path: str | Path | None = None) -> C.CDLL:
    lib = C.CDLL(str(path or BUILD / "libfer_edge.so"))
    vp, sz, st = C.c_void_p, C.c_size_t, C.c_int
    _sig(lib, "fe_version", C.c_char_p)
    _sig(lib, "fe_abi_version", C.c_int)
    _sig(lib, "fe_status_name", C.c_char_p, st)
    _sig(lib, "fe_last_error", C.c_char_p)
    _sig(lib, "fe_backend_available", C.c_int, C.c_char_p)
    _sig(lib, "fe_options_create", st, C.POINTER(vp))
    _sig(lib, "fe_options_free", None, vp)
    _sig(lib, "fe_options_set", st, vp, C.c_char_p, C.c_char_p)
    _sig(lib, "fe_model_open", st, C.c_char_p, C.c_char_p, C.c_char_p, vp, C.POINTER(vp))
    _sig(lib, "fe_model_free", None, vp)
    _sig(lib, "fe_model_num_classes", sz, vp)
    _sig(lib, "fe_model_label", C.c_char_p, vp, sz)
    _sig(lib, "fe_model_is_video", C.c_int, vp)
    _sig(lib, "fe_model_clip_length", C.c_int, vp)
    _sig(lib, "fe_model_predict", st, vp, C.POINTER(Image), sz, C.POINTER(vp))
    _sig(lib, "fe_model_predict_clips", st, vp, C.POINTER(Image), sz, C.POINTER(vp))
    _sig(lib, "fe_prediction_free", None, vp)
    _sig(lib, "fe_prediction_count", sz, vp)
    _sig(lib, "fe_prediction_num_classes", sz, vp)
    _sig(lib, "fe_prediction_probs", C.POINTER(C.c_float), vp, sz)
    _sig(lib, "fe_prediction_raw", C.POINTER(C.c_float), vp, sz)
    _sig(lib, "fe_prediction_uncertainty", C.c_int, vp, sz, C.POINTER(C.c_float))
    _sig(lib, "fe_pipeline_create", st, vp, vp, C.POINTER(vp))
    _sig(lib, "fe_pipeline_free", None, vp)
    _sig(lib, "fe_pipeline_process", st, vp, C.POINTER(Image), C.POINTER(sz))
    _sig(lib, "fe_pipeline_face", C.POINTER(Face), vp, sz)
    _sig(lib, "fe_pipeline_reset", st, vp)
    _sig(lib, "fe_pipeline_stage_seconds", C.c_double, vp, C.c_char_p)
    _sig(lib, "fe_pipeline_frames", C.c_uint64, vp)
    return lib


def _check(lib, status: int) -> None:
    if status:
        raise CError(lib.fe_status_name(status).decode(), lib.fe_last_error().decode())


def image(array: np.ndarray) -> Image:
    """A view of a uint8 HxWx3 (BGR) or HxW (gray) array; the array must outlive the call."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or array.strides[-1] != (1 if array.ndim == 2 else 1):
        raise ValueError("expected a uint8 image with contiguous pixels")
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.ndim == 3 and array.strides[1] != channels:
        raise ValueError("pixels of a row must be contiguous")
    return Image(array.ctypes.data, array.shape[1], array.shape[0], array.strides[0], channels)


class Options:
    def __init__(self, lib, values: dict | None = None):
        self.lib, self.handle = lib, C.c_void_p()
        _check(lib, lib.fe_options_create(C.byref(self.handle)))
        for k, v in (values or {}).items():
            _check(lib, lib.fe_options_set(self.handle, str(k).encode(), str(v).encode()))

    def __del__(self):
        self.lib.fe_options_free(self.handle)


def _rows(lib, pred, n_classes):
    count = lib.fe_prediction_count(pred)
    probs = np.array([np.ctypeslib.as_array(lib.fe_prediction_probs(pred, i), (n_classes,)) for i in range(count)],
                     np.float32).reshape(count, n_classes)
    raw = np.array([np.ctypeslib.as_array(lib.fe_prediction_raw(pred, i), (n_classes,)) for i in range(count)],
                   np.float32).reshape(count, n_classes)
    unc = C.c_float()
    uncertainty = [float(unc.value) if lib.fe_prediction_uncertainty(pred, i, C.byref(unc)) else None
                   for i in range(count)]
    return probs, raw, uncertainty


class Model:
    def __init__(self, lib, path, backend: str | None = "openvino", device: str | None = "cpu",
                 options: dict | None = None):
        self.lib, self.handle = lib, C.c_void_p()
        opts = Options(lib, options)
        _check(lib, lib.fe_model_open(str(path).encode(), backend and backend.encode(), device and device.encode(),
                                      opts.handle, C.byref(self.handle)))
        self.labels = [lib.fe_model_label(self.handle, i).decode() for i in range(lib.fe_model_num_classes(self.handle))]

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.fe_model_free(self.handle)

    def _call(self, fn, arrays, count):
        keep = [np.ascontiguousarray(a) for a in arrays]
        images = (Image * max(len(keep), 1))(*[image(a) for a in keep])
        pred = C.c_void_p()
        _check(self.lib, fn(self.handle, images, count, C.byref(pred)))
        try:
            return _rows(self.lib, pred, len(self.labels))
        finally:
            self.lib.fe_prediction_free(pred)

    def predict(self, crops):
        """(probs (N, C), raw (N, C), uncertainty list)."""
        return self._call(self.lib.fe_model_predict, crops, len(crops))

    def predict_clips(self, clips):
        frames = [f for clip in clips for f in clip]
        return self._call(self.lib.fe_model_predict_clips, frames, len(clips))


class Pipeline:
    def __init__(self, model: Model, options: dict | None = None):
        self.lib, self.model, self.handle = model.lib, model, C.c_void_p()
        opts = Options(self.lib, options)
        _check(self.lib, self.lib.fe_pipeline_create(model.handle, opts.handle, C.byref(self.handle)))

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.fe_pipeline_free(self.handle)

    def process_raw(self, frame: np.ndarray) -> int:
        frame = np.ascontiguousarray(frame)
        n = C.c_size_t()
        _check(self.lib, self.lib.fe_pipeline_process(self.handle, C.byref(image(frame)), C.byref(n)))
        return n.value

    def __call__(self, frame: np.ndarray) -> list[dict]:
        return [self._face(i) for i in range(self.process_raw(frame))]

    def _face(self, i: int) -> dict:
        f = self.lib.fe_pipeline_face(self.handle, i).contents
        n = f.num_classes
        d = {"track_id": f.track_id, "box": np.array(f.box[:], np.float32), "score": f.score,
             "keypoints": np.array(f.keypoints[:], np.float32).reshape(6, 2), "label": f.label_name.decode(),
             "label_index": f.label, "confidence": f.confidence, "probs": None, "smoothed_probs": None,
             "uncertainty": f.uncertainty if f.has_uncertainty else None}
        if f.probs:
            d["probs"] = np.ctypeslib.as_array(f.probs, (n,)).copy()
            d["smoothed_probs"] = np.ctypeslib.as_array(f.smoothed_probs, (n,)).copy()
        if f.clip_length:
            d["clip"] = {"frames": f.clip_frames, "length": f.clip_length, "new": bool(f.clip_new)}
        return d

    def reset(self) -> None:
        _check(self.lib, self.lib.fe_pipeline_reset(self.handle))

    def stage_seconds(self, stage: str) -> float:
        return self.lib.fe_pipeline_stage_seconds(self.handle, stage.encode())

    @property
    def frames(self) -> int:
        return self.lib.fe_pipeline_frames(self.handle)
