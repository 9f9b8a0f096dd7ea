"""Model families that LiteRT ran slower than ONNX Runtime, each a factory for ``edgeport convert``.

    edgeport convert benchmarks/slow_families.py:deeplabv3_mobilenet_v3 --to onnx,tflite -o out/
    edgeport bench out/ --profile

- ``deeplabv3_mobilenet_v3``: torchvision's ``deeplabv3_mobilenet_v3_large`` layout (MobileNetV3-Large
  backbone at output stride 16, its last stage's depthwise convs dilated by 2; DeepLabV3 head: ASPP with
  rates 12/24/36 over 960 channels, 3x3 conv, classifier, bilinear resize to the input);
- ``convnext``: ConvNeXt blocks (7x7 depthwise conv, LayerNorm over channels in channels-last order,
  Linear 4x, exact GELU, Linear, layer scale, residual) with LayerNorm2d + strided-conv downsampling,
  torchvision's ``convnext_tiny`` layout at a smaller width and depth;
- ``lstm``: a one-layer unidirectional LSTM (hidden 128, 100 steps) with a linear head on the mean over time.

Written here (torchvision is not a dependency); live random weights (:func:`sample_models._live.make_live`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures import ASPP  # beside this file (edgeport puts a model file's folder on sys.path)
from sample_models._live import input_generator, make_live
from sample_models.mobile_cnn import BlockConfig, ConvBNAct, SqueezeExcite, _make_divisible

Built = tuple[nn.Module, tuple[torch.Tensor, ...]]

_HS, _RE = nn.Hardswish, nn.ReLU
# MobileNetV3-Large (kernel, expanded, out, SE, activation, stride); the last three blocks are dilated
_MNV3_LARGE: tuple[BlockConfig, ...] = (
    BlockConfig(3, 16, 16, False, _RE, 1), BlockConfig(3, 64, 24, False, _RE, 2),
    BlockConfig(3, 72, 24, False, _RE, 1), BlockConfig(5, 72, 40, True, _RE, 2),
    BlockConfig(5, 120, 40, True, _RE, 1), BlockConfig(5, 120, 40, True, _RE, 1),
    BlockConfig(3, 240, 80, False, _HS, 2), BlockConfig(3, 200, 80, False, _HS, 1),
    BlockConfig(3, 184, 80, False, _HS, 1), BlockConfig(3, 184, 80, False, _HS, 1),
    BlockConfig(3, 480, 112, True, _HS, 1), BlockConfig(3, 672, 112, True, _HS, 1),
    BlockConfig(5, 672, 160, True, _HS, 2), BlockConfig(5, 960, 160, True, _HS, 1),
    BlockConfig(5, 960, 160, True, _HS, 1),
)
_DILATED_FROM = 12  # torchvision: the last stage keeps stride 1 and dilates by 2 (output stride 16)


class _DilatedInvertedResidual(nn.Module):
    """MobileNetV3's inverted residual with a dilated depthwise conv."""

    def __init__(self, cin: int, cfg: BlockConfig, dilation: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if cfg.expanded != cin:
            layers.append(ConvBNAct(cin, cfg.expanded, 1, act=cfg.act))
        pad = (cfg.kernel - 1) // 2 * dilation
        layers += [nn.Conv2d(cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride, padding=pad, dilation=dilation,
                             groups=cfg.expanded, bias=False), nn.BatchNorm2d(cfg.expanded), cfg.act()]
        if cfg.se:
            layers.append(SqueezeExcite(cfg.expanded, _make_divisible(cfg.expanded / 4)))
        layers.append(ConvBNAct(cfg.expanded, cfg.out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = cfg.stride == 1 and cin == cfg.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class DeepLabV3MobileNetV3(nn.Module):
    def __init__(self, classes: int = 21) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, stride=2, act=nn.Hardswish)]
        cin = 16
        for k, cfg in enumerate(_MNV3_LARGE):
            dilated = k >= _DILATED_FROM
            layers.append(_DilatedInvertedResidual(cin, cfg._replace(stride=1) if dilated else cfg, 2 if dilated else 1))
            cin = cfg.out
        layers.append(ConvBNAct(cin, 960, 1, act=nn.Hardswish))
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(ASPP(960, 256, (12, 24, 36)), ConvBNAct(256, 256, 3, act=nn.ReLU),
                                  nn.Conv2d(256, classes, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = self.head(self.backbone(image))
        return F.interpolate(y, size=image.shape[-2:], mode="bilinear", align_corners=False)


def deeplabv3_mobilenet_v3(seed: int = 0, size: int = 224) -> Built:
    inputs = (torch.randn(1, 3, size, size, generator=input_generator(seed)),)
    return make_live(DeepLabV3MobileNetV3(), seed, inputs).eval(), inputs


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (torchvision's: permute, normalize, permute back)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: depthwise 7x7, LayerNorm (channels last), MLP with exact GELU, layer scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


class ConvNeXt(nn.Module):
    def __init__(self, dims: tuple[int, ...] = (48, 96, 192, 384), depths: tuple[int, ...] = (2, 2, 4, 2),
                 classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0], eps=1e-6)]
        for k, (dim, depth) in enumerate(zip(dims, depths)):
            if k:
                layers += [LayerNorm2d(dims[k - 1], eps=1e-6), nn.Conv2d(dims[k - 1], dim, 2, stride=2)]
            layers += [CNBlock(dim) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm = LayerNorm2d(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.features(image))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def convnext(seed: int = 0, size: int = 160) -> Built:
    inputs = (torch.randn(1, 3, size, size, generator=input_generator(seed)),)
    return make_live(ConvNeXt(), seed, inputs).eval(), inputs


class LSTMHead(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 128, outputs: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(sequence)
        return self.head(states.mean(dim=1))


def lstm(seed: int = 0, steps: int = 100) -> Built:
    inputs = (torch.randn(1, steps, 32, generator=input_generator(seed)),)
    return make_live(LSTMHead(), seed, inputs).eval(), inputs
