"""The quantization sweep: make every variant, run every variant, compare, rank, record.

    report = sweep("out/", QuantizeOptions(modes=("fp16", "int8"), calibration=CalibrationOptions(source="imgs/")))
    report.rows        # one row per variant (and per fp32 baseline): size, latency, accuracy, status
    report.to_json()

Runs in the CLI process and imports neither torch, TensorFlow nor ONNX Runtime: each conversion,
the per-layer analysis, the reference and each variant's evaluation run in their own worker process
(:mod:`edgeport.worker`), so a variant that aborts the interpreter (int16-activation kernels can) is a
row with status ``crash`` and the sweep goes on.

Steps: read the manifest; split the calibration data into calibration and held-out samples
(:mod:`edgeport.quantize.calibration`); compute reference outputs on the held-out samples with the
PyTorch model (or the fp32 ONNX model where torch is missing); convert each variant into a staging
folder; for full int8, rank the layers by quantization error (:mod:`edgeport.quantize.debug`) and, with
``keep_float``, make the selective variant; make the ai-edge-quantizer variants from the float .tflite
(:mod:`edgeport.quantize.aeq_variants`), measure each op's isolated sensitivity and, with an accuracy or
SNR floor, search for the fewest ops to keep in float; run every variant and both fp32 baselines (TFLite, ONNX) on
the held-out samples at 1 thread (latency p50 of ``Session.run_native`` on one sample); compare with
:mod:`edgeport.validate.metrics`; move the files to ``OUT/quant/`` and record them in the manifest,
which is rewritten last. :func:`recommend` names the smallest and the fastest variants meeting the floor.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from edgeport.errors import ConversionError, EdgeportError, InputError, OutputError, UsageError
from edgeport.fsutil import install_path, path_size, sha256_path, staging_dir
from edgeport.manifest import Artifact, Manifest
from edgeport.quantize import calibration as cal
from edgeport.refdata import Sample, load_reference
from edgeport.spec import IOSpec
from edgeport.data.samples import load_samples, save_samples
from edgeport.validate.metrics import error_metrics, is_classifier_like, json_number
from edgeport.worker import CRASH, TIMEOUT, WorkerResult, run_in_worker

SCHEMA = "edgeport.quantize/1"
QUANT_DIR = "quant"
# --modes names -> manifest variant names
MODE_VARIANTS: dict[str, str] = {
    "fp16": "fp16",
    "dynamic": "dynamic-int8",
    "int8": "int8",
    "int16x8": "int16x8",
    "aeq-dynamic": "aeq-dynamic-int8",
    "aeq-weight-int8": "aeq-weight-int8",
    "aeq-weight-int4": "aeq-weight-int4",
    "aeq-int8": "aeq-int8",
    "aeq-int16x8": "aeq-int16x8",
    "ort-dynamic": "ort-dynamic-int8",
    "ort-qdq": "ort-qdq-int8",
}
ALIASES: dict[str, str] = {
    "float16": "fp16", "half": "fp16", "dynamic-int8": "dynamic", "dynamic-range": "dynamic", "drq": "dynamic",
    "full-int8": "int8", "int8-full": "int8", "16x8": "int16x8", "int16": "int16x8", "a16w8": "int16x8",
    "ort-dynamic-int8": "ort-dynamic", "ort-qdq-int8": "ort-qdq", "ort-static": "ort-qdq", "qdq": "ort-qdq",
    "aeq-dynamic-int8": "aeq-dynamic", "aeq-w8": "aeq-weight-int8", "aeq-w4": "aeq-weight-int4", "aeq-static": "aeq-int8",
    "aeq-a16w8": "aeq-int16x8", "aeq-16x8": "aeq-int16x8",
}
TFLITE_MODES = ("fp16", "dynamic", "int8", "int16x8")
AEQ_MODES = ("aeq-dynamic", "aeq-weight-int8", "aeq-weight-int4", "aeq-int8", "aeq-int16x8")  # ai-edge-quantizer, any float .tflite
ORT_MODES = ("ort-dynamic", "ort-qdq")
CALIBRATED_MODES = ("int8", "int16x8", "aeq-int8", "aeq-int16x8", "ort-qdq")
DEFAULT_MODES = TFLITE_MODES + AEQ_MODES + ORT_MODES
STATE_DIR = ".edgeport"

TFLITE_JOB = "edgeport.quantize.tflite_variants:convert_job"
ORT_JOB = "edgeport.quantize.ort_variants:quantize_job"
AEQ_JOB = "edgeport.quantize.aeq_variants:convert_job"
SENSITIVITY_JOB = "edgeport.quantize.aeq_variants:sensitivity_job"
SEARCH_JOB = "edgeport.quantize.aeq_variants:search_job"
DEBUG_JOB = "edgeport.quantize.debug:debug_job"
EVAL_JOB = "edgeport.quantize.sweep:evaluate_job"
REF_JOB = "edgeport.runtimes.job:run_session_job"


def parse_modes(values: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """``fp16,int8`` / ``all`` / ``tflite`` / ``ort`` -> canonical mode names, in sweep order."""
    if values is None:
        return DEFAULT_MODES
    items = [values] if isinstance(values, str) else list(values)
    wanted: list[str] = []
    for raw in items:
        for m in str(raw).split(","):
            m = m.strip().lower()
            if not m:
                continue
            if m == "all":
                wanted.extend(DEFAULT_MODES)
            elif m == "tflite":
                wanted.extend(TFLITE_MODES)
            elif m in ("ort", "onnxruntime"):
                wanted.extend(ORT_MODES)
            elif m in ("aeq", "ai-edge-quantizer"):
                wanted.extend(AEQ_MODES)
            else:
                m = ALIASES.get(m, m)
                if m not in MODE_VARIANTS:
                    raise UsageError(f"unknown quantization mode {m!r}",
                                     f"use a comma list of: {', '.join(MODE_VARIANTS)} (or all, tflite, aeq, ort)")
                wanted.append(m)
    if not wanted:
        raise UsageError("--modes names no mode", f"use e.g. --modes {','.join(DEFAULT_MODES)}")
    return tuple(m for m in DEFAULT_MODES if m in wanted)


def parse_keep_float(text: str | None) -> int | tuple[str, ...] | None:
    """``3`` -> 3 (the worst three layers); ``features.3,node_Conv_12`` -> names; empty -> None."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    if t.isdigit():
        n = int(t)
        if n < 1:
            raise UsageError("--keep-float 0 keeps no layer in float", "give a positive count or layer names")
        return n
    names = tuple(x.strip() for x in t.split(",") if x.strip())
    if not names:
        raise UsageError(f"--keep-float {text!r} names no layer", "give a count (3) or layer names (features.3,features.7)")
    return names


