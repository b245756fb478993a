"""Parity of an exported artifact with the PyTorch module it came from, on real faces.

The artifact is run the way users run it (``fer_edge.load(...).run``) at the full batch and at
batch 1 (the dynamic batch must really be dynamic), and compared with PyTorch on the same tensors.
Above tolerance this raises :class:`FerEdgeError` with the numbers: a wrong artifact never ships.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FerEdgeError
from ..metadata import ArtifactMetadata

# (atol, rtol) on the primary output, by artifact precision
TOLERANCE = {"fp32": (1e-4, 1e-4), "fp16": (2e-2, 2e-2)}


def full_precision(artifact: str | Path, backend: str | None) -> dict[str, Any]:
    """Backend options that run float layers in fp32: OpenVINO otherwise picks bf16 on CPUs that have
    it, which is a deployment choice, not an export error."""
    from ..runtimes import backend_for_path

    return {"precision": "fp32"} if (backend or backend_for_path(artifact)) == "openvino" else {}


def torch_outputs(module, x: np.ndarray, meta: ArtifactMetadata) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    if isinstance(out, dict):
        out = out[meta.output.name]
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out.float().cpu().numpy()


def compare(ref: np.ndarray, got: np.ndarray, *, atol: float, rtol: float) -> dict[str, Any]:
    from ..postprocess import to_probabilities

    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    bound = atol + rtol * float(np.abs(ref).max())
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "bound": bound,
            "top1_agreement": float(np.mean(ref.argmax(-1) == got.argmax(-1))) if ref.ndim == 2 else None,
            "ok": bool(diff.max() <= bound)}


def check_parity(module, meta: ArtifactMetadata, artifact: str | Path, x: np.ndarray, *,
                 backend: str | None = None, precision: str = "fp32", reference: np.ndarray | None = None,
                 raise_on_fail: bool = True) -> dict[str, Any]:
    """Compare `artifact` with `module` on inputs `x` (preprocessed real faces)."""
    import fer_edge

    if len(x) < 2:
        raise FerEdgeError("parity needs at least 2 real faces (to check the dynamic batch too)")
    atol, rtol = TOLERANCE[precision]
    ref = reference if reference is not None else torch_outputs(module, x, meta)
    # pair=False: one graph of a video model's split is checked alone, against its own module
    model = fer_edge.load(str(artifact), device="cpu", backend=backend, pair=False, **full_precision(artifact, backend))
    full = np.asarray(model.run(x)[meta.output.name])
    single = np.asarray(model.run(x[:1])[meta.output.name])
    res = compare(ref, full, atol=atol, rtol=rtol)
    res_single = compare(ref[:1], single, atol=atol, rtol=rtol)
    result = {"artifact": Path(artifact).name, "backend": model.backend, "faces": int(len(x)),
              "precision": precision, "atol": atol, "rtol": rtol, **res,
              "batch1_max_abs_diff": res_single["max_abs_diff"], "ok": res["ok"] and res_single["ok"]}
    if raise_on_fail and not result["ok"]:
        raise FerEdgeError(
            f"{Path(artifact).name} does not match PyTorch on {len(x)} real faces: max |diff| "
            f"{max(res['max_abs_diff'], res_single['max_abs_diff']):.3g} > {res['bound']:.3g} "
            f"(atol {atol}, rtol {rtol}; batch-1 max |diff| {res_single['max_abs_diff']:.3g}); the export is wrong"
        )
    return result


def check_folded(reference, deploy, meta: ArtifactMetadata, x: np.ndarray, *, atol: float = 1e-4,
                 rtol: float = 1e-4) -> dict[str, Any] | None:
    """The deploy graph (text side folded into constants) against the full model, on real faces.

    `reference` is the deployed graph's declared reference (:class:`fer_edge.models.deployment.Graph`):
    what the unfolded model computes for the graph's output (UA-FER: evidence and uncertainty). None
    when its output has another shape than the deploy graph's primary output (then the model's own
    tests own that equality)."""
    ref = torch_outputs(reference, x, meta)
    got = torch_outputs(deploy, x, meta)
    if ref.shape != got.shape:
        return None
    res = {"artifact": "deploy graph (folded) vs full model", "backend": "torch", "faces": int(len(x)),
           "precision": "fp32", "atol": atol, "rtol": rtol, **compare(ref, got, atol=atol, rtol=rtol)}
    if not res["ok"]:
        raise FerEdgeError(f"the folded deploy graph of {meta.method} differs from the full model on {len(x)} real "
                           f"faces: max |diff| {res['max_abs_diff']:.3g} > {res['bound']:.3g}")
    return res
