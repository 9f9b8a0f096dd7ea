"""Two inputs of different rank, two outputs: tests that converters keep IO names and order straight.

``forward(image, features)`` runs a small conv tower on the NCHW image and an MLP on the feature
vector, concatenates both, and returns ``(logits, embedding)``.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models._live import input_generator, make_live

NUM_CLASSES = 10
FEATURES = 16
EMBEDDING = 32


class MultiIO(nn.Module):
    def __init__(self, features: int = FEATURES, embedding: int = EMBEDDING, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.image_tower = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
        )
        self.feature_mlp = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32))
        self.fuse = nn.Linear(32 + 32, embedding)
        self.head = nn.Linear(embedding, num_classes)

    def forward(self, image: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.fuse(torch.cat([self.image_tower(image), self.feature_mlp(features)], dim=1))
        logits = self.head(torch.relu(embedding))
        return logits, embedding


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    gen = input_generator(seed)
    inputs = (torch.randn(1, 3, 32, 32, generator=gen), torch.randn(1, FEATURES, generator=gen))
    return make_live(MultiIO(), seed, inputs).eval(), inputs