def parse_accuracy_drop(text: str | float | None) -> float | None:
    """``0.5%`` -> 0.005 (percentage points); ``0.005`` -> 0.005 (a fraction below 1); empty -> None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    t = str(text).strip()
    pct = t.endswith("%")
    try:
        v = float(t.rstrip("%").strip())
    except ValueError:
        raise UsageError(f"--max-accuracy-drop {text!r} is not a number", "write --max-accuracy-drop 0.5% (or 0.005)") from None
    if pct:
        v /= 100.0
    elif v >= 1.0:
        raise UsageError(f"--max-accuracy-drop {text!r} is ambiguous (a fraction must be below 1)",
                         f"write --max-accuracy-drop {t}% for {t} percentage points, or a fraction such as 0.005")
    if not (0.0 <= v < 1.0) or math.isnan(v):
        raise UsageError(f"--max-accuracy-drop {text!r} is out of range", "give 0% to 99%, e.g. 0.5%")
    return v


@dataclass(frozen=True)
class QuantizeOptions:
    modes: tuple[str, ...] = DEFAULT_MODES
    calibration: cal.CalibrationOptions = field(default_factory=cal.CalibrationOptions)
    io_dtype: str = "float"  # full-int8 model inputs/outputs: float, int8 or uint8
    keep_float: int | tuple[str, ...] | None = None
    layers: bool = True  # per-layer error analysis when int8 is in the sweep
    rank_by: str = "snr_db"
    debug_samples: int = 32
    latency_runs: int = 200
    latency_seconds: float = 3.0
    threads: int = 1
    timeout: float = 900.0
    reference: str = "auto"  # auto (PyTorch when torch is installed, else the fp32 ONNX model), torch, onnx
    # The accuracy floor: a task-accuracy drop (fraction, 0.005 = 0.5 point) and/or an output SNR floor (dB). Given,
    # the keep-float search runs over aeq-int8 and the report recommends the variants meeting it.
    max_accuracy_drop: float | None = None
    min_snr: float | None = None
    max_float: int = 10  # the search keeps at most this many ops in float
    sensitivity_max_ops: int = 64  # without a floor, isolated per-op sensitivity is skipped (with a note) on larger graphs


@dataclass
class VariantRow:
    """One model file on one runtime: how big, how fast, how close to the reference."""

    name: str  # manifest artifact name
    variant: str  # fp32, a MODE_VARIANTS value, int8-keepfloat or aeq-int8-selective
    format: str  # tflite or onnx
    runtime: str  # tflite or onnxruntime
    path: str = ""  # relative to the output folder
    parent: str | None = None
    status: str = "ok"  # ok, error, crash, timeout, skipped
    stage: str = ""  # where it failed: convert or run
    reason: str = ""
    size_bytes: int = 0
    size_ratio: float | None = None  # to the fp32 file of the same format
    baseline: str = ""
    convert_seconds: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)  # p50, p90, mean, min (ms), runs
    backend: str = ""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # per output
    summary: dict[str, Any] = field(default_factory=dict)  # worst over outputs: cosine, snr_db, max_abs, top1, top5
    task: dict[str, Any] = field(default_factory=dict)  # accuracy against --labels
    flags: list[str] = field(default_factory=list)  # nan/inf outputs, constant outputs
    notes: list[str] = field(default_factory=list)
    io: IOSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    log_tail: str = ""
    converter: str = ""  # what made the file (tf.lite.TFLiteConverter, ai-edge-quantizer, onnxruntime.quantization)
    delegation: dict[str, Any] = field(default_factory=dict)  # .tflite: XNNPACK partitions and builtin-kernel op counts

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def latency_ms(self) -> float | None:
        return self.latency.get("p50")

    def to_json(self) -> dict[str, Any]:
        d = {
            "name": self.name, "variant": self.variant, "format": self.format, "runtime": self.runtime,
            "path": self.path, "parent": self.parent, "status": self.status, "stage": self.stage, "reason": self.reason,
            "size_bytes": self.size_bytes, "size_ratio": _round(self.size_ratio, 4), "baseline": self.baseline,
            "convert_seconds": round(self.convert_seconds, 3),
            "latency_ms": {k: _round(v, 5) for k, v in self.latency.items()},
            "backend": self.backend,
            "summary": {k: json_number(_round(v, 6)) for k, v in self.summary.items()},
            "task": {k: json_number(v) for k, v in self.task.items()},
            "metrics": {o: {k: json_number(v) for k, v in m.items()} for o, m in self.metrics.items()},
            "flags": self.flags, "notes": self.notes, "options": self.options, "ops": self.ops,
            "converter": self.converter, "delegation": self.delegation,
        }
        if self.status != "ok" and self.log_tail:
            d["log_tail"] = self.log_tail[-2000:]
        return d


def _round(v: Any, nd: int) -> Any:
    if isinstance(v, float) and math.isfinite(v):
        return round(v, nd)
    return v


@dataclass
class SweepReport:
    root: str
    source: str
    data: dict[str, Any]
    reference: dict[str, Any]
    rows: list[VariantRow] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    layer_info: dict[str, Any] = field(default_factory=dict)
    keep_float: dict[str, Any] = field(default_factory=dict)
    sensitivity: dict[str, Any] = field(default_factory=dict)  # isolated per-op sensitivity (ai-edge-quantizer)
    search: dict[str, Any] = field(default_factory=dict)  # the keep-float search: floor, every step tried, the choice
    floor: dict[str, Any] = field(default_factory=dict)  # the accuracy floor the recommendation applies
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)  # report files, relative to the output folder

    def row(self, variant: str) -> VariantRow | None:
        return next((r for r in self.rows if r.variant == variant), None)

    @property
    def exit_code(self) -> int:
        """0 when at least one quantized variant was made and measured; 3 when none was."""
        made = [r for r in self.rows if r.variant != "fp32" and r.ok]
        return 0 if made else 3

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "root": self.root,
            "source": self.source,
            "data": self.data,
            "reference": self.reference,
            "rows": [r.to_json() for r in self.rows],
            "layers": self.layers,
            "layer_analysis": self.layer_info,
            "keep_float": self.keep_float,
            "sensitivity": self.sensitivity,
            "search": self.search,
            "floor": self.floor,
            "recommendation": recommend(self),
            "warnings": self.warnings,
            "notes": self.notes,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
            "files": self.files,
            "exit_code": self.exit_code,
        }


# ----------------------------------------------------------------------------------------------- worker entry


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


def row_scores(row: "VariantRow") -> dict[str, Any]:
    return {"accuracy": row.task.get("accuracy"), "reference_accuracy": row.task.get("reference_accuracy"),
            "snr_db": row.summary.get("snr_db")}


def recommend(report: "SweepReport") -> dict[str, Any]:
    """The smallest and the fastest quantized variants that meet ``report.floor`` (ok, unflagged rows only)."""
    from edgeport.quantize.aeq_variants import meets_floor

    floor = report.floor or {}
    if not floor:
        return {}
    drop, snr = floor.get("max_accuracy_drop"), floor.get("min_snr_db")
    ok = [r for r in report.rows if r.ok and not r.flags and r.variant != "fp32" and meets_floor(row_scores(r), drop, snr)]
    out: dict[str, Any] = {"floor": floor, "meeting": [r.name for r in ok]}
    if not ok:
        out["line"] = f"No quantized variant meets the floor ({floor_text(floor)}); ship fp32 or relax the floor."
        return out

    def brief(r: VariantRow) -> dict[str, Any]:
        return {"name": r.name, "variant": r.variant, "size_bytes": r.size_bytes, "latency_ms": r.latency.get("p50"),
                "accuracy": r.task.get("accuracy"), "snr_db": r.summary.get("snr_db")}

    smallest = min(ok, key=lambda r: (r.size_bytes or math.inf, r.latency.get("p50") or math.inf))
    fastest = min(ok, key=lambda r: (r.latency.get("p50") or math.inf, r.size_bytes or math.inf))
    out.update(smallest=brief(smallest), fastest=brief(fastest))
    which = (f"smallest and fastest {_brief_text(smallest)}" if smallest is fastest
             else f"smallest {_brief_text(smallest)}; fastest {_brief_text(fastest)}")
    out["line"] = (f"Recommended ({floor_text(floor)}): {which}"
                   f" ({len(ok)} of {sum(1 for r in report.rows if r.variant != 'fp32')} quantized variants meet the floor).")
    return out


def floor_text(floor: dict[str, Any]) -> str:
    parts = []
    if floor.get("max_accuracy_drop") is not None:
        parts.append(f"accuracy within {floor['max_accuracy_drop'] * 100:.2g} point(s) of the reference")
    if floor.get("min_snr_db") is not None:
        parts.append(f"output SNR >= {floor['min_snr_db']:g} dB")
    return " and ".join(parts) + (" (default floor)" if floor.get("default") else "")


def _brief_text(r: "VariantRow") -> str:
    from edgeport.fsutil import human_size

    acc = r.task.get("accuracy")
    bits = [human_size(r.size_bytes), f"{r.latency['p50']:.3f} ms" if r.latency.get("p50") is not None else "latency -"]
    bits.append(f"accuracy {acc:.4f}" if isinstance(acc, (int, float)) else f"SNR {r.summary.get('snr_db', float('nan')):.1f} dB")
    return f"{r.name} ({', '.join(bits)})"


# ----------------------------------------------------------------------------------------------- helpers


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """The output folder's lock (shared with edgeport convert): one writer at a time."""
    state = root / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
        fh = open(state / "lock", "w")
    except OSError as exc:
        raise OutputError(f"cannot write to {root}: {exc.strerror or exc}", "check the folder's permissions") from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another edgeport command is writing to {root}", "wait for it to finish") from None
        yield
    finally:
        fh.close()


