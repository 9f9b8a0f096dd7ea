"""Running one artifact on one runtime in a worker process, over a set of feeds.

Each run is its own process (:mod:`edgeport.worker`): a segfault, an abort or a hang comes back as a
``crash``/``timeout`` outcome with the signal or the time, never as an exception here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeport.errors import EdgeportError
from edgeport.manifest import Artifact
from edgeport.refdata import Sample
from edgeport.runtimes import RUNTIMES
from edgeport.data.samples import load_samples, save_samples

JOB = "edgeport.runtimes.job:run_session_job"


@dataclass
class Target:
    """An artifact (with its absolute path) and the runtime that runs it."""

    artifact: Artifact
    path: Path
    runtime: str

    @property
    def key(self) -> str:
        return f"{self.artifact.name}/{self.runtime}"

    def session_options(self) -> dict[str, Any]:
        if self.artifact.format == "pytorch":
            return {"model": self.artifact.options.get("model")}
        return {}


@dataclass
class RunOutcome:
    status: str  # ok, error, crash, timeout
    outputs: list[Sample] | None = None
    reason: str = ""
    backend: str = ""
    seconds: float = 0.0
    latency_ms: float | None = None
    log_tail: str = ""
    user_error: EdgeportError | None = None


class Runner:
    """Runs targets in workers over one set of feeds (kept in a temporary folder)."""

    def __init__(self, tmp: Path, threads: int, timeout: float, keep: str | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.tmp = tmp
        self.threads = threads
        self.timeout = timeout
        self.keep = Path(keep) if keep else None
        self.progress = progress or (lambda s: None)
        self._ids = itertools.count(1)

    def run(self, target: Target, samples: list[Sample]) -> RunOutcome:
        from edgeport.worker import run_in_worker

        n = next(self._ids)
        feeds = self.tmp / f"feeds-{n}.npz"
        out = self.tmp / f"outputs-{n}.npz"
        save_samples(feeds, samples)
        cls = RUNTIMES[target.runtime].cls if target.runtime in RUNTIMES else None
        self.progress(f"running {target.key}")
        res = run_in_worker(JOB, {
            "runtime": target.runtime, "path": str(target.path), "io": target.artifact.io.to_json(),
            "feeds": str(feeds), "out": str(out), "threads": self.threads, "options": target.session_options(), "cls": cls,
            "warmup": 1,
        }, timeout=self.timeout)
        if not res.ok:
            return RunOutcome(res.status, reason=res.reason(), seconds=res.seconds, log_tail=res.log_tail,
                              user_error=res.user_error())
        value = res.value or {}
        try:
            outputs = load_samples(out)
        except EdgeportError as exc:
            return RunOutcome("error", reason=f"could not read the outputs: {exc.message}", seconds=res.seconds)
        if self.keep:
            self.keep.mkdir(parents=True, exist_ok=True)
            save_samples(self.keep / f"{target.artifact.name}.{target.runtime}.npz", outputs)
        times = value.get("run_seconds") or []
        return RunOutcome("ok", outputs, backend=str(value.get("backend", "")), seconds=res.seconds,
                          latency_ms=1000.0 * float(np.mean(times)) if times else None)
