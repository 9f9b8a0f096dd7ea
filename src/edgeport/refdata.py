"""reference.npz: sample inputs and reference outputs, numpy only (usable on a device).

Keys are ``input:K:NAME`` and ``output:K:NAME`` for sample K = 0..S-1, always in the reference
(PyTorch) layout. Loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from edgeport.errors import InputError
from edgeport.fsutil import atomic_write_bytes

Sample = dict[str, np.ndarray]


def save_reference(path: str | os.PathLike, inputs: list[Sample], outputs: list[Sample]) -> None:
    arrays = {}
    for k, (i, o) in enumerate(zip(inputs, outputs)):
        arrays.update({f"input:{k}:{n}": np.asarray(v) for n, v in i.items()})
        arrays.update({f"output:{k}:{n}": np.asarray(v) for n, v in o.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load an .npz safely (no pickles), with one-line errors for the usual breakages."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist", "check the path")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"PK":  # a zip (an empty archive starts PK\x05\x06)
        raise InputError(f"{p} is not a readable .npz (not a zip archive)", "save it with numpy.savez")
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{p} holds pickled objects, which edgeport does not load", "save plain arrays with numpy.savez") from None
        raise InputError(f"{p} is not a readable .npz: {str(exc)[:100]}", "save it with numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{p} is not a readable .npz ({type(exc).__name__})", "save it again with numpy.savez") from None


def load_reference(path: str | os.PathLike) -> tuple[list[Sample], list[Sample]]:
    data = load_npz(path)
    inputs: dict[int, Sample] = {}
    outputs: dict[int, Sample] = {}
    for key, arr in data.items():
        parts = key.split(":", 2)
        if len(parts) != 3 or parts[0] not in ("input", "output") or not parts[1].isdigit():
            raise InputError(f"{path} has an unexpected key {key!r}", "re-create it with edgeport convert")
        (inputs if parts[0] == "input" else outputs).setdefault(int(parts[1]), {})[parts[2]] = arr
    ks = sorted(inputs)
    if not ks or ks != list(range(len(ks))) or sorted(outputs) != ks:
        raise InputError(f"{path} has no complete samples", "re-create it with edgeport convert")
    return [inputs[k] for k in ks], [outputs[k] for k in ks]
