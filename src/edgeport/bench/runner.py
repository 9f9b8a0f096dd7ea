"""The benchmark matrix: every artifact x every runtime that loads it x every thread count.

    report = bench_target("out/", BenchOptions(threads=[1, 2], runs=200))
    report.rows                      # one BenchRow per (artifact, runtime, threads), fastest first after sort
    report.exit_code                 # 0 ok, 1 the regression gate failed, 3 a row failed to run (or none ran)

TARGET is an ``edgeport convert`` output folder (or its manifest.json), a bundle (``.tar.gz`` made by
``edgeport bundle``; extracted safely to a temporary folder), or a bare ``.onnx`` / ``.tflite`` file
(inputs read from the file) or TorchScript ``.pt`` (``--input`` needed). Rows run one after another,
never in parallel, each in a fresh worker process. This module imports numpy only.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgeport import __version__
from edgeport.bench import SCHEMA
from edgeport.status import CRASH, ERROR, FAILED_TO_RUN, OK, SKIPPED, TIMEOUT
from edgeport.errors import EXIT_CHECK_FAILED, EXIT_FAILED, EXIT_OK, InputError, ManifestError, UsageError
from edgeport.manifest import MANIFEST_NAME, Artifact
from edgeport.spec import IOSpec, TensorSpec

if TYPE_CHECKING:
    from edgeport.refdata import Sample

JOB = "edgeport.bench.latency:bench_job"
DEFAULT_WARMUP = 10
DEFAULT_RUNS = 100
DEFAULT_TIMEOUT = 600.0
MAX_THREADS = 256

# ------------------------------------------------------------------------------------------ options


@dataclass
class BenchOptions:
    artifacts: list[str] | None = None  # artifact names to bench (default: all)
    runtimes: list[str] | None = None  # runtime names to use (default: every runtime that loads the artifact)
    threads: list[int] = field(default_factory=lambda: [1])
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    seconds: float | None = None  # time-boxed loop instead of a fixed number of runs
    timeout: float = DEFAULT_TIMEOUT  # per worker
    inputs: list[str] | None = None  # --input specs for a bare model file
    seed: int = 0
    max_samples: int = 2000  # latency samples kept per row (for plots)
    profile: int = 0  # > 0: also record the per-op time table, this many op types (0: off)
    progress: Callable[[str], None] | None = None

    def check(self) -> None:
        if not self.threads:
            raise UsageError("--threads names no thread count", "use e.g. --threads 1,2,4")
        bad = [t for t in self.threads if not 1 <= int(t) <= MAX_THREADS]
        if bad:
            raise UsageError(f"--threads {bad[0]} is out of range", f"use counts between 1 and {MAX_THREADS}")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup} is negative", "use 0 or more warm-up runs")
        if self.seconds is None and self.runs < 1:
            raise UsageError(f"--runs {self.runs} must be at least 1", "use e.g. --runs 100")
        if self.seconds is not None and not 0 < self.seconds <= 24 * 3600:
            raise UsageError(f"--seconds {self.seconds} is out of range", "use a positive number of seconds, e.g. --seconds 5")
        if self.timeout <= 0:
            raise UsageError(f"--timeout {self.timeout} must be positive", "use seconds per worker, e.g. --timeout 600")
        if self.profile < 0:
            raise UsageError(f"--profile-top {self.profile} is negative", "use the number of op types to list, e.g. 15")

    def to_json(self) -> dict[str, Any]:
        return {"threads": list(self.threads), "warmup": self.warmup, "runs": None if self.seconds else self.runs,
                "seconds": self.seconds, "timeout": self.timeout, "artifacts": self.artifacts, "runtimes": self.runtimes,
                "profile": self.profile,
                "timer": "time.perf_counter_ns around Session.run_native, gc disabled"}


# ------------------------------------------------------------------------------------------ results


@dataclass
class BenchRow:
    """One artifact on one runtime at one thread count."""

    artifact: str
    format: str
    runtime: str
    threads: int
    status: str
    variant: str = "fp32"
    reason: str = ""
    backend: str = ""
    path: str = ""
    size_bytes: int | None = None
    import_ms: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    warmup: int = 0
    runs: int = 0
    timed_seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    throughput: float | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    samples_us: list[float] = field(default_factory=list)
    worker_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    log_tail: str = ""
    delegation: dict[str, Any] | None = None  # .tflite rows: edgeport.runtimes.tflite_delegation.delegation_report
    profile: dict[str, Any] | None = None  # with --profile: the per-op time table

    @property
    def key(self) -> str:
        return row_key(self.artifact, self.runtime, self.threads)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def p50(self) -> float | None:
        return self.latency_ms.get("p50")

    @property
    def peak_mb(self) -> float | None:
        return self.memory.get("peak_above_baseline_mb")

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": self.key, "artifact": self.artifact, "format": self.format, "variant": self.variant,
            "runtime": self.runtime, "threads": self.threads, "status": self.status, "reason": self.reason,
            "backend": self.backend, "path": self.path, "size_bytes": self.size_bytes,
            "import_ms": _r(self.import_ms), "init_ms": _r(self.init_ms), "first_ms": _r(self.first_ms),
            "warmup": self.warmup, "runs": self.runs, "timed_seconds": _r(self.timed_seconds),
            "latency_ms": {k: _r(v, 6) for k, v in self.latency_ms.items()},
            "throughput": _r(self.throughput, 3), "peak_rss_mb": _r(self.peak_mb, 2), "memory": self.memory,
            "worker_seconds": _r(self.worker_seconds), "notes": self.notes, "samples_us": self.samples_us,
        }
        if self.delegation is not None:
            d["delegation"] = self.delegation
        if self.profile is not None:
            d["profile"] = self.profile
        if self.status in FAILED_TO_RUN and self.log_tail:
            d["log_tail"] = self.log_tail[-2000:]
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> "BenchRow":
        try:
            return BenchRow(
                artifact=str(d["artifact"]), format=str(d.get("format", "")), runtime=str(d["runtime"]),
                threads=int(d.get("threads", 1)), status=str(d.get("status", OK)), variant=str(d.get("variant", "fp32")),
                reason=str(d.get("reason", "")), backend=str(d.get("backend", "")), path=str(d.get("path", "")),
                size_bytes=d.get("size_bytes"), import_ms=d.get("import_ms"), init_ms=d.get("init_ms"),
                first_ms=d.get("first_ms"), warmup=int(d.get("warmup", 0)), runs=int(d.get("runs", 0)),
                timed_seconds=float(d.get("timed_seconds") or 0.0),
                latency_ms={str(k): float(v) for k, v in dict(d.get("latency_ms") or {}).items() if v is not None},
                throughput=d.get("throughput"), memory=dict(d.get("memory") or {}),
                samples_us=[float(x) for x in d.get("samples_us") or []], worker_seconds=float(d.get("worker_seconds") or 0.0),
                notes=[str(n) for n in d.get("notes") or []], log_tail=str(d.get("log_tail", "")),
                delegation=d.get("delegation"), profile=d.get("profile"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed benchmark row {str(d)[:80]}: {exc}", "re-create it with edgeport bench --json") from None


def row_key(artifact: str, runtime: str, threads: int) -> str:
    return f"{artifact}/{runtime}/{int(threads)}t"


def _r(v: float | None, nd: int = 4) -> float | None:
    return round(float(v), nd) if v is not None else None


@dataclass
class BenchReport:
    """Everything ``edgeport bench`` measured. ``exit_code``: 0 ok, 1 gate failed, 3 a row failed or nothing ran."""

    target: str
    source: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    feed: dict[str, Any] = field(default_factory=dict)
    rows: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    created: str = ""
    edgeport_version: str = __version__
    gate: dict[str, Any] | None = None  # set by edgeport.bench.gate
    remote: dict[str, Any] | None = None  # set when the rows were measured on another machine

    @property
    def ran(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status != SKIPPED]

    @property
    def failed(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status in FAILED_TO_RUN]

    @property
    def exit_code(self) -> int:
        if self.failed or not self.ran:
            return EXIT_FAILED
        if self.gate is not None and not self.gate.get("passed", True):
            return EXIT_CHECK_FAILED
        return EXIT_OK

    def sorted_rows(self) -> list[BenchRow]:
        """Fastest first (by p50); then rows that failed; skipped rows last."""
        order = {OK: 0, ERROR: 1, CRASH: 1, TIMEOUT: 1, SKIPPED: 2}
        return sorted(self.rows, key=lambda r: (order.get(r.status, 1), r.p50 if r.p50 is not None else float("inf"), r.key))

    def summary(self) -> str:
        ok = [r for r in self.rows if r.ok]
        parts = [f"{len(ok)} measured"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({', '.join(f'{r.key} [{r.status}]' for r in self.failed)})")
        skipped = [r for r in self.rows if r.status == SKIPPED]
        if skipped:
            parts.append(f"{len(skipped)} skipped")
        if ok:
            best = min(ok, key=lambda r: r.p50 or float("inf"))
            parts.append(f"fastest {best.key} p50 {best.p50:.4g} ms")
        if not self.ran:
            return "nothing could be benchmarked: " + ", ".join(parts)
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "edgeport_version": self.edgeport_version,
            "created": self.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "target": self.target, "source": self.source, "exit_code": self.exit_code, "summary": self.summary(),
            "machine": self.machine, "settings": self.settings, "feed": self.feed,
            "results": [r.to_json() for r in self.sorted_rows()],
            "gate": self.gate, "remote": self.remote, "notes": self.notes, "seconds": round(self.seconds, 3),
        }

    @staticmethod
    def from_json(data: Any, where: str = "benchmark JSON") -> "BenchReport":
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise InputError(f"{where} is not an edgeport benchmark (schema {got!r}, expected {SCHEMA!r})",
                             "pass a file written by edgeport bench --json")
        rows = data.get("results")
        if not isinstance(rows, list):
            raise InputError(f"{where} has no results list", "pass a file written by edgeport bench --json")
        return BenchReport(
            target=str(data.get("target", "")), source=str(data.get("source", "")), machine=dict(data.get("machine") or {}),
            settings=dict(data.get("settings") or {}), feed=dict(data.get("feed") or {}),
            rows=[BenchRow.from_json(r) for r in rows], notes=[str(n) for n in data.get("notes") or []],
            seconds=float(data.get("seconds") or 0.0), created=str(data.get("created", "")),
            edgeport_version=str(data.get("edgeport_version", "")), gate=data.get("gate"), remote=data.get("remote"),
        )


def load_report(path: str | os.PathLike) -> BenchReport:
    import json

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist", "pass a JSON file written by edgeport bench --json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{p} is not valid JSON: {str(exc)[:100]}", "pass a file written by edgeport bench --json") from None
    return BenchReport.from_json(data, str(p))


# ------------------------------------------------------------------------------------------ machine


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (no host name: reports get shared)."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
        "cpu": _cpu_model(), "logical_cpus": os.cpu_count(),
    }
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    mem = _meminfo_total_gb()
    if mem is not None:
        info["memory_gb"] = mem
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_total_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


# ------------------------------------------------------------------------------------------ plan


@dataclass
class _Item:
    artifact: Artifact
    path: Path
    session_options: dict[str, Any]


def _child_env(threads: int) -> dict[str, str]:
    """Absolute PYTHONPATH (workers start in a temporary folder) and thread-pool sizes for native libraries."""
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    pp = os.environ.get("PYTHONPATH", "")
    parts = [os.path.abspath(p) for p in pp.split(os.pathsep) if p]
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _from_manifest(root: Path, opts: BenchOptions, notes: list[str]) -> tuple[str, list[_Item], IOSpec, dict[str, int], Any]:
    from edgeport.manifest import Manifest
    from edgeport.refdata import load_reference

    m = Manifest.load(root)
    for problem in m.verify():
        notes.append(f"manifest check: {problem}")
    stored = None
    if m.reference.get("path"):
        try:
            stored, _ = load_reference(m.reference_path)
        except InputError as exc:
            notes.append(f"reference.npz unusable ({exc.message}); benchmarking on seeded random inputs")
    items = []
    for a in m.artifacts:
        opts_ = {"model": a.options.get("model")} if a.format == "pytorch" else {}
        items.append(_Item(a, m.abspath(a) if a.format != "pytorch" else m.root, opts_))
    return m.source or str(m.root), items, m.io, dict(m.dims), stored


def _from_file(path: Path, opts: BenchOptions, tmp: Path) -> tuple[str, list[_Item], IOSpec]:
    from edgeport.formats import FORMATS, format_of
    from edgeport.fsutil import path_size
    from edgeport.runtimes import runtime_missing, runtimes_for
    from edgeport.runtimes.job import probe_file
    from edgeport.spec import parse_input_specs

    fmt = format_of(path) if path.is_file() else None
    if fmt is None or not runtimes_for(fmt):
        raise UsageError(f"cannot tell the format of {path.name}",
                         "pass an edgeport convert output folder, a bundle (.tar.gz), or a .onnx, .tflite or .pt file")
    given = parse_input_specs(opts.inputs or [])
    if FORMATS[fmt].probe is None:  # TorchScript declares no inputs: --input names them, one run finds the outputs
        if not given:
            raise UsageError(f"{path.name} does not record its input shapes", "pass --input NAME:SHAPE[:DTYPE] for each input")
        io_json: dict[str, Any] = {"inputs": [s.with_(ref_name=s.name).to_json() for s in given]}
        io_json["outputs"] = _torchscript_outputs(path, io_json, tmp)
    else:
        why = runtime_missing(runtimes_for(fmt)[0])
        if why:
            raise UsageError(f"cannot read {path.name} here: {why}", "install the runtime, or bench on a machine that has it")
        probed = probe_file(fmt, path, opts.timeout, env=_child_env(1))
        io_json = probed.to_json() if probed else {"inputs": [], "outputs": []}
        for t in io_json["inputs"] + io_json["outputs"]:
            t["ref_name"] = t["name"]
        io_json["inputs"] = _apply_given(io_json["inputs"], given, path.name)
    io = IOSpec.from_json(io_json)
    art = Artifact(name=path.stem or fmt, format=fmt, path=path.name, size_bytes=path_size(path), io=io)
    return str(path), [_Item(art, path, {})], io


def _apply_given(inputs: list[dict[str, Any]], given: list[TensorSpec], where: str) -> list[dict[str, Any]]:
    """``--input`` specs override the file's own shapes/dtypes (by name, or by position for unnamed specs)."""
    out = [dict(i) for i in inputs]
    names = [i["name"] for i in out]
    for k, spec in enumerate(given):
        if spec.name in names:
            idx = names.index(spec.name)
        elif spec.name == f"input_{k}" and k < len(out):
            idx = k
        else:
            raise UsageError(f"--input names {spec.name!r}, which {where} does not have", f"its inputs are {names}")
        out[idx]["shape"] = list(spec.shape)
        out[idx]["dtype"] = spec.dtype
    return out


