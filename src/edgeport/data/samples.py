"""The sample file: a list of samples in one .npz, key ``K:NAME`` for input (or output) NAME of sample K.

Worker processes receive their feeds and return their outputs this way, so large tensors never pass
through JSON. A NAME may itself contain ``:`` (``0:encoder:x`` is NAME ``encoder:x`` of sample 0).
:func:`group_keys` reads the key schemes a user's .npz may use (``K:NAME``, reference.npz's
``input:K:NAME`` / ``output:K:NAME``, or plain ``NAME``).
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from edgeport.errors import InputError
from edgeport.fsutil import atomic_write_bytes
from edgeport.refdata import Sample, load_npz


def save_samples(path: str | os.PathLike, samples: Sequence[Sample]) -> None:
    """Write samples to an .npz with keys ``K:NAME`` (atomically)."""
    arrays = {f"{k}:{n}": np.asarray(v) for k, s in enumerate(samples) for n, v in s.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_samples(path: str | os.PathLike) -> list[Sample]:
    """Read what :func:`save_samples` wrote, samples in order."""
    data = load_npz(path)
    out: dict[int, Sample] = {}
    for key, arr in data.items():
        k, _, name = key.partition(":")
        if not k.isdigit() or not name:
            raise InputError(f"{path} has an unexpected key {key!r}", "write it with save_samples")
        out.setdefault(int(k), {})[name] = arr
    return [out[k] for k in sorted(out)]


def group_keys(data: dict[str, np.ndarray]) -> tuple[dict[int, Sample], dict[int, Sample], dict[str, np.ndarray]]:
    """A user's .npz arrays -> (inputs by sample, outputs by sample, plain-named arrays).

    ``input:K:NAME`` and ``K:NAME`` are inputs of sample K, ``output:K:NAME`` outputs; any other key is a plain
    name (an array named after an input, possibly several samples stacked).
    """
    inputs: dict[int, Sample] = {}
    outputs: dict[int, Sample] = {}
    plain: dict[str, np.ndarray] = {}
    for key, arr in data.items():
        parts = key.split(":")
        if len(parts) == 3 and parts[0] in ("input", "output") and parts[1].isdigit():
            (inputs if parts[0] == "input" else outputs).setdefault(int(parts[1]), {})[parts[2]] = arr
        elif len(parts) == 2 and parts[0].isdigit():
            inputs.setdefault(int(parts[0]), {})[parts[1]] = arr
        else:
            plain[key] = arr
    return inputs, outputs, plain
