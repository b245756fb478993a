"""Face data for measuring, calibrating and training (numpy only, no torch).

* :mod:`.faces`: `load_faces(spec)` -> :class:`FaceSet` of aligned crops from a dataset spec
  (``fer2013:train``), an npz, or a folder of photos run through the runtime's detector and aligner;
  used by export verification, INT8 calibration, accuracy reports and benchmarks.
* :mod:`.fer2013`: the FER2013 / FER+ npz files as arrays (:class:`FerSplit`).
* :mod:`.catalog`: training data sets (RAF-DB, AffectNet, CAER-S, folders, video lists) as
  :class:`~.samples.FaceSamples` for the trainer.
"""
from .faces import FaceSet, builtin_faces, load_faces
from .fer2013 import FerSplit, data_root, load_fer2013, load_ferplus

__all__ = ["FaceSet", "FerSplit", "builtin_faces", "data_root", "load_faces", "load_fer2013", "load_ferplus"]
