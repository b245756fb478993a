"""Export: a registered method + checkpoint -> verified ONNX / OpenVINO artifacts (+ INT8 via
:mod:`fer_edge.calibrate`), gathered in one bundle folder per export. Needs the ``export`` extra."""
from .source import ExportSource, load_source

__all__ = ["ExportSource", "load_source"]
