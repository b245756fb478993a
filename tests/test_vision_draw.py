import numpy as np

from fer_edge.vision.draw import draw_face


def _drawn(**kw):
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_face(frame, (100, 80, 180, 180), "happy", 0.9, track_id=3, **kw)
    return frame


def test_uncertainty_is_drawn_beside_the_label():
    plain, with_u = _drawn(), _drawn(uncertainty=0.23)
    # the label box above the face grows to hold " u=0.23"; the face box itself is unchanged
    label_cols = lambda f: np.flatnonzero(f[:75].any(axis=(0, 2)))  # noqa: E731
    assert label_cols(with_u).max() > label_cols(plain).max()
    np.testing.assert_array_equal(plain[80:], with_u[80:])


def test_warming_up_face_has_no_confidence_bar():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_face(frame, (100, 80, 180, 180), "warming up 3/16", None)
    bar = frame[184:188, 101:179]
    assert (bar == 60).all()  # only the grey empty bar, no coloured fill
