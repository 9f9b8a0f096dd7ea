#!/usr/bin/env python
"""Conversion speed, side by side in one run: edgeport convert against each converter alone on the same model.

    export EDGEPORT_HOME=...   # where the managed onnx2tf 2.x environment lives (edgeport backends)
    .venv/bin/python benchmarks/convert_speed.py [--models tiny_cnn,resnet18] [--skip-1x] [--timeout 900]

Models: every sample (``edgeport samples``, as ``sample:NAME``) and every architecture in
benchmarks/architectures.py (as ``benchmarks/architectures.py:NAME``). Per model, in this order:

1. ``edgeport convert MODEL --to torchscript,onnx,saved_model,tflite -o OUT --no-cache`` into a fresh OUT:
   wall time, peak RSS, the formats it wrote, the converter auto kept for the .tflite and the SavedModel
   (OUT/manifest.json) and the 1-thread p50 latency auto measured for each passing .tflite candidate;
2. onnx2tf 2.x alone on a copy of that run's OUT/model.onnx: the managed interpreter runs edgeport's job
   script (``_onnx2tf2_job.py``: ``onnx2tf.convert`` with ``flatbuffer_direct`` and
   ``flatbuffer_direct_output_saved_model``) in a temporary folder holding the seeded calibration file;
3. onnx2tf 1.29 alone (unless ``--skip-1x``): the main environment's ``onnx2tf.convert`` on a copy, with
   the calibration file in its working folder (so it downloads nothing) and onnxsim on PATH;
4. litert-torch alone: the main environment builds the model and runs
   ``litert_torch.convert(model, example_inputs).export(path)``.

Every call is a fresh subprocess under a small wrapper process; the wrapper reports the wall time and
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once the call has ended, which is the peak resident set of the
largest single process of that call's tree (edgeport runs its steps in worker processes, up to three at
once: this is the largest of them, not their sum). A call that exceeds ``--timeout`` is killed with its
whole process tree and reported as a timeout cell. The "alone" runs are timed as a user would run them
(interpreter start and imports included); the converter's own time inside the process is in the JSON.

Writes benchmarks/convert_speed.md (table, targets, machine, date, load average at start and end) and
benchmarks/convert_speed.json; prints the table. Asserts nothing: a failure is a cell.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ARCH_FILE = REPO / "benchmarks" / "architectures.py"
FORMATS = ("torchscript", "onnx", "saved_model", "tflite")
FORMAT_FILES = {"torchscript": "model.pt", "onnx": "model.onnx", "saved_model": "saved_model", "tflite": "model.tflite"}
TARGETS = {"median_wall_s": 15.0, "vs_onnx2tf2": 2.0, "resnet18_wall_s": 25.0, "peak_rss_mb": 1536.0}
RESNET = "resnet18"

# The wrapper: runs one command in a new session, waits (or kills its whole tree at the timeout), then
# reports its wall time and the largest child's peak RSS. A fresh wrapper per call keeps RSS per call.
_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
with open(sys.argv[1]) as fh:
    spec = json.load(fh)
start = time.perf_counter()
with open(spec["log"], "w") as log:
    proc = subprocess.Popen(spec["cmd"], cwd=spec["cwd"], env=spec["env"], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        rc = proc.wait(timeout=spec["timeout"])
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            import psutil
            tree = psutil.Process(proc.pid).children(recursive=True)
        except Exception:
            tree = []
        os.killpg(proc.pid, signal.SIGKILL)
        for p in tree:  # edgeport's workers run in sessions of their own
            try:
                p.kill()
            except Exception:
                pass
        rc = proc.wait()
wall = time.perf_counter() - start
print(json.dumps({"rc": rc, "wall_s": wall, "timed_out": timed_out,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}))
"""

# onnx2tf 1.29 alone, in the main environment: argv = onnx path, output folder, JSON list of 3-D input names.
_ONNX2TF_1 = r"""
import json, sys, time
import onnx2tf
src, out, keep = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
kw = {"input_onnx_file_path": src, "output_folder_path": out, "non_verbose": True}
if keep:
    kw["keep_shape_absolutely_input_names"] = keep  # as edgeport does: (B, T, F) sequences keep their layout
start = time.perf_counter()
onnx2tf.convert(**kw)
print("RESULT " + json.dumps({"convert_s": time.perf_counter() - start}))
"""

