"""The benchmark worker: one artifact on one runtime at one thread count, in its own process.

    run_in_worker("edgeport.bench.latency:bench_job", {"runtime": "tflite", "path": ".../model.tflite",
                  "io": {...}, "feeds": "feed.npz", "threads": 1, "warmup": 10, "runs": 100}, timeout=600)

In order, the worker:
1. reads its own resident memory while idle (numpy and edgeport loaded, no runtime library yet) and
   resets the kernel's high-water mark, so the peak it reports is this artifact's alone;
2. imports the runtime library (``import_ms``), loads the artifact (``init_ms``), converts the feed to
   the artifact's native names and layout once, and runs it once (``first_ms``);
3. runs ``warmup`` untimed inferences, then ``runs`` timed ones (or as many as fit in ``seconds``),
   timing nothing but ``Session.run_native`` with ``time.perf_counter_ns``, the garbage collector off;
4. reports percentiles, mean, std and throughput (numpy), and the memory peak above the idle baseline.

Memory comes from ``/proc/self/status`` (VmRSS, VmHWM) so a device without psutil measures it too;
elsewhere psutil, then ``getrusage`` (``ru_maxrss``) are used, and ``memory.source`` says which.
Only numpy is needed here; the runtime library is imported when the job runs.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_MAX_SAMPLES = 2000  # latency samples kept in the report (evenly strided over the run)
MAX_RUNS = 1_000_000


# ------------------------------------------------------------------------------------------ memory


def _proc_status() -> dict[str, int]:
    """VmRSS/VmHWM/... of this process in kB from /proc/self/status ({} when there is no /proc)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Vm"):
                    key, _, rest = line.partition(":")
                    parts = rest.split()
                    if parts and parts[0].isdigit():
                        out[key] = int(parts[0])
    except OSError:
        return {}
    return out


def _ru_maxrss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, kB elsewhere


class MemoryProbe:
    """Resident memory of this process in MB: now, and the peak since :meth:`reset_peak`."""

    def __init__(self) -> None:
        self.source = "proc" if "VmRSS" in _proc_status() else ("psutil" if _has_psutil() else "getrusage")
        self.peak_reset = False

    def rss_mb(self) -> float | None:
        if self.source == "proc":
            kb = _proc_status().get("VmRSS")
            return kb / 1024.0 if kb is not None else None
        if self.source == "psutil":
            import psutil

            return psutil.Process().memory_info().rss / (1024.0 * 1024.0)
        return _ru_maxrss_mb()  # no current-RSS source: the peak so far is the closest we have

    def peak_mb(self) -> float | None:
        if self.source == "proc":
            kb = _proc_status().get("VmHWM")
            if kb is not None:
                return kb / 1024.0
        return _ru_maxrss_mb()

    def reset_peak(self) -> bool:
        """Reset the kernel's high-water mark (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
        if self.source != "proc":
            return False
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            self.peak_reset = True
        except OSError:
            self.peak_reset = False
        return self.peak_reset

    @property
    def peak_label(self) -> str:
        if self.source == "proc":
            return "VmHWM" + (" (reset after baseline)" if self.peak_reset else "")
        return "ru_maxrss"


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ timing


def timed_loop(run: Callable[[Any], Any], arg: Any, runs: int) -> np.ndarray:
    """Call ``run(arg)`` ``runs`` times; return each call's duration in ns (int64).

    Only the call sits between the two clock reads; storing the result happens outside the timed
    window. The garbage collector is off during the loop (as in :mod:`timeit`).
    """
    n = int(runs)
    out = [0] * n
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(n):
            t0 = clock()
            run(arg)
            out[i] = clock() - t0
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(out, dtype=np.int64)


def timed_for(run: Callable[[Any], Any], arg: Any, seconds: float, max_runs: int = MAX_RUNS, min_runs: int = 1) -> np.ndarray:
    """Like :func:`timed_loop` but for ``seconds`` of wall time (at least ``min_runs``, at most ``max_runs``)."""
    clock = time.perf_counter_ns
    times: list[int] = []
    append = times.append
    gc_was_enabled = gc.isenabled()
    gc.disable()
    deadline = clock() + int(float(seconds) * 1e9)
    try:
        while True:
            t0 = clock()
            run(arg)
            t1 = clock()
            append(t1 - t0)
            if (t1 >= deadline and len(times) >= min_runs) or len(times) >= max_runs:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(times, dtype=np.int64)


def latency_stats(ns: np.ndarray) -> dict[str, float]:
    """Milliseconds: p50/p90/p99 (linear interpolation), mean, std (ddof=1), min, max, iqr; throughput per s."""
    a = np.asarray(ns, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    ms = a / 1e6
    p25, p50, p75, p90, p99 = (float(v) for v in np.percentile(ms, [25, 50, 75, 90, 99]))
    total_s = float(a.sum()) / 1e9
    return {
        "p50": p50, "p90": p90, "p99": p99,
        "mean": float(ms.mean()), "std": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "min": float(ms.min()), "max": float(ms.max()), "iqr": p75 - p25,
        "throughput": (a.size / total_s) if total_s > 0 else float("inf"),
    }


def subsample(ns: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` samples, evenly strided in time order (keeps the distribution's shape and drift)."""
    if limit <= 0 or ns.size <= limit:
        return ns
    idx = np.linspace(0, ns.size - 1, limit).round().astype(np.int64)
    return ns[idx]


