"""Calibration and held-out data for quantization (numpy and Pillow only).

Where the data comes from (``--calibration DATA``):

- an ``.npy`` file (single-input models): ``(N, *input shape)`` stacks N samples; ``(N, C, H, W)`` for
  an input of batch 1 is N samples too;
- an ``.npz`` file: arrays named after the inputs, stacked the same way, or ``K:NAME`` /
  ``input:K:NAME`` keys (reference.npz style); an optional ``labels`` array holds one class per sample;
- a folder of images (searched recursively, sorted by path): each image is converted to the model's
  channel count, resized, multiplied by ``pixel_scale`` (1/255 by default), normalised with
  ``(x - mean) / std`` and laid out like the PyTorch model's image input;
- ``module:function`` or ``path/file.py:function``: a function returning an iterable of feeds, each a
  dict ``{input name: array}``, one array (single-input models) or a tuple in input order; a dict may
  carry a ``label`` entry;
- a labelled data set that ships with a package (``dataset``, ``--dataset digits``; see
  ``sample_models.DATASETS``): inputs and labels in one option, from the split the trained samples never saw.

Everything is read in the *reference* (PyTorch) layout. ``data_layout`` names the layout arrays are
stored in when it differs (``NHWC`` arrays for an ``NCHW`` model); for image folders it names the layout
the model's image input uses when the manifest does not say. Converting to the layout each converted
model expects (``NHWC`` for a SavedModel made by onnx2tf) uses the artifact's IOSpec (:func:`to_artifact`).

:func:`split` shuffles the samples with a seed and splits them into calibration samples and held-out
samples: accuracy is measured on the held-out ones only, and a held-out sample identical to a
calibration sample is dropped. Random data is used only when asked for (``allow_random``) and is marked
``random`` so reports can warn.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from edgeport.errors import InputError, UsageError
from edgeport.refdata import Sample, load_npz
from edgeport.spec import IOSpec, TensorSpec, default_layout, to_artifact_layout

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
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


# ----------------------------------------------------------------------------------------------- helpers


def _np_dtype(name: str) -> np.dtype:
    return np.dtype("float32" if name == "bfloat16" else name)


def layout_perm(src: str, dst: str) -> tuple[int, ...]:
    """The transpose taking an array laid out as ``src`` to ``dst`` (both strings of the same letters)."""
    s, d = src.upper(), dst.upper()
    if sorted(s) != sorted(d) or len(set(s)) != len(s):
        raise UsageError(f"layout {src!r} cannot be rearranged into {dst!r}", "give a layout with the same axes, e.g. NHWC for NCHW")
    return tuple(s.index(c) for c in d)


def parse_layout(text: str | None) -> str | None:
    if text is None or not str(text).strip():
        return None
    t = str(text).strip().upper()
    if not t.isalpha() or len(set(t)) != len(t) or not (2 <= len(t) <= 6):
        raise UsageError(f"bad layout {text!r}", "write it as letters, one per axis, e.g. NCHW or NHWC")
    return t


def reference_layout(spec: TensorSpec) -> str | None:
    return (spec.layout or default_layout(spec.rank) or None) if spec.rank else None


def _check_shape(arr: np.ndarray, spec: TensorSpec, where: str, hint: str) -> None:
    if arr.ndim != spec.rank or any(isinstance(d, int) and d != arr.shape[i] for i, d in enumerate(spec.shape)):
        raise InputError(f"{where}: input {spec.name!r} has shape {tuple(arr.shape)}, the model takes {list(spec.shape)}", hint)


def _to_reference(arr: np.ndarray, spec: TensorSpec, data_layout: str | None) -> np.ndarray:
    """An array stored in ``data_layout`` -> the reference layout of ``spec`` (same rank)."""
    ref = reference_layout(spec)
    if data_layout and ref and len(data_layout) == arr.ndim == len(ref) and data_layout != ref:
        return arr.transpose(layout_perm(data_layout, ref))
    return arr


def _split_stack(arr: np.ndarray, spec: TensorSpec) -> list[np.ndarray] | None:
    """A stacked array -> per-sample arrays of ``spec``'s rank, or None when it is a single sample."""
    if arr.ndim == spec.rank + 1:
        return [arr[i] for i in range(arr.shape[0])]
    if arr.ndim == spec.rank and spec.rank >= 1:
        batch = spec.shape[0]
        if isinstance(batch, int) and batch >= 1 and arr.shape[0] != batch and arr.shape[0] % batch == 0:
            return [arr[i:i + batch] for i in range(0, arr.shape[0], batch)]
        if batch == 1 and arr.shape[0] > 1:
            return [arr[i:i + 1] for i in range(arr.shape[0])]
    return None


