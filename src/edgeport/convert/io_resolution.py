"""Work out how a converted model's inputs and outputs map to the reference's, and run it on native feeds.

    res = resolve_io(nat_in, nat_out, ref_io, "out/reference.npz", runner, expected_input_perm)
    res.io          # the artifact IOSpec: native names, shapes, layouts, perms, ref_name of each tensor
    res.verified    # the output mapping was checked on reference samples (worst rel error <= MATCH_TOL)

Names, layouts and order of a converted model's inputs and outputs are the converter's business (onnx2tf
renames, sorts and transposes; litert-torch names by position unless told otherwise). :func:`resolve_inputs`
matches inputs by name, else by shape, with the converter's known layout rule checked against the shapes;
:func:`resolve_outputs` matches outputs *numerically*: every (reference output, model output, transpose)
combination that fits the shapes is scored against the reference outputs and the best is kept. Names only
break ties. Nothing is guessed silently: each decision that did not follow from names and expected layouts
is written to the notes.

The converters run the model for this with :func:`probe_in_worker` (a fresh worker process, so a model that
aborts the interpreter is a reported failure), or in-process when its runtime is already loaded.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgeport.errors import EdgeportError, RuntimeFailure, UsageError
from edgeport.refdata import Sample, load_reference
from edgeport.runtimes.base import native_tensor
from edgeport.spec import IOSpec, TensorSpec

MATCH_TOL = 1e-2  # an output "is" a reference output when within 1 % of its magnitude


def rel_error(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max_abs, rel) of ``out`` against ``ref``; inf when shapes differ or non-finite values disagree."""
    out = np.asarray(out)
    ref = np.asarray(ref)
    if out.shape != ref.shape:
        return float("inf"), float("inf")
    a = out.astype(np.float64)
    b = ref.astype(np.float64)
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fin_a, fin_b) or not np.array_equal(a[~fin_b], b[~fin_b]):
        return float("inf"), float("inf")
    if a.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(a[fin_b] - b[fin_b]))) if fin_b.any() else 0.0
    scale = float(np.max(np.abs(b[fin_b]))) if fin_b.any() else 0.0
    return max_abs, max_abs / (scale if scale > 0 else 1.0)


# ----------------------------------------------------------------------------------------- probing
def session_class(fmt: str) -> Any:
    """The Session class of the first runtime registered for ``fmt`` (TFLite, SavedModel)."""
    from edgeport.runtimes import runtimes_for
    from edgeport.runtimes.job import session_class as runtime_session_class

    runtimes = runtimes_for(fmt)
    if not runtimes:
        raise UsageError(f"no runtime loads {fmt!r} artifacts", "check them with the validate command")
    return runtime_session_class(runtimes[0])


def probe(path: str, format: str, io: dict[str, Any], feeds: str, out: str, threads: int = 1) -> dict[str, Any]:
    """Worker entry: run native feeds (``feeds`` .npz, keys ``K:NAME``) and save every output to ``out``.

    ``io`` needs only the inputs (native names); outputs are returned under the model's own names.
    """
    from edgeport.refdata import load_npz

    spec = IOSpec.from_json(io)
    session = session_class(format).load(path, spec, threads=threads)
    data = load_npz(feeds)
    samples: dict[int, dict[str, np.ndarray]] = {}
    for key, arr in data.items():
        k, name = key.split(":", 1)
        samples.setdefault(int(k), {})[name] = arr
    arrays = {}
    for k in sorted(samples):
        for name, arr in session.run_native(samples[k]).items():
            arrays[f"{k}:{name}"] = np.asarray(arr)
    np.savez(out, **arrays)
    return {"backend": session.backend, "notes": list(getattr(session, "notes", []))}


def probe_in_worker(path: str | Path, fmt: str, inputs: Sequence[TensorSpec], feeds: list[dict[str, np.ndarray]],
                    timeout: float = 300.0) -> list[dict[str, np.ndarray]]:
    """Run ``feeds`` (native names and layout) through the artifact in a fresh worker process.

    A crash (pitfall 7: some models abort the interpreter) raises RuntimeFailure with the reason.
    """
    from edgeport.worker import run_in_worker

    with tempfile.TemporaryDirectory(prefix="edgeport-probe-") as tmp:
        fin, fout = os.path.join(tmp, "feeds.npz"), os.path.join(tmp, "outputs.npz")
        np.savez(fin, **{f"{k}:{n}": a for k, f in enumerate(feeds) for n, a in f.items()})
        res = run_in_worker("edgeport.convert.io_resolution:probe", {
            "path": str(path), "format": fmt, "io": IOSpec(inputs=list(inputs)).to_json(), "feeds": fin, "out": fout,
        }, timeout=timeout)
        if not res.ok:
            raise RuntimeFailure(f"running {Path(path).name} failed: {res.reason()}", "see the worker log")
        with np.load(fout, allow_pickle=False) as data:
            outs: list[dict[str, np.ndarray]] = [{} for _ in feeds]
            for key in data.files:
                k, name = key.split(":", 1)
                outs[int(k)][name] = data[key]
        return outs


