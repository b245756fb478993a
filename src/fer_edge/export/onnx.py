"""PyTorch -> ONNX: opset >= 17, dynamic batch, onnxslim simplification, fer-edge metadata inside.

The TorchScript-based exporter is tried first (fast, one self-contained file); the dynamo exporter
is the fallback for modules it cannot trace. The result is one ``.onnx`` file without external data
(every model we ship is far below protobuf's 2 GB limit), so an artifact is always a single file.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from ..errors import FerEdgeError, require
from ..metadata import ArtifactMetadata, attach_to_onnx

MIN_OPSET = 17


def output_names(meta: ArtifactMetadata) -> list[str]:
    return [meta.output.name, *meta.output.extra]


def example_input(meta: ArtifactMetadata, batch: int = 2):
    """A correctly shaped tracing input for an image or clip graph (its values do not matter for
    tracing; parity uses real faces). Graphs whose input is not pixels (a temporal head over frame
    features) pass their own ``example`` to :func:`export_onnx`."""
    import torch

    gen = torch.Generator().manual_seed(0)
    return torch.randn(*meta.input.shape(batch), generator=gen)


def _export_torchscript(module, x, in_name: str, out_names: list[str], opset: int) -> bytes:
    import torch

    buf = io.BytesIO()
    axes = {in_name: {0: "batch"}, **{n: {0: "batch"} for n in out_names}}
    # its TracerWarnings go wherever warnings go: during `fer-edge export`, the export log
    torch.onnx.export(module, (x,), buf, dynamo=False, opset_version=opset, input_names=[in_name],
                      output_names=out_names, dynamic_axes=axes, do_constant_folding=True)
    return buf.getvalue()


def _export_dynamo(module, x, in_name: str, out_names: list[str], opset: int):
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset, input_names=[in_name],
                                output_names=out_names, dynamic_shapes=({0: batch},), external_data=False)
    return program.model_proto


def export_onnx(module, meta: ArtifactMetadata, path: str | Path, *, opset: int = MIN_OPSET,
                simplify: bool = True, example=None) -> Path:
    """Write `module` (eval mode) as ONNX with a dynamic batch and `meta` embedded; return the path.

    `example`: a tracing input (batch >= 2) for graphs whose input the InputSpec does not describe as
    pixels, e.g. a feature sequence; by default one is made from ``meta.input``."""
    onnx = require("onnx", "export", "ONNX export")
    import torch

    if opset < MIN_OPSET:
        raise FerEdgeError(f"--opset {opset} is too old: fer-edge exports opset {MIN_OPSET} or newer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = example_input(meta) if example is None else example
    in_name, out_names = meta.input.name, output_names(meta)
    errors = []
    proto = None
    with torch.no_grad():
        for exporter in (_export_torchscript, _export_dynamo):
            try:
                got = exporter(module, x, in_name, out_names, opset)
                proto = onnx.load_from_string(got) if isinstance(got, bytes) else got
                break
            except Exception as exc:  # exporter internals raise many types; both failures are reported
                errors.append(f"{exporter.__name__.strip('_')}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    if proto is None:
        raise FerEdgeError(f"{meta.method} could not be exported to ONNX ({'; '.join(errors)})")
    if simplify:
        proto = simplify_onnx(proto)
    _name_batch_dims(proto)
    attach_to_onnx(proto, meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def simplify_onnx(proto):
    """onnxslim (constant folding, dead-code and redundant-op removal); the input graph if it fails."""
    try:
        import onnxslim
    except ImportError:  # the export extra brings it; without it the graph is only less tidy
        return proto
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return onnxslim.slim(proto)
    except Exception as exc:  # noqa: BLE001 - a simplifier bug must not block an export
        warnings.warn(f"onnxslim could not simplify the graph ({exc}); keeping it as exported")
        return proto


def _name_batch_dims(proto) -> None:
    """Make the first dimension of every input and output the symbolic ``batch``."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def read_onnx_metadata(path: str | Path) -> ArtifactMetadata | None:
    import onnx

    from ..metadata import METADATA_KEY

    proto = onnx.load(str(path), load_external_data=False)
    for p in proto.metadata_props:
        if p.key == METADATA_KEY:
            return ArtifactMetadata.from_json(p.value)
    return None


def rewrite_onnx_metadata(path: str | Path, meta: ArtifactMetadata) -> None:
    """Replace the metadata of an ONNX file in place (e.g. after a quantizer dropped or kept it)."""
    import onnx

    proto = onnx.load(str(path))
    attach_to_onnx(proto, meta)
    onnx.save(proto, str(path))