# litert-torch alone, in the main environment: argv = model reference kind (sample|file), name, .tflite path.
_LITERT = r"""
import importlib.util, json, sys, time
kind, name, dest = sys.argv[1:4]
if kind == "sample":
    import sample_models
    built = sample_models.build(name)
else:
    spec = importlib.util.spec_from_file_location("architectures", sys.argv[4])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built = getattr(mod, name)()
model, inputs = built if isinstance(built, tuple) else (built, None)
import litert_torch
start = time.perf_counter()
litert_torch.convert(model.eval(), tuple(inputs)).export(dest)
print("RESULT " + json.dumps({"convert_s": time.perf_counter() - start}))
"""


@dataclass
class Call:
    """One measured subprocess: a cell of the table."""

    status: str  # ok, failed, timeout, skipped
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    convert_s: float | None = None  # the converter's own time inside the process, when it reports it
    detail: str = ""  # why it failed / was skipped, or what it wrote

    def cell(self) -> str:
        if self.status == "ok":
            inner = f" (convert {self.convert_s:.1f})" if self.convert_s is not None else ""
            return f"{self.wall_s:.1f} s{inner}, {self.peak_rss_mb:.0f} MB"
        if self.status == "timeout":
            return f"timeout ({self.wall_s:.0f} s)"
        return f"{self.status}: {self.detail[:60]}" if self.detail else self.status


@dataclass
class Row:
    model: str
    ref: str
    edgeport: Call
    formats: list[str] = field(default_factory=list)
    auto_tflite: str = ""
    auto_saved_model: str = ""
    onnx2tf2_passed: bool = False  # onnx2tf 2.x's .tflite passed edgeport's gate in the edgeport run
    latency_ms: dict[str, float] = field(default_factory=dict)  # tflite candidate -> 1-thread p50 (auto's measurement)
    candidates: dict[str, str] = field(default_factory=dict)  # tflite candidate -> status: reason
    onnx2tf2: Call = field(default_factory=lambda: Call("skipped"))
    onnx2tf1: Call = field(default_factory=lambda: Call("skipped"))
    litert: Call = field(default_factory=lambda: Call("skipped"))


# ------------------------------------------------------------------------------------------------ models
def architecture_names() -> list[str]:
    """``ARCHITECTURES`` of benchmarks/architectures.py, read without importing torch."""
    tree = ast.parse(ARCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ARCHITECTURES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{ARCH_FILE} defines no ARCHITECTURES tuple")


def all_models() -> dict[str, str]:
    """Model name -> the reference edgeport convert takes."""
    sys.path.insert(0, str(REPO))
    import sample_models  # stdlib only: lists the samples without torch

    models = {name: f"sample:{name}" for name in sample_models.SAMPLES}
    for name in architecture_names():
        if name in models:
            raise SystemExit(f"architecture {name!r} has the name of a sample model; rename it in {ARCH_FILE.name}")
        models[name] = f"{ARCH_FILE}:{name}"
    return models


def pick(models: dict[str, str], wanted: str | None) -> dict[str, str]:
    if not wanted:
        return models
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in models]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; choose among: {', '.join(models)}", file=sys.stderr)
        raise SystemExit(2)
    return {n: models[n] for n in names}


# ------------------------------------------------------------------------------------------------ running
def measure(cmd: list[str], cwd: Path, log: Path, timeout: float, env: dict[str, str] | None = None) -> Call:
    """Run ``cmd`` under the wrapper; a Call with wall time, peak RSS and the status (detail: the log's tail)."""
    spec = log.with_name(log.name + ".call.json")  # the command and its environment, for the wrapper
    spec.write_text(json.dumps({"cmd": cmd, "cwd": str(cwd), "log": str(log), "timeout": timeout,
                                "env": env or dict(os.environ)}))
    try:
        proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(spec)], capture_output=True, text=True,
                              timeout=timeout + 120)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return Call("failed", detail=f"the measuring wrapper failed: {type(exc).__name__}")
    text = log.read_text(errors="replace") if log.exists() else ""
    convert_s = next((json.loads(ln[7:]).get("convert_s") for ln in reversed(text.splitlines()) if ln.startswith("RESULT ")), None)
    status = "timeout" if res["timed_out"] else ("ok" if res["rc"] == 0 else "failed")
    detail = "" if status == "ok" else _last_error(text) or f"exit code {res['rc']}"
    return Call(status, round(res["wall_s"], 2), round(res["peak_rss_mb"], 1), convert_s, detail)


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "failed:")) or "Error:" in ln or "ERROR:" in ln]
    return " ".join((errors or lines[-1:] or [""])[-1].split())[:300]


