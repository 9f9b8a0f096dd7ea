"""Calibration samples from the user's code: ``module:function`` or ``path/file.py:function``.

The function (called with no arguments, or with the IOSpec if it takes one) returns an iterable of feeds,
each a dict ``{input name: array}`` (which may carry a ``label``), one array (single-input models) or a
tuple in input order.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import itertools
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from edgeport.errors import InputError, UsageError
from edgeport.quantize.calibration.arrays import conform
from edgeport.quantize.calibration.dataset import LABEL_KEYS, Dataset, Item
from edgeport.spec import IOSpec


def _import_file(path: Path) -> Any:
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
    return module


def load_callable(ref: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function`` -> the function (imports the user's code)."""
    head, sep, attr = str(ref).rpartition(":")
    if not sep or not attr.isidentifier() or not head:
        raise UsageError(f"{ref!r} is not module:function", "write package.module:function or path/to/file.py:function")
    if head.endswith(".py") or os.sep in head:
        module = _import_file(Path(head).expanduser())
    else:
        try:
            module = importlib.import_module(head)
        except ImportError as exc:
            raise InputError(f"cannot import calibration module {head!r}: {exc}", "check the name, or pass path/to/file.py:function") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"{head} has no function {attr!r}", f"define def {attr}(): yield {{'input': array}}")
    return fn


def _call(fn: Callable[..., Any], ref: str, io: IOSpec, limit: int) -> list[Any]:
    """The first ``limit`` feeds ``fn`` produces; its failures become InputError."""
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
        return list(itertools.islice(iter(produced), limit))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's generator failed
        raise InputError(f"{ref} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}",
                         "fix the function, or pass --debug for the traceback") from exc


def _as_dict(feed: Any, k: int, ref: str, names: list[str]) -> tuple[dict[str, Any], int | None]:
    """One produced feed -> ({input name: array}, label or None)."""
    if isinstance(feed, dict):
        feed = dict(feed)
        lab = next((feed.pop(key) for key in LABEL_KEYS if key in feed and key not in names), None)
        return feed, (int(np.asarray(lab).reshape(-1)[0]) if lab is not None else None)
    if isinstance(feed, (tuple, list)):
        if len(feed) != len(names):
            raise InputError(f"{ref}: feed {k} has {len(feed)} arrays, the model takes {len(names)}",
                             f"yield dicts keyed by {names}")
        return dict(zip(names, feed)), None
    if len(names) != 1:
        raise InputError(f"{ref}: feed {k} is one array, the model takes {len(names)} inputs", f"yield dicts keyed by {names}")
    return {names[0]: feed}, None


def read_module(ref: str, io: IOSpec, limit: int, data_layout: str | None = None) -> Dataset:
    """Feeds from a user function (see the module docstring), at most ``limit``."""
    raw = _call(load_callable(ref), ref, io, limit)
    names = [s.name for s in io.inputs]
    items = []
    for k, produced in enumerate(raw):
        feed, label = _as_dict(produced, k, ref, names)
        for spec in io.inputs:
            if spec.name not in feed:
                raise InputError(f"{ref}: feed {k} has no input {spec.name!r} (it has {sorted(feed)})", f"yield dicts keyed by {names}")
        out = {spec.name: conform(np.asarray(feed[spec.name]), spec, data_layout, f"{ref} feed {k}") for spec in io.inputs}
        items.append(Item(out, f"{attr_of(ref)}[{k}]", label))
    if not items:
        raise InputError(f"{ref} yielded no feeds", "yield at least two feeds (calibration and held-out)")
    return Dataset(items, f"{ref} ({len(items)} feeds)", "module")


def attr_of(ref: str) -> str:
    return ref.rpartition(":")[2] or ref
