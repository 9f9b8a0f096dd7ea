"""One model of the zoo through convert -> validate -> bench (-> quantize), with the library API.

:func:`run_model` is what each executor runs for a model: in a process of its own on the local pool
(started by :func:`edgeport.worker.run_in_worker`, so a model whose process dies is one failed row), or as
one Ray task. It returns plain JSON (:mod:`edgeport.zoo.report` reads it). Each step still runs its own
workers, exactly as the single-model commands do.

Reuse: convert has its content-hash cache. Validate, bench and quantize results are stored in
``OUT/<model>/.edgeport/zoo/<step>.json`` keyed by the artifacts' sha256 and the step's settings, so a
re-run with nothing changed reads them back instead of measuring again.

Page: validate and bench keep their results in ``OUT/<model>/.edgeport/`` as the single-model commands do, and
the model's own ``OUT/<model>/report.html`` is rewritten at the end (not when every step was reused and the page
exists). A page that cannot be written is a ``warning:`` line in the row's ``warnings``, printed by the zoo.

Memory: ``max_memory_mb`` bounds the resident memory of the model's process tree (this process and every
worker it started). A watchdog thread sums their RSS every 0.2 s and kills the workers when the sum passes
the bound; the step then fails as a crash, the row says "memory limit", and the other models go on.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from edgeport import __version__
from edgeport.zoo.config import ModelSpec

STATE_SUBDIR = "zoo"
WATCH_INTERVAL = 0.2


def model_job(*, spec: dict[str, Any], out_root: str, max_memory_mb: float | None = None) -> dict[str, Any]:
    """Worker entry (``edgeport.zoo.run:model_job``)."""
    return run_model(ModelSpec.from_json(spec), out_root, max_memory_mb)


def run_model(spec: ModelSpec, out_root: str | os.PathLike, max_memory_mb: float | None = None) -> dict[str, Any]:
    from edgeport.errors import EdgeportError

    start = time.perf_counter()
    out = Path(out_root).absolute() / spec.name
    row: dict[str, Any] = {"name": spec.name, "reference": spec.reference, "out": str(out), "formats": list(spec.formats),
                           "steps": {}, "reused": [], "error": None, "error_step": None, "exit_code": 0}
    watchdog = _Watchdog(max_memory_mb) if max_memory_mb else None
    try:
        for step in (_convert, _validate, _bench, _quantize):
            name = step.__name__.lstrip("_")
            try:
                result = step(spec, out, row)
            except EdgeportError as exc:
                row["error"], row["error_step"] = exc.one_line(), name
                row["exit_code"] = max(row["exit_code"], 3 if exc.exit_code != 1 else 1)
                break
            if result is None:
                continue
            row["steps"][name] = result
            code = int(result.get("exit_code", 0))
            row["exit_code"] = max(row["exit_code"], code if code in (0, 1) else 3)
            if name == "convert" and not result.get("artifacts"):
                break
    finally:
        if watchdog is not None:
            watchdog.stop()
            if watchdog.tripped:
                row["memory_limit"] = watchdog.tripped
                row["exit_code"] = 3
    row["seconds"] = round(time.perf_counter() - start, 3)
    _model_page(out, row)
    return row


class _Lines:
    """A console that keeps the lines printed to it (a worker's own stderr goes to its log)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, line: str, **_: Any) -> None:
        self.lines.append(str(line))


def _keep(out: Path, command: str, report: Any, row: dict) -> None:
    """The step's result in OUT/<model>/.edgeport/ for the model's page; a failure is a warning line, not the step's."""
    from edgeport.report.state import RESULT_NAMES, STATE_DIR, _reason, save_result

    try:
        save_result(out, command, report)
    except Exception as exc:  # noqa: BLE001 - the page is a by-product; the step's own result stands
        row.setdefault("warnings", []).append(f"warning: cannot write {out / STATE_DIR / RESULT_NAMES[command]}: {_reason(exc)}")


def _model_page(out: Path, row: dict) -> None:
    """Rewrite OUT/<model>/report.html unless every step was reused and the page exists. A page that
    cannot be written is a ``warning:`` line in ``row["warnings"]`` (the zoo prints it); the row's
    verdict stands."""
    from edgeport.report.page import PAGE_NAME
    from edgeport.report.state import after_command

    if (out / PAGE_NAME).is_file() and set(row["steps"]) <= set(row["reused"]):
        return
    lines = _Lines()
    after_command("zoo", out, console=lines)
    if lines.lines:
        row.setdefault("warnings", []).extend(lines.lines)


def _convert(spec: ModelSpec, out: Path, row: dict) -> dict[str, Any]:
    from edgeport import api

    events: list[Any] = []
    result = api.convert(spec.reference, to=spec.formats, out=out, inputs=spec.inputs, inputs_npz=spec.inputs_npz,
                         weights=spec.weights, trust_pickle=spec.trust_pickle, seed=spec.seed, converter=spec.converter,
                         opset=spec.opset, samples=spec.samples, rtol=spec.gate_rtol, timeout=spec.timeout,
                         on_event=events.append)
    if events and all(e.status == "cached" for e in events):
        row["reused"].append("convert")
    m = result.manifest
    kept = {a.target: a.converter for a in m.attempts if a.status == "kept"}
    return {
        "exit_code": result.exit_code,
        "artifacts": [{"name": a.name, "format": a.format, "converter": a.converter, "sha256": a.sha256,
                       "size_bytes": a.size_bytes, "checks": a.checks} for a in m.artifacts if a.format != "pytorch"],
        "kept": kept,
        "failed": [{"target": f.target, "converter": f.converter, "status": f.status, "reason": f.reason} for f in result.failed],
        "parity_failed": list(result.parity_failed),
        "attempts": [a.to_json() for a in m.attempts if a.status != "kept"],
    }


def _fingerprint(out: Path, step: str, settings: dict[str, Any]) -> str:
    from edgeport.manifest import Manifest

    m = Manifest.load(out)
    arts = sorted((a.name, a.sha256) for a in m.artifacts if a.variant in ("", "fp32"))
    doc = [step, __version__, arts, (m.reference or {}).get("sha256"), settings]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _cached(out: Path, step: str, settings: dict[str, Any], row: dict, compute) -> dict[str, Any]:
    """``compute()`` unless the stored result of this step has the same fingerprint."""
    from edgeport.fsutil import atomic_write_json
    from edgeport.outdir import STATE_DIR

    key = _fingerprint(out, step, settings)
    path = out / STATE_DIR / STATE_SUBDIR / f"{step}.json"
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            row["reused"].append(step)
            return stored["result"]
    except (OSError, ValueError, AttributeError):
        pass
    result = compute()
    if result.get("exit_code") in (0, 1):  # a crashed step is tried again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"key": key, "result": result})
    return result


def _validate(spec: ModelSpec, out: Path, row: dict) -> dict[str, Any]:
    settings = {"samples": spec.samples, "seed": spec.seed, "atol": spec.atol, "rtol": spec.rtol, "statistic": spec.statistic}

    def compute() -> dict[str, Any]:
        from edgeport import api

        report = api.validate(out, samples=spec.samples, seed=spec.seed, atol=spec.atol, rtol=spec.rtol,
                              statistic=spec.statistic, timeout=min(spec.timeout, 600.0))
        _keep(out, "validate", report, row)  # what the model's own page shows, as after `edgeport validate`
        doc = report.to_json()
        return {"exit_code": report.exit_code, "summary": report.summary(),
                "results": [{k: r[k] for k in ("artifact", "format", "variant", "runtime", "role", "status", "reason")}
                            | {"outputs": [{"name": o["name"], "passed": o["passed"], "metrics": o["metrics"]} for o in r["outputs"]]}
                            for r in doc["results"]]}

    return _cached(out, "validate", settings, row, compute)


def _bench(spec: ModelSpec, out: Path, row: dict) -> dict[str, Any] | None:
    if not spec.bench:
        return None
    settings = {"runs": spec.bench_runs, "warmup": spec.bench_warmup, "runtimes": list(spec.bench_runtimes)}

    def compute() -> dict[str, Any]:
        from edgeport import api

        report = api.bench(out, runs=spec.bench_runs, warmup=spec.bench_warmup, runtimes=list(spec.bench_runtimes),
                           timeout=min(spec.timeout, 600.0))
        _keep(out, "bench", report, row)
        return {"exit_code": report.exit_code, "summary": report.summary(),
                "rows": [{"artifact": r.artifact, "format": r.format, "runtime": r.runtime, "variant": r.variant,
                          "status": r.status, "reason": r.reason, "p50_ms": r.p50} for r in report.rows]}

    return _cached(out, "bench", settings, row, compute)


def _quantize(spec: ModelSpec, out: Path, row: dict) -> dict[str, Any] | None:
    if not spec.quantize:
        return None
    settings = {"modes": list(spec.quantize), "calibration": spec.calibration, "samples": spec.calibration_samples}

    def compute() -> dict[str, Any]:
        from edgeport import api

        report = api.quantize(out, modes=",".join(spec.quantize), calibration=spec.calibration,
                              random_calibration=spec.calibration is None, calibration_samples=spec.calibration_samples,
                              holdout_samples=max(8, spec.calibration_samples // 2), seed=spec.seed,
                              timeout=spec.timeout, layers=False, latency_runs=max(10, spec.bench_runs))
        rows = [{"name": r.name, "variant": r.variant, "format": r.format, "runtime": r.runtime, "status": r.status,
                 "reason": r.reason, "top1": r.summary.get("top1"), "accuracy": r.task.get("accuracy")} for r in report.rows]
        return {"exit_code": report.exit_code, "rows": rows, "int8_delta": int8_delta(rows)}

    result = _cached(out, "quantize", settings, row, compute)
    delta = result.get("int8_delta")
    if spec.max_int8_delta is not None and delta is not None and delta > spec.max_int8_delta:
        result = {**result, "exit_code": max(int(result.get("exit_code", 0)), 1),
                  "threshold": f"int8 top-1 drop {delta:.3g} > max_int8_delta {spec.max_int8_delta:g}"}
    return result


def int8_delta(rows: list[dict[str, Any]]) -> float | None:
    """Drop of agreement with the reference from the fp32 file to its full-int8 variant (task accuracy if labelled)."""
    for key in ("accuracy", "top1"):
        base = next((r[key] for r in rows if r["variant"] == "fp32" and r["format"] == "tflite" and r.get(key) is not None), None)
        int8 = next((r[key] for r in rows if r["variant"] == "int8" and r.get(key) is not None), None)
        if base is not None and int8 is not None:
            return round(float(base) - float(int8), 6)
    return None


class _Watchdog:
    """Kills this process's workers when the tree's resident memory passes ``limit_mb`` (see the module doc)."""

    def __init__(self, limit_mb: float) -> None:
        self.limit_mb = float(limit_mb)
        self.tripped: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="edgeport-zoo-memory", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import signal

        import psutil

        me = psutil.Process()
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                procs = [me] + me.children(recursive=True)
                rss = sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
            except psutil.Error:
                continue
            if rss > self.limit_mb:
                self.tripped = f"memory limit: the model's processes used {rss:.0f} MB > {self.limit_mb:.0f} MB"
                for p in procs[1:]:
                    try:
                        os.killpg(p.pid, signal.SIGKILL) if os.getpgid(p.pid) == p.pid else p.kill()
                    except (OSError, psutil.Error):
                        pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
