"""Where calibration data comes from: :func:`load_dataset` reads ``--calibration DATA`` of any kind.

Image folders go through :mod:`edgeport.data.images`, random samples through :mod:`edgeport.data.feeds`,
arrays through :mod:`edgeport.quantize.calibration.arrays`, the user's code through
:mod:`edgeport.quantize.calibration.user_function`; a labelled data set that ships with a package comes
from ``sample_models``.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeport.data.feeds import np_dtype, random_samples
from edgeport.data.images import ImageOptions
from edgeport.data.images import read_images as _read_image_folder
from edgeport.data.layout import parse_layout
from edgeport.errors import InputError, UsageError
from edgeport.quantize.calibration.arrays import read_labels, read_npy, read_npz
from edgeport.quantize.calibration.dataset import CalibrationOptions, Dataset, Item
from edgeport.quantize.calibration.user_function import read_module
from edgeport.spec import IOSpec


def read_images(folder: str | os.PathLike, io: IOSpec, opts: CalibrationOptions, dims: dict[str, int] | None = None,
                limit: int | None = None) -> Dataset:
    """Images from ``folder`` laid out like the model's image input (other inputs get seeded random values).

    Each item's id is the image's path relative to ``folder`` (what a ``--labels`` .csv names).
    """
    image_opts = ImageOptions(resize=opts.resize, mean=opts.mean, std=opts.std, pixel_scale=opts.pixel_scale,
                              bgr=opts.bgr, layout=opts.data_layout)
    got = _read_image_folder(folder, io, image_opts, dims=dims, limit=limit, seed=opts.seed)
    items = [Item(s, i) for s, i in zip(got.samples, got.ids)]
    notes = [f"inputs {got.random_inputs} are random (images feed {got.input.name!r} only)"] if got.random_inputs else []
    h, w = got.size
    return Dataset(items, f"images in {got.folder} ({len(items)} files, {h}x{w}, {got.layout})", "images", notes)


def read_named_dataset(name: str, io: IOSpec) -> Dataset:
    """A labelled data set that ships with a package (``sample_models.DATASETS``), its evaluation split."""
    import sample_models

    info = sample_models.DATASETS.get(name)
    if info is None:
        raise UsageError(f"unknown data set {name!r}", f"use --dataset {' or '.join(sample_models.DATASETS)}")
    if len(io.inputs) != 1:
        raise UsageError(f"--dataset {name} feeds one input, the model has {len(io.inputs)}", "pass --calibration DATA instead")
    spec = io.inputs[0]
    if spec.rank != len(info.input_shape) or any(isinstance(d, int) and d != info.input_shape[i] for i, d in enumerate(spec.shape)):
        raise InputError(f"--dataset {name} holds inputs of shape {list(info.input_shape)}, the model takes {list(spec.shape)}",
                         "use the data set with a model trained on it (edgeport samples lists them)")
    try:
        inputs, labels = sample_models.load_dataset(name)
    except ImportError as exc:
        raise UsageError(f"--dataset {name}: {exc}", f"pip install {info.package or 'the package that ships it'}") from None
    dt = np_dtype(spec.dtype)
    items = [Item({spec.name: inputs[k:k + 1].astype(dt, copy=False)}, f"{name}:{info.eval_split}[{k}]", int(labels[k]))
             for k in range(len(labels))]
    return Dataset(items, f"{name} data set, {info.eval_split} split ({len(items)} labelled samples)", "dataset")


def random_dataset(io: IOSpec, n: int, seed: int, dims: dict[str, int] | None = None,
                   int_ranges: dict[str, tuple[int, int]] | None = None) -> Dataset:
    """Seeded random samples (:func:`edgeport.data.feeds.random_samples`), marked ``random``."""
    samples = random_samples(io.inputs, n, seed, dims, int_ranges)
    return Dataset([Item(s, f"random[{k}]") for k, s in enumerate(samples)], f"random (seed {seed}, {n} samples)", "random")


def _read_path(text: str, io: IOSpec, opts: CalibrationOptions, limit: int, dims: dict[str, int] | None) -> Dataset:
    p = Path(text).expanduser()
    layout = parse_layout(opts.data_layout)
    if p.is_dir():
        return read_images(p, io, opts, dims, limit=None)
    if p.is_file():
        if p.suffix.lower() == ".npy":
            return read_npy(p, io, layout)
        if p.suffix.lower() == ".npz":
            return read_npz(p, io, layout)
        raise UsageError(f"cannot read calibration data from {p.name} ({p.suffix or 'no suffix'})",
                         "pass a folder of images, an .npz or .npy file, or module:function")
    if ":" in text and p.suffix.lower() not in (".npy", ".npz"):
        return read_module(text, io, limit, layout)
    raise InputError(f"calibration data {text} does not exist",
                     "pass an existing folder of images, an .npz/.npy file, or module:function")


def load_dataset(source: str, io: IOSpec, opts: CalibrationOptions, limit: int, dims: dict[str, int] | None = None) -> Dataset:
    """Read ``source`` (see :mod:`edgeport.quantize.calibration`) in the reference layout; at most ``limit`` samples."""
    text = str(source).strip()
    if not text:
        raise UsageError("--calibration is empty", "pass a folder of images, an .npz/.npy, or module:function")
    ds = _read_path(text, io, opts, limit, dims)
    if not ds.items:
        raise InputError(f"{text} holds no samples", "give at least two samples")
    if opts.labels:
        read_labels(opts.labels, ds.items)
    if len(ds.items) > limit and ds.kind != "images":
        ds.notes.append(f"{len(ds.items)} samples available; the first {limit} after shuffling are used")
    return ds
