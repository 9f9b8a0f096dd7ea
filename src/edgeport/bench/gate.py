"""The regression gate: ``edgeport bench OUT --baseline old.json --max-regression 10%``.

Rows are matched by (artifact, runtime, threads). A row regressed when its latency metric (p50 by
default) grew by more than ``max_regression`` relative to the baseline *and* by more than
``min_delta_ms`` in absolute terms (a floor for microsecond models whose noise exceeds 10%). The
gate fails (exit 1) when any row regressed. Rows only in the baseline or only in this run are listed,
not judged; a baseline sharing no row with this run is a usage error (exit 2), never a silent pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgeport.status import OK
from edgeport.bench.runner import BenchReport
from edgeport.errors import UsageError

METRICS = ("p50", "p90", "p99", "mean", "min")
OK_, REGRESSED, IMPROVED, NEW, MISSING, NOT_RUN = "ok", "regressed", "improved", "new", "missing", "not-run"


def parse_regression(text: str | float) -> float:
    """``10%`` or ``10`` -> 0.10 (a fraction). Plain numbers are percent too."""
    raw = str(text).strip()
    m = re.fullmatch(r"\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?", raw)
    if not m:
        raise UsageError(f"--max-regression {text!r} is not a percentage", "write e.g. --max-regression 10%")
    value = float(m.group(1)) / 100.0
    if value > 100.0:
        raise UsageError(f"--max-regression {text!r} is absurdly large", "write e.g. --max-regression 10%")
    return value


@dataclass
class GateRow:
    key: str
    status: str
    baseline_ms: float | None = None
    current_ms: float | None = None

    @property
    def change(self) -> float | None:
        if self.baseline_ms and self.current_ms is not None:
            return self.current_ms / self.baseline_ms - 1.0
        return None

    def to_json(self) -> dict[str, Any]:
        ch = self.change
        return {"key": self.key, "status": self.status, "baseline_ms": self.baseline_ms, "current_ms": self.current_ms,
                "change": round(ch, 4) if ch is not None else None}


@dataclass
class GateResult:
    metric: str
    max_regression: float
    min_delta_ms: float
    baseline: str
    rows: list[GateRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[GateRow]:
        return [r for r in self.rows if r.status == REGRESSED]

    @property
    def passed(self) -> bool:
        return not self.regressed

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        compared = [r for r in self.rows if r.status in (OK_, REGRESSED, IMPROVED)]
        limit = f"{self.max_regression * 100:g}%"
        if self.passed:
            return f"gate passed: {len(compared)} row(s) within +{limit} of {self.baseline} ({self.metric})"
        worst = ", ".join(f"{r.key} {r.baseline_ms:.4g} -> {r.current_ms:.4g} ms (+{(r.change or 0) * 100:.0f}%)"
                          for r in sorted(self.regressed, key=lambda r: -(r.change or 0)))
        return f"gate FAILED: {len(self.regressed)} of {len(compared)} row(s) slower than +{limit} ({self.metric}): {worst}"

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary(), "metric": self.metric,
                "max_regression": self.max_regression, "min_delta_ms": self.min_delta_ms, "baseline": self.baseline,
                "rows": [r.to_json() for r in self.rows], "notes": self.notes}


def compare_to_baseline(current: BenchReport, baseline: BenchReport, max_regression: float, metric: str = "p50",
                        min_delta_ms: float = 0.0, baseline_label: str = "baseline") -> GateResult:
    """Judge ``current`` against ``baseline`` (see the module doc)."""
    if metric not in METRICS:
        raise UsageError(f"--gate-metric {metric!r} is unknown", f"use one of: {', '.join(METRICS)}")
    if max_regression < 0:
        raise UsageError("--max-regression must not be negative", "write e.g. --max-regression 10%")
    base = {r.key: r for r in baseline.rows if r.status == OK and metric in r.latency_ms}
    result = GateResult(metric, max_regression, float(min_delta_ms), baseline_label)
    common = 0
    for r in current.sorted_rows():
        b = base.get(r.key)
        if b is None:
            if r.status == OK:
                result.rows.append(GateRow(r.key, NEW, None, r.latency_ms.get(metric)))
            continue
        if r.status != OK or metric not in r.latency_ms:
            result.rows.append(GateRow(r.key, NOT_RUN, b.latency_ms[metric], None))
            continue
        common += 1
        bm, cm = b.latency_ms[metric], r.latency_ms[metric]
        if cm > bm * (1.0 + max_regression) and (cm - bm) > min_delta_ms:
            status = REGRESSED
        elif cm < bm / (1.0 + max_regression):
            status = IMPROVED
        else:
            status = OK_
        result.rows.append(GateRow(r.key, status, bm, cm))
    seen = {r.key for r in current.rows}
    for key, b in base.items():
        if key not in seen:
            result.rows.append(GateRow(key, MISSING, b.latency_ms[metric], None))
    if common == 0 and not any(r.status == NOT_RUN for r in result.rows):
        have = ", ".join(sorted(base)) or "(no measured rows)"
        raise UsageError(f"the baseline {baseline_label} shares no artifact/runtime/threads row with this run (it has {have})",
                         "make the baseline with edgeport bench --json on the same artifacts, runtimes and --threads")
    cpu_b, cpu_c = baseline.machine.get("cpu"), current.machine.get("cpu")
    if cpu_b and cpu_c and cpu_b != cpu_c:
        result.notes.append(f"the baseline was measured on another CPU ({cpu_b}; this run: {cpu_c})")
    if baseline.remote != current.remote and (baseline.remote or current.remote):
        result.notes.append("one of the runs was measured on a remote machine")
    return result
