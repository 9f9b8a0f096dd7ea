"""The trained digits CNN with one outlier channel: a model where plain int8 is known to break.

Channel :data:`OUTLIER_CHANNEL` of the stem's output is made 100x larger than the others and the depthwise
conv that reads it is divided by 100, so the float function is unchanged (ReLU is positive-homogeneous and
the depthwise conv is linear) while that one activation tensor spans a range 100x wider. A per-tensor int8
scale for it then leaves the other 15 channels with a handful of levels, as the outlier features of trained
transformers do. Keeping the two ops around that tensor in float recovers the accuracy; a sensitivity
search should find them first. Weights come from ``digits_cnn.npz`` (see :mod:`sample_models.digits_cnn`).
"""

from __future__ import annotations

import torch
from torch import nn

from sample_models.digits_cnn import build as build_digits_cnn

OUTLIER_CHANNEL = 0
OUTLIER_SCALE = 100.0


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    model, inputs = build_digits_cnn(seed)
    stem_bn: nn.BatchNorm2d = model.features[0][1]
    depthwise: nn.Conv2d = model.features[1][0]
    with torch.no_grad():
        stem_bn.weight[OUTLIER_CHANNEL] *= OUTLIER_SCALE
        stem_bn.bias[OUTLIER_CHANNEL] *= OUTLIER_SCALE
        depthwise.weight[OUTLIER_CHANNEL] /= OUTLIER_SCALE
    return model, inputs
