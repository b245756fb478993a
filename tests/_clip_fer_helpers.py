"""Helpers shared by test_ceprompt.py and test_ua_fer.py (golden loading, ONNX parity, official names)."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from fer_edge.models.clip_common import ClipArch

# A CLIP small enough to build in milliseconds; context length and vocabulary stay CLIP's.
TINY = ClipArch(image_size=32, patch_size=8, vision_width=64, vision_layers=3, vision_heads=2,
                text_width=32, text_layers=2, text_heads=2, embed_dim=16)


def fill_tensors(fill_module, keys_tsv) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in fill_module.fill_state_dict(fill_module.read_keys(keys_tsv)).items()}


def official_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict -> the authors' names (inverse of ceprompt.checkpoint_filter_fn)."""
    out = {}
    for k, v in sd.items():
        if k == "visual.proj":
            out["projection_dist"] = v
        elif k.startswith("visual."):
            out[k[len("visual."):]] = v
        elif k != "class_embeddings":  # the authors' files hold no text features
            out[k] = v
    return out


def onnx_parity(module, path, output_names, batches=(1, 3), size=224) -> float:
    """Export `module` with a dynamic batch (opset 17) and return max |ORT - PyTorch| over `batches`."""
    import onnxruntime as ort

    x = torch.randn(2, 3, size, size)
    with warnings.catch_warnings():  # tracer warnings about shape checks inside nn.MultiheadAttention
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=list(output_names),
                          dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in output_names}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == list(output_names)
    worst = 0.0
    gen = torch.Generator().manual_seed(3)
    for b in batches:
        xb = torch.randn(b, 3, size, size, generator=gen)
        got = sess.run(None, {"input": xb.numpy()})
        with torch.no_grad():
            ref = module(xb)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for g, r in zip(got, ref):
            assert g.shape == tuple(r.shape) and g.shape[0] == b
            worst = max(worst, float(np.abs(g - r.numpy()).max()))
    return worst


def save_tiny_clip(path, seed: int = 1):
    """A random open_clip CLIP with TINY's shapes saved as an OpenCLIP state dict; returns (path, model)."""
    import open_clip

    torch.manual_seed(seed)
    clip = open_clip.CLIP(embed_dim=TINY.embed_dim,
                          vision_cfg=dict(image_size=TINY.image_size, patch_size=TINY.patch_size,
                                          width=TINY.vision_width, layers=TINY.vision_layers, head_width=32),
                          text_cfg=dict(context_length=77, vocab_size=49408, width=TINY.text_width,
                                        heads=TINY.text_heads, layers=TINY.text_layers), quick_gelu=True)
    torch.save(clip.state_dict(), path)
    return path, clip
