"""The report page's PNG plots (matplotlib with the Agg backend, imported here only when a plot is drawn).

Each function writes one PNG and returns True, or returns False when there is nothing to draw or
matplotlib is not installed (the device profile): the page then says why the plot is missing.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.fsutil import atomic_write_bytes


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> bool:
    try:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return True


def stage_errors(bars: list[tuple[str, float]], path: Path) -> bool:
    """Horizontal bars: the max abs error each conversion step added (log scale; 0 drawn at the floor)."""
    plt = _pyplot()
    vals = [(label, v) for label, v in bars if v is not None and math.isfinite(v)]
    if plt is None or not vals:
        return False
    positive = [v for _, v in vals if v > 0]
    floor = min(positive) / 10 if positive else 1e-12
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(vals) + 1.3), dpi=100)
    ys = range(len(vals))
    ax.barh(list(ys), [max(v, floor) for _, v in vals], color="#4c78a8")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([label for label, _ in vals], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("max abs error added by the step (vs its parent's output)")
    for y, (_, v) in zip(ys, vals):
        ax.text(max(v, floor), y, f" {v:.2e}" if v else " 0 (identical)", va="center", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _save(plt, fig, path)


def worst_output(ref: np.ndarray, cand: np.ndarray, title: str, path: Path) -> bool:
    """Histogram of |candidate - reference| and a reference-vs-candidate scatter of one output."""
    plt = _pyplot()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    cand = np.asarray(cand, dtype=np.float64).ravel()
    ok = np.isfinite(ref) & np.isfinite(cand)
    if plt is None or not ok.any():
        return False
    ref, cand = ref[ok], cand[ok]
    err = np.abs(cand - ref)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    pos = err[err > 0]
    if pos.size:
        lo, hi = float(pos.min()), float(pos.max())
        bins = np.logspace(math.log10(lo), math.log10(hi) + 1e-9, 40) if hi > lo else 10
        a1.hist(pos, bins=bins, color="#e45756")
        a1.set_xscale("log")
    a1.set_title(f"|error|: {int(err.size - pos.size)} of {err.size} exactly 0", fontsize=9)
    a1.set_xlabel("|candidate - reference|")
    a1.set_ylabel("values")
    a2.scatter(ref, cand, s=3, alpha=0.5, color="#4c78a8", rasterized=True)
    lim = [float(min(ref.min(), cand.min())), float(max(ref.max(), cand.max()))]
    a2.plot(lim, lim, color="#999", linewidth=1)
    a2.set_xlabel("reference")
    a2.set_ylabel("candidate")
    a2.set_title("candidate vs reference (line: equal)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)
