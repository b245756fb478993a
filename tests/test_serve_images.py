"""Upload decoding: the size comes from the header (checked before any pixel is decoded), and the
pixels are those `fer-edge run` reads from the same file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.serve.errors import RequestError
from fer_edge.serve.images import decode_image, image_size


def test_header_size_matches_the_decoded_photo(face_photos):
    for photo in face_photos:
        data = photo.read_bytes()
        image = decode_image(data, 10**9)
        assert image_size(data) == (image.shape[1], image.shape[0])
        np.testing.assert_array_equal(image, cv2.imread(str(photo)))  # what `run` decodes from the file


@pytest.mark.parametrize("ext, params", [(".png", []), (".jpg", []),
                                         (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])])
def test_encoded_sizes(ext, params):
    image = np.random.default_rng(0).integers(0, 255, (37, 91, 3), np.uint8)
    data = cv2.imencode(ext, image, params)[1].tobytes()
    assert image_size(data) == (91, 37)
    assert decode_image(data, 91 * 37).shape == (37, 91, 3)
    with pytest.raises(RequestError, match="over this server's limit") as big:
        decode_image(data, 91 * 37 - 1)
    assert big.value.status == 413


@pytest.mark.parametrize("data, status, message", [
    (b"", 400, "no image"),
    (b"GIF89a....", 415, "not a JPEG or PNG"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", 400, "PNG is truncated"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", 400, "JPEG is truncated"),
    (b"\xff\xd8\xff\xda\x00\x02", 400, "JPEG is truncated"),
])
def test_bad_uploads(data, status, message):
    with pytest.raises(RequestError, match=message) as refused:
        decode_image(data, 10**9)
    assert refused.value.status == status and "\n" not in str(refused.value)


def test_huge_header_is_refused_before_decoding(monkeypatch):
    """A 60000 x 60000 PNG header (10.8 GB of pixels) is refused from its 33 bytes: imdecode never runs."""
    import struct
    import zlib

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))

    def no_decode(*args):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(RequestError, match="60000x60000") as refused:
        decode_image(data, 40_000_000)
    assert refused.value.status == 413
