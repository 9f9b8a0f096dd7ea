"""The plain data of calibration: the options, one sample (:class:`Item`), a read data set, and the split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeport.refdata import Sample

MAX_SAMPLES = 100_000
LABEL_KEYS = ("labels", "label", "__labels__")


@dataclass(frozen=True)
class CalibrationOptions:
    """Where calibration/held-out data comes from and how it is prepared."""

    source: str | None = None  # .npy / .npz / image folder / module:function; None = random (with allow_random)
    samples: int = 100  # calibration samples (--calibration-samples)
    holdout: int = 32  # held-out samples for accuracy (--holdout-samples)
    eval_source: str | None = None  # separate held-out data (--eval-data); default: split off ``source``
    resize: tuple[int, int] | None = None  # images: (height, width); default: the model's input size
    mean: tuple[float, ...] | None = None  # images: per-channel mean after pixel scaling
    std: tuple[float, ...] | None = None
    pixel_scale: float = 1.0 / 255.0
    bgr: bool = False  # images: channel order BGR instead of RGB
    data_layout: str | None = None  # layout of arrays as stored / of the model's image input (NCHW, NHWC, ...)
    labels: str | None = None  # class labels: .npy / .txt / .csv (see read_labels)
    allow_random: bool = False
    seed: int = 0
    dataset: str | None = None  # a sample_models.DATASETS name: calibration data and labels in one (--dataset)


@dataclass
class Item:
    """One sample: its feed in the reference layout, where it came from, and its label (if any)."""

    feed: Sample
    id: str
    label: int | None = None

    def digest(self) -> str:
        h = hashlib.sha256()
        for k in sorted(self.feed):
            a = np.ascontiguousarray(self.feed[k])
            h.update(k.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()


@dataclass
class Dataset:
    items: list[Item]
    source: str
    kind: str  # npy, npz, images, module, dataset, random
    notes: list[str] = field(default_factory=list)

    @property
    def random(self) -> bool:
        return self.kind == "random"

    @property
    def has_labels(self) -> bool:
        return bool(self.items) and all(i.label is not None for i in self.items)


@dataclass
class Split:
    calibration: list[Item]
    holdout: list[Item]
    source: str
    random: bool
    notes: list[str] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return bool(self.holdout) and all(i.label is not None for i in self.holdout)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "random": self.random,
            "calibration_samples": len(self.calibration),
            "holdout_samples": len(self.holdout),
            "labels": self.has_labels,
            "holdout_ids": [i.id for i in self.holdout],
            "notes": self.notes,
        }