def _fail_reason(res: WorkerResult) -> tuple[str, str]:
    status = {CRASH: "crash", TIMEOUT: "timeout"}.get(res.status, "error")
    return status, res.reason()


class _Progress:
    def __init__(self, fn: Callable[[str], None] | None) -> None:
        self.fn = fn or (lambda s: None)

    def __call__(self, text: str) -> None:
        self.fn(text)


def _find_saved_model(m: Manifest) -> Artifact | None:
    cands = [a for a in m.artifacts if a.format == "saved_model" and a.variant == "fp32"]
    return next((a for a in cands if a.name == "saved_model"), cands[0] if cands else None)


def _find_onnx(m: Manifest) -> Artifact | None:
    cands = [a for a in m.artifacts if a.format == "onnx" and a.variant == "fp32"]
    return next((a for a in cands if a.name == "onnx"), cands[0] if cands else None)


def _find_float_tflite(m: Manifest) -> Artifact | None:
    """The float .tflite edgeport convert kept (any converter), for ai-edge-quantizer; not one a sweep made."""
    cands = [a for a in m.artifacts if a.format == "tflite" and a.variant == "fp32" and not a.path.startswith(f"{QUANT_DIR}/")]
    return next((a for a in cands if a.name == "tflite"), cands[0] if cands else None)


def _find_tflite_fp32(m: Manifest, sm: Artifact) -> Artifact | None:
    """The fp32 .tflite edgeport convert made from the same SavedModel (or with the converter that made it), if any.

    A baseline an earlier sweep made (under quant/) is made again: the SavedModel may have changed since.
    """
    for a in m.artifacts:
        if a.format == "tflite" and a.variant == "fp32" and not a.path.startswith(f"{QUANT_DIR}/") \
                and (a.parent == sm.name or (a.converter and a.converter == sm.converter)):
            return a
    return None


# ----------------------------------------------------------------------------------------------- the sweep