def run_edgeport(name: str, ref: str, work: Path, timeout: float) -> tuple[Row, Path]:
    out = work / name / "edgeport"
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "edgeport", "convert", ref, "--to", ",".join(FORMATS), "-o", str(out), "--no-cache",
           "--timeout", str(timeout)]
    call = measure(cmd, REPO, work / name / "edgeport.log", timeout, env={**os.environ, "COLUMNS": "200"})
    if call.status == "failed" and (out / "manifest.json").is_file():
        call.status = "ok"  # finished, but a format failed or missed parity: the formats column says which
    row = Row(model=name, ref=ref, edgeport=call)
    if (out / "manifest.json").is_file():
        read_manifest(row, json.loads((out / "manifest.json").read_text()))
    return row, out


def read_manifest(row: Row, doc: dict[str, Any]) -> None:
    """Formats written, the converters auto kept, and auto's latency measurement of the .tflite candidates."""
    arts = doc.get("artifacts", [])
    row.formats = [f for f in FORMATS if any(a.get("format") == f for a in arts)]
    row.auto_tflite = next((a.get("converter", "") for a in arts if a.get("format") == "tflite"), "")
    row.auto_saved_model = next((a.get("converter", "") for a in arts if a.get("format") == "saved_model"), "")
    for att in doc.get("attempts", []):
        if att.get("target") != "tflite":
            continue
        conv = att.get("converter", "")
        if isinstance(att.get("latency_ms"), (int, float)):
            row.latency_ms[conv] = float(att["latency_ms"])
        row.candidates[conv] = f"{att.get('status')}: {' '.join(str(att.get('reason', '')).split())[:160]}"
        passed = att.get("status") == "kept" or str(att.get("reason", "")).startswith("passed")
        if conv == "onnx2tf" and passed:
            row.onnx2tf2_passed = True
    row.onnx2tf2_passed = row.onnx2tf2_passed or row.auto_tflite == "onnx2tf"  # the only passing candidate


def _onnx_inputs(onnx_path: Path) -> dict[str, int]:
    """Input name -> rank of an ONNX model (its graph only; weights are not loaded)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    return {i.name: len(i.type.tensor_type.shape.dim) for i in model.graph.input if i.name not in init}


def _private_copy(onnx_path: Path, folder: Path) -> Path:
    """A copy of the ONNX file (and any external data beside it) plus onnx2tf's calibration file, in ``folder``."""
    from edgeport.convert.onnx2tf_backend import _write_calibration_file

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for item in onnx_path.parent.iterdir():
        if item.name == onnx_path.name or item.name.startswith(onnx_path.name + ".data"):
            shutil.copy2(item, folder / item.name)
    _write_calibration_file(folder)
    return folder / onnx_path.name


def run_onnx2tf2(onnx_path: Path, folder: Path, timeout: float) -> Call:
    """onnx2tf 2.x alone, through edgeport's job script in the managed interpreter (.tflite + SavedModel)."""
    from edgeport.backends import python_for, venv_bin
    from edgeport.convert.onnx2tf2_backend import SCRIPT
    from edgeport.errors import EdgeportError

    try:
        python = python_for("onnx2tf")
    except EdgeportError as exc:
        return Call("skipped", detail=exc.message)
    src = _private_copy(onnx_path, folder)
    keep = [n for n, rank in _onnx_inputs(src).items() if rank == 3] or None
    job = folder / "job.json"
    job.write_text(json.dumps({"target": "convert", "kwargs": {"onnx_path": str(src), "work_dir": str(folder),
                                                               "saved_model": True, "keep_shape_names": keep}}))
    env = {**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1",
           "PATH": os.pathsep.join([str(venv_bin(python)), os.environ.get("PATH", "")])}  # onnx2tf runs `onnxsim`
    call = measure([python, str(SCRIPT), str(job), str(folder / "result.json")], folder, folder / "run.log", timeout, env)
    if (folder / "result.json").is_file():
        res = json.loads((folder / "result.json").read_text())
        value = res.get("value") or {}
        call.convert_s = (value.get("timings") or {}).get("convert")
        if not res.get("ok"):
            call.status, call.detail = "failed", (res.get("error") or {}).get("message", call.detail)
        elif value.get("saved_model_error"):
            call.detail = f"tflite only: {value['saved_model_error']}"
        else:
            call.detail = "tflite + saved_model"
    return call


