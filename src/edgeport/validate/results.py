"""What validate found: one row per artifact on a runtime, the stage table, and the report that holds them.

The report is what the CLI renders (:mod:`edgeport.validate.report`), what ``--json`` writes (schema
``edgeport.validate/1``) and what the library API returns; it is truthy when everything that ran passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeport import __version__
from edgeport.errors import EXIT_CHECK_FAILED, EXIT_FAILED, EXIT_OK
from edgeport.status import FAIL, FAILED_TO_RUN, PASS, SKIPPED
from edgeport.validate.config import kind_of
from edgeport.validate.metrics import OutputComparison, json_number

SCHEMA = "edgeport.validate/1"


@dataclass
class TargetResult:
    """One artifact on one runtime: its status and one comparison per output. Truthy when it passed."""

    artifact: str
    format: str
    variant: str
    runtime: str
    status: str
    role: str = "candidate"  # or "reference"
    parent: str | None = None
    reason: str = ""
    backend: str = ""
    seconds: float = 0.0
    latency_ms: float | None = None
    compared_with: str = ""
    outputs: list[OutputComparison] = field(default_factory=list)
    log_tail: str = ""
    delegation: dict[str, Any] | None = None  # .tflite: edgeport.runtimes.tflite_delegation report
    sizes: dict[str, Any] | None = None  # checked at other sizes of the dynamic dims (see _check_sizes)

    def __bool__(self) -> bool:
        return self.status in (PASS, SKIPPED)

    @property
    def key(self) -> str:
        return f"{self.artifact}/{self.runtime}"

    def failing_outputs(self) -> list[OutputComparison]:
        return [o for o in self.outputs if not o.passed]

    def to_json(self) -> dict[str, Any]:
        d = {
            "artifact": self.artifact, "format": self.format, "variant": self.variant, "kind": kind_of(self.variant),
            "runtime": self.runtime, "role": self.role, "parent": self.parent, "status": self.status,
            "passed": bool(self), "reason": self.reason, "backend": self.backend, "seconds": round(self.seconds, 3),
            "latency_ms": round(self.latency_ms, 4) if self.latency_ms is not None else None,
            "compared_with": self.compared_with, "outputs": [o.to_json() for o in self.outputs],
        }
        if self.status in FAILED_TO_RUN and self.log_tail:
            d["log_tail"] = self.log_tail[-2000:]
        if self.delegation is not None:
            d["delegation"] = self.delegation
        if self.sizes is not None:
            d["sizes"] = self.sizes
        return d


@dataclass
class StageResult:
    """Error one conversion step added: the artifact against its parent, and both against the reference."""

    parent: str
    artifact: str
    parent_runtime: str
    runtime: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"parent": self.parent, "artifact": self.artifact, "parent_runtime": self.parent_runtime,
                "runtime": self.runtime, "outputs": {k: {m: json_number(v) for m, v in d.items()} for k, d in self.outputs.items()}}


@dataclass
class ValidationReport:
    """Everything ``edgeport validate`` found. Truthy when every row passed (or was skipped)."""

    root: str
    reference: dict[str, Any]
    feeds: dict[str, Any]
    results: list[TargetResult] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)
    localizations: list[dict[str, Any]] = field(default_factory=list)
    tolerances: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worst: dict[str, Any] | None = field(default=None, repr=False)  # the worst output's values (not in to_json)

    @property
    def ran(self) -> list[TargetResult]:
        return [r for r in self.results if r.status != SKIPPED]

    @property
    def passed(self) -> bool:
        return bool(self.ran) and all(self.results)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def exit_code(self) -> int:
        if any(r.status in FAILED_TO_RUN for r in self.results) or not self.ran:
            return EXIT_FAILED
        if any(r.status == FAIL for r in self.results):
            return EXIT_CHECK_FAILED
        return EXIT_OK

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: overall verdict and counts, naming what failed."""
        c = self.counts()
        parts = ", ".join(f"{v} {k}" for k, v in sorted(c.items()))
        if self.passed:
            return f"parity OK: {parts}"
        bad = []
        for r in self.results:
            if r.status == FAIL:
                outs = ", ".join(o.name for o in r.failing_outputs())
                bad.append(f"{r.key} ({outs})" if outs else r.key)
            elif r.status in FAILED_TO_RUN:
                bad.append(f"{r.key} [{r.status}]")
        if not self.ran:
            return "nothing could be validated: " + (parts or "no artifacts")
        return f"parity FAILED: {parts}; " + "; ".join(bad)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "edgeport_version": __version__,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "root": self.root,
            "reference": self.reference,
            "inputs": self.feeds,
            "tolerances": self.tolerances,
            "counts": self.counts(),
            "results": [r.to_json() for r in self.results],
            "stages": [s.to_json() for s in self.stages],
            "localization": self.localizations,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }
