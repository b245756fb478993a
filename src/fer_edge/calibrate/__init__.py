"""INT8 calibration: real faces in (:mod:`.data`), one quantizer per target behind one interface
(:mod:`.targets`), accuracy-drop reports (:mod:`.report`) and sensitive-layer fallback
(:mod:`.sensitivity`). There is no random calibration anywhere: no data, no INT8."""
from .data import FaceSet, load_faces

__all__ = ["FaceSet", "load_faces"]