def run_onnx2tf1(onnx_path: Path, folder: Path, timeout: float) -> Call:
    """onnx2tf 1.29 alone in the main environment (TF graph -> SavedModel -> TFLiteConverter)."""
    src = _private_copy(onnx_path, folder)
    keep = [n for n, rank in _onnx_inputs(src).items() if rank == 3]
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    call = measure([sys.executable, "-c", _ONNX2TF_1, str(src), str(folder / "out"), json.dumps(keep)], folder,
                   folder / "run.log", timeout, env)
    wrote = [f for f, p in (("tflite", "model_float32.tflite"), ("saved_model", "saved_model.pb")) if (folder / "out" / p).is_file()]
    if call.status == "ok" and not wrote:
        call.status, call.detail = "failed", "wrote no model"
    elif call.status == "ok":
        call.detail = " + ".join(wrote)
    return call


def run_litert(name: str, ref: str, folder: Path, timeout: float) -> Call:
    """litert-torch alone: build the model, convert it at its example inputs, export the .tflite."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    kind = "sample" if ref.startswith("sample:") else "file"
    dest = folder / "model.tflite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    call = measure([sys.executable, "-c", _LITERT, kind, name, str(dest), str(ARCH_FILE)], folder, folder / "run.log",
                   timeout, env)
    if call.status == "ok" and not dest.is_file():
        call.status, call.detail = "failed", "wrote no .tflite"
    return call


# ------------------------------------------------------------------------------------------------ report
def _latency_cell(row: Row) -> str:
    if not row.latency_ms:
        return f"not compared (only {row.auto_tflite} passed)" if row.auto_tflite else "-"
    kept = row.auto_tflite
    others = ", ".join(f"{c} {v:.3f} ms" for c, v in sorted(row.latency_ms.items(), key=lambda kv: kv[1]) if c != kept)
    head = f"{kept} {row.latency_ms[kept]:.3f} ms" if kept in row.latency_ms else f"{kept} (not timed)"
    return head + (f" (vs {others})" if others else "")


def _gate(row: Row, conv: str) -> str:
    """What edgeport's gate said about ``conv``'s .tflite in the edgeport run (passed / failed / not run)."""
    verdict = row.candidates.get(conv, "")
    if (conv == "onnx2tf" and row.onnx2tf2_passed) or verdict.startswith("kept") or verdict.startswith("rejected: passed"):
        return "passed"
    return "failed" if verdict else "not run"


def _formats_cell(row: Row) -> str:
    if row.edgeport.status != "ok":
        return "none"
    missing = [f for f in FORMATS if f not in row.formats]
    return "all 4" if not missing else f"no {', '.join(missing)}"


def _ratio(row: Row) -> float | None:
    a, b = row.edgeport, row.onnx2tf2
    if a.status == "ok" and b.status == "ok" and b.wall_s:
        return a.wall_s / b.wall_s
    return None


HEADER = ("model", "edgeport, 4 formats", "formats", "auto kept tflite / saved_model", "kept .tflite p50 (others), 1 thread",
          "onnx2tf 2.x alone; its .tflite in edgeport's gate", "onnx2tf 1.29 alone",
          "litert-torch alone; its .tflite in edgeport's gate", "edgeport / onnx2tf 2.x")


def table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        ratio = _ratio(r)
        cells = (r.model, r.edgeport.cell(), _formats_cell(r),
                 f"{r.auto_tflite or '-'} / {r.auto_saved_model or '-'}", _latency_cell(r),
                 f"{r.onnx2tf2.cell()}; gate {_gate(r, 'onnx2tf')}", r.onnx2tf1.cell(),
                 f"{r.litert.cell()}; gate {_gate(r, 'litert-torch')}", f"{ratio:.2f}x" if ratio is not None else "-")
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def targets(rows: list[Row]) -> dict[str, Any]:
    """Each target: the measured value, the limit, their ratio and whether it is met (None: not measured)."""
    def entry(value: float | None, limit: float, what: str) -> dict[str, Any]:
        ratio = value / limit if value is not None else None
        return {"what": what, "value": value, "limit": limit, "ratio": ratio, "met": None if ratio is None else ratio <= 1.0}

    walls = [r.edgeport.wall_s for r in rows if r.edgeport.status == "ok"]
    ratios = [x for x in (_ratio(r) for r in rows) if x is not None]
    resnet = next((r.edgeport.wall_s for r in rows if r.model == RESNET and r.edgeport.status == "ok"), None)
    rss = [(r.edgeport.peak_rss_mb, r.model) for r in rows if r.onnx2tf2_passed and r.edgeport.peak_rss_mb is not None]
    worst = max(rss) if rss else (None, "")
    return {
        "median_wall_s": entry(statistics.median(walls) if walls else None, TARGETS["median_wall_s"],
                               f"median edgeport wall, all four formats, over {len(walls)} models (s)"),
        "vs_onnx2tf2": entry(statistics.median(ratios) if ratios else None, TARGETS["vs_onnx2tf2"],
                             f"median of edgeport wall / onnx2tf 2.x alone wall, over {len(ratios)} models"),
        "resnet18_wall_s": entry(resnet, TARGETS["resnet18_wall_s"], f"{RESNET} edgeport wall (s)"),
        "peak_rss_mb": entry(worst[0], TARGETS["peak_rss_mb"],
                             f"largest edgeport peak RSS where onnx2tf 2.x passes ({worst[1] or 'none'}), MB"),
    }


def target_lines(tg: dict[str, Any]) -> list[str]:
    out = []
    for t in tg.values():
        if t["value"] is None:
            out.append(f"- {t['what']}: not measured in this run (limit {t['limit']:g})")
        else:
            verdict = "met" if t["met"] else "NOT met"
            out.append(f"- {t['what']}: {t['value']:.2f} against <= {t['limit']:g}: ratio {t['ratio']:.2f} ({verdict})")
    return out


def _gib(meminfo: str) -> str:
    """'24683652 kB' -> '23.5 GiB'."""
    parts = meminfo.split()
    return f"{int(parts[0]) / 1024**2:.1f} GiB" if parts and parts[0].isdigit() else meminfo


def machine() -> dict[str, Any]:
    from importlib import metadata

    def read(path: str, key: str) -> str:
        try:
            return next((ln.split(":", 1)[1].strip() for ln in Path(path).read_text().splitlines() if ln.startswith(key)), "?")
        except OSError:
            return "?"

    versions = {}
    for dist in ("edgeport", "torch", "onnx", "onnx2tf", "litert-torch", "ai-edge-litert", "tensorflow-cpu"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    try:
        from edgeport.backends import isolated_status

        st = isolated_status("onnx2tf")
        managed = {"python": st.get("python"), **(st.get("versions") or {})} if st.get("installed") else {"detail": st.get("detail")}
    except Exception as exc:  # noqa: BLE001 - a broken backend folder is reported, not fatal
        managed = {"detail": str(exc)}
    return {"platform": platform.platform(), "cpu": read("/proc/cpuinfo", "model name"), "cores": os.cpu_count(),
            "memory": _gib(read("/proc/meminfo", "MemTotal")), "python": platform.python_version(),
            "main_environment": versions, "onnx2tf_2_environment": managed}


def write_reports(rows: list[Row], meta: dict[str, Any], md_path: Path, json_path: Path) -> list[str]:
    tg = targets(rows)
    doc = {**meta, "targets": tg, "models": [asdict(r) for r in rows]}
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    m = meta["machine"]
    lines = ["# Conversion speed: edgeport convert against each converter alone", "",
             f"Measured {meta['date']} with `{meta['command']}`.", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} memory; {m['platform']}; Python {m['python']}.",
             f"Load average (1, 5, 15 min) at start {_load(meta['load_start'])}, at end {_load(meta.get('load_end'))}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["main_environment"].items())
             + "; onnx2tf 2.x environment: " + ", ".join(f"{k} {v}" for k, v in m["onnx2tf_2_environment"].items()) + ".",
             "", *table(rows), "", "Targets:", "", *target_lines(tg), "", *_not_kept(rows),
             "Cells are wall time and the peak RSS of the largest process of that call. edgeport converts into a fresh",
             "folder with --no-cache; the other columns convert that run's model.onnx (litert-torch: the PyTorch model)",
             "in a fresh process each, imports included. The kept .tflite's p50 is auto's own 1-thread measurement",
             "(manifest.json attempts[].latency_ms). \"gate\" is whether that converter's .tflite passed edgeport's",
             "checks (standard interpreter, no Flex/custom ops, parity within --rtol) in the edgeport run; the alone",
             "runs only convert. Exact reasons, in-process convert times and every candidate's status are in",
             f"{json_path.name}.", ""]
    md_path.write_text("\n".join(lines))
    return lines


def _not_kept(rows: list[Row]) -> list[str]:
    """Every .tflite candidate that failed edgeport's gate, and why (the edgeport run's manifest)."""
    lines = [f"- {r.model}, {conv}: {verdict}" for r in rows for conv, verdict in r.candidates.items()
             if _gate(r, conv) == "failed"]
    return ["Candidates that failed the gate:", "", *lines, ""] if lines else []


def _load(avg: Any) -> str:
    return ", ".join(f"{x:.2f}" for x in avg) if avg else "?"


# ------------------------------------------------------------------------------------------------ main
def bench_model(name: str, ref: str, work: Path, args: argparse.Namespace) -> Row:
    def say(what: str, call: Call) -> None:
        print(f"  {name:<14} {what:<20} {call.cell()}", flush=True)

    row, out = run_edgeport(name, ref, work, args.timeout)
    say("edgeport convert", row.edgeport)
    onnx_path = out / "model.onnx"
    if not onnx_path.is_file():
        why = "edgeport wrote no model.onnx"
        row.onnx2tf2 = Call("skipped", detail=why)
        row.onnx2tf1 = Call("skipped", detail=why)
    else:
        row.onnx2tf2 = run_onnx2tf2(onnx_path, work / name / "onnx2tf2", args.timeout)
        say("onnx2tf 2.x alone", row.onnx2tf2)
        if args.skip_1x:
            row.onnx2tf1 = Call("skipped", detail="--skip-1x")
        else:
            row.onnx2tf1 = run_onnx2tf1(onnx_path, work / name / "onnx2tf1", args.timeout_1x)
            say("onnx2tf 1.29 alone", row.onnx2tf1)
    row.litert = run_litert(name, ref, work / name / "litert", args.timeout)
    say("litert-torch alone", row.litert)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="Comma list of model names (samples and architectures; default: all).")
    ap.add_argument("--skip-1x", action="store_true", help="Skip onnx2tf 1.29 alone (it takes minutes on large models).")
    ap.add_argument("--timeout", type=float, default=900.0, help="Seconds per call before it is killed (default 900).")
    ap.add_argument("--timeout-1x", type=float, default=1800.0, help="Seconds for an onnx2tf 1.29 call (default 1800).")
    ap.add_argument("--work", type=Path, help="Folder for the outputs (default: a temporary one, removed at the end).")
    ap.add_argument("--md", type=Path, default=REPO / "benchmarks" / "convert_speed.md", help="Markdown report path.")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "convert_speed.json", help="JSON report path.")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    models = pick(all_models(), args.models)
    work = args.work or Path(tempfile.mkdtemp(prefix="edgeport-convert-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                            "command": " ".join(["benchmarks/convert_speed.py", *(argv if argv is not None else sys.argv[1:])]),
                            "edgeport_home": os.environ.get("EDGEPORT_HOME", ""), "load_start": list(os.getloadavg()),
                            "machine": machine()}
    print(f"{len(models)} models; work folder {work}; load average {_load(meta['load_start'])}", flush=True)
    rows: list[Row] = []
    try:
        for name, ref in models.items():
            rows.append(bench_model(name, ref, work, args))
            meta["load_end"] = list(os.getloadavg())
            write_reports(rows, meta, args.md, args.json)  # after every model: an interrupted run keeps its figures
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    meta["load_end"] = list(os.getloadavg())
    lines = write_reports(rows, meta, args.md, args.json)
    print("\n" + "\n".join(lines[lines.index(next(ln for ln in lines if ln.startswith("| model"))):]))
    print(f"wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
