"""OpenVINO INT8 with NNCF: post-training quantization of the IR, or accuracy-controlled quantization.

``nncf.quantize`` inserts FakeQuantize ops that OpenVINO's CPU/GPU/NPU plugins run as int8;
``model_type=TRANSFORMER`` keeps softmax/layer norm in float and uses the transformer-friendly scheme
for attention graphs. With labelled validation faces and a drop budget,
``nncf.quantize_with_accuracy_control`` reverts the most harmful layers to float until top-1 is
within the budget (NNCF's own ranking, the OpenVINO side of :mod:`.sensitivity`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from ..export.progress import Counter, ProgressFn
from .targets import Int8Artifact, Int8Target, int8_metadata


def _read_fp32(fp32: Path):
    ov = require("openvino", "openvino", "OpenVINO INT8")
    return ov, (ov.Core().read_model(str(fp32)) if fp32.suffix == ".xml" else ov.convert_model(str(fp32)))


def _save(ov, model, out: Path, meta) -> None:
    from ..metadata import attach_to_openvino

    attach_to_openvino(model, meta)
    ov.save_model(model, str(out), compress_to_fp16=False)


class NncfOpenVinoTarget(Int8Target):
    name = "openvino"
    fp32_format = "openvino"
    suffix = "int8_openvino.xml"

    def _common(self, transformer: bool, exclude: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        nncf = require("nncf", "export", "OpenVINO INT8")
        kw: dict[str, Any] = {}
        if transformer:
            kw["model_type"] = nncf.ModelType.TRANSFORMER
        if exclude:
            kw["ignored_scope"] = nncf.IgnoredScope(names=list(exclude), validate=False)
        settings = {"quantizer": f"nncf {nncf.__version__}", "model_type": "transformer" if transformer else "default",
                    "activations": "int8 (NNCF preset)", "weights": "int8 symmetric per-channel"}
        return kw, settings

    def _calibration(self, nncf, calib: np.ndarray, progress: ProgressFn | None):
        """The calibration faces one by one, counted as NNCF takes them (every statistics pass)."""
        counter = self.calibration_counter(progress, len(calib))

        def take(item):
            counter.advance()
            return item

        return nncf.Dataset([calib[i:i + 1] for i in range(len(calib))], take)

    def quantize(self, fp32, out, calib, meta, *, exclude=(), transformer=False, calib_source="",
                 progress=None) -> Int8Artifact:
        nncf = require("nncf", "export", "OpenVINO INT8")
        ov, model = _read_fp32(Path(fp32))
        kw, settings = self._common(transformer, list(exclude) + (head_layers(model) if transformer else []))
        start = time.perf_counter()
        q = nncf.quantize(model, self._calibration(nncf, calib, progress), subset_size=len(calib), **kw)
        seconds = time.perf_counter() - start
        _save(ov, q, Path(out), int8_metadata(meta, self.name, calib_source, len(calib), list(exclude), settings))
        return Int8Artifact(self.name, Path(out), seconds, list(exclude), settings)

    def quantize_with_accuracy_control(self, fp32, out, calib, meta, val_x: np.ndarray, val_y: np.ndarray,
                                       max_drop_points: float, *, transformer=False, calib_source="",
                                       progress: ProgressFn | None = None) -> Int8Artifact:
        """NNCF's accuracy-aware quantization: top-1 on `val_x`/`val_y` may fall by at most `max_drop_points`.

        `progress` also gets the validation faces NNCF evaluates, counted in passes of len(val_x) (NNCF
        evaluates the whole set, then subsets while it ranks and restores layers)."""
        nncf = require("nncf", "export", "OpenVINO INT8")
        ov, model = _read_fp32(Path(fp32))
        kw, settings = self._common(transformer, head_layers(model) if transformer else [])
        items = [(val_x[i:i + 1], int(val_y[i])) for i in range(len(val_x))]
        checked = Counter(progress, f"INT8 {self.name}: accuracy-control validation", len(items))

        def validate(compiled, data) -> float:
            out_port = compiled.output(0)
            hits = [int(np.argmax(compiled(x)[out_port]) == y) for x, y in checked.each(data)]
            return float(np.mean(hits))

        start = time.perf_counter()
        q = nncf.quantize_with_accuracy_control(
            model, self._calibration(nncf, calib, progress),
            nncf.Dataset(items, lambda item: item[0]), validate,
            max_drop=max_drop_points / 100.0, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calib), **kw)
        seconds = time.perf_counter() - start
        floats = float_layers_of(model, q)
        settings = {**settings, "accuracy_control": f"nncf.quantize_with_accuracy_control, max_drop {max_drop_points} points"}
        _save(ov, q, Path(out), int8_metadata(meta, self.name, calib_source, len(calib), floats, settings))
        return Int8Artifact(self.name, Path(out), seconds, floats, settings)

    def layer_names(self, fp32: Path) -> list[str]:
        _, model = _read_fp32(Path(fp32))
        return [op.get_friendly_name() for op in model.get_ops()
                if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul")]


def head_layers(model) -> list[str]:
    """MatMul/Convolution layers between the last layer norm (MVN) and the outputs: the transformer's head
    (the final scaling) stays float, as in the ONNX targets. Besides accuracy, OpenVINO 2026.4's CPU plugin
    compiled CLIP heads with quantized cosine MatMuls into a wrong output rank ([1, batch, classes])."""
    names, seen, bounded = [], set(), False
    stack = [r.input_value(0).get_node() for r in model.get_results()]
    while stack:
        node = stack.pop()
        if node.get_type_name() in ("Parameter", "Softmax"):
            return []  # a path without a layer norm, or attention after it: not a head
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        if node.get_type_name() == "MVN":
            bounded = True
            continue
        if node.get_type_name() in ("MatMul", "Convolution"):
            names.append(node.get_friendly_name())
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    return names if bounded else []


def float_layers_of(fp32_model, int8_model) -> list[str]:
    """Conv/MatMul layers of the INT8 IR whose weights are not fed by a FakeQuantize (kept in float)."""
    names = []
    for op in int8_model.get_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        srcs = [op.input_value(i).get_node() for i in range(op.get_input_size())]
        if not any(s.get_type_name() in ("FakeQuantize", "Convert", "Multiply", "Subtract") and
                   _has_int8_path(s) for s in srcs):
            names.append(op.get_friendly_name())
    return names


def _has_int8_path(node, depth: int = 4) -> bool:
    """True if a FakeQuantize or an int8/uint8 constant lies within a few hops upstream."""
    if depth == 0:
        return False
    if node.get_type_name() == "FakeQuantize":
        return True
    if node.get_type_name() == "Constant" and str(node.get_element_type()) in ("i8", "u8", "<Type: 'int8_t'>"):
        return True
    return any(_has_int8_path(node.input_value(i).get_node(), depth - 1) for i in range(node.get_input_size()))
