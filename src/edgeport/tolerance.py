"""What "close enough" means for one model output, in one place (numpy only).

``edgeport convert``'s parity gate, ``edgeport validate``'s tolerances (its default for fp32 and fp16
artifacts, and its check of the reference against reference.npz) all decide with :func:`closeness`.
Two ways to compare a candidate ``c`` with its reference ``r``, over the whole output (every sample):

- ``scale`` (the default): every element within ``atol + rtol * scale`` where ``scale = max|r|`` over
  the output. The error is measured against the output's own magnitude, so float32 rounding noise
  (about 1e-7 of the magnitude per operation) passes whether the output is of order 1e-6, 1 or 1e11,
  and a real change (an element off by a percent of the output's magnitude, a changed weight) fails
  at any magnitude. An element that happens to be near zero in a large output is held to the output's
  scale, not to its own tiny value. ``atol`` is the absolute floor for outputs that are (near) zero:
  it only matters when the output's magnitude is below about ``atol / rtol``.
- ``elementwise`` (numpy ``allclose``): every element within ``atol + rtol * |r|``. Stricter on the
  small elements of an output: an element near zero must match to ``atol`` in absolute terms.

With a ``statistic`` other than every element (``max``), the scale rule checks that statistic of
``|c - r|`` (mean, median, a percentile) against the same ``atol + rtol * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeport.errors import UsageError

SCALE, ELEMENTWISE = "scale", "elementwise"
COMPARES = (SCALE, ELEMENTWISE)
# fp32 defaults. Conversions agree to ~1e-6 of the output's magnitude (deep nets, other runtimes, other
# processes and thread counts); 1e-3 leaves ~1000x headroom and still fails an element off by 1 %.
# The floor lets outputs of magnitude 1e-6 be judged relatively (1e-12 << 1e-3 * 1e-6) while an
# all-zero output must stay zero to 1e-12.
FP32_ATOL = 1e-12
FP32_RTOL = 1e-3
_ALIASES = {"scale": SCALE, "scaled": SCALE, "magnitude": SCALE, "relative-to-scale": SCALE,
            "elementwise": ELEMENTWISE, "elemwise": ELEMENTWISE, "element": ELEMENTWISE, "allclose": ELEMENTWISE}


def normalize_compare(text: object) -> str:
    """``scale`` or ``elementwise`` (``allclose``); anything else is a usage error."""
    t = str(text).strip().lower()
    if t in _ALIASES:
        return _ALIASES[t]
    raise UsageError(f"unknown comparison {text!r}",
                     "use scale (error relative to each output's magnitude) or elementwise (numpy allclose)")


def output_scale(ref: np.ndarray) -> float:
    """The magnitude of an output: ``max|ref|`` over its finite values (0.0 when it has none)."""
    r = np.abs(np.asarray(ref, dtype=np.float64))
    r = r[np.isfinite(r)]
    return float(r.max()) if r.size else 0.0


@dataclass(frozen=True)
class Closeness:
    """The verdict of :func:`closeness`; truthy when within tolerance.

    ``error`` is the checked number (the max, or the chosen statistic, of ``|c - r|``), ``allowed``
    its limit (scale rule; for elementwise, the limit at the worst element), ``ratio`` the worst
    error / allowance (<= 1 passes), ``mismatched`` the elements over their allowance.
    """

    passed: bool
    error: float
    allowed: float
    ratio: float
    mismatched: int
    scale: float

    def __bool__(self) -> bool:
        return self.passed


def statistic_of(values: np.ndarray, statistic: str) -> float:
    """``max`` (also ``elementwise``), ``mean``, ``median`` or a percentile ``pNN`` of ``values``."""
    if statistic in ("max", "elementwise"):
        return float(values.max())
    if statistic == "mean":
        return float(values.mean())
    if statistic == "median":
        return float(np.median(values))
    return float(np.percentile(values, float(statistic[1:])))  # "p99"


def closeness(ref: np.ndarray, cand: np.ndarray, atol: float, rtol: float, compare: str = SCALE,
              statistic: str = "max") -> Closeness:
    """Is ``cand`` within tolerance of ``ref`` (same shape, finite values; see the module doc)?

    ``statistic`` (``max``/``elementwise``, ``mean``, ``median``, ``pNN``) applies to the scale rule;
    the elementwise rule checks every element.
    """
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cand, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"shapes differ: {c.shape} vs reference {r.shape}")
    scale = output_scale(r)
    if r.size == 0:
        return Closeness(True, 0.0, float(atol + rtol * scale), 0.0, 0, scale)
    diff = np.abs(c - r)
    tiny = np.finfo(np.float64).tiny
    if compare == SCALE:
        allowed = float(atol + rtol * scale)
        err = statistic_of(diff, statistic)
        mismatched = int(np.count_nonzero(diff > allowed))
        return Closeness(err <= allowed, err, allowed, err / max(allowed, tiny), mismatched, scale)
    if compare != ELEMENTWISE:
        raise ValueError(f"unknown comparison {compare!r}")
    allowed_each = atol + rtol * np.abs(r)
    ratios = diff / np.maximum(allowed_each, tiny)
    worst = int(np.argmax(ratios))
    mismatched = int(np.count_nonzero(diff > allowed_each))
    return Closeness(mismatched == 0, float(diff.max()), float(allowed_each.flat[worst]), float(ratios.flat[worst]),
                     mismatched, scale)