class Sweep:
    def __init__(self, out: Path, opts: QuantizeOptions, progress: Callable[[str], None] | None = None) -> None:
        self.out = Path(out).expanduser().absolute()  # workers run in folders of their own: relative paths would miss
        self.opts = opts
        self.say = _Progress(progress)
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def _timed(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - t0)

    def _worker(self, target: str, kwargs: dict[str, Any], log: str) -> WorkerResult:
        logs = self.out / STATE_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"quantize-{log}.log"
        if path.exists():
            path.unlink()
        return run_in_worker(target, kwargs, timeout=self.opts.timeout, log_path=path)

    # ------------------------------------------------------------------ plan
    def run(self) -> SweepReport:
        start = time.perf_counter()
        opts = self.opts
        m = Manifest.load(self.out)
        modes = parse_modes(list(opts.modes))
        tfl_modes = [x for x in modes if x in TFLITE_MODES]
        ort_modes = [x for x in modes if x in ORT_MODES]
        if opts.io_dtype not in ("float", "int8", "uint8"):
            raise UsageError(f"--io-dtype {opts.io_dtype!r} is not float, int8 or uint8", "use --io-dtype float, int8 or uint8")
        if opts.keep_float is not None and "int8" not in modes:
            raise UsageError("--keep-float makes a variant of the full-int8 model, but int8 is not in --modes", "add int8 to --modes")
        aeq_modes = [x for x in modes if x in AEQ_MODES]
        if (opts.max_accuracy_drop is not None or opts.min_snr is not None) and "aeq-int8" not in modes:
            raise UsageError("the keep-float search (--max-accuracy-drop / --min-snr) runs over aeq-int8, which is not in --modes",
                             "add aeq-int8 to --modes")
        sm = _find_saved_model(m) if tfl_modes or (aeq_modes and _find_float_tflite(m) is None) else None
        if aeq_modes and sm is None and _find_float_tflite(m) is None:
            raise InputError(f"no float .tflite (and no SavedModel to make one) in {self.out} "
                             f"(modes {','.join(aeq_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to tflite -o {self.out} first")
        if tfl_modes and sm is None:
            raise InputError(f"no SavedModel in {self.out} (TFLite modes {','.join(tfl_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to saved_model -o {self.out} first")
        onnx_art = _find_onnx(m)
        if ort_modes and onnx_art is None:
            raise InputError(f"no ONNX model in {self.out} (modes {','.join(ort_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to onnx -o {self.out} first")
        problems = m.verify([a.name for a in (sm, onnx_art, _find_float_tflite(m) if aeq_modes else None) if a is not None])
        if problems:
            raise InputError(f"{self.out}: {problems[0]}", "re-run edgeport convert to re-create the files")
        int_ranges = self._int_ranges(m)
        t0 = time.perf_counter()
        split = cal.prepare(m.io, opts.calibration, need_calibration=any(x in CALIBRATED_MODES for x in modes),
                            dims=m.dims, int_ranges=int_ranges)
        self._timed("data", t0)
        if split.random:
            self.warnings.append("RANDOM calibration data: int8 ranges and every accuracy number here reflect random inputs, "
                                 "not the model's real inputs; pass --calibration DATA for results you can act on")
        self.notes.extend(split.notes)
        quant = self.out / QUANT_DIR
        with _lock(self.out):
            for stale in self.out.glob(".staging-*"):  # left by an interrupted run; nobody else writes while we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            with staging_dir(self.out) as stage:
                report = self._run(m, sm, onnx_art, modes, split, stage)
                report.seconds = time.perf_counter() - start
                # Files first, then the manifest: a manifest never names a file that is not complete.
                self._install(report, stage, quant)
        return report

    def _int_ranges(self, m: Manifest) -> dict[str, tuple[int, int]]:
        try:
            inputs, _ = load_reference(m.reference_path)
        except EdgeportError:
            return {}
        from edgeport.data.feeds import int_ranges_from

        return int_ranges_from(inputs)

    def _run(self, m: Manifest, sm: Artifact | None, onnx_art: Artifact | None, modes: tuple[str, ...],
             split: cal.Split, stage: Path) -> SweepReport:
        opts = self.opts
        calib_path, hold_path = stage / "calibration.npz", stage / "holdout.npz"
        save_samples(calib_path, [i.feed for i in split.calibration])
        save_samples(hold_path, [i.feed for i in split.holdout])
        ref_outputs, ref_info = self._reference(m, onnx_art, hold_path, stage)
        report = SweepReport(root=str(self.out), source=m.source, data=split.to_json(), reference=ref_info,
                             warnings=self.warnings, notes=self.notes, timings=self.timings)
        rows: list[VariantRow] = []
        # ---- TFLite
        if sm is not None:
            base = self._tflite_baseline(m, sm, calib_path, stage)
            rows.append(base)
            for mode in (x for x in modes if x in TFLITE_MODES):
                rows.append(self._convert_tflite(sm, MODE_VARIANTS[mode], calib_path, stage))
            if "int8" in modes and (opts.layers or opts.keep_float is not None):
                self._layers(report, sm, onnx_art, calib_path, hold_path, stage)
            if opts.keep_float is not None:
                rows.append(self._keep_float(report, sm, calib_path, stage))
        report.floor = self._floor(split)
        # ---- ai-edge-quantizer, from the float .tflite
        if any(x in AEQ_MODES for x in modes):
            self._aeq(report, m, rows, modes, onnx_art, split, stage)        # ---- ONNX Runtime
        if onnx_art is not None and any(x in ORT_MODES for x in modes):
            rows.append(self._onnx_baseline(m, onnx_art))
            for mode in (x for x in modes if x in ORT_MODES):
                rows.append(self._convert_ort(onnx_art, MODE_VARIANTS[mode], calib_path, stage))
        # ---- run everything on the held-out samples
        for row in rows:
            if row.ok:
                self._evaluate(row, stage, hold_path, ref_outputs, split)
        _ratios(rows)
        report.rows = rows
        return report

    # ------------------------------------------------------------------ ai-edge-quantizer
    def _floor(self, split: cal.Split) -> dict[str, Any]:
        o = self.opts
        if o.max_accuracy_drop is not None and not split.has_labels:
            raise UsageError("--max-accuracy-drop needs labelled held-out data", "pass --dataset NAME, or --labels FILE with the data")
        if o.max_accuracy_drop is not None or o.min_snr is not None:
            return {"max_accuracy_drop": o.max_accuracy_drop, "min_snr_db": o.min_snr, "default": False}
        if split.has_labels:
            return {"max_accuracy_drop": 0.01, "min_snr_db": None, "default": True}
        return {"max_accuracy_drop": None, "min_snr_db": 20.0, "default": True}

    def _aeq(self, report: SweepReport, m: Manifest, rows: list[VariantRow], modes: tuple[str, ...],
             onnx_art: Artifact | None, split: cal.Split, stage: Path) -> None:
        src = self._aeq_source(m, rows, stage)
        calib = stage / "calibration.npz"
        for mode in (x for x in modes if x in AEQ_MODES):
            rows.append(self._convert_aeq(src, MODE_VARIANTS[mode], calib, stage))
        searching = self.opts.max_accuracy_drop is not None or self.opts.min_snr is not None
        if "aeq-int8" not in modes or src is None or not (self.opts.layers or searching):
            return
        self._sensitivity(report, src, onnx_art, split, stage)
        if searching:
            row = self._search(report, src, split, stage)
            if row is not None:
                rows.append(row)

    def _aeq_source(self, m: Manifest, rows: list[VariantRow], stage: Path) -> VariantRow | None:
        """The float .tflite AEQ starts from: the one edgeport convert kept, else the baseline made from the SavedModel."""
        art = _find_float_tflite(m)
        if art is not None:
            row = next((r for r in rows if r.variant == "fp32" and r.format == "tflite" and r.path == art.path), None)
            if row is None:
                row = VariantRow(name=art.name, variant="fp32", format="tflite", runtime="tflite", path=art.path,
                                 parent=art.parent, size_bytes=art.size_bytes or path_size(self.out / art.path), io=art.io,
                                 converter=art.converter, notes=[f"the fp32 .tflite from edgeport convert ({art.converter})"],
                                 options={"existing": True})
                rows.append(row)
            return row
        return next((r for r in rows if r.variant == "fp32" and r.format == "tflite" and r.ok), None)

    def _file(self, row: VariantRow, stage: Path) -> Path:
        return self.out / row.path if row.options.get("existing") else stage / Path(row.path).name

    def _convert_aeq(self, src: VariantRow | None, variant: str, calib: Path, stage: Path,
                     float_layers: list[str] | None = None) -> VariantRow:
        row = VariantRow(name=f"tflite-{variant}", variant=variant, format="tflite", runtime="tflite",
                         path=f"{QUANT_DIR}/model.{variant}.tflite", parent=src.name if src else None)
        if src is None or src.io is None:
            row.status, row.stage, row.reason = "skipped", "convert", "no float .tflite to start from (its conversion failed)"
            return row
        target = stage / Path(row.path).name
        self.say(f"convert {row.name} (ai-edge-quantizer)")
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"tflite": str(self._file(src, stage)), "io": src.io.to_json(), "mode": variant,
                                  "out": str(target), "calibration": str(calib)}
        if float_layers:
            kwargs["float_layers"] = float_layers
        res = self._worker(AEQ_JOB, kwargs, f"convert-{variant}")
        return self._tflite_variant_made(row, res, variant, t0, target, src.io)

    def _aeq_data(self, src: VariantRow, split: cal.Split, stage: Path) -> dict[str, Any]:
        assert src.io is not None
        return {"tflite": str(self._file(src, stage)), "io": src.io.to_json(), "calibration": str(stage / "calibration.npz"),
                "holdout": str(stage / "holdout.npz"), "reference": str(stage / "reference-outputs.npz"),
                "labels": [int(i.label) for i in split.holdout] if split.has_labels else None, "threads": self.opts.threads}

    def _sensitivity(self, report: SweepReport, src: VariantRow, onnx_art: Artifact | None, split: cal.Split, stage: Path) -> None:
        from edgeport.tflite_fb import inspect_tflite

        n_ops = sum(inspect_tflite(self._file(src, stage)).get("ops", {}).values())
        searching = self.opts.max_accuracy_drop is not None or self.opts.min_snr is not None
        if n_ops > self.opts.sensitivity_max_ops and not searching:
            report.sensitivity = {"status": "skipped", "reason": f"{n_ops} ops (more than {self.opts.sensitivity_max_ops})"}
            self.notes.append(f"isolated per-op sensitivity skipped: the float .tflite has {n_ops} ops (2 quantized models "
                              "each); pass --max-accuracy-drop or --min-snr to run it with the keep-float search")
            return
        self.say(f"per-op sensitivity: each of {n_ops} ops quantized alone, and left alone in float (ai-edge-quantizer)")
        t0 = time.perf_counter()
        kwargs = self._aeq_data(src, split, stage)
        if onnx_art is not None:
            kwargs.update(onnx=str(self.out / onnx_art.path), onnx_io=onnx_art.io.to_json())
        res = self._worker(SENSITIVITY_JOB, kwargs, "sensitivity")
        self._timed("sensitivity", t0)
        if not res.ok:
            report.sensitivity = {"status": _fail_reason(res)[0], "reason": res.reason()}
            self.notes.append(f"per-op sensitivity failed: {res.reason()}")
            return
        report.sensitivity = {"status": "ok", "source": src.name, **res.value}
        report.sensitivity["debugger_agreement"] = _agreement(report.layers, report.sensitivity["layers"])

    def _search(self, report: SweepReport, src: VariantRow, split: cal.Split, stage: Path) -> VariantRow | None:
        sens = report.sensitivity
        if sens.get("status") != "ok":
            report.search = {"status": "skipped", "reason": "no per-op sensitivity ranking to search along"}
            return None
        order = [r["tensor"] for r in sens["layers"]]
        self.say(f"keep-float search over aeq-int8 ({floor_text(report.floor)})")
        t0 = time.perf_counter()
        kwargs = {**self._aeq_data(src, split, stage), "order": order, "max_accuracy_drop": self.opts.max_accuracy_drop,
                  "min_snr": self.opts.min_snr, "max_float": self.opts.max_float,
                  "latency_runs": self.opts.latency_runs, "latency_seconds": min(1.0, self.opts.latency_seconds)}
        res = self._worker(SEARCH_JOB, kwargs, "search")
        self._timed("search", t0)
        if not res.ok:
            user = res.user_error()
            if user is not None and user.exit_code == 2:
                raise user
            report.search = {"status": _fail_reason(res)[0], "reason": res.reason()}
            self.notes.append(f"keep-float search failed: {res.reason()}")
            return None
        report.search = {"status": "ok", **res.value}
        chosen = res.value.get("chosen")
        if chosen is None:
            self.notes.append(f"keep-float search: no step up to {self.opts.max_float} op(s) in float meets {floor_text(report.floor)}")
            return None
        if chosen == 0:
            self.notes.append("keep-float search: full aeq-int8 already meets the floor; no op needs float")
            return None
        return self._convert_aeq(src, "aeq-int8-selective", stage / "calibration.npz", stage,
                                 float_layers=res.value["steps"][chosen]["float_layers"])

    # ------------------------------------------------------------------ reference
    def _reference(self, m: Manifest, onnx_art: Artifact | None, hold_path: Path, stage: Path) -> tuple[list[Sample], dict[str, Any]]:
        choice = self.opts.reference
        py = m.find("pytorch")
        use_torch = choice in ("auto", "torch") and py is not None and _torch_installed()
        if choice == "torch" and not use_torch:
            raise UsageError("--reference torch needs PyTorch and the model reference in the manifest",
                             "install torch, or use --reference onnx")
        out = stage / "reference-outputs.npz"
        t0 = time.perf_counter()
        if use_torch:
            assert py is not None
            self.say("reference: PyTorch eager on the held-out samples")
            kwargs = {"runtime": "torch_eager", "path": "", "io": py.io.to_json() if py.io.inputs else m.io.to_json(),
                      "feeds": str(hold_path), "out": str(out), "threads": 1, "options": dict(py.options)}
            info = {"runtime": "torch_eager", "artifact": "pytorch"}
        else:
            if onnx_art is None:
                raise InputError("no reference: PyTorch is not installed here and the folder has no ONNX model",
                                 "install torch, or convert --to onnx first")
            self.say("reference: fp32 ONNX model in ONNX Runtime on the held-out samples")
            kwargs = {"runtime": "onnxruntime", "path": str(self.out / onnx_art.path), "io": onnx_art.io.to_json(),
                      "feeds": str(hold_path), "out": str(out), "threads": 1}
            info = {"runtime": "onnxruntime", "artifact": onnx_art.name}
        res = self._worker(REF_JOB, kwargs, "reference")
        self._timed("reference", t0)
        if not res.ok:
            user = res.user_error()
            if user is not None and user.exit_code == 2:
                raise user
            raise ConversionError(f"the reference ({info['runtime']}) failed on the held-out samples: {res.reason()}",
                                  f"see {self.out / STATE_DIR / 'logs' / 'quantize-reference.log'}")
        info["backend"] = (res.value or {}).get("backend", "")
        return load_samples(out), info

    # ------------------------------------------------------------------ conversions
    @staticmethod
    def _tflite_row(variant: str, sm: Artifact) -> VariantRow:
        return VariantRow(name=f"tflite-{variant}", variant=variant, format="tflite", runtime="tflite",
                          path=f"{QUANT_DIR}/model.{variant}.tflite", parent=sm.name)

    def _tflite_baseline(self, m: Manifest, sm: Artifact, calib: Path, stage: Path) -> VariantRow:
        existing = _find_tflite_fp32(m, sm)
        if existing is not None and (self.out / existing.path).is_file():
            return VariantRow(name=existing.name, variant="fp32", format="tflite", runtime="tflite", path=existing.path,
                              parent=existing.parent, size_bytes=existing.size_bytes or path_size(self.out / existing.path),
                              io=existing.io, notes=["the fp32 .tflite from edgeport convert"], options={"existing": True},
                              converter=existing.converter)
        self.say("tflite fp32 baseline (from the SavedModel)")
        return self._convert_tflite(sm, "fp32", calib, stage)

    def _convert_tflite(self, sm: Artifact, variant: str, calib: Path, stage: Path,
                        keep_float: list[str] | None = None) -> VariantRow:
        row = self._tflite_row(variant, sm)
        target = stage / Path(row.path).name
        self.say(f"convert {row.name}")
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"saved_model": str(self.out / sm.path), "io": sm.io.to_json(), "mode": variant,
                                  "out": str(target), "calibration": str(calib), "io_dtype": self.opts.io_dtype}
        if keep_float is not None:
            kwargs["keep_float"] = keep_float
        res = self._worker(TFLITE_JOB, kwargs, f"convert-{variant}")
        return self._tflite_variant_made(row, res, variant, t0, target, sm.io)

    def _tflite_variant_made(self, row: VariantRow, res: Any, variant: str, t0: float, target: Path,
                             float_io: IOSpec) -> VariantRow:
        """A .tflite variant's converter worker finished: its result, ops and IO (matched to the float model's)."""
        self._timed(f"convert {variant}", t0)
        row.convert_seconds = res.seconds
        if not res.ok:
            return self._failed(row, res, "convert")
        _take_convert_result(row, res.value)
        try:
            from edgeport.convert.tflite_inspect import inspect_tflite
            from edgeport.quantize.tflite_variants import variant_io

            info = inspect_tflite(target)
            row.ops = dict(info.get("ops", {}))
            row.io, io_notes = variant_io(float_io, info)
            row.notes.extend(io_notes)
        except EdgeportError as exc:
            row.status, row.stage, row.reason = "error", "convert", exc.one_line()
        return row

    def _convert_ort(self, onnx_art: Artifact, variant: str, calib: Path, stage: Path) -> VariantRow:
        row = VariantRow(name=f"onnx-{variant}", variant=variant, format="onnx", runtime="onnxruntime",
                         path=f"{QUANT_DIR}/model.{variant}.onnx", parent=onnx_art.name)
        target = stage / Path(row.path).name
        self.say(f"convert {row.name}")
        t0 = time.perf_counter()
        res = self._worker(ORT_JOB, {"onnx": str(self.out / onnx_art.path), "io": onnx_art.io.to_json(), "mode": variant,
                                     "out": str(target), "calibration": str(calib)}, f"convert-{variant}")
        self._timed(f"convert {variant}", t0)
        row.convert_seconds = res.seconds
        if not res.ok:
            return self._failed(row, res, "convert")
        v = _take_convert_result(row, res.value)
        row.ops = dict(v.get("ops", {}))
        row.io = IOSpec.from_json(v["io"])
        return row

    def _onnx_baseline(self, m: Manifest, onnx_art: Artifact) -> VariantRow:
        return VariantRow(name=onnx_art.name, variant="fp32", format="onnx", runtime="onnxruntime", path=onnx_art.path,
                          parent=onnx_art.parent, size_bytes=onnx_art.size_bytes or path_size(self.out / onnx_art.path),
                          io=onnx_art.io, options={"existing": True}, notes=["the fp32 ONNX model from edgeport convert"],
                          converter=onnx_art.converter)

    def _failed(self, row: VariantRow, res: WorkerResult, stage: str) -> VariantRow:
        user = res.user_error()
        if user is not None and user.exit_code == 2:
            raise user  # bad input (calibration shapes, names): the user must fix it, not a variant result
        row.status, row.reason = _fail_reason(res)
        row.stage = stage
        row.log_tail = res.log_tail
        self.say(f"  {row.name}: {row.status} ({row.reason})")
        return row

    # ------------------------------------------------------------------ per-layer analysis
    def _layers(self, report: SweepReport, sm: Artifact, onnx_art: Artifact | None, calib: Path, hold: Path, stage: Path) -> None:
        self.say("per-layer int8 error (quantization debugger)")
        t0 = time.perf_counter()
        debug_set = stage / "debug-samples.npz"
        samples = load_samples(calib)[: max(1, self.opts.debug_samples)]
        save_samples(debug_set, samples)
        kwargs: dict[str, Any] = {"saved_model": str(self.out / sm.path), "io": sm.io.to_json(), "calibration": str(calib),
                                  "debug_samples": str(debug_set), "holdout": str(hold), "samples": len(samples),
                                  "rank_by": self.opts.rank_by}
        if onnx_art is not None:
            kwargs.update(onnx=str(self.out / onnx_art.path), onnx_io=onnx_art.io.to_json())
        res = self._worker(DEBUG_JOB, kwargs, "layers")
        self._timed("per-layer analysis", t0)
        if not res.ok:
            report.layer_info = {"status": _fail_reason(res)[0], "reason": res.reason()}
            self.notes.append(f"per-layer analysis failed: {res.reason()}")
            return
        v = res.value
        report.layers = list(v.get("layers", []))
        report.layer_info = {"status": "ok", "rank_by": v.get("rank_by"), "samples": v.get("samples"),
                             "data": "calibration samples (the debugger compares each quantized op with its float op "
                                     "on the same inputs)",
                             "layers": len(report.layers), "named": v.get("named", 0), "notes": v.get("notes", []),
                             "overflow": v.get("overflow", {}), "seconds": round(float(v.get("seconds", 0.0)), 3)}

    def _keep_float(self, report: SweepReport, sm: Artifact, calib: Path, stage: Path) -> VariantRow:
        from edgeport.quantize.debug import LayerError, select_keep_float

        keep = self.opts.keep_float
        row = self._tflite_row("int8-keepfloat", sm)
        layers = [LayerError.from_json(d) for d in report.layers]
        if not layers:
            row.status, row.stage = "skipped", "convert"
            row.reason = "no per-layer ranking to choose layers from (the analysis failed)"
            return row
        assert keep is not None
        tensors, unmatched = select_keep_float(layers, keep)
        if unmatched:
            raise UsageError(f"--keep-float: no layer named {unmatched[0]!r}",
                             "use a tensor, ONNX node or PyTorch module name from the per-layer table")
        by_tensor = {layer.tensor: layer for layer in layers}
        report.keep_float = {"requested": keep if isinstance(keep, int) else list(keep), "tensors": tensors,
                             "layers": [by_tensor[t].layer for t in tensors]}
        return self._convert_tflite(sm, "int8-keepfloat", calib, stage, keep_float=tensors)

    # ------------------------------------------------------------------ install
    def _install(self, report: SweepReport, stage: Path, quant: Path) -> None:
        """Move finished variant files into OUT/quant/, write the reports, then rewrite the manifest."""
        from edgeport.quantize.report import write_reports

        quant.mkdir(parents=True, exist_ok=True)
        artifacts: list[Artifact] = []
        for row in report.rows:
            if row.options.get("existing"):
                continue
            src = stage / Path(row.path).name
            if not src.is_file():
                continue
            final = self.out / row.path
            install_path(src, final)
            art = Artifact(
                name=row.name, format=row.format, path=row.path, sha256=sha256_path(final), size_bytes=path_size(final),
                converter=row.converter or ("tf.lite.TFLiteConverter" if row.format == "tflite" else "onnxruntime.quantization"),
                options={**row.options, "calibration": {k: report.data.get(k) for k in ("source", "random", "calibration_samples")}},
                tools=row.tools, parent=row.parent, variant=row.variant, io=row.io or IOSpec(), ops=row.ops,
                notes=list(row.notes), seconds=row.convert_seconds,
                checks={"quantize": {"status": row.status, "stage": row.stage, "reason": row.reason,
                                     "summary": {k: json_number(v) for k, v in row.summary.items()}, "flags": row.flags,
                                     "latency_p50_ms": row.latency.get("p50")}},
            )
            artifacts.append(art)
        report.files = write_reports(report, quant, self.out)
        fresh = Manifest.load(self.out)  # re-read: nothing else may write while we hold the lock, but be exact
        for art in artifacts:
            fresh.put(art)
        fresh.tools.update({k: v for a in artifacts for k, v in a.tools.items()})
        fresh.extra["quantize"] = {"report": report.files.get("json", ""), "modes": [r.variant for r in report.rows]}
        fresh.save()

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, row: VariantRow, stage: Path, hold: Path, ref: list[Sample], split: cal.Split) -> None:
        assert row.io is not None
        path = stage / Path(row.path).name if not row.options.get("existing") else self.out / row.path
        out = stage / f"outputs-{row.name}.npz"
        self.say(f"run {row.name}")
        t0 = time.perf_counter()
        res = self._worker(EVAL_JOB, {"runtime": row.runtime, "path": str(path), "io": row.io.to_json(), "feeds": str(hold),
                                      "out": str(out), "threads": self.opts.threads, "runs": self.opts.latency_runs,
                                      "seconds": self.opts.latency_seconds}, f"run-{row.name}")
        self._timed("run variants", t0)
        if not res.ok:
            self._failed(row, res, "run")
            return
        v = res.value
        row.backend = str(v.get("backend", ""))
        row.latency = {k: float(x) for k, x in v.get("latency", {}).items()}
        row.notes.extend(v.get("notes", []))
        row.delegation = dict(v.get("delegation") or {})
        cand = load_samples(out)
        compare(row, ref, cand, split)


