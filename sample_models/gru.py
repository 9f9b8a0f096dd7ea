"""A one-layer GRU over a (batch, time, features) sequence, with a linear head on the last step."""

from __future__ import annotations

import torch
from torch import nn

from sample_models._live import input_generator, make_live

STEPS = 20
FEATURES = 8
HIDDEN = 32
OUTPUTS = 4


class GRUModel(nn.Module):
    def __init__(self, features: int = FEATURES, hidden: int = HIDDEN, outputs: int = OUTPUTS) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(sequence)  # (B, T, hidden); the initial state is zero
        return self.head(states[:, -1])


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    inputs = (torch.randn(1, STEPS, FEATURES, generator=input_generator(seed)),)
    return make_live(GRUModel(), seed, inputs).eval(), inputs
