"""OpenVINO IR (FP32, and FP16-compressed weights) from the exported ONNX or the PyTorch module."""
from __future__ import annotations

from pathlib import Path

from ..errors import FerEdgeError, require
from ..metadata import ArtifactMetadata, attach_to_openvino


def export_openvino(source, meta: ArtifactMetadata, xml_path: str | Path, *, fp16: bool = False,
                    example_input=None) -> Path:
    """Write an IR (``.xml`` + ``.bin``) with `meta` in its rt_info.

    `source` is an ONNX path (the usual route: the IR then equals the verified ONNX graph) or a
    torch module (``example_input`` required). ``fp16`` stores weights in FP16 (half the size); the
    CPU plugin still computes in FP32 (or bf16 where the CPU has it), GPU/NPU in FP16.
    """
    ov = require("openvino", "openvino", "OpenVINO export")
    xml_path = Path(xml_path)
    if xml_path.suffix != ".xml":
        raise FerEdgeError(f"an OpenVINO IR path must end in .xml, got {xml_path.name}")
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(source, (str, Path)):
            model = ov.convert_model(str(source))
        else:
            model = ov.convert_model(source, example_input=example_input)
    except Exception as exc:  # OpenVINO's conversion errors are long C++ texts
        raise FerEdgeError(f"OpenVINO could not convert {meta.method}: {str(exc).strip().splitlines()[0][:300]}") from None
    attach_to_openvino(model, meta.replace(precision="fp16" if fp16 else "fp32"))
    ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    return xml_path


def read_openvino_metadata(xml_path: str | Path) -> ArtifactMetadata | None:
    from ..metadata import METADATA_KEY

    ov = require("openvino", "openvino")
    model = ov.Core().read_model(str(xml_path))
    if not model.has_rt_info([METADATA_KEY]):
        return None
    return ArtifactMetadata.from_json(str(model.get_rt_info([METADATA_KEY]).astype(str)))
