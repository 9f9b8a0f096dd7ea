"""Feeds to run a model on: seeded random samples, samples from an .npz, and the numpy dtype of a spec dtype.

Random samples follow one rule for every caller: floats ~ N(0, 1), booleans uniform in {False, True},
integers uniform in a closed range ``[low, high]`` per input, given by ``int_ranges`` (usually the range
observed in real samples, :func:`int_ranges_from`), else ``default_int_range``. The default is [0, 1], which
is a valid index into any table of two or more rows; the reference samples of ``edgeport convert`` pass a
wider default (:data:`edgeport.models.REFERENCE_INT_RANGE`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edgeport.data.samples import group_keys
from edgeport.errors import InputError, UsageError
from edgeport.refdata import Sample, load_npz
from edgeport.spec import IOSpec, TensorSpec

MAX_SAMPLES = 10_000  # random samples one validate/bench run may ask for (--samples)
DEFAULT_INT_RANGE = (0, 1)

IntRange = tuple[int, int]


def np_dtype(dtype: str) -> np.dtype:
    """The numpy dtype holding a spec dtype (numpy has no bfloat16: it travels as float32)."""
    return np.dtype("float32" if dtype == "bfloat16" else dtype)


@dataclass
class Feeds:
    """Samples to run, where they came from, and the reference outputs that came with them (if any)."""

    samples: list[Sample]
    source: str
    stored_outputs: list[Sample] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"source": self.source, "count": len(self.samples), "notes": self.notes,
                "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in self.samples[0].items()} if self.samples else {}}


def int_ranges_from(samples: Sequence[Sample] | None) -> dict[str, IntRange]:
    """Observed closed range [low, high] of every integer input in ``samples`` (e.g. token ids in reference.npz)."""
    ranges: dict[str, IntRange] = {}
    for s in samples or []:
        for k, v in s.items():
            a = np.asarray(v)
            if a.dtype.kind in "iu" and a.size:
                lo, hi = int(a.min()), int(a.max())
                old = ranges.get(k)
                ranges[k] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    return ranges


def random_array(spec: TensorSpec, rng: np.random.Generator, dims: dict[str, int] | None = None,
                 int_range: IntRange | None = None, *, default_int_range: IntRange = DEFAULT_INT_RANGE) -> np.ndarray:
    """One seeded random tensor for ``spec`` (see the module docstring for the rule), dynamic dims from ``dims``."""
    shape = spec.concrete(dims or {})
    dt = np_dtype(spec.dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    lo, hi = int_range or default_int_range
    if hi < lo:
        raise UsageError(f"integer range [{lo}, {hi}] of input {spec.name!r} is empty", "give a range with low <= high")
    return rng.integers(lo, hi + 1, size=shape).astype(dt)


def random_samples(specs: Sequence[TensorSpec], n: int, seed: int, dims: dict[str, int] | None = None,
                   int_ranges: dict[str, IntRange] | None = None, *,
                   default_int_range: IntRange = DEFAULT_INT_RANGE) -> list[Sample]:
    """``n`` samples from one generator seeded with ``seed``, drawn sample by sample, input by input."""
    rng = np.random.default_rng(seed)
    ranges = int_ranges or {}
    return [{s.name: random_array(s, rng, dims, ranges.get(s.name), default_int_range=default_int_range) for s in specs}
            for _ in range(n)]


def random_feeds(io_spec: IOSpec, n: int, seed: int = 0, dims: dict[str, int] | None = None,
                 int_ranges: dict[str, IntRange] | None = None) -> Feeds:
    """``n`` (1..MAX_SAMPLES) seeded random samples of every input of ``io_spec``."""
    if n < 1 or n > MAX_SAMPLES:
        raise UsageError(f"--samples {n} is out of range", f"use 1..{MAX_SAMPLES}")
    samples = random_samples(io_spec.inputs, n, seed, dims, int_ranges)
    return Feeds(samples, f"random (seed {seed}, {n} sample{'s' if n != 1 else ''})")


def check_shape(arr: np.ndarray, spec: TensorSpec, where: str, hint: str) -> None:
    """InputError unless ``arr`` has ``spec``'s rank and its fixed sizes."""
    if arr.ndim != spec.rank or any(isinstance(d, int) and d != arr.shape[i] for i, d in enumerate(spec.shape)):
        raise InputError(f"{where}: input {spec.name!r} has shape {tuple(arr.shape)}, the model takes {list(spec.shape)}", hint)


def _check_sample(s: Sample, io_spec: IOSpec, where: str) -> Sample:
    out = {}
    for spec in io_spec.inputs:
        if spec.name not in s:
            raise InputError(f"{where} has no input {spec.name!r} (it has {sorted(s)})",
                             f"save arrays named {[t.name for t in io_spec.inputs]}")
        a = np.asarray(s[spec.name])
        check_shape(a, spec, where, "save inputs in the reference (PyTorch) layout and shape")
        out[spec.name] = a.astype(np_dtype(spec.dtype), copy=False)
    return out


def _plain_samples(path: str | os.PathLike, plain: dict[str, np.ndarray], io_spec: IOSpec) -> list[Sample]:
    """Arrays named after the inputs: one sample, or several stacked on a new axis 0 (the same count for each)."""
    counts = set()
    for spec in io_spec.inputs:
        if spec.name not in plain:
            raise InputError(f"{path} has no array {spec.name!r} (it has {sorted(plain)})",
                             f"save arrays named {[t.name for t in io_spec.inputs]}")
        counts.add(plain[spec.name].shape[0] if plain[spec.name].ndim == spec.rank + 1 else 0)
    if len(counts) != 1:
        raise InputError(f"{path}: inputs hold different numbers of samples", "stack the same number of samples for each input")
    n = counts.pop()
    if n == 0:
        return [dict(plain)]
    return [{s.name: plain[s.name][i] for s in io_spec.inputs} for i in range(n)]


def npz_feeds(path: str | os.PathLike, io_spec: IOSpec, limit: int | None = None) -> Feeds:
    """Samples from an .npz: reference-style keys ``input:K:NAME`` (outputs kept), ``K:NAME``, or ``NAME``.

    A ``NAME`` array with one more axis than the input holds several samples on axis 0.
    """
    data = load_npz(path)
    if not data:
        raise InputError(f"{path} holds no arrays", "save inputs with numpy.savez(path, NAME=array)")
    samples, outputs, plain = group_keys(data)
    result: list[Sample] = [samples[k] for k in sorted(samples)]
    if plain:
        if result:
            raise InputError(f"{path} mixes plain names with K:NAME keys", "use one naming scheme")
        result = _plain_samples(path, plain, io_spec)
    if limit:
        result = result[:limit]
    checked = [_check_sample(s, io_spec, str(path)) for s in result]
    stored = None
    if outputs and sorted(outputs) == sorted(samples):
        stored = [outputs[k] for k in sorted(outputs)][: len(checked)]
    return Feeds(checked, f"{Path(path).name} ({len(checked)} sample{'s' if len(checked) != 1 else ''})", stored)
