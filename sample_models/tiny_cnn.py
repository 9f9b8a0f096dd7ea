"""The smallest image classifier: two conv-BN-ReLU layers, max pool, global average pool, linear."""

from __future__ import annotations

import torch
from torch import nn

from sample_models._live import input_generator, make_live

NUM_CLASSES = 10


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(image))
        return self.classifier(torch.flatten(x, 1))


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    inputs = (torch.randn(1, 3, 32, 32, generator=input_generator(seed)),)
    return make_live(TinyCNN(), seed, inputs).eval(), inputs
