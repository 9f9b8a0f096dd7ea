"""A tiny pre-LayerNorm transformer encoder over int64 tokens, with a per-token head.

Attention is written out with separate q/k/v Linear layers and plain matmul/softmax rather than
``nn.MultiheadAttention``, whose fused kernels export poorly; the graph is then the one most
converters expect. The MLP uses exact (erf) GELU.
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models._live import input_generator, make_live

VOCAB = 1000
SEQ_LEN = 16
NUM_CLASSES = 32


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention; works for any batch size and sequence length."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim)
        # No key bias: q . (k + b) = q . k + q . b adds the same amount to every score of a query, which
        # the softmax cancels. It would be a dead tensor that converters may legally drop.
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor, batch: int, seq: int) -> torch.Tensor:
        # (B, T, D) -> (B, heads, T, head_dim)
        return x.reshape(batch, seq, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape
        q = self._split(self.q(x), batch, seq)
        k = self._split(self.k(x), batch, seq)
        v = self._split(self.v(x), batch, seq)
        weights = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)  # (B, heads, T, T)
        y = (weights @ v).transpose(1, 2).reshape(batch, seq, dim)
        return self.out(y)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    def __init__(
        self,
        vocab: int = VOCAB,
        max_len: int = SEQ_LEN,
        dim: int = 64,
        heads: int = 4,
        depth: int = 2,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)  # learned; sequences up to max_len
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        return self.head(self.norm(self.blocks(x)))  # (B, T, num_classes)


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    inputs = (torch.randint(0, VOCAB, (1, SEQ_LEN), generator=input_generator(seed), dtype=torch.int64),)
    return make_live(TinyTransformer(), seed, inputs).eval(), inputs
