"""Error metrics and tolerance checks between a reference output and a candidate (numpy only).

Every metric is computed in float64 over the whole output (all samples stacked):

- ``max_abs``, ``mean_abs``, ``rmse``: of ``|candidate - reference|``;
- ``max_rel``: of ``|candidate - reference| / max(|reference|, floor)`` where ``floor`` is
  ``eps32 * max|reference|`` (so exact zeros in the reference do not divide by zero);
- ``cosine``: cosine similarity of the flattened tensors (1.0 when both are all zeros);
- ``snr_db``: ``10 log10(sum ref^2 / sum (cand - ref)^2)``; ``inf`` when they are identical;
- ``top1`` / ``top5`` for classifier-like outputs (floating, rank >= 2, last axis = classes): the share
  of rows whose arg-max agrees, and the mean overlap of the two top-5 sets.

NaN or Inf in the candidate is a failure of its own, whatever the tolerance. A :class:`Tolerance`
checks one output by one of the two rules of :mod:`edgeport.tolerance` (``compare``):

- ``scale``: every element within ``atol + rtol * max|ref|`` (the error relative to the output's
  magnitude; the default for fp32 and fp16 artifacts, see :mod:`edgeport.validate.config`); with a
  ``statistic`` other than ``elementwise``/``max``, that statistic of the absolute error is checked
  against the same limit;
- ``elementwise`` (the dataclass default): with the ``elementwise`` statistic, numpy ``allclose`` (every
  element within ``atol + rtol * |ref|``); with ``max`` / ``mean`` / ``median`` / ``pNN`` (percentile),
  a pass when the statistic of the absolute error is within ``atol`` *or* that of the relative error
  within ``rtol`` (Polygraphy's rule).

Optional floors ``min_cosine``, ``min_snr_db``, ``min_top1`` add checks. ``max_rel_scale`` (max abs
error / max|ref|) is the number the scale rule is about.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from edgeport.errors import UsageError
from edgeport.tolerance import ELEMENTWISE, SCALE, closeness, normalize_compare, statistic_of

EPS32 = float(np.finfo(np.float32).eps)
STATISTICS = ("elementwise", "max", "mean", "median")  # plus percentiles: p90, p99, p99.9 ...
_PCT_RE = re.compile(r"^(?:p|percentile:?|quantile:?)(\d+(?:\.\d+)?)$")
_CLASS_HINTS = ("logit", "prob", "score", "class", "pred", "softmax")
_NOT_CLASS_HINTS = ("embed", "feature", "hidden", "box", "mask", "depth", "coord", "latent")


def normalize_statistic(text: str) -> str:
    """``elementwise``/``allclose``, ``max``, ``mean``, ``median`` or a percentile ``p99`` / ``percentile:99``."""
    t = str(text).strip().lower()
    if t in ("elementwise", "elemwise", "allclose"):
        return "elementwise"
    if t in STATISTICS:
        return t
    m = _PCT_RE.match(t)
    if m and 0.0 < float(m.group(1)) <= 100.0:
        return f"p{float(m.group(1)):g}"
    raise UsageError(f"unknown error statistic {text!r}", "use elementwise, max, mean, median or a percentile such as p99")


@dataclass(frozen=True)
class Tolerance:
    """How close a candidate output must be to the reference."""

    atol: float = 1e-4
    rtol: float = 1e-3
    statistic: str = "elementwise"
    min_cosine: float | None = None
    min_snr_db: float | None = None
    min_top1: float | None = None
    compare: str = ELEMENTWISE  # or SCALE: rtol relative to the output's magnitude (edgeport.tolerance)

    def with_(self, **kw: Any) -> "Tolerance":
        kw = {k: v for k, v in kw.items() if v is not None}
        if "statistic" in kw:
            kw["statistic"] = normalize_statistic(kw["statistic"])
        if "compare" in kw:
            kw["compare"] = normalize_compare(kw["compare"])
        return replace(self, **kw)

    def describe(self) -> str:
        if self.compare == SCALE:
            parts = [f"atol={self.atol:g} + rtol={self.rtol:g}*scale"]
            if self.statistic not in ("elementwise", "max"):
                parts.append(self.statistic)
        else:
            parts = [f"atol={self.atol:g}", f"rtol={self.rtol:g}", self.statistic]
        if self.min_cosine is not None:
            parts.append(f"cosine>={self.min_cosine:g}")
        if self.min_snr_db is not None:
            parts.append(f"snr>={self.min_snr_db:g}dB")
        if self.min_top1 is not None:
            parts.append(f"top1>={self.min_top1:g}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The set fields; ``compare`` only when it is ``scale`` (no key means elementwise, as in older reports)."""
        return {k: v for k, v in asdict(self).items() if v is not None and not (k == "compare" and v == ELEMENTWISE)}


