"""Uploaded bytes -> a BGR frame, refusing what is not a JPEG/PNG or has too many pixels.

The pixel count is read from the file's header before decoding, so a small file that would decode to
a huge image (a "decompression bomb") is refused without allocating it. Decoding uses the same OpenCV
call as ``fer-edge run`` on an image file, so the server sees the same pixels.
"""
from __future__ import annotations

import struct

import numpy as np

from .errors import RequestError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): they carry the image size
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG or PNG header; RequestError 415 for any other kind of file."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise RequestError(400, "the PNG is truncated or corrupt (no IHDR header)")
        return struct.unpack(">II", data[16:24])
    if data.startswith(JPEG_MAGIC):
        return _jpeg_size(data)
    raise RequestError(415, "the upload is not a JPEG or PNG image; send image/jpeg or image/png bytes")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise RequestError(400, "the JPEG is truncated or corrupt (no frame header with its size)")


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """JPEG/PNG bytes -> BGR uint8 (EXIF rotation applied, as `fer-edge run` reads files)."""
    from ..vision.sources import decode_image_bytes

    if not data:
        raise RequestError(400, "the request has no image: send JPEG or PNG bytes")
    width, height = image_size(data)
    if width <= 0 or height <= 0:
        raise RequestError(400, f"the image header says {width}x{height} pixels: the file is corrupt")
    if width * height > max_pixels:
        raise RequestError(413, f"the image is {width}x{height} = {width * height} pixels, over this server's "
                                f"limit of {max_pixels}; send a smaller image")
    image = decode_image_bytes(data)
    if image is None:
        raise RequestError(400, "the image could not be decoded: the file is truncated or corrupt")
    return image
