"""The calibration/held-out split: seeded, disjoint, and random data only when asked for."""

from __future__ import annotations

import numpy as np

from edgeport.errors import InputError, UsageError
from edgeport.quantize.calibration.dataset import CalibrationOptions, Dataset, Item, Split
from edgeport.quantize.calibration.sources import load_dataset, random_dataset, read_named_dataset
from edgeport.spec import IOSpec


def _pools(items: list[Item], opts: CalibrationOptions, source: str, notes: list[str]) -> tuple[list[Item], list[Item]]:
    """(calibration samples, the pool held-out samples are drawn from) when both come from one data set."""
    n = len(items)
    if n < 2:
        raise InputError(f"{source} holds {n} sample; calibration and held-out accuracy need at least 2",
                         "give more samples, or a separate held-out set with --eval-data")
    if n >= opts.samples + opts.holdout:
        n_hold = opts.holdout
    else:
        n_hold = max(1, min(opts.holdout, max(n - opts.samples, n // 4)))
    n_cal = min(opts.samples, n - n_hold)
    if n_cal < opts.samples:
        notes.append(f"only {n} samples: calibrating on {n_cal} (asked for {opts.samples}), holding out {n_hold}")
    return items[:n_cal], items[n_cal:]


def _distinct(pool: list[Item], calib: list[Item], want: int, notes: list[str]) -> list[Item]:
    """Up to ``want`` samples of ``pool`` that equal no calibration sample (nor each other)."""
    seen = {i.digest() for i in calib}
    holdout = []
    dropped = 0
    for item in pool:
        d = item.digest()
        if d in seen:
            dropped += 1
            continue
        seen.add(d)
        holdout.append(item)
        if len(holdout) >= want:
            break
    if dropped:
        notes.append(f"{dropped} held-out sample(s) identical to calibration samples were left out")
    return holdout


def split(data: Dataset, opts: CalibrationOptions, eval_data: Dataset | None = None) -> Split:
    """Shuffle (seeded) and split into calibration and held-out samples, never sharing a sample."""
    if opts.samples < 1:
        raise UsageError(f"--calibration-samples {opts.samples} must be at least 1", "use e.g. 100")
    if opts.holdout < 1:
        raise UsageError(f"--holdout-samples {opts.holdout} must be at least 1", "use e.g. 32")
    rng = np.random.default_rng(opts.seed)
    items = [data.items[i] for i in rng.permutation(len(data.items))]
    notes = list(data.notes)
    if eval_data is not None:
        calib = items[: opts.samples]
        hold_pool = [eval_data.items[i] for i in np.random.default_rng(opts.seed + 1).permutation(len(eval_data.items))]
        notes.extend(eval_data.notes)
    else:
        calib, hold_pool = _pools(items, opts, data.source, notes)
    holdout = _distinct(hold_pool, calib, opts.holdout, notes)
    if not holdout:
        raise InputError("no held-out samples remain that differ from the calibration samples",
                         "give more distinct samples, or a separate held-out set with --eval-data")
    if not calib:
        raise InputError("no calibration samples", "give more samples")
    source = data.source if eval_data is None else f"{data.source}; held out: {eval_data.source}"
    return Split(calib, holdout, source, data.random, notes)


def prepare(io: IOSpec, opts: CalibrationOptions, *, need_calibration: bool, dims: dict[str, int] | None = None,
            int_ranges: dict[str, tuple[int, int]] | None = None) -> Split:
    """The calibration/held-out split for a sweep, from ``opts`` (random only when allowed or not needed)."""
    want = opts.samples + opts.holdout
    if opts.dataset:
        if opts.source or opts.labels:
            raise UsageError("--dataset gives both the data and its labels", "drop --calibration/--labels, or drop --dataset")
        data = read_named_dataset(opts.dataset, io)
    elif opts.source:
        data = load_dataset(opts.source, io, opts, want, dims)
    elif need_calibration and not opts.allow_random:
        raise UsageError("int8/int16x8/static quantization needs calibration data",
                         "pass --calibration DATA (a folder of images, an .npz/.npy, or module:function), "
                         "or --random-calibration to calibrate on random inputs (results will not reflect real data)")
    else:
        data = random_dataset(io, want, opts.seed, dims, int_ranges)
        if need_calibration:
            data.notes.append("calibrated on RANDOM inputs (--random-calibration): int8 ranges and accuracy do not "
                              "reflect real data")
        else:
            data.notes.append("no --calibration data: accuracy is measured on random inputs")
    eval_data = load_dataset(opts.eval_source, io, opts, opts.holdout, dims) if opts.eval_source else None
    return split(data, opts, eval_data)
