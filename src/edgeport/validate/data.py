"""Inputs to validate on (numpy only): seeded random, an .npz file, an image folder, or reference.npz.

Every feed is a list of samples, each a ``{input name: array}`` in the reference (PyTorch) layout.
Feeds travel to worker processes as an .npz with keys ``K:NAME`` (:func:`save_samples`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edgeport.errors import InputError, UsageError
from edgeport.fsutil import atomic_write_bytes
from edgeport.refdata import Sample, load_npz
from edgeport.spec import IOSpec, TensorSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
MAX_SAMPLES = 10_000


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


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype("float32" if dtype == "bfloat16" else dtype)


def int_ranges_from(samples: Sequence[Sample] | None) -> dict[str, tuple[int, int]]:
    """Observed [low, high] of every integer input in ``samples`` (e.g. token ids in reference.npz)."""
    ranges: dict[str, tuple[int, int]] = {}
    for s in samples or []:
        for k, v in s.items():
            a = np.asarray(v)
            if a.dtype.kind in "iu" and a.size:
                lo, hi = int(a.min()), int(a.max())
                old = ranges.get(k)
                ranges[k] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    return ranges


def random_feeds(io_spec: IOSpec, n: int, seed: int = 0, dims: dict[str, int] | None = None,
                 int_ranges: dict[str, tuple[int, int]] | None = None) -> Feeds:
    """``n`` seeded samples: floats ~ N(0, 1); integers uniform in their observed range (default [0, 1])."""
    if n < 1 or n > MAX_SAMPLES:
        raise UsageError(f"--samples {n} is out of range", f"use 1..{MAX_SAMPLES}")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        s: Sample = {}
        for spec in io_spec.inputs:
            shape = spec.concrete(dims or {})
            dt = _np_dtype(spec.dtype)
            if dt.kind == "f":
                s[spec.name] = rng.standard_normal(shape).astype(dt)
            elif dt.kind == "b":
                s[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
            else:
                lo, hi = (int_ranges or {}).get(spec.name, (0, 1))
                s[spec.name] = rng.integers(lo, hi + 1, size=shape).astype(dt)
        samples.append(s)
    return Feeds(samples, f"random (seed {seed}, {n} sample{'s' if n != 1 else ''})")


def _check_sample(s: Sample, io_spec: IOSpec, where: str) -> Sample:
    out = {}
    for spec in io_spec.inputs:
        if spec.name not in s:
            raise InputError(f"{where} has no input {spec.name!r} (it has {sorted(s)})",
                             f"save arrays named {[t.name for t in io_spec.inputs]}")
        a = np.asarray(s[spec.name])
        if a.ndim != spec.rank or any(isinstance(d, int) and d != a.shape[i] for i, d in enumerate(spec.shape)):
            raise InputError(f"{where}: input {spec.name!r} has shape {tuple(a.shape)}, the model takes {list(spec.shape)}",
                             "save inputs in the reference (PyTorch) layout and shape")
        out[spec.name] = a.astype(_np_dtype(spec.dtype), copy=False)
    return out


def npz_feeds(path: str | os.PathLike, io_spec: IOSpec, limit: int | None = None) -> Feeds:
    """Samples from an .npz: reference-style keys ``input:K:NAME`` (outputs kept), ``K:NAME``, or ``NAME``.

    A ``NAME`` array with one more axis than the input holds several samples on axis 0.
    """
    data = load_npz(path)
    if not data:
        raise InputError(f"{path} holds no arrays", "save inputs with numpy.savez(path, NAME=array)")
    samples: dict[int, Sample] = {}
    outputs: dict[int, Sample] = {}
    plain: dict[str, np.ndarray] = {}
    for key, arr in data.items():
        parts = key.split(":")
        if len(parts) == 3 and parts[0] in ("input", "output") and parts[1].isdigit():
            (samples if parts[0] == "input" else outputs).setdefault(int(parts[1]), {})[parts[2]] = arr
        elif len(parts) == 2 and parts[0].isdigit():
            samples.setdefault(int(parts[0]), {})[parts[1]] = arr
        else:
            plain[key] = arr
    result: list[Sample] = [samples[k] for k in sorted(samples)]
    if plain:
        if result:
            raise InputError(f"{path} mixes plain names with K:NAME keys", "use one naming scheme")
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
            result = [{k: plain[k] for k in plain}]
        else:
            result = [{s.name: plain[s.name][i] for s in io_spec.inputs} for i in range(n)]
    if limit:
        result = result[:limit]
    checked = [_check_sample(s, io_spec, str(path)) for s in result]
    stored = None
    if outputs and sorted(outputs) == sorted(samples):
        stored = [outputs[k] for k in sorted(outputs)][: len(checked)]
    return Feeds(checked, f"{Path(path).name} ({len(checked)} sample{'s' if len(checked) != 1 else ''})", stored)


def _parse_floats(text: str | Sequence[float] | None, what: str) -> list[float] | None:
    if text is None:
        return None
    if isinstance(text, str):
        try:
            return [float(x) for x in text.replace(" ", "").split(",") if x]
        except ValueError:
            raise UsageError(f"{what} {text!r} is not a list of numbers", f"write {what} 0.485,0.456,0.406") from None
    return [float(x) for x in text]


def parse_resize(text: str | None) -> tuple[int, int] | None:
    """``224`` or ``224x224`` (height x width)."""
    if not text:
        return None
    parts = str(text).lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--resize {text!r} is not HxW", "write --resize 224x224") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) <= 0:
        raise UsageError(f"--resize {text!r} is not HxW", "write --resize 224x224")
    return vals[0], vals[1]


def _image_input(io_spec: IOSpec) -> TensorSpec:
    cands = [s for s in io_spec.inputs if s.rank == 4 and _np_dtype(s.dtype).kind == "f"]
    if not cands:
        raise UsageError("--images needs a model with a 4-D float (image) input", "use --inputs-npz or --samples instead")
    return cands[0]


def image_feeds(folder: str | os.PathLike, io_spec: IOSpec, *, limit: int | None = None, resize: tuple[int, int] | None = None,
                mean: str | Sequence[float] | None = None, std: str | Sequence[float] | None = None,
                dims: dict[str, int] | None = None, seed: int = 0) -> Feeds:
    """Images from ``folder`` (sorted by name): resized, scaled to [0, 1], then ``(x - mean) / std``, NCHW.

    Other inputs of the model get seeded random values.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--images {folder} is not a folder", "pass a folder of .png/.jpg files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", "pass a folder of .png/.jpg files")
    if limit:
        files = files[:limit]
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("--images needs Pillow", "pip install pillow, or use --inputs-npz") from None
    spec = _image_input(io_spec)
    layout = (spec.layout or "NCHW").upper()
    nhwc = layout == "NHWC"
    shape = spec.concrete(dims or {})
    c = shape[3] if nhwc else shape[1]
    h, w = resize or ((shape[1], shape[2]) if nhwc else (shape[2], shape[3]))
    if isinstance(spec.shape[2 if not nhwc else 1], int) and resize and (h, w) != ((shape[1], shape[2]) if nhwc else (shape[2], shape[3])):
        raise UsageError(f"--resize {h}x{w} does not fit the model's fixed input {list(spec.shape)}", "drop --resize or match the model")
    if c not in (1, 3, 4):
        raise UsageError(f"input {spec.name!r} has {c} channels; images have 1, 3 or 4", "check the input layout, or use --inputs-npz")
    m = np.asarray(_parse_floats(mean, "--mean") or [0.0], dtype=np.float32)
    sd = np.asarray(_parse_floats(std, "--std") or [1.0], dtype=np.float32)
    for arr, what in ((m, "--mean"), (sd, "--std")):
        if arr.size not in (1, c):
            raise UsageError(f"{what} has {arr.size} values, the model takes {c} channels", f"give 1 or {c} values")
    if np.any(sd == 0):
        raise UsageError("--std contains 0", "give non-zero standard deviations")
    others = IOSpec(inputs=[s for s in io_spec.inputs if s.name != spec.name])
    rest = random_feeds(others, len(files), seed, dims).samples if others.inputs else [{} for _ in files]
    samples = []
    for f, extra in zip(files, rest):
        try:
            with Image.open(f) as im:
                im = im.convert({1: "L", 3: "RGB", 4: "RGBA"}[c]).resize((w, h), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.float32) / 255.0
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            # PIL raises DecompressionBombError (not an OSError) for absurd sizes, SyntaxError for some broken files
            raise InputError(f"cannot read image {f}: {' '.join(str(exc).split())[:120]}", "remove or fix the file") from None
        a = a.reshape(h, w, c)
        a = (a - m) / sd
        a = a[None] if nhwc else a.transpose(2, 0, 1)[None]
        batch = shape[0]
        if batch > 1:
            a = np.repeat(a, batch, axis=0)
        sample = {spec.name: a.astype(_np_dtype(spec.dtype))}
        sample.update(extra)
        samples.append(sample)
    return Feeds(samples, f"images in {folder} ({len(samples)} files, {h}x{w})")


# ------------------------------------------------------------------------------------------- transport


def save_samples(path: str | os.PathLike, samples: Sequence[Sample]) -> None:
    """Write samples to an .npz with keys ``K:NAME`` (atomically)."""
    arrays = {f"{k}:{n}": np.asarray(v) for k, s in enumerate(samples) for n, v in s.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_samples(path: str | os.PathLike) -> list[Sample]:
    """Read what :func:`save_samples` wrote."""
    data = load_npz(path)
    out: dict[int, Sample] = {}
    for key, arr in data.items():
        k, _, name = key.partition(":")
        if not k.isdigit() or not name:
            raise InputError(f"{path} has an unexpected key {key!r}", "write it with save_samples")
        out.setdefault(int(k), {})[name] = arr
    return [out[k] for k in sorted(out)]