def _labels_from_array(arr: np.ndarray, n: int, where: str) -> list[int]:
    a = np.asarray(arr)
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot or scores
        a = a.argmax(axis=1)
    a = a.reshape(-1)
    if a.size != n:
        raise InputError(f"{where} holds {a.size} labels for {n} samples", "give one class index per sample")
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and np.all(np.mod(a, 1) == 0):
            a = a.astype(np.int64)
        else:
            raise InputError(f"{where}: labels must be class indices (integers), got {a.dtype}", "save integer class ids")
    return [int(x) for x in a]


# ----------------------------------------------------------------------------------------------- readers


def read_npy(path: str | os.PathLike, io: IOSpec, data_layout: str | None = None) -> Dataset:
    p = Path(path)
    if len(io.inputs) != 1:
        raise UsageError(f"{p.name}: an .npy holds one array but the model has {len(io.inputs)} inputs",
                         f"save an .npz with arrays named {[s.name for s in io.inputs]}")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{p} holds pickled objects, which edgeport does not load", "save a plain array with numpy.save") from None
        raise InputError(f"{p} is not a readable .npy: {str(exc)[:100]}", "save it with numpy.save") from None
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}", "check the path") from None
    spec = io.inputs[0]
    parts = _split_stack(arr, spec)
    arrays = parts if parts is not None else [arr]
    items = []
    for k, a in enumerate(arrays):
        a = _to_reference(np.asarray(a), spec, data_layout)
        _check_shape(a, spec, p.name, _layout_hint(spec, data_layout))
        items.append(Item({spec.name: a.astype(_np_dtype(spec.dtype), copy=False)}, f"{p.name}[{k}]"))
    return Dataset(items, f"{p.name} ({len(items)} samples)", "npy")


def read_npz(path: str | os.PathLike, io: IOSpec, data_layout: str | None = None) -> Dataset:
    p = Path(path)
    data = load_npz(p)
    if not data:
        raise InputError(f"{p} holds no arrays", "save inputs with numpy.savez(path, NAME=stacked_array)")
    labels_arr = next((data.pop(k) for k in LABEL_KEYS if k in data), None)
    keyed: dict[int, Sample] = {}
    plain: dict[str, np.ndarray] = {}
    for key, arr in data.items():
        parts = key.split(":")
        if len(parts) == 3 and parts[0] in ("input", "output") and parts[1].isdigit():
            if parts[0] == "input":
                keyed.setdefault(int(parts[1]), {})[parts[2]] = arr
        elif len(parts) == 2 and parts[0].isdigit():
            keyed.setdefault(int(parts[0]), {})[parts[1]] = arr
        else:
            plain[key] = arr
    samples: list[Sample]
    if keyed and plain:
        raise InputError(f"{p} mixes plain names with K:NAME keys", "use one naming scheme")
    if keyed:
        samples = [keyed[k] for k in sorted(keyed)]
    else:
        if len(io.inputs) == 1 and io.inputs[0].name not in plain and len(plain) == 1:
            plain = {io.inputs[0].name: next(iter(plain.values()))}  # one unnamed array for a one-input model
        per_input: dict[str, list[np.ndarray]] = {}
        for spec in io.inputs:
            if spec.name not in plain:
                raise InputError(f"{p} has no array {spec.name!r} (it has {sorted(plain)})",
                                 f"save arrays named {[s.name for s in io.inputs]}")
            parts = _split_stack(plain[spec.name], spec)
            per_input[spec.name] = parts if parts is not None else [plain[spec.name]]
        counts = {len(v) for v in per_input.values()}
        if len(counts) != 1:
            raise InputError(f"{p}: inputs hold different numbers of samples ({sorted(counts)})",
                             "stack the same number of samples for each input")
        n = counts.pop()
        samples = [{name: arrs[i] for name, arrs in per_input.items()} for i in range(n)]
    items = []
    for k, s in enumerate(samples):
        feed = {}
        for spec in io.inputs:
            if spec.name not in s:
                raise InputError(f"{p} sample {k} has no input {spec.name!r}", f"save arrays named {[t.name for t in io.inputs]}")
            a = _to_reference(np.asarray(s[spec.name]), spec, data_layout)
            _check_shape(a, spec, p.name, _layout_hint(spec, data_layout))
            feed[spec.name] = a.astype(_np_dtype(spec.dtype), copy=False)
        items.append(Item(feed, f"{p.name}[{k}]"))
    if labels_arr is not None:
        for item, lab in zip(items, _labels_from_array(labels_arr, len(items), f"{p.name}:labels")):
            item.label = lab
    return Dataset(items, f"{p.name} ({len(items)} samples)", "npz")


