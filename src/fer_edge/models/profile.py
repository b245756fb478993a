"""Count what a model actually EXECUTES: parameters of the modules that run, and multiply-accumulates.

Papers quote ``thop`` numbers, which count the parameters of every executed leaf module that has a
rule and the MACs of conv/linear/norm modules, but not the matmuls inside attention nor bare
``nn.Parameter``s. To compare with them and to see what an exported graph really costs, this counter
records:

* executed parameters: every parameter owned directly by a module whose ``forward`` ran (so modules
  that are built but never called are excluded, and bare parameters such as position embeddings or
  relative-bias tables are included);
* MACs per op, from the torch functions that run (convolution, linear, matmul/bmm, scaled dot-product
  attention, normalisation affine), so matmuls written inline in a ``forward`` are counted too.

Element-wise ops (activations, adds, softmax) are not MACs and are not counted.

    python -m fer_edge.models.profile poster_v2
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass
class Profile:
    params_total: int  # every parameter the model holds
    params_executed: int  # parameters of modules whose forward ran (incl. bare parameters)
    params_leaf: int  # thop's convention: parameters of executed leaf modules only
    macs: Counter = field(default_factory=Counter)  # op kind -> multiply-accumulates

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def module_macs(self) -> int:
        """MACs thop would see: everything except matmuls written inline (attention products)."""
        return self.total_macs - self.macs["matmul"] - self.macs["attention"]

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v / 1e9:.3f} G" for k, v in sorted(self.macs.items()))
        return (
            f"params: {self.params_executed / 1e6:.3f} M executed ({self.params_leaf / 1e6:.3f} M in leaf modules), "
            f"{self.params_total / 1e6:.3f} M held; MACs: {self.total_macs / 1e9:.3f} G total, "
            f"{self.module_macs / 1e9:.3f} G without attention matmuls ({parts})"
        )


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _conv_macs(args, kwargs, out) -> int:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    return out.numel() * _numel(weight.shape[1:])  # weight is (out, in/groups, *kernel)


def _linear_macs(args, kwargs, out) -> int:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    return out.numel() * int(weight.shape[-1])


def _matmul_macs(args, kwargs, out) -> int:
    return out.numel() * int(args[0].shape[-1])


def _sdpa_macs(args, kwargs, out) -> int:
    q, k = args[0], args[1]
    # q.kT is (..., L, S) with inner size E; attn.v is (..., L, Ev) with inner size S
    return _numel(q.shape[:-1]) * int(k.shape[-2]) * int(q.shape[-1]) + out.numel() * int(k.shape[-2])


def _mha_macs(args, kwargs, out) -> int:
    """F.multi_head_attention_forward on (L, N, E) query and (S, N, E) key: projections + two products."""
    q, k = args[0], args[1]
    (length, batch, dim), source = q.shape, int(k.shape[0])
    proj = batch * (2 * length * dim * dim + 2 * source * dim * dim)  # q, out, k, v projections
    return int(proj + 2 * batch * length * source * dim)


def _affine_macs(weight_pos: int):
    def count(args, kwargs, out) -> int:
        weight = args[weight_pos] if len(args) > weight_pos else kwargs.get("weight")
        return out.numel() if weight is not None else 0
    return count


_RULES = {
    F.conv1d: ("conv", _conv_macs), F.conv2d: ("conv", _conv_macs), F.conv3d: ("conv", _conv_macs),
    F.linear: ("linear", _linear_macs),
    torch.matmul: ("matmul", _matmul_macs), torch.bmm: ("matmul", _matmul_macs),
    torch.Tensor.__matmul__: ("matmul", _matmul_macs), torch.Tensor.matmul: ("matmul", _matmul_macs),
    torch.Tensor.bmm: ("matmul", _matmul_macs),
    F.scaled_dot_product_attention: ("attention", _sdpa_macs),
    F.multi_head_attention_forward: ("attention", _mha_macs),
    F.layer_norm: ("norm", _affine_macs(2)), F.batch_norm: ("norm", _affine_macs(3)),
    F.group_norm: ("norm", _affine_macs(2)),
}


class _MacCounter(TorchFunctionMode):
    """Counts MACs of the torch functions that run (a function without a rule counts 0)."""

    def __init__(self):
        super().__init__()
        self.macs: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = _RULES.get(func)
        if rule is None:
            return out
        kind, count = rule
        self.macs[kind] += int(count(args, kwargs, out))
        return out


@torch.no_grad()
def profile_model(model: nn.Module, *inputs: torch.Tensor) -> Profile:
    """Run `model(*inputs)` once in eval mode and count what executed."""
    ran: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda mod, _args: ran.add(id(mod))) for m in model.modules()]
    was_training = model.training
    model.eval()
    counter = _MacCounter()
    try:
        with counter:
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    executed = leaf = 0
    for m in model.modules():
        if id(m) not in ran:
            continue
        own = sum(p.numel() for p in m.parameters(recurse=False))
        executed += own
        if not any(True for _ in m.children()):
            leaf += own
    return Profile(
        params_total=sum(p.numel() for p in model.parameters()),
        params_executed=executed,
        params_leaf=leaf,
        macs=counter.macs,
    )


def profile_registered(name: str, batch: int = 1, **kwargs) -> Profile:
    """Profile a registered method on a zero input of its InputSpec shape."""
    from .registry import create_model, get_config

    cfg = get_config(name)
    shape = cfg.input.shape(batch)
    return profile_model(create_model(name, **kwargs), torch.zeros(shape))


if __name__ == "__main__":  # pragma: no cover - a reproduction aid for the docs
    import sys

    torch.set_num_threads(1)
    for method in sys.argv[1:] or ["poster_v2"]:
        print(method, profile_registered(method).summary())