def compare(row: VariantRow, ref: list[Sample], cand: list[Sample], split: cal.Split | None = None) -> None:
    """Fill ``row``'s metrics, summary, task accuracy and flags from its outputs on the held-out samples."""
    names = list(ref[0].keys())
    cand = _map_outputs_by_value(names, ref, cand, row)
    worst: dict[str, Any] = {}
    for n in names:
        if any(n not in c for c in cand):
            row.flags.append(f"output {n!r} is missing")
            continue
        r = np.stack([np.asarray(s[n]) for s in ref])
        c = np.stack([np.asarray(s[n]) for s in cand])
        if c.shape != r.shape:
            if c.size == r.size:
                c = c.reshape(r.shape)
            else:
                row.flags.append(f"output {n!r} has shape {c.shape[1:]}, the reference {r.shape[1:]}")
                continue
        classifier = is_classifier_like(n, r[0])
        m = error_metrics(r, c, classifier=classifier)
        row.metrics[n] = m
        if m.get("nonfinite"):
            row.flags.append(f"{n}: {m['nonfinite']} of {m['elements']} values are NaN/Inf")
        if r.shape[0] > 1 and np.all(np.isfinite(c)):
            spread_c = float(np.max(np.ptp(c.reshape(c.shape[0], -1), axis=0)))
            spread_r = float(np.max(np.ptp(r.reshape(r.shape[0], -1), axis=0)))
            if spread_c == 0.0 and spread_r > 0.0:
                row.flags.append(f"{n}: constant output (the same value for every held-out input)")
        for key, better in (("cosine", min), ("snr_db", min), ("max_abs", max), ("top1", min), ("top5", min)):
            if key in m:
                worst[key] = better(worst[key], m[key]) if key in worst else m[key]
        if split is not None and split.has_labels and classifier and "accuracy" not in row.task:
            labels = np.asarray([i.label for i in split.holdout])
            pred = c.reshape(c.shape[0], -1, c.shape[-1])[:, 0, :].argmax(-1)
            refpred = r.reshape(r.shape[0], -1, r.shape[-1])[:, 0, :].argmax(-1)
            row.task = {"metric": "accuracy", "output": n, "accuracy": float(np.mean(pred == labels)),
                        "reference_accuracy": float(np.mean(refpred == labels)), "samples": int(labels.size)}
    row.summary = worst
    if row.flags and row.status == "ok":
        row.notes.append("flagged: " + "; ".join(row.flags))


