"""``edgeport validate A B``: two model files without a manifest.

Each file's inputs and outputs are read in a worker (ONNX via ONNX Runtime, TFLite from the flatbuffer,
SavedModel from its serving signature; TorchScript declares none and borrows the other file's). The
first file is the reference. The second file's tensors are paired with the first's by name (ignoring
``serving_default_`` prefixes, ``:0`` suffixes, case and punctuation), else by position, and a
transpose is inferred when the shapes differ only by order (NCHW vs NHWC, channels-last preferred).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from edgeport.errors import InputError, UsageError
from edgeport.manifest import Artifact
from edgeport.spec import IOSpec, TensorSpec, default_layout
from edgeport.data.feeds import npz_feeds



def _norm(name: str) -> str:
    n = re.sub(r":\d+$", "", name)
    n = re.sub(r"^(serving_default_|input_|output_)", "", n)
    return re.sub(r"[^a-z0-9]", "", n.lower())


def infer_perm(ref_shape: tuple, cand_shape: tuple) -> tuple[int, ...] | None | bool:
    """The transpose taking a tensor of ``ref_shape`` to ``cand_shape``: None if none is needed,
    False if there is none. Dimension names match any size."""
    if len(ref_shape) != len(cand_shape):
        return False

    def fits(p: tuple[int, ...]) -> bool:
        return all(isinstance(ref_shape[i], str) or isinstance(c, str) or ref_shape[i] == c for i, c in zip(p, cand_shape))

    r = len(ref_shape)
    ident = tuple(range(r))
    if fits(ident):
        return None
    preferred = [(0, *range(2, r), 1)] if r >= 3 else []
    for p in preferred + [p for p in itertools.permutations(range(r)) if p not in preferred and p != ident]:
        if fits(p):
            return tuple(p)
    return False


def _pair(ref: list[TensorSpec], cand: list[TensorSpec], what: str, fa: str, fb: str) -> list[tuple[TensorSpec, TensorSpec]]:
    by_norm = {_norm(t.name): t for t in cand}
    pairs = []
    if len(by_norm) == len(cand) and all(_norm(t.name) in by_norm for t in ref):
        pairs = [(t, by_norm[_norm(t.name)]) for t in ref]
    elif len(ref) == len(cand):
        pairs = list(zip(ref, cand))
    else:
        raise UsageError(f"{fb} has {len(cand)} {what}s, {fa} has {len(ref)}", "compare two conversions of the same model")
    return pairs


def align(ref: IOSpec, cand: IOSpec, fa: str, fb: str) -> IOSpec:
    """``cand`` with ``ref_name`` and ``perm`` set so that its tensors map onto ``ref``'s."""
    out = IOSpec()
    for what, rlist, clist, dst in (("input", ref.inputs, cand.inputs, out.inputs), ("output", ref.outputs, cand.outputs, out.outputs)):
        for r, c in _pair(rlist, clist, what, fa, fb):
            perm = infer_perm(r.shape, c.shape)
            if perm is False:
                raise UsageError(f"{what} {c.name!r} of {fb} has shape {list(c.shape)}, {fa}'s {r.name!r} has {list(r.shape)}",
                                 "compare two conversions of the same model")
            dst.append(c.with_(ref_name=r.name, perm=perm if perm else None))
    return out


def _probe(fmt: str, path: Path, timeout: float) -> IOSpec | None:
    from edgeport.runtimes.job import probe_file

    return probe_file(fmt, path, timeout)


def _npz_io(path: str, template: IOSpec | None) -> IOSpec:
    from edgeport.refdata import load_npz

    data = load_npz(path)
    seen: dict[str, Any] = {}
    for k, v in data.items():
        if not k.startswith("output:"):
            seen.setdefault(k.split(":")[-1], v)
    if not seen:
        raise InputError(f"{path} holds no input arrays", "save inputs with numpy.savez(path, NAME=array)")
    outputs = template.outputs if template else []
    return IOSpec(inputs=[TensorSpec(n, tuple(v.shape), str(v.dtype), layout=default_layout(v.ndim) if v.dtype.kind == "f" else None)
                          for n, v in seen.items()], outputs=list(outputs))