# ----------------------------------------------------------------------------------------- IO mapping
@dataclass(frozen=True)
class NativeTensor:
    """An input or output as the converted model declares it. ``shape`` uses -1 for dynamic dims."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def normalize_name(name: str) -> str:
    """Compare names the way converters mangle them (``input.1`` -> ``input_1``, ``serving_default_x:0``)."""
    n = re.sub(r":\d+$", "", name)
    n = re.sub(r"^serving_default_", "", n)
    n = re.sub(r"_output$", "", n)
    return re.sub(r"[^0-9a-z]+", "_", n.lower()).strip("_")


def channels_last_perm(rank: int) -> tuple[int, ...]:
    """(N, C, d1, ..., dk) -> (N, d1, ..., dk, C)."""
    return (0, *range(2, rank), 1) if rank >= 3 else tuple(range(rank))


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def permuted_layout(layout: str | None, perm: Sequence[int]) -> str | None:
    if not layout or len(layout) != len(perm):
        return None if perm != identity(len(perm)) else layout
    return "".join(layout[p] for p in perm)


def _fits(ref_shape: Sequence[int | str], native: Sequence[int], perm: Sequence[int]) -> bool:
    """Does the reference shape, transposed by ``perm``, fit the native shape (-1 fits anything)?"""
    if len(ref_shape) != len(native):
        return False
    for i, p in enumerate(perm):
        r, n = ref_shape[p], native[i]
        if n in (-1, None) or isinstance(r, str):
            continue
        if int(r) != int(n):
            return False
    return True


def shape_perms(ref_shape: Sequence[int | str], native: Sequence[int]) -> list[tuple[int, ...]]:
    """Every transpose under which the reference shape fits the native one (rank <= 6)."""
    if len(ref_shape) != len(native) or len(native) > 6:
        return [identity(len(native))] if len(ref_shape) == len(native) else []
    return [p for p in itertools.permutations(range(len(native))) if _fits(ref_shape, native, p)]


def _artifact_shape(ref: TensorSpec, native: Sequence[int], perm: Sequence[int]) -> tuple[int | str, ...]:
    """Native shape with the reference's dim names where the native dim is dynamic."""
    out: list[int | str] = []
    for i, p in enumerate(perm):
        n = native[i] if i < len(native) else -1
        if n in (-1, None):
            r = ref.shape[p] if p < len(ref.shape) else f"d{i}"
            out.append(r if isinstance(r, str) else f"{ref.name}_{i}")
        else:
            out.append(int(n))
    return tuple(out)


def _names(ref: TensorSpec, aliases: dict[str, Sequence[str]] | None) -> set[str]:
    """Normalized names under which ``ref`` may appear in a converted model."""
    return {normalize_name(n) for n in [ref.name, *((aliases or {}).get(ref.name, ()))]}