def _import_runtime(runtime: str) -> tuple[str | None, float]:
    """Import the runtime's library (the first importable of its registry entry's modules); (module, seconds)."""
    from edgeport.runtimes import RUNTIMES

    entry = RUNTIMES.get(runtime)
    for mod in entry.modules if entry else ():
        t0 = time.perf_counter()
        try:
            importlib.import_module(mod)
        except ImportError:
            continue
        return mod, time.perf_counter() - t0
    return None, 0.0


# ------------------------------------------------------------------------------------------ jobs


def bench_job(*, runtime: str, path: str, io: dict[str, Any], feeds: str, threads: int = 1,
              options: dict[str, Any] | None = None, cls: str | None = None, warmup: int = 10, runs: int = 100,
              seconds: float | None = None, max_samples: int = DEFAULT_MAX_SAMPLES, profile: int = 0,
              placement: bool = True) -> dict[str, Any]:
    """Benchmark one artifact on one runtime (see the module doc). ``feeds``: an .npz from save_samples; sample 0 is used.

    ``placement=False`` skips the delegation report (a caller that only compares latencies)."""
    probe = MemoryProbe()
    gc.collect()
    memory: dict[str, float | None] = {"baseline": probe.rss_mb()}
    probe.reset_peak()

    from edgeport.runtimes.job import load_session

    sample = _first_sample(feeds)
    module, import_s = _import_runtime(runtime)
    memory["after_import"] = probe.rss_mb()

    t0 = time.perf_counter()
    session = load_session(runtime, path, io, int(threads), options, cls)
    init_s = time.perf_counter() - t0
    memory["after_load"] = probe.rss_mb()

    native = session.to_native(sample)
    run = session.run_native
    t0 = time.perf_counter()
    run(native)
    first_s = time.perf_counter() - t0

    ns = _timed_runs(run, native, warmup, runs, seconds)
    memory["peak"] = probe.peak_mb()
    stats = latency_stats(ns)
    kept = subsample(ns, int(max_samples))

    extra = _placement_and_profile(runtime, path, int(threads), native, int(profile)) if placement or profile else {}
    return {**extra,
        "runtime": runtime,
        "backend": getattr(session, "backend", "") or runtime,
        "notes": list(getattr(session, "notes", []) or []),
        "import_module": module,
        "import_ms": import_s * 1e3,
        "init_ms": init_s * 1e3,
        "first_ms": first_s * 1e3,
        "warmup": max(0, int(warmup)),
        "runs": int(ns.size),
        "timed_seconds": float(ns.sum()) / 1e9,
        "latency_ms": {k: v for k, v in stats.items() if k != "throughput"},
        "throughput": stats["throughput"],
        "memory": _memory_report(probe, **memory),
        "samples_us": [round(float(v) / 1e3, 3) for v in kept],
        "pid": os.getpid(),
    }


