#!/usr/bin/env python
"""Does edgeport's timing loop add overhead of its own? Compare it with a bare timed loop.

    .venv/bin/python benchmarks/timing_overhead.py [OUT] [--calls 2000] [--rounds 15]

For each session (ONNX Runtime and LiteRT on tiny_cnn, plus a no-op callable that isolates the harness
itself) this runs, interleaved round by round:

* bare:     ``t0 = perf_counter_ns(); for _ in range(n): run(x); t1 = ...``  -> (t1 - t0) / n
* edgeport: ``edgeport.bench.latency.timed_loop(run, x, n)``                 -> mean of its per-call samples
            and its wall time / n (what the loop costs including its own bookkeeping)

and prints the medians over rounds and the differences in ns per call and in percent. OUT is an
``edgeport convert`` folder with model.onnx and a .tflite (default: tiny_cnn is converted to a temp folder).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent


def bare_loop(run: Callable[[Any], Any], arg: Any, n: int) -> float:
    """ns per call of a plain loop timed from outside."""
    clock = time.perf_counter_ns
    t0 = clock()
    for _ in range(n):
        run(arg)
    return (clock() - t0) / n


def measure(run: Callable[[Any], Any], arg: Any, calls: int, rounds: int) -> dict[str, float]:
    import gc

    from edgeport.bench.latency import timed_loop

    for _ in range(max(10, calls // 10)):
        run(arg)  # warm up
    bare, inner, wall = [], [], []
    for i in range(rounds):
        order = ("bare", "edgeport") if i % 2 == 0 else ("edgeport", "bare")
        for which in order:
            if which == "bare":
                gc.disable()  # timed_loop disables gc too: compare like with like
                try:
                    bare.append(bare_loop(run, arg, calls))
                finally:
                    gc.enable()
            else:
                t0 = time.perf_counter_ns()
                ns = timed_loop(run, arg, calls)
                wall.append((time.perf_counter_ns() - t0) / calls)
                inner.append(float(ns.mean()))
    return {"bare": statistics.median(bare), "samples": statistics.median(inner), "wall": statistics.median(wall)}


def _pct(delta: float, base: float) -> str:
    """Percent of a real model's call time (blank for the no-op, where a percentage means nothing)."""
    return f"{delta / base * 100:+.2f}%" if base > 1000 else ""


def ensure_out(out: str | None) -> Path:
    if out:
        return Path(out)
    d = Path(tempfile.gettempdir()) / "edgeport-timing-overhead" / "tiny_cnn"
    if not (d / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "edgeport", "convert", "sample:tiny_cnn", "--to", "onnx,tflite",
                        "--legacy-exporter", "-o", str(d)], check=True, cwd=REPO)
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("out", nargs="?", help="edgeport convert output folder (default: convert tiny_cnn)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per loop")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (medians are reported)")
    args = ap.parse_args(argv)

    from edgeport.manifest import Manifest
    from edgeport.refdata import load_reference
    from edgeport.runtimes.job import load_session

    out = ensure_out(args.out)
    m = Manifest.load(out)
    ins, _ = load_reference(m.reference_path)
    cases: list[tuple[str, Callable[[Any], Any], Any]] = [("no-op callable", lambda x: None, None)]
    for fmt, rt in (("onnx", "onnxruntime"), ("tflite", "tflite")):
        art = next((a for a in m.artifacts if a.format == fmt), None)
        if art is None:
            print(f"(no {fmt} artifact in {out}: skipped)")
            continue
        s = load_session(rt, str(m.abspath(art)), art.io, 1)
        cases.append((f"{art.name} on {rt}", s.run_native, s.to_native(ins[0])))

    print(f"{args.rounds} interleaved rounds x {args.calls} calls, 1 thread; medians over rounds (ns per call)")
    print(f"{'case':<26} {'bare loop':>11} {'edgeport samples':>17} {'edgeport wall':>14} {'samples-bare':>13} {'wall-bare':>11}")
    for name, run, arg in cases:
        r = measure(run, arg, args.calls, args.rounds)
        d_in, d_wall = r["samples"] - r["bare"], r["wall"] - r["bare"]
        print(f"{name:<26} {r['bare']:>11.0f} {r['samples']:>17.0f} {r['wall']:>14.0f} "
              f"{d_in:>+8.0f} {_pct(d_in, r['bare']):>7} {d_wall:>+7.0f} {_pct(d_wall, r['bare']):>7}")
    print("samples-bare: what the reported latencies include beyond a bare loop's per-call time; "
          "wall-bare: the cost of the timing loop's own bookkeeping (never inside a sample)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