def _map_outputs_by_value(names: list[str], ref: list[Sample], cand: list[Sample], row: VariantRow) -> list[Sample]:
    """Guard against outputs swapped by a converter: among same-shaped outputs, pair each with the reference
    output it matches best (by cosine) when that pairing is clearly better than the names say."""
    if len(names) < 2 or not cand or any(set(c) != set(names) for c in cand):
        return cand
    groups: dict[tuple[int, ...], list[str]] = {}
    for n in names:
        groups.setdefault(tuple(np.asarray(ref[0][n]).shape), []).append(n)
    mapping = {n: n for n in names}
    for shape, group in groups.items():
        if len(group) < 2 or len(group) > 6:
            continue
        import itertools

        def cos(a: str, b: str) -> float:
            r = np.concatenate([np.ravel(s[a]) for s in ref]).astype(np.float64)
            c = np.concatenate([np.ravel(s[b]) for s in cand]).astype(np.float64)
            den = float(np.linalg.norm(r) * np.linalg.norm(c))
            return float(np.dot(r, c) / den) if den else 0.0

        score = {(a, b): cos(a, b) for a in group for b in group}
        ident = sum(score[(a, a)] for a in group)
        best = max(itertools.permutations(group), key=lambda p: sum(score[(a, b)] for a, b in zip(group, p)))
        if sum(score[(a, b)] for a, b in zip(group, best)) > ident + 0.5:
            for a, b in zip(group, best):
                mapping[a] = b
            row.notes.append(f"outputs {group} came out in another order; mapped back by value as {dict(zip(group, best))}")
    if all(k == v for k, v in mapping.items()):
        return cand
    return [{a: c[b] for a, b in mapping.items()} for c in cand]


