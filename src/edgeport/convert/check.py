"""The candidate gate: check a converted TFLite / SavedModel artifact against reference.npz.

:func:`run` is a worker entry, called after every tflite/saved_model conversion in its own worker, so that a
model that crashes the interpreter is a reported result rather than a lost conversion. It lists the operators,
refuses Select-TF (Flex) and custom ops unless allowed, runs every reference sample through the artifact's
Session and measures parity per output (and at the other sizes of dynamic dims, :mod:`edgeport.convert.sizes`).
How a converted model's inputs and outputs map to the reference's is worked out before, by the converters:
:mod:`edgeport.convert.io_resolution`.

Parity gate: the scale rule of :mod:`edgeport.tolerance` (the rule ``edgeport validate`` applies by
default), per output over all reference samples: every element within ``atol + rtol * max|ref|`` with
the fp32 floor ``atol`` and ``rtol`` = ``--rtol`` (1e-4, ten times tighter than validate's fp32 default,
so an artifact that passes here passes validate on fresh inputs). Reported per output: ``max_abs`` and
``rel = max|out - ref| / max|ref|`` (``max|ref|`` taken as 1 when the output is all zeros).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeport.convert.io_resolution import session_class
from edgeport.errors import EdgeportError, RuntimeFailure
from edgeport.refdata import Sample, load_reference
from edgeport.spec import IOSpec
from edgeport.tolerance import FP32_ATOL, SCALE, closeness

DEFAULT_RTOL = 1e-4
FLEX_HINT = ("pass --allow-flex to keep them (they need TensorFlow's Flex delegate at run time, which LiteRT lacks) "
             "or convert with --converter litert-torch")


def parity_gate(refs: Sequence[Sample], gots: Sequence[dict[str, np.ndarray]], rtol: float,
                atol: float = FP32_ATOL) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per output over all samples: ``{name: {"max_abs", "rel"}}`` and why the gate fails ([] when it passes).

    The decision is :func:`edgeport.tolerance.closeness` with the scale rule; a shape mismatch or NaN/Inf
    where the reference has none (or the other way) fails and reports ``inf``.
    """
    parity: dict[str, dict[str, float]] = {}
    reasons: list[str] = []
    worst_fail: tuple[float, str] | None = None
    for name in (refs[0] if refs else {}):
        ref = [np.asarray(o[name]) for o in refs]
        got = [np.asarray(g[name]) for g in gots]
        bad_shape = next(((g, r) for g, r in zip(got, ref) if g.shape != r.shape), None)
        if bad_shape is not None:
            parity[name] = {"max_abs": float("inf"), "rel": float("inf")}
            reasons.append(f"output {name!r} has shape {list(bad_shape[0].shape)}, the reference {list(bad_shape[1].shape)}")
            continue
        r = np.stack(ref).astype(np.float64)
        g = np.stack(got).astype(np.float64)
        fin = np.isfinite(r)
        if not np.array_equal(fin, np.isfinite(g)) or not np.array_equal(r[~fin], g[~fin]):
            parity[name] = {"max_abs": float("inf"), "rel": float("inf")}
            reasons.append(f"output {name!r} has NaN/Inf values where the reference has none (or the other way round)")
            continue
        v = closeness(r[fin], g[fin], atol, rtol, SCALE)
        rel = v.error / (v.scale if v.scale > 0 else 1.0)
        parity[name] = {"max_abs": v.error, "rel": rel}
        if not v and (worst_fail is None or v.ratio > worst_fail[0]):
            worst_fail = (v.ratio, f"output {name!r} differs from the reference by {rel:.2e} of its magnitude "
                                   f"(max abs {v.error:.3g}, allowed {v.allowed:.3g} = {atol:g} + {rtol:g} x magnitude "
                                   f"{v.scale:.3g})")
    if worst_fail is not None:
        reasons.append(worst_fail[1])
    return parity, reasons


