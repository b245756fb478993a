"""Triton Inference Server model repositories from fer-edge artifacts (`fer-edge triton-repo`).

``build_repository(["model.onnx"], Path("repo"), Serving())`` writes the classifier with a
generated config.pbtxt (onnxruntime, openvino, tensorrt_plan, or python running fer-edge), the face
pipeline as a python-backend model that classifies by BLS, and a README saying how to start Triton.
Writing needs no Triton package; the models' python code runs inside Triton.
"""
from __future__ import annotations

from .configs import Serving
from .repository import FACES_MODEL, Repository, build_repository

__all__ = ["Serving", "Repository", "build_repository", "FACES_MODEL"]
