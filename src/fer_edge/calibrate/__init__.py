"""INT8 calibration: one quantizer per target behind one interface (:mod:`.targets`), accuracy-drop
reports (:mod:`.report`) and sensitive-layer fallback (:mod:`.sensitivity`). Calibration faces come from
:mod:`fer_edge.data.faces` (real faces only: there is no random calibration anywhere; no data, no INT8)."""