def _torchscript_outputs(path: Path, io_json: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    """Output specs of a TorchScript file: run it once (in a worker) on zero inputs and count its outputs."""
    from edgeport.worker import run_in_worker

    res = run_in_worker("edgeport.bench.latency:torchscript_outputs_job", {"path": str(path), "io": io_json},
                        timeout=DEFAULT_TIMEOUT, env=_child_env(1))
    if not res.ok:
        err = res.user_error()
        if err is not None:
            raise err
        raise InputError(f"cannot run {path.name} on the given --input shapes: {res.reason()}", "check --input against the model")
    return list(res.value)


def bench_target(target: str | os.PathLike, opts: BenchOptions | None = None) -> BenchReport:
    """Benchmark TARGET (see the module doc). Errors the user can fix raise EdgeportError; failed rows are results."""
    from edgeport.bundle import resolve_target
    from edgeport.data.samples import save_samples

    opts = opts or BenchOptions()
    opts.check()
    _check_runtime_names(opts.runtimes)
    start = time.perf_counter()
    notes: list[str] = []
    given = Path(target)
    if not given.exists():
        raise InputError(f"{given} does not exist", "pass an edgeport convert output folder, a bundle or a model file")
    path = resolve_target(given)
    with tempfile.TemporaryDirectory(prefix="edgeport-bench-") as tmpd:
        tmp = Path(tmpd)
        source, items, io, dims, stored = _load_target(path, opts, tmp, notes)
        items = _select_artifacts(items, opts.artifacts, source)
        sample, feed_info = _bench_sample(io, stored, opts.seed, dims)
        feeds_path = tmp / "feed.npz"
        save_samples(feeds_path, [sample])
        rows = [row for it in items for row in _artifact_rows(it, opts, feeds_path, notes)]
    return BenchReport(
        target=str(given), source=source, machine=machine_info(), settings=opts.to_json(), feed=feed_info, rows=rows,
        notes=notes, seconds=time.perf_counter() - start,
    )


def _check_runtime_names(runtimes: list[str] | None) -> None:
    from edgeport.runtimes import RUNTIMES

    unknown = [r for r in runtimes or [] if r not in RUNTIMES]
    if unknown:
        raise UsageError(f"unknown runtime {', '.join(unknown)}", f"use any of: {', '.join(RUNTIMES)}")


def _load_target(path: Path, opts: BenchOptions, tmp: Path,
                 notes: list[str]) -> tuple[str, list[_Item], IOSpec, dict[str, int], list[Sample] | None]:
    """(source, items, io, dims, stored reference inputs) of an output folder / its manifest, or of a model file."""
    if path.is_dir() or path.name == MANIFEST_NAME:
        root = path if path.is_dir() else path.parent
        if not (root / MANIFEST_NAME).is_file() and path.is_dir():
            raise ManifestError(f"no manifest.json in {root}", f"run edgeport convert MODEL -o {root} first, or pass a model file")
        return _from_manifest(root, opts, notes)
    source, items, io = _from_file(path, opts, tmp)
    return source, items, io, {}, None


def _select_artifacts(items: list[_Item], wanted: list[str] | None, source: str) -> list[_Item]:
    if not wanted:
        return items
    names = [it.artifact.name for it in items]
    unknown = [a for a in wanted if a not in names]
    if unknown:
        raise UsageError(f"no artifact named {', '.join(unknown)} in {source}", f"choose from: {', '.join(names)}")
    return [it for it in items if it.artifact.name in wanted]


def _bench_sample(io: IOSpec, stored: list[Sample] | None, seed: int,
                  dims: dict[str, int]) -> tuple[Sample, dict[str, Any]]:
    """The one input sample every row runs on (reference.npz sample 0 when it has every input) and its description."""
    from edgeport.data.feeds import random_feeds

    names_in = [s.ref_name or s.name for s in io.inputs]
    if stored and all(n in stored[0] for n in names_in):
        sample, feed_source = {n: stored[0][n] for n in names_in}, "reference.npz sample 0"
    else:
        sample, feed_source = random_feeds(io, 1, seed, dims).samples[0], f"random (seed {seed})"
    return sample, {"source": feed_source,
                    "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sample.items()}}


def _artifact_rows(it: _Item, opts: BenchOptions, feeds_path: Path, notes: list[str]) -> list[BenchRow]:
    """One row per runtime x thread count for one artifact, each run in its own worker (or skipped with the reason)."""
    from edgeport.runtimes import runtime_missing, runtimes_for

    art = it.artifact
    if not runtimes_for(art.format):
        notes.append(f"{art.name}: no runtime runs {art.format} artifacts")
    rts = [r for r in runtimes_for(art.format) if not opts.runtimes or r in opts.runtimes]
    size = _artifact_size(it)
    rows: list[BenchRow] = []
    for rt in rts:
        missing = runtime_missing(rt)
        for th in opts.threads:
            row = BenchRow(art.name, art.format, rt, int(th), SKIPPED, variant=art.variant, path=art.path, size_bytes=size)
            rows.append(row)
            if missing:
                row.reason = missing
            elif art.format != "pytorch" and not it.path.exists():
                row.status, row.reason = ERROR, f"{art.path} is missing"
            else:
                _run_row(row, it, opts, feeds_path)
    return rows


def _artifact_size(it: _Item) -> int | None:
    size = it.artifact.size_bytes if it.artifact.size_bytes else None
    if size is None and it.artifact.format != "pytorch" and it.path.exists():
        from edgeport.fsutil import path_size

        size = path_size(it.path)
    return size


def _run_row(row: BenchRow, it: _Item, opts: BenchOptions, feeds_path: Path) -> None:
    """Measure one row in a fresh worker; a worker that fails, crashes or times out fills the row with why."""
    from edgeport.runtimes import RUNTIMES
    from edgeport.worker import run_in_worker

    th = row.threads
    if opts.progress:
        opts.progress(f"benchmarking {row.artifact} on {row.runtime} ({th} thread{'s' if th != 1 else ''})")
    res = run_in_worker(JOB, {
        "runtime": row.runtime, "path": str(it.path), "io": it.artifact.io.to_json(), "feeds": str(feeds_path),
        "threads": th, "options": it.session_options, "cls": RUNTIMES[row.runtime].cls,
        "warmup": opts.warmup, "runs": opts.runs, "seconds": opts.seconds, "max_samples": opts.max_samples,
        "profile": opts.profile,
    }, timeout=opts.timeout, env=_child_env(th))
    row.worker_seconds = res.seconds
    if res.ok:
        _fill(row, res.value)
        return
    row.status = res.status if res.status in FAILED_TO_RUN else ERROR
    err = res.user_error()
    row.reason = err.one_line() if err is not None else res.reason()
    row.log_tail = res.log_tail
    if res.peak_rss_mb is not None:
        row.memory = {"worker_max_rss_mb": round(res.peak_rss_mb, 2)}


def _fill(row: BenchRow, v: dict[str, Any]) -> None:
    row.status = OK
    row.backend = str(v.get("backend", ""))
    row.notes = [str(n) for n in v.get("notes") or []]
    row.import_ms, row.init_ms, row.first_ms = v.get("import_ms"), v.get("init_ms"), v.get("first_ms")
    row.warmup, row.runs = int(v.get("warmup", 0)), int(v.get("runs", 0))
    row.timed_seconds = float(v.get("timed_seconds", 0.0))
    row.latency_ms = {k: float(x) for k, x in dict(v.get("latency_ms") or {}).items()}
    row.throughput = v.get("throughput")
    row.memory = dict(v.get("memory") or {})
    row.samples_us = [float(x) for x in v.get("samples_us") or []]
    row.delegation = v.get("delegation")
    row.profile = v.get("profile")

