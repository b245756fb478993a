"""The one preprocessing implementation, numpy/OpenCV, driven by :class:`InputSpec`.

Every backend feeds its engine with the output of :func:`preprocess_images` (or
:func:`preprocess_clips` for video models), so the same face crop becomes the same tensor whether it
runs on PyTorch, ONNX Runtime, OpenVINO or TensorRT.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .errors import FerEdgeError
from .metadata import InputSpec

_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


def as_image_list(images) -> list[np.ndarray]:
    """Accept a list of HxWx3 / HxW uint8 crops, an NHWC uint8 array, an (N, H, W) stack of gray
    crops, or one HxWx3 image."""
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        if images.ndim == 3 and images.shape[-1] in (1, 3):
            return [images]
        if images.ndim == 3:
            return list(images)  # (N, H, W) gray crops, e.g. FER2013's 48x48 faces
        if images.ndim == 2:
            return [images]
        raise FerEdgeError(
            f"expected face crops as an NHWC uint8 array or a list of HxWx3 images, got an array of shape {images.shape}"
        )
    if isinstance(images, (list, tuple)):
        if not images:
            raise FerEdgeError("no images given: pass at least one face crop")
        return [np.asarray(im) for im in images]
    raise FerEdgeError(f"expected face crops (numpy arrays), got {type(images).__name__}")


def _to_color(img: np.ndarray, color: str) -> np.ndarray:
    if img.dtype != np.uint8:
        raise FerEdgeError(f"face crops must be uint8 BGR images (0-255), got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img if color == "GRAY" else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if color == "BGR" else cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise FerEdgeError(f"face crops must be HxWx3 BGR or HxW gray, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise FerEdgeError("a face crop is empty (0 pixels)")
    if color == "GRAY":
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if color == "RGB":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def preprocess_one(img: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One BGR uint8 crop -> float32 CHW tensor for this spec."""
    img = _to_color(np.asarray(img), spec.color)
    h, w = spec.size
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=_INTERP[spec.resize])
    x = img.astype(np.float32) * np.float32(spec.scale)
    if x.ndim == 2:
        x = x[None]
    else:
        x = x.transpose(2, 0, 1)
    mean = np.asarray(spec.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(-1, 1, 1)
    return (x - mean) / std


def preprocess_images(images, spec: InputSpec) -> np.ndarray:
    """Face crops -> (N, C, H, W) float32."""
    if spec.layout != "NCHW":
        raise FerEdgeError("this is a video model: pass clips of frames (predict_clips), not single images")
    return np.stack([preprocess_one(im, spec) for im in as_image_list(images)])


def preprocess_clips(clips: Sequence, spec: InputSpec) -> np.ndarray:
    """Clips of face crops -> (N, T, C, H, W) float32; each clip must have `spec.frames` frames."""
    if spec.layout != "NTCHW":
        raise FerEdgeError("this is an image model: pass face crops (predict), not clips")
    if isinstance(clips, np.ndarray) and clips.ndim == 4:
        clips = [clips]
    out = []
    for clip in clips:
        frames = as_image_list(clip)
        if len(frames) != spec.frames:
            raise FerEdgeError(f"a clip must have {spec.frames} frames for this model, got {len(frames)}")
        out.append(np.stack([preprocess_one(f, spec) for f in frames]))
    if not out:
        raise FerEdgeError("no clips given")
    return np.stack(out)
