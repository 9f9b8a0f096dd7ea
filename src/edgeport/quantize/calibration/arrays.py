"""Calibration samples from arrays: an .npy, an .npz (stacked or ``K:NAME`` keys), and class labels.

Arrays are read in the reference (PyTorch) layout; ``data_layout`` names the layout they are stored in when
it differs (``NHWC`` arrays for an ``NCHW`` model). A stack of N samples is an array with one more axis than
the input, or (for a fixed batch B) N*B rows along the batch axis.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from edgeport.data.feeds import check_shape, np_dtype
from edgeport.data.layout import layout_perm, reference_layout
from edgeport.data.samples import group_keys
from edgeport.errors import InputError, UsageError
from edgeport.quantize.calibration.dataset import LABEL_KEYS, Dataset, Item
from edgeport.refdata import Sample, load_npz
from edgeport.spec import IOSpec, TensorSpec


def layout_hint(spec: TensorSpec, data_layout: str | None) -> str:
    ref = reference_layout(spec)
    if ref and spec.rank == 4 and not data_layout:
        return f"save samples in the PyTorch model's layout ({ref}), or say how they are stored with --calibration-layout NHWC"
    return "save samples shaped like the model input (reference layout), stacked on a new first axis"


def conform(arr: np.ndarray, spec: TensorSpec, data_layout: str | None, where: str) -> np.ndarray:
    """An array stored in ``data_layout`` -> ``spec``'s reference layout and dtype, its shape checked."""
    ref = reference_layout(spec)
    if data_layout and ref and len(data_layout) == arr.ndim == len(ref) and data_layout != ref:
        arr = arr.transpose(layout_perm(data_layout, ref))
    check_shape(arr, spec, where, layout_hint(spec, data_layout))
    return arr.astype(np_dtype(spec.dtype), copy=False)


def split_stack(arr: np.ndarray, spec: TensorSpec) -> list[np.ndarray] | None:
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


def labels_from_array(arr: np.ndarray, n: int, where: str) -> list[int]:
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
    parts = split_stack(arr, spec)
    arrays = parts if parts is not None else [arr]
    items = [Item({spec.name: conform(np.asarray(a), spec, data_layout, p.name)}, f"{p.name}[{k}]")
             for k, a in enumerate(arrays)]
    return Dataset(items, f"{p.name} ({len(items)} samples)", "npy")


def _plain_samples(p: Path, plain: dict[str, np.ndarray], io: IOSpec) -> list[Sample]:
    """Arrays named after the inputs (one unnamed array for a one-input model), each a stack of samples."""
    if len(io.inputs) == 1 and io.inputs[0].name not in plain and len(plain) == 1:
        plain = {io.inputs[0].name: next(iter(plain.values()))}
    per_input: dict[str, list[np.ndarray]] = {}
    for spec in io.inputs:
        if spec.name not in plain:
            raise InputError(f"{p} has no array {spec.name!r} (it has {sorted(plain)})",
                             f"save arrays named {[s.name for s in io.inputs]}")
        parts = split_stack(plain[spec.name], spec)
        per_input[spec.name] = parts if parts is not None else [plain[spec.name]]
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1:
        raise InputError(f"{p}: inputs hold different numbers of samples ({sorted(counts)})",
                         "stack the same number of samples for each input")
    n = counts.pop()
    return [{name: arrs[i] for name, arrs in per_input.items()} for i in range(n)]


def read_npz(path: str | os.PathLike, io: IOSpec, data_layout: str | None = None) -> Dataset:
    p = Path(path)
    data = load_npz(p)
    if not data:
        raise InputError(f"{p} holds no arrays", "save inputs with numpy.savez(path, NAME=stacked_array)")
    labels_arr = next((data.pop(k) for k in LABEL_KEYS if k in data), None)
    keyed, _, plain = group_keys(data)  # reference.npz outputs are not calibration data
    if keyed and plain:
        raise InputError(f"{p} mixes plain names with K:NAME keys", "use one naming scheme")
    samples = [keyed[k] for k in sorted(keyed)] if keyed else _plain_samples(p, plain, io)
    items = []
    for k, s in enumerate(samples):
        missing = [spec.name for spec in io.inputs if spec.name not in s]
        if missing:
            raise InputError(f"{p} sample {k} has no input {missing[0]!r}", f"save arrays named {[t.name for t in io.inputs]}")
        items.append(Item({spec.name: conform(np.asarray(s[spec.name]), spec, data_layout, p.name) for spec in io.inputs},
                          f"{p.name}[{k}]"))
    if labels_arr is not None:
        for item, lab in zip(items, labels_from_array(labels_arr, len(items), f"{p.name}:labels")):
            item.label = lab
    return Dataset(items, f"{p.name} ({len(items)} samples)", "npz")


def _labels_by_id(p: Path, rows: list[str], items: Sequence[Item]) -> None:
    """``id,label`` rows (a header row is skipped); an id matches an item's id or its file name."""
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


def read_labels(path: str | os.PathLike, items: Sequence[Item]) -> None:
    """Attach labels to ``items``: one integer per line / per entry (.npy, .txt) in the data set's order, or a
    ``.csv`` with ``id,label`` rows where id is an image path relative to the folder (or its file name)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--labels {p} does not exist", "check the path")
    try:
        if p.suffix.lower() == ".npy":
            for item, lab in zip(items, labels_from_array(np.load(p, allow_pickle=False), len(items), p.name)):
                item.label = lab
            return
        text = p.read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --labels {p}: {' '.join(str(exc).split())[:120]}", "save labels as .npy, .txt or .csv") from None
    rows = [r.strip() for r in text.splitlines() if r.strip() and not r.strip().startswith("#")]
    if rows and ("," in rows[0] or "\t" in rows[0]):
        _labels_by_id(p, rows, items)
        return
    try:
        labels = [int(r) for r in rows]
    except ValueError:
        raise InputError(f"--labels {p} holds lines that are not class indices", "write one integer per line") from None
    for item, lab in zip(items, labels_from_array(np.asarray(labels), len(items), p.name)):
        item.label = lab