def resolve_inputs(natives: Sequence[NativeTensor], ref_io: IOSpec,
                   expected_perm: Callable[[TensorSpec], tuple[int, ...]],
                   aliases: dict[str, Sequence[str]] | None = None) -> tuple[list[TensorSpec], list[str]]:
    """Match the model's inputs to the reference inputs; returns artifact input specs (in reference order).

    ``aliases`` maps a reference name to other names it may carry (e.g. the ONNX graph's input name).
    """
    notes: list[str] = []
    if len(natives) != len(ref_io.inputs):
        raise RuntimeFailure(f"the converted model has {len(natives)} inputs, the reference {len(ref_io.inputs)}",
                             "check the model's forward() signature and --input")
    free = list(natives)
    chosen: dict[str, NativeTensor] = {}
    for ref in ref_io.inputs:  # by name
        hit = next((n for n in free if n.name == ref.name), None) or \
            next((n for n in free if normalize_name(n.name) in _names(ref, aliases)), None)
        if hit is not None:
            chosen[ref.name] = hit
            free.remove(hit)
    for ref in ref_io.inputs:  # by shape
        if ref.name in chosen:
            continue
        fits = [n for n in free if shape_perms(ref.shape, n.shape)]
        if not fits:
            raise RuntimeFailure(f"no input of the converted model fits reference input {ref.name!r} {list(ref.shape)}",
                                 f"its inputs are {[(n.name, list(n.shape)) for n in natives]}")
        if len(fits) > 1:
            notes.append(f"input {ref.name!r}: several inputs fit its shape; took {fits[0].name!r} by position "
                         "(the output check below verifies it)")
        chosen[ref.name] = fits[0]
        free.remove(fits[0])
        notes.append(f"input {ref.name!r} matched to {fits[0].name!r} by shape")
    specs = []
    for ref in ref_io.inputs:
        n = chosen[ref.name]
        want = tuple(expected_perm(ref))
        perms = shape_perms(ref.shape, n.shape)
        if want in perms:
            perm = want
        elif perms:
            perm = identity(ref.rank) if identity(ref.rank) in perms else perms[0]
            notes.append(f"input {ref.name!r}: shape {list(n.shape)} does not follow the expected transpose "
                         f"{list(want)}; using {list(perm)}")
        else:
            raise RuntimeFailure(f"input {n.name!r} {list(n.shape)} is not a transpose of reference input "
                                 f"{ref.name!r} {list(ref.shape)}", "re-convert the model")
        shape = _artifact_shape(ref, n.shape, perm)
        specs.append(TensorSpec(name=n.name, shape=shape, dtype=n.dtype,
                                layout=permuted_layout(ref.layout, perm), perm=perm, ref_name=ref.name))
        if n.dtype != ref.dtype:
            notes.append(f"input {ref.name!r} is {n.dtype} in the converted model (reference {ref.dtype}); "
                         f"feeds are cast")
    return specs, notes


def native_feeds(inputs: Sequence[TensorSpec], samples: Sequence[Sample]) -> list[dict[str, np.ndarray]]:
    """Reference samples -> native names, layout and dtype (no quantization: float artifacts only)."""
    return [{t.name: native_tensor(s[t.ref_name or t.name], t) for t in inputs} for s in samples]


_Score = dict[tuple[str, str], tuple[float, tuple[int, ...]]]  # (ref name, model output) -> (worst rel error, perm)
_Assigned = dict[str, tuple[str, float, tuple[int, ...]]]  # ref name -> (model output, rel error, perm)


def resolve_outputs(natives: Sequence[NativeTensor], ref_io: IOSpec, ref_outputs: Sequence[Sample],
                    got: Sequence[dict[str, np.ndarray]], *,
                    expected_perm: Callable[[TensorSpec], tuple[int, ...]] = lambda t: identity(t.rank),
                    aliases: dict[str, Sequence[str]] | None = None) -> tuple[list[TensorSpec], list[str], float]:
    """Match model outputs to reference outputs by their values; returns (specs, notes, worst rel error).

    ``got[k]`` holds the model's outputs (native names) for reference sample ``k``. For every pair
    and every transpose that fits the shapes, the worst relative error over the samples is
    computed; pairs are taken best-first (a name match wins among pairs within MATCH_TOL).
    """
    names = [n.name for n in natives if all(n.name in g for g in got)]
    missing = [n.name for n in natives if n.name not in names]
    if missing:
        raise RuntimeFailure(f"the converted model did not produce outputs {missing}", "re-convert the model")
    score = _score_pairs(ref_io, names, ref_outputs, got, expected_perm)
    notes: list[str] = []
    assigned: _Assigned = {}
    used: set[str] = set()
    _assign_by_name(ref_io, names, score, aliases, assigned, used)
    _assign_by_values(ref_io, score, aliases, assigned, used, notes)
    _assign_closest(ref_io, names, score, got, assigned, used, notes)
    nat = {n.name: n for n in natives}
    specs = [_output_spec(ref, nat[assigned[ref.name][0]], assigned[ref.name], got, notes) for ref in ref_io.outputs]
    extra = [n for n in names if n not in used]
    if extra:
        notes.append(f"model outputs {extra} correspond to no reference output and are ignored")
    return specs, notes, max((a[1] for a in assigned.values()), default=0.0)


