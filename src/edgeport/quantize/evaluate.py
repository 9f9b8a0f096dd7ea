"""Worker entries of the sweep's evaluation: run a variant on the held-out samples, time it, read its delegation.

    run_in_worker(EVAL_JOB, {"runtime": "tflite", "path": "model.int8.tflite", "io": ..., "feeds": "holdout.npz",
                  "out": "outputs.npz", "threads": 1})

Each runs in a worker process (:mod:`edgeport.worker`): a variant that aborts the interpreter is a crashed
row, not a crashed sweep.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeport.errors import EdgeportError
from edgeport.data.samples import load_samples, save_samples

EVAL_JOB = "edgeport.quantize.evaluate:evaluate_job"
OP_PROFILE_JOB = "edgeport.quantize.evaluate:op_profile_job"
INTERLEAVED_JOB = "edgeport.quantize.evaluate:interleaved_job"

def evaluate_job(*, runtime: str, path: str, io: dict[str, Any], feeds: str, out: str, threads: int = 1,
                 runs: int = 200, seconds: float = 3.0, warmup: int = 5) -> dict[str, Any]:
    """Worker entry: run every held-out sample through ``path``, then time ``run_native`` on the first one."""
    from edgeport.bench.latency import latency_stats, timed_for
    from edgeport.runtimes.job import load_session

    t0 = time.perf_counter()
    session = load_session(runtime, path, io, threads)
    load_seconds = time.perf_counter() - t0
    samples = load_samples(feeds)
    outputs = [session.run(s) for s in samples]
    save_samples(out, outputs)
    native = session.to_native(samples[0])
    for _ in range(max(0, int(warmup))):
        session.run_native(native)
    ns = timed_for(session.run_native, native, seconds=float(seconds), max_runs=max(1, int(runs)), min_runs=min(10, max(1, int(runs))))
    stats = latency_stats(ns)
    details: dict[str, Any] = {}
    if hasattr(session, "input_details"):
        try:
            details = {"inputs": {k: str(np.dtype(v.get("dtype")).name) for k, v in session.input_details().items()},
                       "outputs": {k: str(np.dtype(v.get("dtype")).name) for k, v in session.output_details().items()}}
        except (TypeError, AttributeError):
            details = {}
    return {"backend": getattr(session, "backend", runtime), "load_seconds": load_seconds, "outputs": out,
            "delegation": tflite_delegation(path, threads) if runtime == "tflite" else {},
            "latency": {"p50": stats["p50"], "p90": stats["p90"], "mean": stats["mean"], "min": stats["min"],
                        "runs": int(ns.size)},
            "native_dtypes": details, "notes": list(getattr(session, "notes", []) or [])}


def tflite_delegation(path: str, threads: int = 1) -> dict[str, Any]:
    """XNNPACK partitions and builtin-kernel op counts of a .tflite (``edgeport.runtimes.tflite_delegation``)."""
    from edgeport.runtimes.tflite_delegation import delegation_report

    try:
        rep = delegation_report(path, threads, timing=False)
    except EdgeportError as exc:
        return {"error": exc.one_line()}
    return {"partitions": rep.get("partitions"), "builtin_ops": rep.get("builtin_ops", {}),
            "builtin_op_count": sum((rep.get("builtin_ops") or {}).values())}


def op_profile_job(*, path: str, threads: int = 1, budget_s: float = 60.0) -> dict[str, Any]:
    """Worker entry: the per-op time table of a .tflite (``edgeport.runtimes.tflite_delegation.op_profile``)."""
    from edgeport.runtimes.tflite_delegation import op_profile

    return op_profile(path, threads, budget_s=budget_s)


def interleaved_job(*, models: list[dict[str, Any]], feeds: str, threads: int = 1, rounds: int = 5,
                    seconds: float = 0.3) -> dict[str, Any]:
    """Worker entry: the p50 of each model (``{"name", "runtime", "path", "io"}``), timed in turns, ``rounds`` times
    ``seconds`` each, so load from other processes falls on all of them alike. Returns ``{"p50_ms": {name: the
    lowest p50 of its rounds}, "rounds_ms": {name: [p50 per round]}}``: other processes only ever add time, so the
    quietest round is the closest to the model's own speed."""
    from edgeport.bench.latency import latency_stats, timed_for
    from edgeport.runtimes.job import load_session

    sample = load_samples(feeds)[0]
    runs = []
    for m in models:
        session = load_session(m["runtime"], m["path"], m["io"], threads)
        native = session.to_native(sample)
        for _ in range(3):
            session.run_native(native)
        runs.append((m["name"], session, native))
    p50s: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(max(1, int(rounds))):
        for name, session, native in runs:
            ns = timed_for(session.run_native, native, seconds=float(seconds), max_runs=10_000, min_runs=5)
            p50s[name].append(float(latency_stats(ns)["p50"]))
    return {"p50_ms": {k: float(min(v)) for k, v in p50s.items()}, "rounds_ms": {k: [round(x, 5) for x in v] for k, v in p50s.items()},
            "rounds": int(rounds), "seconds": float(seconds)}
