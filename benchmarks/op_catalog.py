"""Single-operator PyTorch models for benchmarks/op_coverage.py.

Each :class:`OpCase` builds one small ``nn.Module`` around one operator, with seeded *live* weights
(``sample_models._live.make_live``: no zero biases, BatchNorm running stats and gammas ~U(0.5, 1.5),
Kaiming/LSUV-scaled conv and linear weights) and seeded example inputs of realistic small shapes
(images 1x8x16x16, sequences 1x12x32). Where an operator needs a restricted domain (log, sqrt, div,
fractional pow) the module maps its input into that domain with one elementwise op first (``note``
says so); every other module is the operator alone.

The catalog is imported by edgeport itself inside its workers: every case is exposed as a module-level
factory ``op_<name>()`` returning ``(module, example_inputs)``, so a case is the model reference
``benchmarks/op_catalog.py:op_<name>`` for ``edgeport convert``.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from sample_models._live import input_generator, make_live  # noqa: E402

IMG = (1, 8, 16, 16)  # N, C, H, W
SEQ = (1, 12, 32)  # N, T, F


@dataclass(frozen=True)
class OpCase:
    name: str
    category: str
    build: Callable[[int], tuple[nn.Module, tuple[torch.Tensor, ...]]]
    note: str = ""

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode()) % 10_000

    def factory(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        torch.manual_seed(self.seed)
        module, inputs = self.build(self.seed)
        return module.eval(), inputs


# --------------------------------------------------------------------------------------- wrappers
class Op1(nn.Module):
    """forward(x) = fn(self, x); a parametrised layer, when given, is ``self.mod``."""

    def __init__(self, fn: Callable[..., Any], mod: nn.Module | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.mod = mod

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(self, x)


class Op2(Op1):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:  # type: ignore[override]
        return self.fn(self, x, y)


class Op3(Op1):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:  # type: ignore[override]
        return self.fn(self, q, k, v)


def _randn(seed: int, *shape: int, k: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=input_generator(seed * 7 + k))


def _randint(seed: int, high: int, *shape: int, k: int = 0) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=input_generator(seed * 7 + k), dtype=torch.int64)


def layer(mod_fn: Callable[[], nn.Module], shape: tuple[int, ...] = IMG,
          call: Callable[[Op1, torch.Tensor], Any] = lambda m, x: m.mod(x)) -> Callable[[int], Any]:
    """A case around one parametrised layer, made live on its example input."""

    def build(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        x = _randn(seed, *shape)
        m = Op1(call, mod_fn())
        return make_live(m, seed, (x,)), (x,)

    return build


def unary(fn: Callable[[torch.Tensor], Any], shape: tuple[int, ...] = IMG) -> Callable[[int], Any]:
    def build(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        return Op1(lambda m, x: fn(x)), (_randn(seed, *shape),)

    return build


def binary(fn: Callable[[torch.Tensor, torch.Tensor], Any], shape_x: tuple[int, ...] = IMG,
           shape_y: tuple[int, ...] | None = None) -> Callable[[int], Any]:
    def build(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        return Op2(lambda m, x, y: fn(x, y)), (_randn(seed, *shape_x), _randn(seed, *(shape_y or shape_x), k=1))

    return build


def _prelu(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x = _randn(seed, *IMG)
    p = nn.PReLU(IMG[1])
    with torch.no_grad():  # make_live would draw slopes from [0.5, 1.5] (a scale): keep them clearly non-linear
        p.weight.uniform_(0.05, 0.4, generator=torch.Generator().manual_seed(seed))
    return Op1(lambda m, x: m.mod(x), p), (x,)


def _mha(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x = _randn(seed, *SEQ)
    m = Op1(lambda m, x: m.mod(x, x, x, need_weights=False)[0], nn.MultiheadAttention(32, 4, batch_first=True))
    return make_live(m, seed, (x,)), (x,)


def _sdpa(causal: bool) -> Callable[[int], Any]:
    def build(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        shape = (1, 4, 12, 8)  # N, heads, T, head_dim
        return (Op3(lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)),
                tuple(_randn(seed, *shape, k=i) for i in range(3)))

    return build


def _embedding(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    idx = _randint(seed, 100, 1, 12)
    m = Op1(lambda m, x: m.mod(x), nn.Embedding(100, 32))
    return make_live(m, seed), (idx,)


def _gather(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x, idx = _randn(seed, *SEQ), _randint(seed, SEQ[2], 1, 12, 8, k=1)
    return Op2(lambda m, x, i: torch.gather(x, -1, i)), (x, idx)


def _index_select(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    m = Op1(lambda m, x: torch.index_select(x, 1, m.idx))
    m.register_buffer("idx", torch.tensor([7, 0, 3, 3, 5], dtype=torch.int64))
    return m, (_randn(seed, *IMG),)


def _rnn(kind: type[nn.Module]) -> Callable[[int], Any]:
    def build(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        x = _randn(seed, *SEQ)
        m = Op1(lambda m, x: m.mod(x)[0], kind(32, 24, batch_first=True))
        return make_live(m, seed, (x,)), (x,)

    return build


def _gru_cell(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x, h = _randn(seed, 1, 32), _randn(seed, 1, 24, k=1)
    m = Op2(lambda m, x, h: m.mod(x, h), nn.GRUCell(32, 24))
    return make_live(m, seed, (x, h)), (x, h)


def _lstm_cell(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x, h, c = _randn(seed, 1, 32), _randn(seed, 1, 24, k=1), _randn(seed, 1, 24, k=2)
    m = Op3(lambda m, x, h, c: m.mod(x, (h, c)), nn.LSTMCell(32, 24))
    return make_live(m, seed, (x, h, c)), (x, h, c)


def _masked_fill(seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return Op1(lambda m, x: x.masked_fill(x > 0.5, -1.0)), (_randn(seed, *SEQ),)


CASES: list[OpCase] = [
    # convolutions
    OpCase("conv2d_3x3", "conv", layer(lambda: nn.Conv2d(8, 16, 3, padding=1))),
    OpCase("conv2d_1x1", "conv", layer(lambda: nn.Conv2d(8, 16, 1))),
    OpCase("conv2d_stride2", "conv", layer(lambda: nn.Conv2d(8, 16, 3, stride=2, padding=1))),
    OpCase("conv2d_dilated", "conv", layer(lambda: nn.Conv2d(8, 16, 3, padding=2, dilation=2))),
    OpCase("conv2d_grouped", "conv", layer(lambda: nn.Conv2d(8, 16, 3, padding=1, groups=4))),
    OpCase("conv2d_depthwise", "conv", layer(lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8))),
    OpCase("conv2d_5x5_nobias", "conv", layer(lambda: nn.Conv2d(8, 16, 5, padding=2, bias=False))),
    OpCase("conv1d", "conv", layer(lambda: nn.Conv1d(12, 16, 3, padding=1), SEQ)),
    OpCase("conv_transpose2d", "conv", layer(lambda: nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1))),
    OpCase("conv_transpose1d", "conv", layer(lambda: nn.ConvTranspose1d(12, 8, 4, stride=2, padding=1), SEQ)),
    # pooling
    OpCase("maxpool2d_2x2", "pool", unary(lambda x: F.max_pool2d(x, 2))),
    OpCase("maxpool2d_3x3_s2_p1", "pool", unary(lambda x: F.max_pool2d(x, 3, stride=2, padding=1))),
    OpCase("maxpool1d", "pool", unary(lambda x: F.max_pool1d(x, 2), SEQ)),
    OpCase("avgpool2d_2x2", "pool", unary(lambda x: F.avg_pool2d(x, 2))),
    OpCase("avgpool2d_3x3_s1_p1", "pool", unary(lambda x: F.avg_pool2d(x, 3, stride=1, padding=1)),
           "count_include_pad=True (PyTorch's default)"),
    OpCase("adaptive_avgpool2d_4", "pool", unary(lambda x: F.adaptive_avg_pool2d(x, 4))),
    OpCase("adaptive_avgpool2d_5", "pool", unary(lambda x: F.adaptive_avg_pool2d(x, 5)), "16 -> 5: uneven windows"),
    OpCase("global_avgpool", "pool", unary(lambda x: F.adaptive_avg_pool2d(x, 1))),
    OpCase("global_maxpool", "pool", unary(lambda x: F.adaptive_max_pool2d(x, 1))),
    # normalisation
    OpCase("batchnorm2d", "norm", layer(lambda: nn.BatchNorm2d(8))),
    OpCase("batchnorm1d", "norm", layer(lambda: nn.BatchNorm1d(12), SEQ)),
    OpCase("layernorm", "norm", layer(lambda: nn.LayerNorm(32), SEQ)),
    OpCase("groupnorm", "norm", layer(lambda: nn.GroupNorm(4, 8))),
    OpCase("instancenorm2d", "norm", layer(lambda: nn.InstanceNorm2d(8, affine=True))),
    # activations
    OpCase("relu", "activation", unary(F.relu)),
    OpCase("relu6", "activation", unary(F.relu6)),
    OpCase("leaky_relu", "activation", unary(lambda x: F.leaky_relu(x, 0.1))),
    OpCase("prelu", "activation", _prelu, "per-channel slopes ~U(0.05, 0.4)"),
    OpCase("sigmoid", "activation", unary(torch.sigmoid)),
    OpCase("tanh", "activation", unary(torch.tanh)),
    OpCase("hardswish", "activation", unary(F.hardswish)),
    OpCase("hardsigmoid", "activation", unary(F.hardsigmoid)),
    OpCase("hardtanh", "activation", unary(lambda x: F.hardtanh(x, -0.5, 0.5))),
    OpCase("silu", "activation", unary(F.silu)),
    OpCase("mish", "activation", unary(F.mish)),
    OpCase("elu", "activation", unary(F.elu)),
    OpCase("selu", "activation", unary(F.selu)),
    OpCase("gelu_exact", "activation", unary(F.gelu)),
    OpCase("gelu_tanh", "activation", unary(lambda x: F.gelu(x, approximate="tanh"))),
    OpCase("softplus", "activation", unary(F.softplus)),
    OpCase("softmax_lastdim", "activation", unary(lambda x: torch.softmax(x, -1), SEQ)),
    OpCase("softmax_channels", "activation", unary(lambda x: torch.softmax(x, 1)), "dim=1 of an NCHW tensor"),
    OpCase("log_softmax", "activation", unary(lambda x: torch.log_softmax(x, -1), SEQ)),
    # linear algebra and attention
    OpCase("linear", "matmul", layer(lambda: nn.Linear(32, 24), SEQ)),
    OpCase("matmul", "matmul", binary(torch.matmul, SEQ, (1, 32, 16))),
    OpCase("matmul_transposed", "matmul", binary(lambda q, k: q @ k.transpose(-2, -1), SEQ), "q @ k^T (attention scores)"),
    OpCase("bmm", "matmul", binary(torch.bmm, (2, 12, 32), (2, 32, 16))),
    OpCase("einsum_bhtd", "matmul", binary(lambda a, b: torch.einsum("bhtd,bhsd->bhts", a, b), (1, 4, 12, 8))),
    OpCase("multihead_attention", "attention", _mha, "nn.MultiheadAttention(32, 4), self-attention"),
    OpCase("sdpa", "attention", _sdpa(False), "F.scaled_dot_product_attention, q/k/v 1x4x12x8"),
    OpCase("sdpa_causal", "attention", _sdpa(True), "is_causal=True"),
    # shape manipulation
    OpCase("reshape", "shape", unary(lambda x: x.reshape(1, 16, 128)), "1x8x16x16 -> 1x16x128"),
    OpCase("flatten", "shape", unary(lambda x: torch.flatten(x, 1)), "1x8x16x16 -> 1x2048"),
    OpCase("permute_nhwc", "shape", unary(lambda x: x.permute(0, 2, 3, 1))),
    OpCase("transpose", "shape", unary(lambda x: x.transpose(1, 2), SEQ)),
    OpCase("slice", "shape", unary(lambda x: x[:, 2:6, :, 1:9])),
    OpCase("strided_slice", "shape", unary(lambda x: x[:, ::2, 1::3], SEQ)),
    OpCase("index_select", "shape", _index_select, "constant indices [7, 0, 3, 3, 5] on the channel dim"),
    OpCase("gather", "shape", _gather, "torch.gather on the last dim with an int64 index input"),
    OpCase("unsqueeze", "shape", unary(lambda x: x.unsqueeze(2), SEQ)),
    OpCase("squeeze", "shape", unary(lambda x: x.squeeze(2), (1, 12, 1, 32))),
    OpCase("expand", "shape", unary(lambda x: x.expand(1, 12, 32), (1, 12, 1))),
    OpCase("repeat", "shape", unary(lambda x: x.repeat(1, 2, 3), SEQ)),
    OpCase("flip", "shape", unary(lambda x: torch.flip(x, [-1]), SEQ)),
    OpCase("pixel_shuffle", "shape", unary(lambda x: F.pixel_shuffle(x, 2), (1, 16, 8, 8))),
    OpCase("pixel_unshuffle", "shape", unary(lambda x: F.pixel_unshuffle(x, 2))),
    # reductions
    OpCase("mean_lastdim", "reduce", unary(lambda x: x.mean(-1, keepdim=True), SEQ)),
    OpCase("mean_spatial", "reduce", unary(lambda x: x.mean((2, 3)))),
    OpCase("sum_channels", "reduce", unary(lambda x: x.sum(1))),
    OpCase("max_reduce", "reduce", unary(lambda x: x.amax(-1), SEQ)),
    OpCase("min_reduce", "reduce", unary(lambda x: x.amin(1), SEQ)),
    OpCase("argmax", "reduce", unary(lambda x: x.argmax(-1), SEQ), "int64 output (compared exactly)"),
    OpCase("logsumexp", "reduce", unary(lambda x: torch.logsumexp(x, -1), SEQ)),
    OpCase("cumsum", "reduce", unary(lambda x: torch.cumsum(x, -1), SEQ)),
    OpCase("topk", "reduce", unary(lambda x: torch.topk(x, 5, dim=-1), SEQ), "values and int64 indices"),
    # resize and pad
    OpCase("interpolate_nearest", "resize", unary(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))),
    OpCase("interpolate_bilinear", "resize",
           unary(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)), "align_corners=False"),
    OpCase("interpolate_bilinear_ac", "resize",
           unary(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)), "align_corners=True"),
    OpCase("pad_constant", "pad", unary(lambda x: F.pad(x, (1, 2, 1, 2), value=0.5))),
    OpCase("pad_reflect", "pad", unary(lambda x: F.pad(x, (1, 2, 1, 2), mode="reflect"))),
    OpCase("pad_replicate", "pad", unary(lambda x: F.pad(x, (1, 2, 1, 2), mode="replicate"))),
    # concat / split
    OpCase("concat", "concat", binary(lambda x, y: torch.cat([x, y], 1))),
    OpCase("stack", "concat", binary(lambda x, y: torch.stack([x, y], 1), SEQ)),
    OpCase("split", "concat", unary(lambda x: torch.split(x, [2, 6], dim=1)), "two outputs"),
    OpCase("chunk", "concat", unary(lambda x: torch.chunk(x, 3, dim=-1), SEQ), "32 -> 11, 11, 10"),
    # elementwise
    OpCase("add", "elementwise", binary(torch.add)),
    OpCase("sub", "elementwise", binary(torch.sub)),
    OpCase("mul", "elementwise", binary(torch.mul)),
    OpCase("div", "elementwise", binary(lambda x, y: x / (y.abs() + 0.5)), "divisor |y|+0.5"),
    OpCase("broadcast_add", "elementwise", binary(torch.add, IMG, (1, 1, 16, 16)), "1x8x16x16 + 1x1x16x16"),
    OpCase("pow_int", "elementwise", unary(lambda x: torch.pow(x, 3))),
    OpCase("pow_frac", "elementwise", unary(lambda x: torch.pow(x.abs() + 0.1, 1.5)), "base |x|+0.1"),
    OpCase("sqrt", "elementwise", unary(lambda x: torch.sqrt(x.abs() + 0.1)), "input |x|+0.1"),
    OpCase("rsqrt", "elementwise", unary(lambda x: torch.rsqrt(x.abs() + 0.1)), "input |x|+0.1"),
    OpCase("abs", "elementwise", unary(torch.abs)),
    OpCase("exp", "elementwise", unary(torch.exp)),
    OpCase("log", "elementwise", unary(lambda x: torch.log(x.abs() + 0.1)), "input |x|+0.1"),
    OpCase("sin", "elementwise", unary(torch.sin)),
    OpCase("cos", "elementwise", unary(torch.cos)),
    OpCase("clamp", "elementwise", unary(lambda x: torch.clamp(x, -0.5, 0.5))),
    OpCase("where", "elementwise", binary(lambda x, y: torch.where(x > 0, x, y))),
    OpCase("masked_fill", "elementwise", _masked_fill),
    # embedding and recurrent
    OpCase("embedding", "recurrent", _embedding, "nn.Embedding(100, 32), int64 ids 1x12"),
    OpCase("lstm", "recurrent", _rnn(nn.LSTM), "nn.LSTM(32, 24), outputs of all steps"),
    OpCase("gru", "recurrent", _rnn(nn.GRU), "nn.GRU(32, 24), outputs of all steps"),
    OpCase("rnn_tanh", "recurrent", _rnn(nn.RNN), "nn.RNN(32, 24)"),
    OpCase("gru_cell", "recurrent", _gru_cell, "nn.GRUCell(32, 24)"),
    OpCase("lstm_cell", "recurrent", _lstm_cell, "nn.LSTMCell(32, 24), returns (h, c)"),
]

BY_NAME: dict[str, OpCase] = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"

for _case in CASES:
    globals()[f"op_{_case.name}"] = _case.factory