def _first_sample(feeds: str) -> dict[str, np.ndarray]:
    from edgeport.data.samples import load_samples
    from edgeport.errors import UsageError

    samples = load_samples(feeds)
    if not samples:
        raise UsageError(f"{feeds} holds no sample to benchmark with", "give at least one input sample")
    return samples[0]


def _timed_runs(run: Callable[[Any], Any], native: Any, warmup: int, runs: int, seconds: float | None) -> np.ndarray:
    """``warmup`` untimed calls, then ``runs`` timed ones (or as many as fit in ``seconds``); ns per call."""
    for _ in range(max(0, int(warmup))):
        run(native)
    if seconds is not None and seconds > 0:
        return timed_for(run, native, float(seconds), max_runs=MAX_RUNS)
    return timed_loop(run, native, max(1, int(runs)))


def _memory_report(probe: MemoryProbe, *, baseline: float | None, after_import: float | None,
                   after_load: float | None, peak: float | None) -> dict[str, Any]:
    """Resident memory in MB at each step, and the peak above the idle baseline and above the imported library."""
    def mb(v: float | None) -> float | None:
        return round(v, 2) if v is not None else None

    return {
        "baseline_mb": mb(baseline),
        "after_import_mb": mb(after_import),
        "after_load_mb": mb(after_load),
        "peak_mb": mb(peak),
        "peak_above_baseline_mb": mb(peak - baseline) if peak is not None and baseline is not None else None,
        "peak_above_import_mb": mb(peak - after_import) if peak is not None and after_import is not None else None,
        "source": probe.source,
        "peak_source": probe.peak_label,
    }


def _placement_and_profile(runtime: str, path: str, threads: int, native: dict[str, Any], top: int) -> dict[str, Any]:
    """After the timed loop: the delegation report of a .tflite row and, with ``top`` > 0, the per-op table.

    A part that cannot be measured is recorded with its reason (``{"error": ...}``), never left out.
    """
    from edgeport.errors import EdgeportError

    out: dict[str, Any] = {}
    if runtime == "tflite":
        from edgeport.runtimes.tflite_delegation import delegation_or_reason

        out["delegation"] = delegation_or_reason(path, threads)
    if top > 0:
        try:
            if runtime == "tflite":
                from edgeport.runtimes.tflite_delegation import op_profile

                out["profile"] = op_profile(path, threads, top=top)
            elif runtime == "onnxruntime":
                from edgeport.runtimes.onnxruntime import profile_ops

                out["profile"] = profile_ops(path, native, threads, top=top)
            else:
                out["profile"] = {"error": f"no per-op profiler for the {runtime} runtime (--profile covers tflite and onnxruntime)"}
        except EdgeportError as exc:
            out["profile"] = {"error": exc.one_line()}
    return out


def torchscript_outputs_job(*, path: str, io: dict[str, Any]) -> list[dict[str, Any]]:
    """Output specs of a TorchScript file, found by running it once on seeded random inputs."""
    import torch

    from edgeport.errors import RuntimeFailure
    from edgeport.runtimes.torch_eager import flatten_outputs, set_torch_threads, to_numpy
    from edgeport.spec import IOSpec
    from edgeport.data.feeds import random_feeds

    set_torch_threads(1)
    spec = IOSpec.from_json(io)
    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - the library's reason, in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RuntimeFailure(f"TorchScript cannot load {Path(path).name}: {first}", "check that it is a TorchScript file") from None
    feed = random_feeds(spec, 1).samples[0]
    with torch.inference_mode():
        out = module(*[torch.from_numpy(np.ascontiguousarray(feed[s.name])) for s in spec.inputs])
    arrays = [to_numpy(t) for t in flatten_outputs(out)]
    return [{"name": f"output_{i}", "shape": list(a.shape), "dtype": a.dtype.name, "ref_name": f"output_{i}"}
            for i, a in enumerate(arrays)]