def _score_pairs(ref_io: IOSpec, names: Sequence[str], ref_outputs: Sequence[Sample],
                got: Sequence[dict[str, np.ndarray]], expected_perm: Callable[[TensorSpec], tuple[int, ...]]) -> _Score:
    """For each (reference output, model output) pair whose shapes fit under some transpose: the worst relative
    error over the samples under the best such transpose (ties keep the expected, then the identity transpose)."""
    score: _Score = {}
    for ref in ref_io.outputs:
        want = tuple(expected_perm(ref))
        for n in names:
            perms = shape_perms(np.asarray(ref_outputs[0][ref.name]).shape, np.asarray(got[0][n]).shape)
            best: tuple[float, tuple[int, ...]] | None = None
            for p in sorted(perms, key=lambda p: (p != want, p != identity(len(p)))):
                err = max(rel_error(np.asarray(g[n]), np.asarray(o[ref.name]).transpose(p))[1]
                          for g, o in zip(got, ref_outputs))
                if best is None or err < best[0] - 1e-9:  # ties keep the expected / identity transpose
                    best = (err, p)
            if best is not None:
                score[(ref.name, n)] = best
    return score


def _assign_by_name(ref_io: IOSpec, names: Sequence[str], score: _Score, aliases: dict[str, Sequence[str]] | None,
                    assigned: _Assigned, used: set[str]) -> None:
    """Name matches that the values confirm (within MATCH_TOL); the first name match of each output decides."""
    for ref in ref_io.outputs:
        for n in names:
            if n in used or (ref.name, n) not in score:
                continue
            if n == ref.name or normalize_name(n) in _names(ref, aliases):
                err, p = score[(ref.name, n)]
                if err <= MATCH_TOL:
                    assigned[ref.name] = (n, err, p)
                    used.add(n)
                break


def _assign_by_values(ref_io: IOSpec, score: _Score, aliases: dict[str, Sequence[str]] | None,
                      assigned: _Assigned, used: set[str], notes: list[str]) -> None:
    """The remaining pairs within MATCH_TOL, best values first; a note for each one its name does not explain."""
    for (r, n), (err, p) in sorted(score.items(), key=lambda kv: kv[1][0]):
        if r in assigned or n in used or err > MATCH_TOL:
            continue
        assigned[r] = (n, err, p)
        used.add(n)
        if normalize_name(n) not in _names(next(t for t in ref_io.outputs if t.name == r), aliases):
            notes.append(f"output {r!r} matched to {n!r} by its values (rel err {err:.1e})")


def _assign_closest(ref_io: IOSpec, names: Sequence[str], score: _Score, got: Sequence[dict[str, np.ndarray]],
                    assigned: _Assigned, used: set[str], notes: list[str]) -> None:
    """Nothing matched an output: keep its closest candidate so the check reports the miss."""
    for ref in ref_io.outputs:
        if ref.name in assigned:
            continue
        cands = [(score[(ref.name, n)], n) for n in names if n not in used and (ref.name, n) in score]
        if not cands:
            raise RuntimeFailure(f"no output of the converted model has the shape of reference output {ref.name!r}",
                                 f"its outputs are {[(n, list(np.asarray(got[0][n]).shape)) for n in names]}")
        (err, p), n = min(cands, key=lambda c: c[0][0])
        assigned[ref.name] = (n, err, p)
        used.add(n)
        notes.append(f"output {ref.name!r}: no model output matches it within {MATCH_TOL:g} "
                     f"(closest {n!r}, rel err {err:.2e}); parity will fail")


def _output_spec(ref: TensorSpec, native: NativeTensor, match: tuple[str, float, tuple[int, ...]],
                 got: Sequence[dict[str, np.ndarray]], notes: list[str]) -> TensorSpec:
    """The artifact spec of the model output ``match`` names for reference output ``ref``."""
    n, _, p = match
    native_shape = native.shape if native.shape else tuple(np.asarray(got[0][n]).shape)
    if p != identity(len(p)):
        notes.append(f"output {ref.name!r} comes out transposed by {list(p)}")
    return TensorSpec(name=n, shape=_artifact_shape(ref, native_shape, p), dtype=str(np.asarray(got[0][n]).dtype),
                      layout=permuted_layout(ref.layout, p), perm=p, ref_name=ref.name)


