import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.metadata import ArtifactMetadata, InputSpec, OutputSpec
from fer_edge.postprocess import evidential, softmax, to_probabilities
from fer_edge.preprocess import preprocess_clips, preprocess_images


def _meta(**kw):
    return ArtifactMetadata(method="m", labels=["a", "b", "c"], **kw)


def test_json_round_trip_is_identical():
    m = _meta(input=InputSpec(size=(64, 48), color="GRAY", mean=(0.5,), std=(0.5,)),
              output=OutputSpec(kind="evidence", extra=("uncertainty",)), extra={"k": [1, 2]})
    back = ArtifactMetadata.from_json(m.to_json())
    assert back == m
    assert back.input.size == (64, 48) and back.output.extra == ("uncertainty",)


def test_newer_schema_is_refused_with_advice():
    d = _meta().to_dict()
    d["schema_version"] = 99
    with pytest.raises(FerEdgeError, match="upgrade fer-edge"):
        ArtifactMetadata.from_dict(d)


@pytest.mark.parametrize("field,value", [("color", "CMYK"), ("layout", "NHWC"), ("resize", "lanczos9")])
def test_bad_input_spec_is_named(field, value):
    d = _meta().to_dict()
    d["input"][field] = value
    with pytest.raises(FerEdgeError, match=field):
        ArtifactMetadata.from_dict(d)


def test_preprocess_gray_minus_one_to_one():
    spec = InputSpec(size=(4, 4), color="GRAY", mean=(0.5,), std=(0.5,))
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0] = 255
    x = preprocess_images([img], spec)
    assert x.shape == (1, 1, 4, 4) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == pytest.approx(1.0) and x[0, 0, 1, 1] == pytest.approx(-1.0)


def test_preprocess_rgb_order_and_imagenet_norm():
    spec = InputSpec(size=(2, 2), color="RGB", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    bgr = np.zeros((1, 2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    x = preprocess_images(bgr, spec)
    assert x[0, 2, 0, 0] == pytest.approx((1 - 0.406) / 0.225, rel=1e-5)  # blue lands in channel 2
    assert x[0, 0, 0, 0] == pytest.approx((0 - 0.485) / 0.229, rel=1e-5)


def test_preprocess_rejects_float_and_wrong_clip_length():
    with pytest.raises(FerEdgeError, match="uint8"):
        preprocess_images([np.zeros((8, 8, 3), np.float32)], InputSpec())
    spec = InputSpec(layout="NTCHW", frames=4, size=(8, 8))
    clip = [np.zeros((10, 10, 3), np.uint8)] * 3
    with pytest.raises(FerEdgeError, match="4 frames"):
        preprocess_clips([clip], spec)
    assert preprocess_clips([clip + clip[:1]], spec).shape == (1, 4, 3, 8, 8)


def test_softmax_and_evidential_by_hand():
    p = softmax(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]], rtol=1e-6)
    probs, u = evidential(np.array([[2.0, 0.0, 0.0]]))  # alpha = (3,1,1), S = 5
    np.testing.assert_allclose(probs, [[0.6, 0.2, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(u, [0.6], rtol=1e-6)  # K / S = 3 / 5
    with pytest.raises(FerEdgeError):
        to_probabilities(np.zeros((2, 3)), "features")


def test_preprocess_accepts_a_stack_of_gray_crops():
    spec = InputSpec(size=(8, 8), color="GRAY", mean=(0.5,), std=(0.5,))
    x = preprocess_images(np.zeros((5, 48, 48), np.uint8), spec)
    assert x.shape == (5, 1, 8, 8)
