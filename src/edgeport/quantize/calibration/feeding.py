"""Calibration samples -> what each converter's calibration API takes, in the converted model's layout.

A sample is in the reference (PyTorch) layout; :func:`to_artifact` applies the artifact IOSpec's names,
``perm`` (``NHWC`` for a SavedModel made by onnx2tf) and dtypes.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from edgeport.data.feeds import np_dtype
from edgeport.errors import InputError
from edgeport.refdata import Sample
from edgeport.runtimes.base import native_tensor
from edgeport.spec import IOSpec


def to_artifact(sample: Sample, io: IOSpec) -> dict[str, np.ndarray]:
    """A reference-layout sample -> the feed an artifact with IOSpec ``io`` takes (its names, layout, dtype)."""
    out = {}
    for spec in io.inputs:
        ref = spec.ref_name or spec.name
        if ref not in sample:
            raise InputError(f"calibration sample has no input {ref!r} (it has {sorted(sample)})",
                             f"give inputs named {[s.ref_name or s.name for s in io.inputs]}")
        arr = np.asarray(sample[ref])
        if arr.ndim != spec.rank:
            raise InputError(f"calibration input {ref!r} has rank {arr.ndim}, the model takes rank {spec.rank}",
                             "give samples shaped like the model input")
        dt = np_dtype(spec.dtype)
        if dt.kind in "iu" and np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"calibration input {ref!r} is floating point, the model takes {spec.dtype}",
                             "give integer inputs (token ids) for integer model inputs")
        native = native_tensor(arr, spec)
        if any(isinstance(d, int) and d != native.shape[i] for i, d in enumerate(spec.shape)):
            raise InputError(f"calibration input {ref!r} becomes shape {tuple(native.shape)} in the converted model's "
                             f"layout {spec.layout or ''}, which takes {list(spec.shape)}",
                             "give samples in the PyTorch model's layout (edgeport transposes them for each converter)")
        out[spec.name] = native
    return out


class FeedReader:
    """An ONNX-Runtime-style calibration reader: ``get_next() -> dict | None``; ``rewind()`` starts over."""

    def __init__(self, samples: Sequence[Sample], io: IOSpec) -> None:
        self._feeds = [to_artifact(s, io) for s in samples]
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)

    def __len__(self) -> int:
        return len(self._feeds)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self._feeds)


def representative_dataset(samples: Sequence[Sample], io: IOSpec) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """A TFLiteConverter ``representative_dataset``: yields dicts keyed by the signature's input names."""
    feeds = [to_artifact(s, io) for s in samples]  # check every sample up front: a bad one fails here, not mid-calibration

    def gen() -> Iterator[dict[str, np.ndarray]]:
        yield from feeds

    return gen