def _ratios(rows: list[VariantRow]) -> None:
    """Size ratios to the fp32 file a variant was made from (its parent, when that is an fp32 row of the same
    format, e.g. the litert-torch .tflite ai-edge-quantizer started from), else to the first fp32 file of its format."""
    fp32 = {r.name: r for r in rows if r.variant == "fp32" and r.size_bytes}
    for fmt in ("tflite", "onnx"):
        first = next((r for r in fp32.values() if r.format == fmt), None)
        for r in rows:
            if r.format != fmt or not r.size_bytes:
                continue
            parent = fp32.get(r.parent or "")
            base = r if r.variant == "fp32" else (parent if parent is not None and parent.format == fmt else first)
            if base is not None:
                r.size_ratio = r.size_bytes / base.size_bytes
                r.baseline = base.name


def sweep(out: str | os.PathLike, options: QuantizeOptions, progress: Callable[[str], None] | None = None) -> SweepReport:
    """Run the quantization sweep on the output folder ``out`` (see the module docstring)."""
    return Sweep(Path(out), options, progress).run()


def _take_convert_result(row: "VariantRow", v: dict[str, Any]) -> dict[str, Any]:
    """Copy what every variant converter returns (size, notes, options, tool versions) onto ``row``."""
    row.size_bytes = int(v["size_bytes"])
    row.notes.extend(v.get("notes", []))
    row.options = dict(v.get("options", {}))
    row.tools = dict(v.get("tools", {}))
    row.converter = str(v.get("converter", ""))
    return v


def _agreement(debug_layers: list[dict[str, Any]], isolated: list[dict[str, Any]], top: int = 3) -> dict[str, Any]:
    """How far the debugger's ranking (TFLiteConverter int8) agrees with the isolated one, by PyTorch module / ONNX node."""
    def key(d: dict[str, Any]) -> str:
        return str(d.get("module") or (d.get("onnx_nodes") or [""])[0] or "")

    a = [key(d) for d in debug_layers if key(d)]
    b = [key(d) for d in isolated if key(d)]
    if not a or not b:
        return {"compared": False, "reason": "no debugger ranking" if not a else "isolated layers are not named"}
    ta, tb = list(dict.fromkeys(a))[:top], list(dict.fromkeys(b))[:top]
    return {"compared": True, "top": top, "debugger_top": ta, "isolated_top": tb, "shared": [x for x in tb if x in ta]}
