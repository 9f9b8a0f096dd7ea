"""Small, deterministic PyTorch models to demo and test edgeport's converters.

This module is pure stdlib on purpose: the CLI lists the samples (``SAMPLES``) without importing
torch. :func:`build` imports the model's module, and so torch, only when a sample is actually built.

Every sample module defines ``build(seed: int = 0) -> (module, example_inputs)``: the module is in
``eval()`` mode and every parameter and buffer holds a random, live value (see ``sample_models._live``),
so a converter that drops or mis-folds any tensor changes the outputs and parity checks catch it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at runtime
    import torch

__all__ = ["DEFAULT_SAMPLE", "SAMPLES", "SampleInfo", "build"]


@dataclass(frozen=True)
class SampleInfo:
    """What a sample model consumes and produces, without building it."""

    name: str
    module: str  # importable module defining build(seed)
    description: str  # one line
    # Input specs in edgeport's ``--input`` grammar, NAME:SHAPE:DTYPE, in forward() argument order.
    # A letter dimension is dynamic: "x:Bxseqx16:float32".
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # output names, in the order forward() returns them
    layout: str = ""  # e.g. "NCHW" for image models; empty when it does not apply


SAMPLES: dict[str, SampleInfo] = {
    info.name: info
    for info in (
        SampleInfo(
            name="tiny_cnn",
            module="sample_models.tiny_cnn",
            description="Two conv-BN-ReLU layers, max pool, global average pool and a 10-class linear head.",
            inputs=("image:1x3x32x32:float32",),
            outputs=("logits",),
            layout="NCHW",
        ),
        SampleInfo(
            name="mobile_cnn",
            module="sample_models.mobile_cnn",
            description="MobileNetV3-style CNN: inverted residuals, depthwise convs, squeeze-excite, hardswish; 100 classes.",
            inputs=("image:1x3x96x96:float32",),
            outputs=("logits",),
            layout="NCHW",
        ),
        SampleInfo(
            name="transformer",
            module="sample_models.transformer",
            description="Two pre-LayerNorm encoder blocks over token and position embeddings; per-token 32-way head.",
            inputs=("tokens:1x16:int64",),
            outputs=("logits",),
        ),
        SampleInfo(
            name="gru",
            module="sample_models.gru",
            description="One-layer GRU over a 20-step sequence, linear head on the last step.",
            inputs=("sequence:1x20x8:float32",),
            outputs=("output",),
        ),
        SampleInfo(
            name="multi_io",
            module="sample_models.multi_io",
            description="Two inputs of different rank (image and feature vector), two outputs (logits and embedding).",
            inputs=("image:1x3x32x32:float32", "features:1x16:float32"),
            outputs=("logits", "embedding"),
            layout="NCHW",
        ),
        SampleInfo(
            name="dynamic",
            module="sample_models.dynamic",
            description="Linear, LayerNorm and self-attention over a sequence of any batch and length, mean-pooled.",
            inputs=("x:Bxseqx16:float32",),
            outputs=("output",),
        ),
    )
}

DEFAULT_SAMPLE = "mobile_cnn"


def build(name: str, seed: int = 0) -> tuple["torch.nn.Module", tuple["torch.Tensor", ...]]:
    """Build sample ``name``: ``(module in eval mode, example input tensors)``, deterministic in ``seed``.

    Raises KeyError for an unknown name.
    """
    try:
        info = SAMPLES[name]
    except KeyError:
        raise KeyError(f"unknown sample model {name!r}; choose one of: {', '.join(SAMPLES)}") from None
    mod: Any = importlib.import_module(info.module)
    return mod.build(seed)
