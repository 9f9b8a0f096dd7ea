"""How far an output is from its tolerance, and the values of the worst output (for the report page).

The *margin* of an output is its error divided by what the tolerance allows: below 1 it passed, above
1 it failed, and 0.01 means a hundred times inside. For the ``elementwise`` statistic it is the worst
element's ``|cand - ref| / (atol + rtol * |ref|)``; for ``max``/``mean``/``median``/``pNN`` the smaller
of ``stat_abs / atol`` and ``stat_rel / rtol`` (the check passes when either is within). NaN/Inf in the
candidate, or a shape mismatch, is an infinite margin.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_POINTS = 20_000  # values kept of the worst output (evenly spaced, the worst element always among them)


def tolerance_margin(metrics: dict[str, Any], tolerance: dict[str, Any] | None) -> float | None:
    """Error / allowance of one output (``OutputComparison.to_json()`` parts); None when unknown."""
    if not metrics:
        return None
    if metrics.get("nonfinite") or "ref_shape" in metrics:
        return math.inf
    if "tolerance_ratio" in metrics:
        return _float(metrics["tolerance_ratio"])
    tol = tolerance or {}
    stat = str(tol.get("statistic", ""))
    s_abs, s_rel = _float(metrics.get(f"{stat}_abs")), _float(metrics.get(f"{stat}_rel"))
    atol, rtol = _float(tol.get("atol")), _float(tol.get("rtol"))
    ratios = [a / b for a, b in ((s_abs, atol), (s_rel, rtol)) if a is not None and b]
    return min(ratios) if ratios else None


def _float(v: Any) -> float | None:
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def worst_output(rows: list[Any], outputs: dict[str, list[dict[str, np.ndarray]]],
                 ref_outputs: list[dict[str, np.ndarray]] | None) -> dict[str, Any] | None:
    """The candidate output with the largest margin: its name, margin and (a sample of) its reference
    and candidate values, flattened over all samples. ``rows`` are validate's TargetResults."""
    if not ref_outputs:
        return None
    best: tuple[float, Any, str] | None = None
    for r in rows:
        if r.role != "candidate" or r.key not in outputs:
            continue
        for o in r.outputs:
            j = o.to_json()
            m = tolerance_margin(j["metrics"], j["tolerance"])
            if m is None or (isinstance(m, float) and math.isnan(m)) or "ref_shape" in j["metrics"]:
                continue
            if best is None or m > best[0]:
                best = (m, r, o.name)
    if best is None:
        return None
    margin, row, name = best
    try:
        ref = np.concatenate([np.asarray(s[name], dtype=np.float64).ravel() for s in ref_outputs])
        cand = np.concatenate([np.asarray(s[name], dtype=np.float64).ravel() for s in outputs[row.key]])
    except (KeyError, ValueError):
        return None
    if ref.size != cand.size:
        return None
    if ref.size > MAX_POINTS:
        keep = np.unique(np.concatenate([np.linspace(0, ref.size - 1, MAX_POINTS - 1).astype(np.int64),
                                         [int(np.argmax(np.nan_to_num(np.abs(cand - ref), nan=np.inf)))]]))
        ref, cand = ref[keep], cand[keep]
    return {"artifact": row.artifact, "runtime": row.runtime, "output": name, "margin": margin,
            "elements": int(sum(np.asarray(s[name]).size for s in ref_outputs)),
            "reference": ref.astype(np.float32), "candidate": cand.astype(np.float32)}
