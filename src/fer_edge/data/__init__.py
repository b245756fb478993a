"""Readers of the face data sets used for measuring, calibrating and training (numpy only, no torch)."""
from .fer2013 import FaceSet, data_root, load_fer2013, load_ferplus

__all__ = ["FaceSet", "data_root", "load_fer2013", "load_ferplus"]
