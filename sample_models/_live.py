"""Give every parameter and buffer of a model a random, *live* value.

PyTorch's default initialisation leaves tensors that a converter can legally fold away: zero biases,
BatchNorm running statistics of exactly 0 and 1, unit norm weights, and in many architectures a
zero-initialised last BN gamma in residual blocks or 1e-6 layer scales. A parity test against such a
model passes even if the converter drops those tensors, so it proves nothing. :func:`make_live`
replaces every value with a random one of a sane magnitude:

* conv / linear weights: normal with std ``gain / sqrt(fan_in)`` (Kaiming). Kaiming alone still
  lets activations drift over depth (hardswish and gates halve them, residual adds grow them), so when
  example inputs are given each conv / linear weight is then rescaled, in execution order, so that its
  output on those inputs has unit standard deviation (LSUV). The values stay random and the model's
  outputs stay O(1) whatever the depth or the seed;
* every bias: uniform in [-0.1, 0.1];
* norm weights (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm): uniform in [0.5, 1.5], norm
  biases uniform in [-0.2, 0.2]; BatchNorm ``running_mean`` uniform in [-0.2, 0.2] and
  ``running_var`` uniform in [0.5, 1.5];
* embedding tables: standard normal;
* recurrent (GRU/LSTM/RNN) weights: normal with std ``1 / sqrt(fan_in)``;
* any other parameter: a 0-d/1-d one is treated as a scale (layer scale, gain) and drawn from
  [0.5, 1.5]; a matrix gets normal with std ``1 / sqrt(last dim)``; one named ``*bias*`` gets [-0.1, 0.1].

Integer buffers (``num_batches_tracked``) are not used in eval mode and are left alone, and so are
floating buffers of unknown purpose (a mask or a lookup table is part of the architecture, not a weight).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["input_generator", "make_live"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_TRANSPOSES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_AFFINE_NORMS = (_NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)  # _NormBase: BatchNorm*, InstanceNorm*


def make_live(
    module: nn.Module,
    seed: int,
    example_inputs: Sequence[torch.Tensor] | None = None,
    gain: float = math.sqrt(2.0),
) -> nn.Module:
    """Overwrite, in place, every parameter and known buffer of ``module`` with live random values.

    Deterministic in ``seed`` and ``example_inputs`` (an own ``torch.Generator``; the global RNG is not
    touched). ``gain`` is the Kaiming gain of conv and linear weights. With ``example_inputs``, conv and
    linear weights are then rescaled so each layer's output has unit std on them (see the module doc);
    the rescaling runs the module in eval mode and leaves its train/eval mode as it was. Returns ``module``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    done: set[int] = set()  # ids of the tensors already set, so shared tensors are set once

    def uniform_(t: torch.Tensor | None, low: float, high: float) -> None:
        if t is None or id(t) in done:
            return
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)
        done.add(id(t))

    def normal_(t: torch.Tensor | None, std: float) -> None:
        if t is None or id(t) in done:
            return
        t.copy_(torch.randn(t.shape, generator=gen) * std)
        done.add(id(t))

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, _CONVS + (nn.Linear,)):
                # weight is (out, in/groups, *kernel) or (out, in): fan_in is the product of all but dim 0.
                fan_in = max(1, m.weight[0].numel())
                normal_(m.weight, gain / math.sqrt(fan_in))
                uniform_(m.bias, -0.1, 0.1)
            elif isinstance(m, _CONV_TRANSPOSES):
                # weight is (in, out/groups, *kernel); each output sums over in/groups * kernel / stride taps.
                taps = m.weight.shape[0] // m.groups * math.prod(m.kernel_size) / math.prod(m.stride)
                normal_(m.weight, gain / math.sqrt(max(1.0, taps)))
                uniform_(m.bias, -0.1, 0.1)
            elif isinstance(m, _AFFINE_NORMS):
                uniform_(getattr(m, "weight", None), 0.5, 1.5)
                uniform_(getattr(m, "bias", None), -0.2, 0.2)
                if isinstance(m, _NormBase):
                    uniform_(m.running_mean, -0.2, 0.2)
                    uniform_(m.running_var, 0.5, 1.5)
            elif isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
                normal_(m.weight, 1.0)
            elif isinstance(m, nn.RNNBase):
                for name, p in m.named_parameters(recurse=False):
                    if name.startswith("bias"):
                        uniform_(p, -0.1, 0.1)
                    else:  # weight_ih_l*, weight_hh_l*, weight_hr_l*: (gates*hidden, fan_in)
                        normal_(p, 1.0 / math.sqrt(p.shape[1]))

        # Whatever the module types above do not cover (custom layers, layer scales, position tables).
        for name, p in module.named_parameters():
            if id(p) in done or not p.is_floating_point():
                continue
            if "bias" in name.rsplit(".", 1)[-1]:
                uniform_(p, -0.1, 0.1)
            elif p.dim() <= 1:
                uniform_(p, 0.5, 1.5)
            else:
                normal_(p, 1.0 / math.sqrt(p.shape[-1]))

    if example_inputs is not None:
        _normalize_layer_outputs(module, tuple(example_inputs))
    return module


def _normalize_layer_outputs(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> None:
    """LSUV: rescale each conv / linear weight so the layer's output (bias excluded) has unit std.

    One forward pass with hooks: a layer's hook rescales its weight and returns the rescaled output, so
    the layers after it are calibrated on what the final model computes. A layer called several times is
    rescaled on its first call only.
    """
    seen: set[int] = set()

    def hook(layer: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor | None:
        if id(layer) in seen:
            return None
        seen.add(id(layer))
        bias: torch.Tensor | None = layer.bias
        if bias is not None and isinstance(layer, nn.Linear):
            out = out - bias  # Linear's output features are the last dimension
        elif bias is not None:
            bias = bias.reshape(1, -1, *([1] * (out.dim() - 2)))  # conv output channels are dimension 1
            out = out - bias
        std = float(out.std()) if out.numel() > 1 else 0.0
        if not math.isfinite(std) or std < 1e-8:
            return None  # nothing sensible to scale by; keep the Kaiming value
        layer.weight.div_(std)
        out = out / std
        return out + bias if bias is not None else out

    layers = [m for m in module.modules() if isinstance(m, _CONVS + _CONV_TRANSPOSES + (nn.Linear,))]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = module.training
    try:
        module.eval()  # BatchNorm must use (and not update) its running statistics
        with torch.no_grad():
            module(*example_inputs)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()


def input_generator(seed: int) -> torch.Generator:
    """The generator a sample draws its example inputs from: seeded apart from the weights' stream."""
    return torch.Generator().manual_seed(1_000_003 + int(seed))