def run(
    path: str,
    format: str,
    io: dict[str, Any],
    reference: str,
    allow_flex: bool = False,
    rtol: float = DEFAULT_RTOL,
    threads: int = 1,
    max_samples: int | None = None,
    sizes: str | None = None,
    size_dims: list[dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Worker entry: inspect ``path`` and measure its parity against ``reference`` (reference.npz).

    ``sizes`` (reference-sizes.npz, made at the other sizes ``size_dims`` of the dynamic dims) is also
    gated when the artifact keeps those dims dynamic (:mod:`edgeport.convert.sizes`; result["sizes"]).

    Returns ``{"ops", "flex_ops", "custom_ops", "offenders", "parity": {ref output name: {"max_abs",
    "rel"}}, "worst_rel", "passed", "reason", "backend", "samples", "notes", "seconds"}``. ``reason``
    is one line saying why it did not pass ("" when it did). A runtime failure is reported in
    ``reason`` (passed False), not raised; a crash of the worker is the caller's result to record.
    """
    t0 = time.perf_counter()
    spec = IOSpec.from_json(io)
    result: dict[str, Any] = {"ops": {}, "flex_ops": [], "custom_ops": [], "offenders": [], "parity": {},
                              "worst_rel": None, "passed": False, "reason": "", "backend": "", "samples": 0, "notes": []}
    reasons: list[str] = []
    if format == "tflite":
        reasons += _inspect_ops(path, allow_flex, result)
    inputs, outputs = load_reference(reference)
    if max_samples:
        inputs, outputs = inputs[:max_samples], outputs[:max_samples]
    try:
        session = session_class(format).load(path, spec, threads=threads)
        result["backend"] = session.backend
        result["notes"].extend(getattr(session, "notes", []))
        reasons += _gate_samples(session, path, inputs, outputs, rtol, result)
        if sizes:
            from edgeport.convert import sizes as dyn

            result["sizes"] = dyn.check(session, spec, sizes, lambda r, g: parity_gate(r, g, rtol), size_dims or [])
            if result["sizes"]["reason"]:
                reasons.append(result["sizes"]["reason"])
    except EdgeportError as exc:
        reasons.append(f"could not run: {exc.message}")
    if format == "tflite":  # XNNPACK partitions, builtin-kernel ops, time outside the delegate
        from edgeport.runtimes.tflite_delegation import delegation_or_reason

        result["delegation"] = delegation_or_reason(path, threads)
    result["passed"] = not reasons
    result["reason"] = reasons[0] if reasons else ""
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _inspect_ops(path: str, allow_flex: bool, result: dict[str, Any]) -> list[str]:
    """The .tflite's operators into ``result``; why it fails when it holds Flex or custom ops not allowed."""
    from edgeport.convert.tflite_inspect import describe_offenders, inspect_tflite

    info = inspect_tflite(path)
    result.update({k: info[k] for k in ("ops", "flex_ops", "custom_ops", "offenders")})
    result["size_bytes"] = info["size_bytes"]
    if (info["flex_ops"] or info["custom_ops"]) and not allow_flex:
        return [f"{Path(path).name} holds {describe_offenders(info)}; {FLEX_HINT}"]
    return []


def _gate_samples(session: Any, path: str, inputs: Sequence[Sample], outputs: Sequence[Sample], rtol: float,
                  result: dict[str, Any]) -> list[str]:
    """Every reference sample through ``session``; parity per output into ``result``, the gate's reasons back.

    Raises RuntimeFailure when the artifact gives no output for a reference output.
    """
    got_all: list[dict[str, np.ndarray]] = []
    for feed, ref_out in zip(inputs, outputs):
        got = session.run(feed)
        for name in ref_out:
            if name not in got:
                raise RuntimeFailure(f"{Path(path).name} gives no output for reference output {name!r}",
                                     "re-convert the model")
        got_all.append(got)
        result["samples"] += 1
    result["parity"], reasons = parity_gate(outputs, got_all, rtol)
    result["worst_rel"] = max((p["rel"] for p in result["parity"].values()), default=0.0)
    return reasons
