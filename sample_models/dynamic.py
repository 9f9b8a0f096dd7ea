"""A model whose batch and sequence length are both dynamic: input ``x`` is (B, seq, 16).

Every layer works for any B and seq: a Linear projection, LayerNorm, multi-head self-attention over
the sequence (shapes read from the input, nothing baked in), a mean over the sequence and a linear
head. Rows of the batch never interact. The example input uses B=2 and seq=12 because torch.export
specialises dimensions of size 1.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models._live import input_generator, make_live
from sample_models.transformer import SelfAttention

FEATURES = 16
OUTPUTS = 8
EXAMPLE_BATCH = 2
EXAMPLE_SEQ = 12


class DynamicModel(nn.Module):
    def __init__(self, features: int = FEATURES, dim: int = 32, heads: int = 2, outputs: int = OUTPUTS) -> None:
        super().__init__()
        self.proj = nn.Linear(features, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        h = h + self.attn(self.norm1(h))
        h = self.norm2(h).mean(dim=1)  # pool over the sequence: (B, dim)
        return self.head(h)


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    inputs = (torch.randn(EXAMPLE_BATCH, EXAMPLE_SEQ, FEATURES, generator=input_generator(seed)),)
    return make_live(DynamicModel(), seed, inputs).eval(), inputs
