"""Small, deterministic PyTorch models to demo and test edgeport's converters.

This module is pure stdlib on purpose: the CLI lists the samples (``SAMPLES``) without importing
torch. :func:`build` imports the model's module, and so torch, only when a sample is actually built.

Every sample module defines ``build(seed: int = 0) -> (module, example_inputs)``: the module is in
``eval()`` mode and every parameter and buffer holds a random, live value (see ``sample_models._live``),
so a converter that drops or mis-folds any tensor changes the outputs and parity checks catch it.
The exception are the *trained* samples (``SampleInfo.dataset`` names the data set they were trained on):
their weights are fixed, committed beside the module with the script that reproduces them, and ``seed``
only picks the example input. Their data sets (``DATASETS``) give labelled inputs for task accuracy
(``edgeport quantize --dataset NAME``); :func:`load_dataset` imports the data set's module only when called.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at runtime
    import torch

__all__ = ["DATASETS", "DEFAULT_SAMPLE", "SAMPLES", "DatasetInfo", "SampleInfo", "build", "load_dataset", "training_facts"]


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
    dataset: str = ""  # the DATASETS entry a trained sample was trained on; empty: random live weights
    weights: str = ""  # trained samples: the .npz beside this package holding the weights (facts in the same-named .json)

    @property
    def trained(self) -> bool:
        return bool(self.dataset)


@dataclass(frozen=True)
class DatasetInfo:
    """A labelled data set that ships with an installed package (nothing is downloaded)."""

    name: str
    module: str  # importable module defining load(split) -> (inputs stacked in the reference layout, labels)
    description: str  # one line
    input_shape: tuple[int, ...]  # one sample, batch 1, reference (PyTorch) layout
    eval_split: str = "test"  # the split the trained samples never saw: calibration and held-out data come from it
    package: str = ""  # the pip package that provides the data


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits",
            module="sample_models.digits",
            description="scikit-learn's handwritten digits: 1,797 labelled 8x8 grey images of 0-9 (597 held out from training).",
            input_shape=(1, 1, 8, 8),
            package="scikit-learn",
        ),
    )
}


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
        SampleInfo(
            name="digits_cnn",
            module="sample_models.digits_cnn",
            description="Trained mobile-net-style CNN (depthwise-separable, BN, ReLU/hardswish; 14k params) on 8x8 digits.",
            inputs=("image:1x1x8x8:float32",),
            outputs=("logits",),
            layout="NCHW",
            dataset="digits",
            weights="digits_cnn.npz",
        ),
        SampleInfo(
            name="digits_outlier",
            module="sample_models.digits_outlier",
            description="digits_cnn with one stem channel 100x larger than the others (same float function): breaks int8.",
            inputs=("image:1x1x8x8:float32",),
            outputs=("logits",),
            layout="NCHW",
            dataset="digits",
            weights="digits_cnn.npz",
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


def load_dataset(name: str, split: str | None = None) -> tuple[Any, Any]:
    """``(inputs, labels)`` of data set ``name``, split ``split`` (default: its ``eval_split``): numpy arrays,
    inputs stacked on the batch axis in the reference layout, labels one integer class per sample.

    Raises KeyError for an unknown name, ImportError when the package that ships the data is missing.
    """
    try:
        info = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}") from None
    mod: Any = importlib.import_module(info.module)
    return mod.load(split or info.eval_split)


def training_facts(name: str) -> dict[str, Any]:
    """What training recorded beside a trained sample's weights (held-out ``test_accuracy``, ``epochs``, ``seed``):
    the ``.json`` next to its ``.npz``; empty for a sample with random weights. Stdlib only."""
    import json

    info = SAMPLES[name]
    if not info.weights:
        return {}
    facts: dict[str, Any] = json.loads(Path(__file__).with_name(info.weights).with_suffix(".json").read_text(encoding="utf-8"))
    return facts
