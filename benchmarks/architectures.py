"""Real-world architectures for the conversion benchmark, each a factory for ``edgeport convert``.

    edgeport convert benchmarks/architectures.py:resnet18 --to torchscript,onnx,saved_model,tflite -o out/

Every factory returns ``(module, example_inputs)``: the module in eval mode with live random weights
(:func:`sample_models._live.make_live`: every conv/linear weight, bias, norm gamma/beta and BatchNorm
running statistic holds a random value, so a converter that drops or mis-folds any tensor changes the
outputs). Keyword arguments (all with defaults; the CLI calls the factory without any) change the seed
and the input size, so tests can build the same architecture cheaply.

``ARCHITECTURES`` names the factories, in the order the benchmark runs them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sample_models._live import input_generator, make_live
from sample_models.mobile_cnn import BlockConfig, ConvBNAct, InvertedResidual, _make_divisible
from sample_models.transformer import EncoderBlock, SelfAttention

ARCHITECTURES = ("resnet18", "mobilenet_v3", "vit", "bert", "unet", "deeplab_aspp", "bilstm", "stacked_gru")

Built = tuple[nn.Module, tuple[torch.Tensor, ...]]


def _live(model: nn.Module, seed: int, inputs: tuple[torch.Tensor, ...]) -> Built:
    return make_live(model, seed, inputs).eval(), inputs


def _image(seed: int, size: int) -> tuple[torch.Tensor, ...]:
    return (torch.randn(1, 3, size, size, generator=input_generator(seed)),)


# ----------------------------------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual add (a strided 1x1 conv-BN on the shortcut when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, 3, stride, act=nn.ReLU)
        self.conv2 = ConvBNAct(cout, cout, 3, act=None)
        self.shortcut = ConvBNAct(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet18(nn.Module):
    """torchvision's resnet18 layout: 7x7 stem, max pool, 4 stages of 2 basic blocks, 1000 classes (11.7 M)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, padding=1))
        blocks: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(image))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet18(seed: int = 0, size: int = 160) -> Built:
    return _live(ResNet18(), seed, _image(seed, size))


# ------------------------------------------------------------------------------------------ MobileNetV3-Large
_HS, _RE = nn.Hardswish, nn.ReLU
MOBILENET_V3_LARGE: tuple[BlockConfig, ...] = (  # kernel, expanded, out, SE, activation, stride
    BlockConfig(3, 16, 16, False, _RE, 1),
    BlockConfig(3, 64, 24, False, _RE, 2),
    BlockConfig(3, 72, 24, False, _RE, 1),
    BlockConfig(5, 72, 40, True, _RE, 2),
    BlockConfig(5, 120, 40, True, _RE, 1),
    BlockConfig(5, 120, 40, True, _RE, 1),
    BlockConfig(3, 240, 80, False, _HS, 2),
    BlockConfig(3, 200, 80, False, _HS, 1),
    BlockConfig(3, 184, 80, False, _HS, 1),
    BlockConfig(3, 184, 80, False, _HS, 1),
    BlockConfig(3, 480, 112, True, _HS, 1),
    BlockConfig(3, 672, 112, True, _HS, 1),
    BlockConfig(5, 672, 160, True, _HS, 2),
    BlockConfig(5, 960, 160, True, _HS, 1),
    BlockConfig(5, 960, 160, True, _HS, 1),
)