def _layout_hint(spec: TensorSpec, data_layout: str | None) -> str:
    ref = reference_layout(spec)
    if ref and spec.rank == 4 and not data_layout:
        return f"save samples in the PyTorch model's layout ({ref}), or say how they are stored with --calibration-layout NHWC"
    return "save samples shaped like the model input (reference layout), stacked on a new first axis"


def _floats(values: Sequence[float] | None, c: int, what: str, default: float) -> np.ndarray:
    arr = np.asarray(list(values) if values else [default], dtype=np.float32)
    if arr.size not in (1, c):
        raise UsageError(f"{what} has {arr.size} values, the model's image input has {c} channels", f"give 1 or {c} values")
    return arr


def image_input(io: IOSpec) -> TensorSpec:
    cands = [s for s in io.inputs if s.rank == 4 and _np_dtype(s.dtype).kind == "f"]
    if not cands:
        raise UsageError("a folder of images needs a model with a 4-D float (image) input",
                         "pass an .npz of inputs, or a module:function yielding feeds")
    return cands[0]


def list_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_images(folder: str | os.PathLike, io: IOSpec, opts: CalibrationOptions, dims: dict[str, int] | None = None,
                limit: int | None = None) -> Dataset:
    """Images from ``folder`` laid out like the model's image input (other inputs get seeded random values)."""
    folder = Path(folder)
    files = list_images(folder)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", "pass a folder of .png/.jpg files")
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("reading images needs Pillow", "pip install pillow, or pass an .npz") from None
    spec = image_input(io)
    layout = opts.data_layout or reference_layout(spec) or "NCHW"
    if sorted(layout) != sorted("NCHW"):
        raise UsageError(f"layout {layout} is not an image layout", "use NCHW or NHWC")
    shape = spec.concrete(dims or {})
    named = dict(zip(layout, shape))
    c, fixed_h, fixed_w = named["C"], spec.shape[layout.index("H")], spec.shape[layout.index("W")]
    if c not in (1, 3, 4):
        raise UsageError(f"input {spec.name!r} has {c} channels in layout {layout}; images have 1, 3 or 4",
                         "say how the model lays out its image input with --calibration-layout, or pass an .npz")
    h, w = opts.resize or (named["H"], named["W"])
    if opts.resize and ((isinstance(fixed_h, int) and fixed_h != h) or (isinstance(fixed_w, int) and fixed_w != w)):
        raise UsageError(f"--resize {h}x{w} does not fit the model's fixed input {list(spec.shape)}", "drop --resize or match the model")
    mean = _floats(opts.mean, c, "--mean", 0.0)
    std = _floats(opts.std, c, "--std", 1.0)
    if np.any(std == 0):
        raise UsageError("--std contains 0", "give non-zero standard deviations")
    if limit:
        files = files[:limit]
    others = [s for s in io.inputs if s.name != spec.name]
    rng = np.random.default_rng(opts.seed)
    items = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert({1: "L", 3: "RGB", 4: "RGBA"}[c]).resize((w, h), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.float32)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            # PIL raises DecompressionBombError (not an OSError) for absurd sizes, SyntaxError for some broken files
            raise InputError(f"cannot read image {f}: {' '.join(str(exc).split())[:120]}", "remove or fix the file") from None
        a = a.reshape(h, w, c)
        if opts.bgr and c >= 3:
            a = a[..., [2, 1, 0] + list(range(3, c))]
        a = (a * np.float32(opts.pixel_scale) - mean) / std
        nhwc = a[None]
        arr = nhwc.transpose(layout_perm("NHWC", layout))
        batch = named["N"]
        if batch > 1:
            arr = np.repeat(arr, batch, axis=layout.index("N"))
        feed: Sample = {spec.name: arr.astype(_np_dtype(spec.dtype))}
        for o in others:
            feed[o.name] = _random_array(o, rng, dims)
        items.append(Item(feed, f.relative_to(folder).as_posix()))
    notes = [f"inputs {[o.name for o in others]} are random (images feed {spec.name!r} only)"] if others else []
    return Dataset(items, f"images in {folder} ({len(items)} files, {h}x{w}, {layout})", "images", notes)


