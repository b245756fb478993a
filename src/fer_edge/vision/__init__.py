"""The live side: face detection, alignment, tracking, smoothing, drawing and frame sources.

Only numpy, OpenCV and ONNX Runtime: nothing here imports PyTorch, so the default pipeline runs on a
core install.
"""