class MobileNetV3(nn.Module):
    """MobileNetV3-Large: inverted residuals, depthwise convs, squeeze-excite, hardswish; 1000 classes (5.5 M)."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        stem = _make_divisible(16 * width)
        layers: list[nn.Module] = [ConvBNAct(3, stem, 3, stride=2, act=nn.Hardswish)]
        cin = stem
        for cfg in MOBILENET_V3_LARGE:
            cfg = cfg._replace(expanded=_make_divisible(cfg.expanded * width), out=_make_divisible(cfg.out * width))
            layers.append(InvertedResidual(cin, cfg))
            cin = cfg.out
        layers.append(ConvBNAct(cin, 6 * cin, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(6 * cin, 1280), nn.Hardswish(), nn.Linear(1280, num_classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(image), 1), 1))


def mobilenet_v3(seed: int = 0, size: int = 160) -> Built:
    return _live(MobileNetV3(), seed, _image(seed, size))


# ------------------------------------------------------------------------------------------------------ ViT
class ViT(nn.Module):
    """Patch embedding (strided conv), class token, learned positions, pre-norm encoder blocks (exact GELU)."""

    def __init__(self, size: int = 128, patch: int = 16, dim: int = 192, depth: int = 6, heads: int = 3,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.embed(image).flatten(2).transpose(1, 2)  # (B, patches, dim)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.positions
        return self.head(self.norm(self.blocks(x))[:, 0])


def vit(seed: int = 0, size: int = 128) -> Built:
    return _live(ViT(size=size), seed, _image(seed, size))


# ----------------------------------------------------------------------------------------------------- BERT
class BertLayer(nn.Module):
    """Post-LayerNorm encoder layer (BERT's order): x = LN(x + attn(x)); x = LN(x + mlp(x)); exact GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.attn = SelfAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class Bert(nn.Module):
    """Token + learned position + segment embeddings, embedding LayerNorm, post-LN layers; hidden states out."""

    def __init__(self, vocab: int = 8000, max_len: int = 128, dim: int = 256, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.segment = nn.Parameter(torch.zeros(dim))  # the one segment's embedding (BERT's token type 0)
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.Sequential(*(BertLayer(dim, heads) for _ in range(depth)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.norm(self.tokens(tokens) + self.positions(positions) + self.segment)
        return self.layers(x)  # (B, T, dim)


def bert(seed: int = 0, seq: int = 64) -> Built:
    model = Bert()
    tokens = torch.randint(0, model.tokens.num_embeddings, (1, seq), generator=input_generator(seed), dtype=torch.int64)
    return _live(model, seed, (tokens,))


# ----------------------------------------------------------------------------------------------------- UNet
def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(cin, cout, 3, act=nn.ReLU), ConvBNAct(cout, cout, 3, act=nn.ReLU))


class UNet(nn.Module):
    """Four max-pool downs, four bilinear (align_corners=True) ups with concatenated skips, per-pixel classes."""

    def __init__(self, base: int = 16, classes: int = 4) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(5)]  # 16, 32, 64, 128, 256
        self.inc = _double_conv(3, widths[0])
        self.downs = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(4))
        self.ups = nn.ModuleList(_double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(4)))
        self.outc = nn.Conv2d(widths[0], classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(image)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            x = up(torch.cat([skip, x], dim=1))
        return self.outc(x)


def unet(seed: int = 0, size: int = 128) -> Built:
    return _live(UNet(), seed, _image(seed, size))


# ----------------------------------------------------------------------------------------- DeepLab-style ASPP
class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, three dilated 3x3 branches, an image-pooling branch."""

    def __init__(self, cin: int, cout: int = 128, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvBNAct(cin, cout, 1, act=nn.ReLU)])
        for r in rates:
            self.branches.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=r, dilation=r, bias=False),
                                               nn.BatchNorm2d(cout), nn.ReLU()))
        self.pooled = ConvBNAct(cin, cout, 1, act=nn.ReLU)
        self.project = ConvBNAct(cout * (len(rates) + 2), cout, 1, act=nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(F.adaptive_avg_pool2d(x, 1))
        outs = [b(x) for b in self.branches]
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.project(torch.cat(outs, dim=1))


class DeepLabASPP(nn.Module):
    """A strided conv backbone to 1/8 with dilated last stage, ASPP, classifier, bilinear resize to the input."""

    def __init__(self, classes: int = 21) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            ConvBNAct(3, 32, 3, 2, act=nn.ReLU), ConvBNAct(32, 32, 3, act=nn.ReLU),
            ConvBNAct(32, 64, 3, 2, act=nn.ReLU), ConvBNAct(64, 64, 3, act=nn.ReLU),
            ConvBNAct(64, 128, 3, 2, act=nn.ReLU), ConvBNAct(128, 128, 3, act=nn.ReLU),
            nn.Conv2d(128, 256, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=4, dilation=4, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        )
        self.aspp = ASPP(256)
        self.head = nn.Sequential(ConvBNAct(128, 128, 3, act=nn.ReLU), nn.Conv2d(128, classes, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = self.head(self.aspp(self.backbone(image)))
        return F.interpolate(y, size=image.shape[-2:], mode="bilinear", align_corners=False)


def deeplab_aspp(seed: int = 0, size: int = 128) -> Built:
    return _live(DeepLabASPP(), seed, _image(seed, size))


# ---------------------------------------------------------------------------------------------- recurrent
class LSTMModel(nn.Module):
    """2-layer bidirectional LSTM (batch_first), mean over time, linear head.

    The mean, not the last step: at the last step the reverse direction has seen one input and its
    recurrent weights have not acted yet, so a head on that step alone would leave them dead."""

    def __init__(self, features: int = 32, hidden: int = 64, outputs: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, outputs)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(sequence)  # (B, T, 2 * hidden)
        return self.head(states.mean(dim=1))


class GRUModel(nn.Module):
    """2-layer GRU (batch_first) with a linear head on every step."""

    def __init__(self, features: int = 32, hidden: int = 96, outputs: int = 8) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(sequence)
        return self.head(states)  # (B, T, outputs)


def _sequence(seed: int, steps: int, features: int = 32) -> tuple[torch.Tensor, ...]:
    return (torch.randn(1, steps, features, generator=input_generator(seed)),)


def bilstm(seed: int = 0, steps: int = 100) -> Built:
    return _live(LSTMModel(), seed, _sequence(seed, steps))


def stacked_gru(seed: int = 0, steps: int = 100) -> Built:
    return _live(GRUModel(), seed, _sequence(seed, steps))