def _random_array(spec: TensorSpec, rng: np.random.Generator, dims: dict[str, int] | None,
                  int_range: tuple[int, int] | None = None) -> np.ndarray:
    shape = spec.concrete(dims or {})
    dt = _np_dtype(spec.dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    lo, hi = int_range or (0, 1)
    return rng.integers(lo, hi + 1, size=shape).astype(dt)


def load_callable(ref: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function`` -> the function (imports the user's code)."""
    head, sep, attr = str(ref).rpartition(":")
    if not sep or not attr.isidentifier() or not head:
        raise UsageError(f"{ref!r} is not module:function", "write package.module:function or path/to/file.py:function")
    if head.endswith(".py") or os.sep in head:
        path = Path(head).expanduser()
        if not path.is_file():
            raise InputError(f"calibration module {path} does not exist", "check the path")
        name = f"_edgeport_calibration_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InputError(f"cannot import {path}", "pass a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's module failed to import
            raise InputError(f"importing {path} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}",
                             "fix the module, or pass --debug for the traceback") from exc
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(head)
        except ImportError as exc:
            raise InputError(f"cannot import calibration module {head!r}: {exc}", "check the name, or pass path/to/file.py:function") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"{head} has no function {attr!r}", f"define def {attr}(): yield {{'input': array}}")
    return fn


def read_module(ref: str, io: IOSpec, limit: int, data_layout: str | None = None) -> Dataset:
    """Feeds from a user function (called with no arguments, or with the IOSpec if it takes one)."""
    fn = load_callable(ref)
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    try:
        produced = fn(io) if params else fn()
        if not isinstance(produced, Iterable):
            raise InputError(f"{ref} returned {type(produced).__name__}, not an iterable of feeds",
                             "return or yield dicts {input name: array}")
        raw = list(itertools.islice(iter(produced), limit))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's generator failed
        raise InputError(f"{ref} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}",
                         "fix the function, or pass --debug for the traceback") from exc
    names = [s.name for s in io.inputs]
    items = []
    for k, feed in enumerate(raw):
        label = None
        if isinstance(feed, dict):
            feed = dict(feed)
            lab = next((feed.pop(key) for key in LABEL_KEYS if key in feed and key not in names), None)
            if lab is not None:
                label = int(np.asarray(lab).reshape(-1)[0])
        elif isinstance(feed, (tuple, list)):
            if len(feed) != len(names):
                raise InputError(f"{ref}: feed {k} has {len(feed)} arrays, the model takes {len(names)}",
                                 f"yield dicts keyed by {names}")
            feed = dict(zip(names, feed))
        else:
            if len(names) != 1:
                raise InputError(f"{ref}: feed {k} is one array, the model takes {len(names)} inputs", f"yield dicts keyed by {names}")
            feed = {names[0]: feed}
        out: Sample = {}
        for spec in io.inputs:
            if spec.name not in feed:
                raise InputError(f"{ref}: feed {k} has no input {spec.name!r} (it has {sorted(feed)})", f"yield dicts keyed by {names}")
            a = _to_reference(np.asarray(feed[spec.name]), spec, data_layout)
            _check_shape(a, spec, f"{ref} feed {k}", _layout_hint(spec, data_layout))
            out[spec.name] = a.astype(_np_dtype(spec.dtype), copy=False)
        items.append(Item(out, f"{attr_of(ref)}[{k}]", label))
    if not items:
        raise InputError(f"{ref} yielded no feeds", "yield at least two feeds (calibration and held-out)")
    return Dataset(items, f"{ref} ({len(items)} feeds)", "module")


def attr_of(ref: str) -> str:
    return ref.rpartition(":")[2] or ref


def random_dataset(io: IOSpec, n: int, seed: int, dims: dict[str, int] | None = None,
                   int_ranges: dict[str, tuple[int, int]] | None = None) -> Dataset:
    """Seeded random samples: floats ~ N(0, 1), integers uniform in their observed range."""
    rng = np.random.default_rng(seed)
    items = [Item({s.name: _random_array(s, rng, dims, (int_ranges or {}).get(s.name)) for s in io.inputs}, f"random[{k}]")
             for k in range(n)]
    return Dataset(items, f"random (seed {seed}, {n} samples)", "random")


def read_labels(path: str | os.PathLike, items: Sequence[Item]) -> None:
    """Attach labels to ``items``: one integer per line / per entry (.npy, .txt) in the data set's order, or a
    ``.csv`` with ``id,label`` rows where id is an image path relative to the folder (or its file name)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--labels {p} does not exist", "check the path")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            for item, lab in zip(items, _labels_from_array(np.load(p, allow_pickle=False), len(items), p.name)):
                item.label = lab
            return
        text = p.read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --labels {p}: {' '.join(str(exc).split())[:120]}", "save labels as .npy, .txt or .csv") from None
    rows = [r.strip() for r in text.splitlines() if r.strip() and not r.strip().startswith("#")]
    if rows and ("," in rows[0] or "\t" in rows[0]):
        mapping: dict[str, int] = {}
        for r in rows:
            key, _, val = r.replace("\t", ",").rpartition(",")
            try:
                mapping[key.strip()] = int(val)
            except ValueError:
                if r is rows[0]:
                    continue  # a header row
                raise InputError(f"--labels {p}: {val!r} is not a class index", "write rows like image.png,3") from None
        by_name: dict[str, int] = {}
        for k, v in mapping.items():
            by_name.setdefault(Path(k).name, v)
        missing = []
        for item in items:
            lab = mapping.get(item.id, by_name.get(Path(item.id).name))
            if lab is None:
                missing.append(item.id)
            item.label = lab
        if missing:
            raise InputError(f"--labels {p} has no label for {missing[0]!r} ({len(missing)} samples unlabelled)",
                             "give a label for every sample")
        return
    try:
        labels = [int(r) for r in rows]
    except ValueError:
        raise InputError(f"--labels {p} holds lines that are not class indices", "write one integer per line") from None
    for item, lab in zip(items, _labels_from_array(np.asarray(labels), len(items), p.name)):
        item.label = lab


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
    dt = _np_dtype(spec.dtype)
    items = [Item({spec.name: inputs[k:k + 1].astype(dt, copy=False)}, f"{name}:{info.eval_split}[{k}]", int(labels[k]))
             for k in range(len(labels))]
    return Dataset(items, f"{name} data set, {info.eval_split} split ({len(items)} labelled samples)", "dataset")


def load_dataset(source: str, io: IOSpec, opts: CalibrationOptions, limit: int, dims: dict[str, int] | None = None) -> Dataset:
    """Read ``source`` (see the module docstring) in the reference layout; at most ``limit`` samples."""
    text = str(source).strip()
    if not text:
        raise UsageError("--calibration is empty", "pass a folder of images, an .npz/.npy, or module:function")
    p = Path(text).expanduser()
    layout = parse_layout(opts.data_layout)
    if p.is_dir():
        ds = read_images(p, io, opts, dims, limit=None)
    elif p.is_file():
        if p.suffix.lower() == ".npy":
            ds = read_npy(p, io, layout)
        elif p.suffix.lower() == ".npz":
            ds = read_npz(p, io, layout)
        else:
            raise UsageError(f"cannot read calibration data from {p.name} ({p.suffix or 'no suffix'})",
                             "pass a folder of images, an .npz or .npy file, or module:function")
    elif ":" in text and p.suffix.lower() not in (".npy", ".npz"):
        ds = read_module(text, io, limit, layout)
    else:
        raise InputError(f"calibration data {text} does not exist",
                         "pass an existing folder of images, an .npz/.npy file, or module:function")
    if not ds.items:
        raise InputError(f"{text} holds no samples", "give at least two samples")
    if opts.labels:
        read_labels(opts.labels, ds.items)
    if len(ds.items) > limit and ds.kind != "images":
        ds.notes.append(f"{len(ds.items)} samples available; the first {limit} after shuffling are used")
    return ds


# ----------------------------------------------------------------------------------------------- split


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
        n = len(items)
        if n < 2:
            raise InputError(f"{data.source} holds {n} sample; calibration and held-out accuracy need at least 2",
                             "give more samples, or a separate held-out set with --eval-data")
        if n >= opts.samples + opts.holdout:
            n_hold = opts.holdout
        else:
            n_hold = max(1, min(opts.holdout, max(n - opts.samples, n // 4)))
        n_cal = min(opts.samples, n - n_hold)
        calib, hold_pool = items[:n_cal], items[n_cal:]
        if n_cal < opts.samples:
            notes.append(f"only {n} samples: calibrating on {n_cal} (asked for {opts.samples}), holding out {n_hold}")
    seen = {i.digest() for i in calib}
    holdout = []
    dropped = 0
    for item in hold_pool:
        d = item.digest()
        if d in seen:
            dropped += 1
            continue
        seen.add(d)
        holdout.append(item)
        if len(holdout) >= opts.holdout:
            break
    if dropped:
        notes.append(f"{dropped} held-out sample(s) identical to calibration samples were left out")
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


# ----------------------------------------------------------------------------------------------- feeding converters


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
        arr = to_artifact_layout(arr, spec)
        dt = _np_dtype(spec.dtype)
        if dt.kind in "iu" and np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"calibration input {ref!r} is floating point, the model takes {spec.dtype}",
                             "give integer inputs (token ids) for integer model inputs")
        if any(isinstance(d, int) and d != arr.shape[i] for i, d in enumerate(spec.shape)):
            raise InputError(f"calibration input {ref!r} becomes shape {tuple(arr.shape)} in the converted model's "
                             f"layout {spec.layout or ''}, which takes {list(spec.shape)}",
                             "give samples in the PyTorch model's layout (edgeport transposes them for each converter)")
        out[spec.name] = np.ascontiguousarray(arr.astype(dt, copy=False))
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


# ----------------------------------------------------------------------------------------------- synthetic images


def write_synthetic_images(folder: str | os.PathLike, n: int, size: tuple[int, int] = (96, 96), seed: int = 0) -> list[Path]:
    """Write ``n`` image-like PNGs (smooth colour fields, gradients and filled shapes) for demos and tests.

    Nothing is downloaded: the images are drawn here, seeded. They are not natural images, but their
    statistics (smooth regions, edges, a few dominant colours) are far closer to them than noise is.
    """
    from PIL import Image, ImageDraw, ImageFilter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    paths = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(n):
        low = rng.random((4, 4, 3)).astype(np.float32)
        base = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        grad = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None] * rng.uniform(-80, 80, size=3)
        img = Image.fromarray(np.clip(base + grad, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x0, y0 = rng.integers(0, w - 8), rng.integers(0, h - 8)
            x1, y1 = x0 + rng.integers(8, max(9, w // 2)), y0 + rng.integers(8, max(9, h // 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            elif shape == 1:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            else:
                draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.5))))
        noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 4, size=(h, w, 3))
        path = folder / f"synthetic_{k:04d}.png"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths
