"""scikit-learn's handwritten digits as a labelled data set: 1,797 8x8 grey images of 0-9, shipped in its wheel.

    images, labels = load("test")   # (597, 1, 8, 8) float32 in the models' NCHW layout, (597,) int64

The split is fixed and seeded: ``train`` (1,200 images) is what :mod:`sample_models.digits_cnn` was trained
on, ``test`` (the other 597) is what edgeport quantize calibrates and measures on (``--dataset digits``),
so no accuracy figure is measured on training images. Pixels (0..16) are scaled to 0..1 and normalised with
the fixed :data:`MEAN` and :data:`STD`. Imports numpy and scikit-learn only (no torch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MEAN", "SPLITS", "STD", "TRAIN_SIZE", "load"]

MEAN = 0.3  # of the 0..1-scaled pixels of the whole set (0.305), rounded
STD = 0.4  # (0.383), rounded
TRAIN_SIZE = 1200
SPLIT_SEED = 0
SPLITS = ("train", "test", "all")


def load(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 1, 8, 8) float32, labels (N,) int64)`` of ``split``: train, test or all."""
    if split not in SPLITS:
        raise ValueError(f"unknown digits split {split!r}; choose one of {', '.join(SPLITS)}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits data set needs scikit-learn (pip install scikit-learn)") from None
    data = load_digits()
    images = ((data.images.astype(np.float32) / 16.0 - MEAN) / STD)[:, None, :, :]
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    if split == "train":
        order = order[:TRAIN_SIZE]
    elif split == "test":
        order = order[TRAIN_SIZE:]
    return np.ascontiguousarray(images[order]), labels[order]
