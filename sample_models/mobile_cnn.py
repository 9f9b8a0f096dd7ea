"""A small MobileNetV3-style classifier, the demo default.

Stem conv + BN + hardswish, then ten inverted-residual blocks: optional 1x1 expansion, depthwise conv,
optional squeeze-excite, linear 1x1 projection, and a residual add where the stride is 1 and the
channel count is unchanged. A 1x1 conv, global average pool and a two-layer classifier follow. It
exercises depthwise convs, hardswish/hardsigmoid, broadcast multiplies and residual adds, which are the
ops converters most often get subtly wrong.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from sample_models._live import input_generator, make_live

NUM_CLASSES = 100


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, as MobileNet does for channel counts."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class BlockConfig(NamedTuple):
    kernel: int
    expanded: int  # channels after the 1x1 expansion (== input channels: no expansion conv)
    out: int
    se: bool
    act: type[nn.Module]
    stride: int


# MobileNetV3-Small's layout, slimmed to keep the model well under 1M parameters.
BLOCKS: tuple[BlockConfig, ...] = (
    BlockConfig(3, 16, 16, True, nn.ReLU, 2),  # depthwise-separable: no expansion
    BlockConfig(3, 64, 24, False, nn.ReLU, 2),
    BlockConfig(3, 72, 24, False, nn.ReLU, 1),  # residual
    BlockConfig(5, 96, 40, True, nn.Hardswish, 2),
    BlockConfig(5, 160, 40, True, nn.Hardswish, 1),  # residual
    BlockConfig(5, 160, 40, True, nn.Hardswish, 1),  # residual
    BlockConfig(5, 120, 48, True, nn.Hardswish, 1),
    BlockConfig(5, 144, 48, True, nn.Hardswish, 1),  # residual
    BlockConfig(5, 192, 64, True, nn.Hardswish, 2),
    BlockConfig(5, 256, 64, True, nn.Hardswish, 1),  # residual
)


class ConvBNAct(nn.Sequential):
    """Conv (no bias: the BN after it has one) + BatchNorm + optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.Hardswish,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gate: global average pool -> 1x1 conv -> ReLU -> 1x1 conv -> hardsigmoid -> multiply."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cfg: BlockConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if cfg.expanded != cin:
            layers.append(ConvBNAct(cin, cfg.expanded, 1, act=cfg.act))
        layers.append(ConvBNAct(cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride, groups=cfg.expanded, act=cfg.act))
        if cfg.se:
            layers.append(SqueezeExcite(cfg.expanded, _make_divisible(cfg.expanded / 4)))
        layers.append(ConvBNAct(cfg.expanded, cfg.out, 1, act=None))  # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.use_residual = cfg.stride == 1 and cin == cfg.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileCNN(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, stem: int = 16, last: int = 288, hidden: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, stem, 3, stride=2)]
        cin = stem
        for cfg in BLOCKS:
            layers.append(InvertedResidual(cin, cfg))
            cin = cfg.out
        layers.append(ConvBNAct(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last, hidden), nn.Hardswish(), nn.Linear(hidden, num_classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(image))
        return self.classifier(torch.flatten(x, 1))


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    inputs = (torch.randn(1, 3, 96, 96, generator=input_generator(seed)),)
    return make_live(MobileCNN(), seed, inputs).eval(), inputs
