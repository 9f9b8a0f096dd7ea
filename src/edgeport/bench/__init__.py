"""Latency, memory and size benchmarks of every artifact on every runtime that loads it.

    from edgeport.bench import BenchOptions, bench_target
    report = bench_target("out/", BenchOptions(threads=[1], runs=200))
    report.exit_code        # 0 ok, 3 a runtime failed or crashed (1 is the regression gate's, see gate.py)

Each (artifact, runtime, thread count) runs in its own worker process (:mod:`edgeport.bench.latency`):
the worker measures its own idle memory first, then imports the runtime library, loads the artifact,
runs it once (first inference), warms up, and times ``Session.run_native`` alone with
``time.perf_counter_ns``. A crash or hang is a reported row; the other rows still run.

Modules: ``latency`` (the worker: timing loop, statistics, memory probes), ``runner`` (the matrix),
``report`` (JSON schema ``edgeport.bench/1``, Markdown, rich table, PNG plot, HTML section), ``gate``
(``--baseline old.json --max-regression 10%``). Only numpy is needed to run them (plots need matplotlib).
Names are imported lazily so ``import edgeport.bench`` stays cheap.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "edgeport.bench/1"

__all__ = ["SCHEMA", "BenchOptions", "BenchReport", "BenchRow", "bench_target", "compare_to_baseline", "parse_regression"]

_WHERE = {
    "BenchOptions": "edgeport.bench.runner",
    "BenchReport": "edgeport.bench.runner",
    "BenchRow": "edgeport.bench.runner",
    "bench_target": "edgeport.bench.runner",
    "compare_to_baseline": "edgeport.bench.gate",
    "parse_regression": "edgeport.bench.gate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'edgeport.bench' has no attribute {name!r}")