def resolve_io(
    native_inputs: Sequence[NativeTensor],
    native_outputs: Sequence[NativeTensor],
    ref_io: IOSpec,
    reference: str | Path,
    runner: Callable[[Sequence[TensorSpec], list[dict[str, np.ndarray]]], list[dict[str, np.ndarray]]],
    expected_input_perm: Callable[[TensorSpec], tuple[int, ...]],
    expected_output_perm: Callable[[TensorSpec], tuple[int, ...]] = lambda t: identity(t.rank),
    max_samples: int = 2,
    aliases: dict[str, Sequence[str]] | None = None,
) -> "IOResolution":
    """Artifact IOSpec of a converted model, with the output mapping verified on reference samples.

    ``runner(input_specs, native_feeds) -> [native outputs per feed]`` runs the model (e.g.
    :func:`probe_in_worker`). When it fails, outputs are mapped by name and shape only, a note says
    the mapping is unverified and ``worst_rel`` is None.
    """
    inputs, notes = resolve_inputs(native_inputs, ref_io, expected_input_perm, aliases)
    ref_in, ref_out = load_reference(reference)
    ref_in, ref_out = ref_in[:max_samples], ref_out[:max_samples]
    try:
        got = runner(inputs, native_feeds(inputs, ref_in))
    except EdgeportError as exc:
        notes.append(f"IO mapping NOT verified numerically: {exc.message}")
        outputs = _outputs_by_name(native_outputs, ref_io, expected_output_perm, aliases)
        return IOResolution(IOSpec(inputs=inputs, outputs=outputs), notes, None)
    outputs, more, worst = resolve_outputs(native_outputs, ref_io, ref_out, got, expected_perm=expected_output_perm,
                                           aliases=aliases)
    return IOResolution(IOSpec(inputs=inputs, outputs=outputs), notes + more, worst)


@dataclass
class IOResolution:
    """Result of :func:`resolve_io`: the artifact IOSpec, notes, and the worst relative error of the
    chosen output mapping on the samples used (None when the model could not be run)."""

    io: IOSpec
    notes: list[str]
    worst_rel: float | None

    @property
    def verified(self) -> bool:
        return self.worst_rel is not None and self.worst_rel <= MATCH_TOL


def _outputs_by_name(natives: Sequence[NativeTensor], ref_io: IOSpec,
                     expected_perm: Callable[[TensorSpec], tuple[int, ...]],
                     aliases: dict[str, Sequence[str]] | None = None) -> list[TensorSpec]:
    free = list(natives)
    specs = []
    for ref in ref_io.outputs:
        hit = next((n for n in free if normalize_name(n.name) in _names(ref, aliases)), None) \
            or next((n for n in free if shape_perms(ref.shape, n.shape)), None)
        if hit is None:
            raise RuntimeFailure(f"no output of the converted model fits reference output {ref.name!r}",
                                 "re-convert the model")
        free.remove(hit)
        perms = shape_perms(ref.shape, hit.shape)
        want = tuple(expected_perm(ref))
        p = want if want in perms else (perms[0] if perms else identity(ref.rank))
        specs.append(TensorSpec(name=hit.name, shape=_artifact_shape(ref, hit.shape, p), dtype=hit.dtype,
                                layout=permuted_layout(ref.layout, p), perm=p, ref_name=ref.name))
    return specs


def tflite_natives(info: dict[str, Any]) -> tuple[list[NativeTensor], list[NativeTensor]]:
    """Inputs/outputs of an inspected .tflite, named by its serving signature when it has one.

    The TFLiteSession resolves spec names against signature keys first, then tensor names.
    """
    by_index = {t["index"]: t for t in info["inputs"] + info["outputs"]}
    sigs = info.get("signatures") or {}
    key = "serving_default" if "serving_default" in sigs else (next(iter(sigs)) if len(sigs) == 1 else None)

    def nt(name: str, t: dict[str, Any]) -> NativeTensor:
        return NativeTensor(name=name, shape=tuple(int(d) for d in t["shape_signature"]), dtype=t["dtype"])

    if key is not None and sigs[key].get("subgraph", 0) == 0:
        sig = sigs[key]
        if all(i in by_index for i in list(sig["inputs"].values()) + list(sig["outputs"].values())):
            return ([nt(k, by_index[i]) for k, i in sig["inputs"].items()],
                    [nt(k, by_index[i]) for k, i in sig["outputs"].items()])
    return [nt(t["name"], t) for t in info["inputs"]], [nt(t["name"], t) for t in info["outputs"]]