def fixed_sizes(ref: IOSpec, cand: IOSpec) -> dict[str, int]:
    """Sizes for ``ref``'s named (dynamic) dimensions that ``cand`` fixes (e.g. a TFLite file's batch of 1)."""
    dims: dict[str, int] = {}
    by_ref = {c.ref_name: c for c in cand.inputs}
    for r in ref.inputs:
        c = by_ref.get(r.name)
        if c is None or len(c.shape) != len(r.shape):
            continue
        perm = c.perm or tuple(range(len(r.shape)))
        for k, d in enumerate(c.shape):
            src = r.shape[perm[k]]
            if isinstance(src, str) and isinstance(d, int):
                dims.setdefault(src, d)
    return dims


def detect_format(path: Path) -> str:
    from edgeport.formats import format_of
    from edgeport.runtimes import runtimes_for

    fmt = format_of(path)
    if fmt is not None and runtimes_for(fmt):
        return fmt
    if path.is_dir():
        if (path / "manifest.json").exists():
            raise UsageError(f"{path} is an edgeport output folder", f"run edgeport validate {path} (one argument)")
        raise UsageError(f"{path} is a folder but not a SavedModel", "pass .onnx, .tflite, TorchScript .pt files or a SavedModel folder")
    raise UsageError(f"cannot tell the format of {path.name}", "pass .onnx, .tflite, TorchScript .pt files or a SavedModel folder")


def describe_pair(pa: Path, pb: Path, opts: Any) -> tuple[Artifact, Artifact, IOSpec, dict[str, int], list[str]]:
    """Artifacts for ``A`` (reference) and ``B`` (aligned to A), the reference IOSpec and sizes for its
    dynamic dimensions."""
    fa, fb = detect_format(pa), detect_format(pb)
    timeout = min(float(opts.timeout), 300.0)
    io_a, io_b = _probe(fa, pa, timeout), _probe(fb, pb, timeout)
    notes: list[str] = []
    if io_a is None and io_b is None and not opts.inputs_npz:
        raise UsageError("TorchScript files do not declare their inputs", "pass --inputs-npz with named input arrays")
    if opts.inputs_npz and (io_a is None or io_b is None):
        io_a = _npz_io(opts.inputs_npz, io_a or io_b) if io_a is None else io_a
    if io_a is None:
        io_a = IOSpec(inputs=[t.with_(perm=None, ref_name=None) for t in io_b.inputs],  # type: ignore[union-attr]
                      outputs=[t.with_(perm=None, ref_name=None) for t in io_b.outputs])  # type: ignore[union-attr]
        notes.append(f"{pa.name} declares no inputs: using {pb.name}'s names and shapes")
    ref_io = IOSpec(inputs=[t.with_(ref_name=t.name, perm=None) for t in io_a.inputs],
                    outputs=[t.with_(ref_name=t.name, perm=None) for t in io_a.outputs])
    if io_b is None:
        io_b = IOSpec(inputs=list(ref_io.inputs), outputs=list(ref_io.outputs))
        notes.append(f"{pb.name} declares no inputs: feeding it {pa.name}'s")
    else:
        io_b = align(ref_io, io_b, pa.name, pb.name)
    if not ref_io.outputs:
        raise UsageError(f"{pa.name} declares no outputs", "pass the files the other way round")
    if opts.inputs_npz:
        npz_feeds(opts.inputs_npz, ref_io, limit=1)  # fail early on a mismatching file
    name_a, name_b = pa.name, pb.name
    if name_a == name_b:
        name_a, name_b = f"{pa.parent.name}/{pa.name}", f"{pb.parent.name}/{pb.name}"
    if name_a == name_b:
        name_a, name_b = f"A:{name_a}", f"B:{name_b}"
    art_a = Artifact(name=name_a, format=fa, path=str(pa), io=ref_io, parent=None)
    art_b = Artifact(name=name_b, format=fb, path=str(pb), io=io_b, parent=name_a)
    return art_a, art_b, ref_io, fixed_sizes(ref_io, io_b), notes