@dataclass
class OutputComparison:
    """The comparison of one output: metrics, the tolerance applied, and why it failed (if it did).

    Truthy when it passed.
    """

    name: str
    passed: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "tolerance": self.tolerance.to_json() if self.tolerance else None,
            "failures": self.failures,
            "notes": self.notes,
        }


def json_number(v: Any) -> Any:
    """Floats that JSON cannot hold (inf, nan) become the strings "inf", "-inf", "nan"."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (np.floating, np.integer)):
        return json_number(v.item())
    if isinstance(v, (list, tuple)):
        return [json_number(x) for x in v]
    return v


def is_classifier_like(name: str, ref: np.ndarray) -> bool:
    """Floating output whose last axis looks like classes (rank >= 2, >= 2 entries; name hints decide ties)."""
    if ref.dtype.kind != "f" or ref.ndim < 2 or ref.shape[-1] < 2:
        return False
    low = name.lower()
    if any(h in low for h in _NOT_CLASS_HINTS):
        return False
    return any(h in low for h in _CLASS_HINTS) or ref.ndim == 2


def _topk_sets(a: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(-a, kth=k - 1, axis=-1)[..., :k]


def topk_agreement(ref: np.ndarray, cand: np.ndarray) -> dict[str, float]:
    """top1: share of rows whose arg-max agrees; top5: mean overlap of the top-5 sets (classes on the last axis)."""
    c = ref.shape[-1]
    r2 = ref.reshape(-1, c).astype(np.float64)
    c2 = cand.reshape(-1, c).astype(np.float64)
    out = {"top1": float(np.mean(np.argmax(r2, -1) == np.argmax(c2, -1)))}
    if c >= 5:
        rs, cs = _topk_sets(r2, 5), _topk_sets(c2, 5)
        overlap = [len(set(a.tolist()) & set(b.tolist())) / 5.0 for a, b in zip(rs, cs)]
        out["top5"] = float(np.mean(overlap))
    return out


def error_metrics(ref: np.ndarray, cand: np.ndarray, classifier: bool = False) -> dict[str, Any]:
    """All metrics of ``cand`` against ``ref`` (same shape; non-finite elements are left out).

    ``classifier`` adds top-1/top-5 agreement over the last axis.
    """
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cand, dtype=np.float64)
    finite = np.isfinite(c) & np.isfinite(r)
    m: dict[str, Any] = {"elements": int(r.size), "nonfinite": int(np.size(c) - np.count_nonzero(np.isfinite(c)))}
    if not finite.any():
        return m
    rf, cf = r[finite], c[finite]
    diff = np.abs(cf - rf)
    scale = float(np.max(np.abs(rf)))
    floor = max(EPS32 * scale, np.finfo(np.float64).tiny)
    rel = diff / np.maximum(np.abs(rf), floor)
    num = float(np.dot(rf, cf))
    den = float(np.linalg.norm(rf) * np.linalg.norm(cf))
    if den == 0.0:
        cosine = 1.0 if float(np.max(np.abs(rf - cf))) == 0.0 else 0.0
    else:
        cosine = max(-1.0, min(1.0, num / den))
    noise = float(np.sum(diff * diff))
    signal = float(np.sum(rf * rf))
    snr = math.inf if noise == 0.0 else (10.0 * math.log10(signal / noise) if signal > 0 else -math.inf)
    m.update(
        max_abs=float(diff.max()),
        max_rel=float(rel.max()),
        mean_abs=float(diff.mean()),
        rmse=float(math.sqrt(noise / diff.size)),
        cosine=cosine,
        snr_db=snr,
        ref_max_abs=scale,
        max_rel_scale=float(diff.max()) / scale if scale > 0 else (0.0 if float(diff.max()) == 0.0 else math.inf),
    )
    if classifier and finite.all() and r.ndim >= 1 and r.shape[-1] >= 2:
        m.update(topk_agreement(r, c))
    return m


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def compare_output(name: str, ref: np.ndarray, cand: np.ndarray, tol: Tolerance,
                   classifier: bool | None = None) -> OutputComparison:
    """Compare one output; the result is truthy when it is within ``tol``.

    ``classifier`` (default: guessed from ``name`` and ``ref``) adds top-k agreement.
    """
    ref = np.asarray(ref)
    cand = np.asarray(cand)
    if classifier is None:
        classifier = is_classifier_like(name, ref)
    notes: list[str] = []
    if ref.shape != cand.shape:
        if ref.size == cand.size and [d for d in ref.shape if d != 1] == [d for d in cand.shape if d != 1]:
            notes.append(f"shape {tuple(cand.shape)} differs from the reference {tuple(ref.shape)} only in size-1 axes")
            cand = cand.reshape(ref.shape)
        else:
            return OutputComparison(name, False, {"shape": list(cand.shape), "ref_shape": list(ref.shape)}, tol,
                                    [f"shape {tuple(cand.shape)} != reference {tuple(ref.shape)}"], notes)
    metrics = error_metrics(ref, cand, classifier)
    failures: list[str] = []
    if metrics.get("nonfinite"):
        nan = int(np.count_nonzero(np.isnan(cand)))
        what = "NaN" if nan else "Inf"
        failures.append(f"{metrics['nonfinite']} of {metrics['elements']} values are NaN/Inf" if nan and nan != metrics["nonfinite"]
                        else f"{metrics['nonfinite']} of {metrics['elements']} values are {what}")
    ref_bad = ref.size - int(np.count_nonzero(np.isfinite(np.asarray(ref, dtype=np.float64))))
    if ref_bad:
        failures.append(f"the reference itself has {ref_bad} NaN/Inf values")
    if "max_abs" not in metrics:
        return OutputComparison(name, False, metrics, tol, failures or ["no finite values to compare"], notes)
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cand, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(c)
    if tol.compare == SCALE or tol.statistic == "elementwise":
        failures.extend(_rule_failures(r[ok], c[ok], tol, metrics))
    else:
        diff = np.abs(c[ok] - r[ok])
        floor = max(EPS32 * float(np.max(np.abs(r[ok]))), np.finfo(np.float64).tiny)
        rel = diff / np.maximum(np.abs(r[ok]), floor)
        s_abs, s_rel = statistic_of(diff, tol.statistic), statistic_of(rel, tol.statistic)
        metrics[f"{tol.statistic}_abs"] = s_abs
        metrics[f"{tol.statistic}_rel"] = s_rel
        if s_abs > tol.atol and s_rel > tol.rtol:
            failures.append(f"{tol.statistic} abs err {_fmt(s_abs)} > atol={tol.atol:g} and "
                            f"{tol.statistic} rel err {_fmt(s_rel)} > rtol={tol.rtol:g}")
    if tol.min_cosine is not None and metrics["cosine"] < tol.min_cosine:
        failures.append(f"cosine {metrics['cosine']:.6f} < {tol.min_cosine:g}")
    if tol.min_snr_db is not None and metrics["snr_db"] < tol.min_snr_db:
        failures.append(f"SNR {metrics['snr_db']:.1f} dB < {tol.min_snr_db:g} dB")
    if tol.min_top1 is not None and "top1" in metrics and metrics["top1"] < tol.min_top1:
        failures.append(f"top-1 agreement {metrics['top1']:.3f} < {tol.min_top1:g}")
    return OutputComparison(name, not failures, metrics, tol, failures, notes)


def _rule_failures(ref: np.ndarray, cand: np.ndarray, tol: Tolerance, metrics: dict[str, Any]) -> list[str]:
    """The scale or elementwise (allclose) rule of :func:`edgeport.tolerance.closeness` on finite values."""
    v = closeness(ref, cand, tol.atol, tol.rtol, tol.compare, tol.statistic)
    metrics["tolerance_ratio"] = v.ratio
    metrics["mismatched"] = v.mismatched
    if v:
        return []
    if tol.compare == ELEMENTWISE:
        return [f"{v.mismatched} of {ref.size} values outside atol={tol.atol:g} + rtol={tol.rtol:g}*|ref| "
                f"(max abs err {_fmt(metrics['max_abs'])}, worst {v.ratio:.3g}x the allowance)"]
    rel = f"{v.error / v.scale:.2e} of" if v.scale > 0 else "with"
    what = "max abs err" if tol.statistic in ("elementwise", "max") else f"{tol.statistic} abs err"
    count = f"{v.mismatched} of {ref.size} values outside the allowance; " if tol.statistic in ("elementwise", "max") else ""
    return [f"{count}{what} {_fmt(v.error)} ({rel} the output's magnitude {_fmt(v.scale)}) > atol={tol.atol:g} + "
            f"rtol={tol.rtol:g}*magnitude = {_fmt(v.allowed)}"]


def stack_samples(samples: list[dict[str, np.ndarray]], name: str) -> np.ndarray:
    """One output over all samples, stacked on a new leading axis."""
    return np.stack([np.asarray(s[name]) for s in samples])


def compare_samples(ref: list[dict[str, np.ndarray]], cand: list[dict[str, np.ndarray]],
                    tolerance_for: Any, names: list[str] | None = None) -> list[OutputComparison]:
    """Compare every output over all samples. ``tolerance_for(name) -> Tolerance``."""
    names = names or list(ref[0].keys())
    results = []
    for n in names:
        tol = tolerance_for(n)
        if any(n not in c for c in cand):
            results.append(OutputComparison(n, False, {}, tol, [f"output {n!r} is missing"]))
            continue
        try:
            r, c = stack_samples(ref, n), stack_samples(cand, n)
        except ValueError as exc:  # ragged shapes across samples
            results.append(OutputComparison(n, False, {}, tol, [f"output {n!r} changes shape across samples: {exc}"]))
            continue
        results.append(compare_output(n, r, c, tol, classifier=is_classifier_like(n, np.asarray(ref[0][n]))))
    return results
