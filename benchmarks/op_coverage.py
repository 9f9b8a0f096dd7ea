#!/usr/bin/env python
"""Operator coverage: which single-operator PyTorch models each converter turns into a working .tflite.

    .venv/bin/python benchmarks/op_coverage.py [--converters onnx2tf,onnx2tf-1,litert-torch,onnx-tf] [--only NAME,...]
        [--jobs 2] [--timeout 600] [--work DIR] [--json benchmarks/op_coverage.json] [--md benchmarks/op_coverage.md]

The cases are in benchmarks/op_catalog.py (one operator each, seeded live weights and inputs). Every
case goes through the same code as ``edgeport convert CASE --to tflite --converter C``:

1. reference: ``edgeport.convert.reference.run`` runs PyTorch eager on 3 samples (the case's seeded
   example input and 2 seeded random inputs) and writes reference.npz;
2. for the converters that start from ONNX (onnx2tf 2.x, onnx2tf-1, onnx-tf): ``edgeport.convert.onnx_export.run`` (dynamo exporter, opset 18, with its
   recorded legacy fallback) writes model.onnx;
3. the converter backend's own ``run`` (``CONVERTERS[C].entry``) with the options the pipeline
   gives it for ``--to tflite`` (targets ["tflite"], channels-last for onnx2tf, no Flex allowed):
   its remedies (onnx-simplifier, pseudo ops for Erf, static-shape retries, Erf approximation for
   onnx-tf) and its IO/layout resolution all apply;
4. ``edgeport.convert.check.run`` on the returned .tflite with the artifact's IO spec (so layouts and
   names the converter recorded are honoured): it lists the operators and runs every reference
   sample through the LiteRT interpreter (ai-edge-litert).

A cell passes when the .tflite holds no Flex (Select TF) or custom op and, over all outputs and all
3 samples, ``max |tflite - pytorch| <= 1e-4`` (absolute error; the outputs are O(1)..O(40), see the
table's magnitude column). edgeport's own gate (``rel = max abs error / max |reference|`` <= 1e-4) is
recorded too. Statuses: pass, mismatch (error), flex (ops), fail (reason), crash (signal), timeout.

Speed: instead of one fresh interpreter per step (what the CLI does, ~15-25 s of imports per call),
each step kind runs in a long-lived server process (``--serve KIND``) that imports torch / TensorFlow
once and takes jobs one after the other. A server that dies (segfault, abort, OOM) costs only the
case it was running: the case is retried once in a fresh server (a crash in a warm server could be
an earlier case's fault) and, if it crashes again, recorded as ``crash``; a case that exceeds
``--timeout`` is killed and recorded as ``timeout``. Servers are also recycled every ``--recycle`` jobs.
Every cell that does not pass is then re-run with a fresh server per job (``--no-confirm`` skips this),
so no failure in the table comes from state an earlier case left behind; the fresh result is kept.
The converters' own sub-processes (onnx-simplifier, the IO probe, onnx-tf's isolated interpreter) are
unchanged, except that onnx-tf's interpreter is also kept alive between cases (one TensorFlow 2.15
import instead of one per case) and is restarted when it dies.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CATALOG = Path(__file__).resolve().parent / "op_catalog.py"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

ALL_CONVERTERS = ("onnx2tf", "onnx2tf-1", "litert-torch", "onnx-tf")  # names in edgeport.convert.CONVERTERS
DEFAULT_CONVERTERS = ALL_CONVERTERS
TOL = 1e-4
SAMPLES = 3
CHECK_TIMEOUT = 180.0


# =============================================================================================== server side
def _server_env() -> dict[str, str]:
    from edgeport.worker import _CHILD_ENV

    env = dict(os.environ)
    env.update(_CHILD_ENV)
    paths = [str(REPO / "src"), str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _model_ref(case: str) -> dict[str, Any]:
    from edgeport.models import resolve_ref

    return resolve_ref(f"{CATALOG}:op_{case}").to_json()


def _needs_onnx(converter: str) -> bool:
    from edgeport.convert import CONVERTERS

    return CONVERTERS[converter].needs_onnx


def task_prep(case: str, folder: str, need_onnx: bool) -> dict[str, Any]:
    """reference.npz (+ model.onnx) for one case, as the pipeline's reference and torch.onnx steps make them."""
    import numpy as np

    from edgeport.convert import onnx_export, reference
    from edgeport.refdata import load_reference

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    model = _model_ref(case)
    ref = reference.run(staging=str(d), out_dir=str(d), model=model, io={}, dims={}, reference="",
                        options={"samples": SAMPLES})
    _, outs = load_reference(d / "reference.npz")
    magnitude = max(float(np.max(np.abs(np.asarray(v, dtype=np.float64)))) if np.asarray(v).size else 0.0
                    for o in outs for v in o.values())
    result: dict[str, Any] = {"model": model, "io": ref["io"], "dims": ref["dims"], "magnitude": magnitude,
                              "tools": ref.get("tools", {})}
    if need_onnx:
        try:
            res = onnx_export.run(staging=str(d), out_dir=str(d), model=model, io=ref["io"], dims=ref["dims"],
                                  reference=str(d / "reference.npz"), options={"opset": 18})
            art = res["artifacts"][0]
            result["onnx"] = {"path": str(d / art["path"]), "io": art["io"], "notes": art.get("notes", []),
                              "exporter": art.get("options", {}).get("exporter"), "ops": art.get("ops", {})}
        except Exception as exc:  # noqa: BLE001 - recorded on the ONNX-based converters' cells
            result["onnx_error"] = _exc_reason(exc)
    return result


def task_convert(converter: str, case: str, folder: str, prep: dict[str, Any]) -> dict[str, Any]:
    """One converter backend's run(), with the options the pipeline passes for ``--to tflite``."""
    import importlib

    from edgeport.convert import CONVERTERS

    spec = CONVERTERS[converter]
    module_name, func_name = spec.entry.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    d = Path(folder)
    staging = d / f"staging-{converter}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    parent = prep.get("onnx") if spec.needs_onnx else None
    t0 = time.perf_counter()
    value = func(staging=str(staging), out_dir=str(d), model=prep["model"], io=prep["io"], dims=prep["dims"],
                 reference=str(d / "reference.npz"), parent_path=parent["path"] if parent else None,
                 parent_io=parent["io"] if parent else None,
                 options={"targets": ["tflite"], "keep_layout": False, "allow_flex": False})
    seconds = time.perf_counter() - t0
    art = next((a for a in value.get("artifacts", []) if a.get("format") == "tflite"), None)
    if art is None:
        raise RuntimeError(f"{converter} returned no tflite artifact")
    final = d / f"{converter}.tflite"
    shutil.move(str(staging / art["path"]), final)
    shutil.rmtree(staging, ignore_errors=True)
    return {"tflite": str(final), "io": art["io"], "notes": art.get("notes", []), "ops": art.get("ops", {}),
            "tools": art.get("tools", {}), "seconds": round(seconds, 2),
            "attempts": value.get("attempts")}


def task_check(tflite: str, io: dict[str, Any], reference: str) -> dict[str, Any]:
    from edgeport.convert import check

    return check.run(path=tflite, format="tflite", io=io, reference=reference, allow_flex=False, rtol=TOL)


def _exc_reason(exc: BaseException) -> str:
    from edgeport.errors import EdgeportError

    if isinstance(exc, EdgeportError):
        return exc.message
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"


class _OnnxTfServer:
    """The onnx-tf venv interpreter kept alive: runs _onnx_tf_job.main(job, result) per request."""

    CODE = r"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("_onnx_tf_job", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
for line in sys.stdin:
    req = json.loads(line)
    os.chdir(req["cwd"])
    try:
        mod.main([req["job"], req["result"]])
    finally:
        os.chdir("/")
    sys.stdout.write("done\n"); sys.stdout.flush()
"""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.log = None

    def call(self, python: str, script: str, job: dict[str, Any], timeout: float, cwd: str | None, env: dict[str, str]):
        from edgeport.worker import CRASH, ERROR, OK, TIMEOUT, WorkerResult, _CHILD_ENV, _signame

        if self.proc is None or self.proc.poll() is not None:
            child_env = dict(os.environ)
            child_env.update(_CHILD_ENV)
            child_env.update(env or {})
            self.log = tempfile.NamedTemporaryFile("w+b", prefix="onnx-tf-server-", suffix=".log", delete=False)
            self.proc = subprocess.Popen([python, "-c", self.CODE, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.log, env=child_env, text=True, start_new_session=True)
        with tempfile.TemporaryDirectory(prefix="opcov-onnxtf-") as tmp:
            jp, rp = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
            Path(jp).write_text(json.dumps(job))
            t0 = time.perf_counter()
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps({"job": jp, "result": rp, "cwd": cwd or tmp}) + "\n")
            self.proc.stdin.flush()
            done = threading.Event()
            timer = threading.Timer(timeout, lambda: (not done.is_set()) and _killpg(self.proc))
            timer.start()
            line = self.proc.stdout.readline()
            done.set()
            timer.cancel()
            seconds = time.perf_counter() - t0
            tail = _tail_file(self.log.name)
            if not line:
                rc = self.proc.wait()
                self.proc = None
                if seconds >= timeout:
                    return WorkerResult(TIMEOUT, seconds=seconds, log_tail=tail)
                return WorkerResult(CRASH, returncode=rc, signal=_signame(-rc) if rc < 0 else None, seconds=seconds,
                                    log_tail=tail)
            payload = json.loads(Path(rp).read_text()) if Path(rp).exists() else None
            if payload is None:
                return WorkerResult(CRASH, returncode=None, seconds=seconds, log_tail=tail)
            if payload.get("ok"):
                return WorkerResult(OK, value=payload.get("value"), seconds=seconds)
            return WorkerResult(ERROR, error=payload.get("error"), seconds=seconds, log_tail=tail)


def _install_onnx_tf_server() -> None:
    """Route onnx_tf_backend's run_in_worker(script=_onnx_tf_job.py) calls to a long-lived interpreter."""
    import edgeport.worker as worker
    from edgeport.convert import onnx_tf_backend

    server = _OnnxTfServer()
    original = worker.run_in_worker

    def patched(target, kwargs, *, timeout=900.0, python=None, env=None, cwd=None, log_path=None, script=None):
        if script is not None and Path(script) == onnx_tf_backend.SCRIPT and python:
            return server.call(python, str(script), {"target": target, "kwargs": kwargs}, timeout, cwd and str(cwd), env or {})
        return original(target, kwargs, timeout=timeout, python=python, env=env, cwd=cwd, log_path=log_path, script=script)

    worker.run_in_worker = patched


def _tail_file(path: str, limit: int = 3000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def serve(kind: str) -> int:
    """Server loop: one JSON request per stdin line -> result file written atomically."""
    import faulthandler

    from edgeport.worker import _install_network_guard, _json_default

    faulthandler.enable()
    _install_network_guard()
    if kind == "onnx-tf":
        _install_onnx_tf_server()
    tasks = {"prep": task_prep, "convert": task_convert, "check": task_check}
    for line in sys.stdin:
        req = json.loads(line)
        t0 = time.perf_counter()
        print(f"=== {req['task']} {req.get('label', '')}", flush=True)
        try:
            value = tasks[req["task"]](**req["args"])
            payload = {"ok": True, "value": value}
        except BaseException as exc:  # noqa: BLE001 - every failure is a reported result
            if isinstance(exc, KeyboardInterrupt):
                raise
            traceback.print_exc()
            payload = {"ok": False, "error": _exc_reason(exc)}
        payload["seconds"] = round(time.perf_counter() - t0, 2)
        tmp = req["result"] + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(payload, fh, default=_json_default)
        os.replace(tmp, req["result"])
    return 0


# =============================================================================================== parent side
def _killpg(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class Server:
    """A long-lived ``--serve KIND`` process; :meth:`call` returns (status, value|reason, seconds)."""

    def __init__(self, kind: str, logdir: Path, recycle: int) -> None:
        self.kind, self.logdir, self.recycle = kind, logdir, recycle
        self.proc: subprocess.Popen | None = None
        self.jobs = 0
        self.starts = 0

    def _start(self) -> None:
        self.starts += 1
        log = open(self.logdir / f"server-{self.kind}-{threading.current_thread().name}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.kind], stdin=subprocess.PIPE,
                                     stdout=log, stderr=subprocess.STDOUT, env=_server_env(), cwd=str(self.logdir),
                                     start_new_session=True, text=True)
        log.close()
        self.jobs = 0

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _killpg(self.proc)
                self.proc.wait()
            _killpg(self.proc)  # the converters' own children, if any are left
        self.proc = None

    @property
    def fresh(self) -> bool:
        return self.proc is None or self.jobs == 0

    def call(self, task: str, args: dict[str, Any], timeout: float, label: str = "") -> tuple[str, Any, float]:
        if self.proc is not None and self.jobs >= self.recycle:
            self.stop()
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        fd, result = tempfile.mkstemp(prefix="opcov-result-", suffix=".json")
        os.close(fd)
        os.unlink(result)
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps({"task": task, "args": args, "result": result, "label": label}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        self.jobs += 1
        delay = 0.02
        while True:
            if os.path.exists(result):
                payload = json.loads(Path(result).read_text())
                os.unlink(result)
                secs = time.monotonic() - t0
                if payload.get("ok"):
                    return "ok", payload["value"], secs
                return "error", payload.get("error", "failed"), secs
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                secs = time.monotonic() - t0
                sig = signal.Signals(-rc).name if rc < 0 and -rc in signal.Signals._value2member_map_ else None
                return "crash", f"killed by {sig}" if sig else f"exited with code {rc}", secs
            if time.monotonic() - t0 > timeout:
                _killpg(self.proc)
                self.proc.wait()
                self.proc = None
                return "timeout", f"timed out after {timeout:.0f} s", time.monotonic() - t0
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)


class Lane(threading.Thread):
    """One worker lane: takes tasks from the shared scheduler, with its own servers per kind."""

    def __init__(self, n: int, sched: "Scheduler") -> None:
        super().__init__(name=f"lane{n}", daemon=True)
        self.sched = sched
        self.servers: dict[str, Server] = {}
        self.kind: str | None = None

    def server(self, kind: str) -> Server:
        if kind not in self.servers:
            self.servers[kind] = Server(kind, self.sched.logdir, self.sched.recycle)
        return self.servers[kind]

    def run(self) -> None:
        try:
            while True:
                task = self.sched.next_task(self.kind)
                if task is None:
                    break
                kind, case = task
                if kind != self.kind and self.kind is not None and self.kind != "prep":
                    # switching converter: release the previous converter's server (TF/torch memory)
                    self.servers.pop(self.kind).stop()
                self.kind = kind
                try:
                    if kind == "prep":
                        self.sched.finish_prep(case, self.do_prep(case))
                    else:
                        self.sched.finish_cell(kind, case, self.do_convert(kind, case))
                except Exception as exc:  # noqa: BLE001 - a harness bug must not hang the run
                    traceback.print_exc()
                    if kind == "prep":
                        self.sched.finish_prep(case, {"error": f"harness error: {exc}"})
                    else:
                        self.sched.finish_cell(kind, case, {"status": "fail", "reason": f"harness error: {exc}"})
        finally:
            for s in self.servers.values():
                s.stop()

    def _call_retrying(self, kind: str, task: str, args: dict[str, Any], timeout: float, label: str):
        srv = self.server(kind)
        warm = not srv.fresh
        status, value, secs = srv.call(task, args, timeout, label)
        if status == "crash" and warm:
            first = value
            status, value, secs2 = srv.call(task, args, timeout, label + " (retry in a fresh server)")
            secs += secs2
            if status == "crash":
                value = f"{value} (also in a fresh process; first: {first})"
        return status, value, secs

    def do_prep(self, case: str) -> dict[str, Any]:
        folder = self.sched.work / case
        need_onnx = any(_needs_onnx(c) for c in self.sched.converters)
        status, value, secs = self._call_retrying("prep", "prep", {"case": case, "folder": str(folder), "need_onnx": need_onnx},
                                                  self.sched.timeout, case)
        if status != "ok":
            return {"error": f"{status}: {value}"}
        value["seconds"] = round(secs, 2)
        return value

    def do_convert(self, conv: str, case: str) -> dict[str, Any]:
        prep = self.sched.wait_prep(case)
        t0 = time.monotonic()
        if "error" in prep:
            return {"status": "fail", "reason": f"reference: {prep['error']}", "seconds": 0.0}
        if _needs_onnx(conv) and "onnx" not in prep:
            return {"status": "fail", "reason": f"ONNX export: {prep.get('onnx_error', '?')}", "seconds": 0.0}
        folder = self.sched.work / case
        status, value, secs = self._call_retrying(conv, "convert", {"converter": conv, "case": case, "folder": str(folder),
                                                                    "prep": prep}, self.sched.timeout, f"{conv} {case}")
        cell: dict[str, Any] = {"convert_seconds": round(secs, 2)}
        if _needs_onnx(conv) and prep["onnx"].get("notes"):
            cell["onnx_notes"] = [n for n in prep["onnx"]["notes"] if "fell back" in n]
        if status != "ok":
            cell.update(status="crash" if status == "crash" or "process crashed" in str(value) else
                        ("timeout" if status == "timeout" or "timed out" in str(value) else "fail"),
                        reason=str(value))
            flex = re.search(r"needs Select TF \(Flex\) ops for ([A-Z][A-Za-z0-9]*(?:, [A-Z][A-Za-z0-9]*)*)", str(value))
            if cell["status"] == "fail" and flex:  # onnx-tf's TFLiteConverter refused to emit Flex ops
                cell.update(status="flex", flex_ops=[f"Flex{o.strip()}" for o in flex.group(1).split(",") if o.strip()])
            cell["seconds"] = round(time.monotonic() - t0, 2)
            return cell
        cell.update(notes=value.get("notes", []), tflite_ops=value.get("ops", {}), tools=value.get("tools", {}),
                    io=value.get("io"))
        if value.get("attempts"):
            cell["attempts"] = value["attempts"]
        status, chk, csecs = self._call_retrying("check", "check", {"tflite": value["tflite"], "io": value["io"],
                                                                    "reference": str(folder / "reference.npz")},
                                                 CHECK_TIMEOUT, f"check {conv} {case}")
        cell["check_seconds"] = round(csecs, 2)
        cell["seconds"] = round(time.monotonic() - t0, 2)
        if status != "ok":
            cell.update(status="crash" if status == "crash" else ("timeout" if status == "timeout" else "fail"),
                        reason=f"running the .tflite: {chk}")
            return cell
        cell.update(classify(chk))
        if not self.sched.keep:
            with contextlib.suppress(OSError):
                os.unlink(value["tflite"])
        return cell


def classify(chk: dict[str, Any]) -> dict[str, Any]:
    """pass / flex / mismatch / fail from edgeport.convert.check.run's result."""
    out: dict[str, Any] = {"tflite_ops": chk.get("ops", {}), "parity": chk.get("parity", {}),
                           "edgeport_gate": bool(chk.get("passed")), "backend": chk.get("backend")}
    offenders = list(chk.get("flex_ops", [])) + list(chk.get("custom_ops", []))
    parity = chk.get("parity") or {}
    if parity:
        out["max_abs"] = max(v["max_abs"] for v in parity.values())
        out["rel"] = max(v["rel"] for v in parity.values())
    if offenders:
        out.update(status="flex", reason=", ".join(offenders), flex_ops=offenders)
    elif not parity or chk.get("samples", 0) < 1:
        out.update(status="fail", reason=chk.get("reason") or "the .tflite could not be run")
    elif "has shape" in (chk.get("reason") or ""):
        out.update(status="mismatch", reason=chk["reason"])
    elif not out["max_abs"] <= TOL:
        out.update(status="mismatch", reason=f"max abs error {out['max_abs']:.2e}")
    else:
        out.update(status="pass", reason="")
    return out


class Scheduler:
    def __init__(self, cases: list[str], converters: list[str], work: Path, jobs: int, timeout: float, recycle: int,
                 keep: bool, verbose: bool = True) -> None:
        self.cases, self.converters, self.work = cases, converters, work
        self.timeout, self.recycle, self.keep = timeout, recycle, keep
        self.logdir = work / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs
        self.lock = threading.Condition()
        self.pending: list[tuple[str, str]] = [("prep", c) for c in cases]
        for conv in converters:  # interleaved so that lanes tend to keep one converter each
            self.pending += [(conv, c) for c in cases]
        self.preps: dict[str, dict[str, Any]] = {}
        self.cells: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in cases}
        self.total = len(self.pending)
        self.done = 0
        self.first: dict[tuple[str, str], dict[str, Any]] = {}
        self.t0 = time.monotonic()

    def next_task(self, kind: str | None) -> tuple[str, str] | None:
        with self.lock:
            if not self.pending:
                return None
            # keep the lane's converter when it has work left, else the converter with most work left that
            # no other lane is on; preps always go first
            preps = [t for t in self.pending if t[0] == "prep"]
            pick = preps[0] if preps else next((t for t in self.pending if t[0] == kind), None)
            if pick is None:
                counts: dict[str, int] = {}
                for t in self.pending:
                    counts[t[0]] = counts.get(t[0], 0) + 1
                best = max(counts, key=lambda k: counts[k])
                pick = next(t for t in self.pending if t[0] == best)
            self.pending.remove(pick)
            return pick

    def finish_prep(self, case: str, value: dict[str, Any]) -> None:
        with self.lock:
            self.preps[case] = value
            self.done += 1
            self.lock.notify_all()
        msg = value.get("error") or (f"ok ({value.get('seconds', 0):.1f} s)" +
                                     (f"; ONNX export failed: {value['onnx_error'][:80]}" if "onnx_error" in value else ""))
        self._log(f"prep {case}: {msg}")

    def wait_prep(self, case: str) -> dict[str, Any]:
        with self.lock:
            while case not in self.preps:
                self.lock.wait()
            return self.preps[case]

    def finish_cell(self, conv: str, case: str, cell: dict[str, Any]) -> None:
        with self.lock:
            first = self.first.get((conv, case))
            if first is not None:  # confirmation in a fresh process: that result is the one kept
                if (first.get("status"), first.get("reason")) == (cell.get("status"), cell.get("reason")):
                    cell["confirmed_fresh"] = True
                else:
                    cell["warm_server_result"] = {k: first.get(k) for k in ("status", "reason", "max_abs")}
            self.cells[case][conv] = cell
            self.done += 1
        extra = f" {cell['reason'][:110]}" if cell.get("reason") else (f" max_abs {cell.get('max_abs', 0):.1e}")
        self._log(f"{conv} {case}: {cell['status']}{extra} ({cell.get('seconds', 0):.1f} s)")

    def _log(self, msg: str) -> None:
        el = time.monotonic() - self.t0
        print(f"[{self.done}/{self.total} {el / 60:5.1f} min] {msg}", flush=True)

    def confirm(self) -> None:
        """Re-run every cell that did not pass in fresh server processes (one job per process).

        Rules out that a failure came from state an earlier case left in a long-lived server; the fresh
        result is the one kept (a difference is recorded as ``warm_server_result``).
        """
        redo = [(conv, case) for case, cells in self.cells.items() for conv, cell in cells.items()
                if cell.get("status") != "pass" and not str(cell.get("reason", "")).startswith(("reference:", "ONNX export:"))]
        if not redo:
            return
        self.first = {(conv, case): self.cells[case][conv] for conv, case in redo}
        self.recycle = 1
        self.pending = list(redo)
        self.total += len(redo)
        self._log(f"re-running the {len(redo)} cells that did not pass, each in fresh processes")
        self.run()

    def run(self) -> None:
        lanes = [Lane(i, self) for i in range(max(1, self.jobs))]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            while lane.is_alive():
                lane.join(timeout=1.0)


# =============================================================================================== report
def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for d in ("torch", "onnx", "onnxscript", "onnxruntime", "onnxsim", "onnx2tf", "tensorflow-cpu", "tensorflow",
              "litert-torch", "ai-edge-litert", "numpy"):
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    with contextlib.suppress(Exception):
        from edgeport.backends import isolated_status

        st = isolated_status("onnx-tf")
        if st.get("installed"):
            v = st.get("versions", {})
            out["onnx-tf"] = f"{v.get('onnx-tf', '?')} (isolated venv: tensorflow-cpu {v.get('tensorflow-cpu', '?')}, onnx {v.get('onnx', '?')})"
    return out


def _machine() -> dict[str, Any]:
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gb": mem, "platform": platform.platform(),
            "python": platform.python_version(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def short_reason(cell: dict[str, Any]) -> str:
    st = cell.get("status")
    if st == "pass":
        return "✓"
    if st == "not installed":
        return "not installed"
    if st == "not run":
        return "–"
    if st == "mismatch":
        if cell.get("max_abs") is not None and cell["max_abs"] != float("inf"):
            return f"✗ mismatch {cell['max_abs']:.1e}"
        shape = re.search(r"has shape (\[[^\]]*\]), the reference (\[[^\]]*\])", cell.get("reason", ""))
        if shape:
            return f"✗ mismatch: shape {shape.group(1)}, expected {shape.group(2)}"
        return "✗ mismatch: " + _clip(cell.get("reason", ""), 60)
    if st == "flex":
        return "✗ flex: " + ", ".join(cell.get("flex_ops", []))
    if st == "crash":
        return "✗ crash: " + _clip(cell.get("reason", ""), 50)
    if st == "timeout":
        return "✗ timeout"
    return "✗ fail: " + _clip(_condense(cell.get("reason", "")), 90)


def _condense(reason: str) -> str:
    reason = re.sub(r"^(onnx2tf 2\.x failed: |onnx2tf failed: |litert-torch failed: |onnx-tf )", "", reason)
    reason = re.sub(r"^could not convert the ONNX graph \(IR \d+, opset \d+\): ", "", reason)
    reason = re.sub(r"^could not run: \S+ failed to run: ", "at run time: ", reason)
    reason = re.sub(r" While executing .*", "", reason)
    return reason


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).replace("|", "/").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    convs = doc["converters"]
    rows = doc["rows"]
    lines = [
        "# Operator coverage",
        "",
        f"Generated by `benchmarks/op_coverage.py` on {doc['date']} in {doc['total_seconds'] / 60:.1f} min "
        f"({doc['jobs']} parallel lane(s)); machine: {doc['machine']['cpu']}, {doc['machine']['cpus']} CPUs, "
        f"{doc['machine']['memory_gb']} GB RAM, {doc['machine']['platform']}, Python {doc['machine']['python']} "
        "(shared with other work while it ran).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".",
        "",
        f"Each row is one PyTorch operator in a single-op model (benchmarks/op_catalog.py: seeded live weights, "
        f"inputs like 1x8x16x16 images and 1x12x32 sequences), converted to .tflite as `edgeport convert "
        f"--to tflite --converter C` does (same backend code, remedies and layout handling) and run in the LiteRT "
        f"interpreter on {SAMPLES} seeded samples. ✓ = no Flex/custom op and max |tflite − PyTorch| ≤ {TOL:g} "
        "(absolute, over all outputs and samples; the max ref column is the largest |PyTorch output|, "
        "so the relative error is at most that much smaller). ✗ says why: `mismatch` with the max abs error, "
        "`flex` with the Select-TF ops left, `fail` with the converter's reason, `crash`, `timeout`.",
        "",
    ]
    for conv in convs:
        cells = [r["cells"].get(conv, {}) for r in rows]
        if cells and all(c.get("status") == "not installed" for c in cells):
            lines.append(f"- **{conv}**: not installed (`edgeport backends install {conv}`), not run")
            continue
        run = [c for c in cells if c.get("status") not in ("not run",)]
        n_pass = sum(c.get("status") == "pass" for c in run)
        by = {}
        for c in run:
            by[c.get("status")] = by.get(c.get("status"), 0) + 1
        detail = ", ".join(f"{v} {k}" for k, v in sorted(by.items()) if k != "pass")
        lines.append(f"- **{conv}**: {n_pass}/{len(run)} pass" + (f" ({detail})" if detail else ""))
    lines += ["", "| op | category | max ref | " + " | ".join(convs) + " |",
              "|---|---|---:|" + "---|" * len(convs)]
    for r in rows:
        mag = r.get("magnitude")
        lines.append(f"| {r['name']} | {r['category']} | {mag:.2g} | " if mag is not None else f"| {r['name']} | {r['category']} | – | ")
        lines[-1] += " | ".join(short_reason(r["cells"].get(c, {"status": "not run"})) for c in convs) + " |"
    redone = [c for r in rows for c in r["cells"].values() if "confirmed_fresh" in c or "warm_server_result" in c]
    if redone:
        differed = [c for c in redone if "warm_server_result" in c]
        lines += ["", f"The {len(redone)} cells that did not pass were re-run in fresh processes (one case per process); "
                  + (f"{len(differed)} gave a different result there, and the fresh result is shown."
                     if differed else "every one gave the same result.")]
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", "Case notes: " + "; ".join(f"{r['name']}: {r['note']}" for r in notes) + "."]
    path.write_text("\n".join(lines) + "\n")


def build_doc(args: argparse.Namespace, cases: list[Any], sched: Scheduler | None, converters: list[str],
              skipped: dict[str, str], seconds: float) -> dict[str, Any]:
    rows = []
    for case in cases:
        prep = sched.preps.get(case.name, {}) if sched else {}
        cells = dict(sched.cells.get(case.name, {})) if sched else {}
        for conv, why in skipped.items():
            cells[conv] = {"status": "not installed", "reason": why}
        for cell in cells.values():
            cell.pop("io", None)
        rows.append({"name": case.name, "category": case.category, "note": case.note,
                     "magnitude": prep.get("magnitude"), "onnx_exporter": (prep.get("onnx") or {}).get("exporter"),
                     "onnx_ops": (prep.get("onnx") or {}).get("ops"), "prep_error": prep.get("error") or prep.get("onnx_error"),
                     "cells": cells})
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "total_seconds": round(seconds, 1),
            "jobs": args.jobs, "tolerance_abs": TOL, "samples": SAMPLES, "machine": _machine(), "versions": _versions(),
            "converters": converters, "rows": rows}


def merge_docs(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Replace the re-run cells of ``old`` by those of ``new`` (for --merge with --only/--converters)."""
    by_name = {r["name"]: r for r in old.get("rows", [])}
    for r in new["rows"]:
        if r["name"] in by_name:
            base = by_name[r["name"]]
            base["cells"].update({k: v for k, v in r["cells"].items() if v.get("status") != "not installed"
                                  or k not in base["cells"]})
            for k in ("magnitude", "onnx_exporter", "onnx_ops", "prep_error", "category", "note"):
                base[k] = r[k]
        else:
            old.setdefault("rows", []).append(r)
    for c in new["converters"]:
        if c not in old.get("converters", []):
            old.setdefault("converters", []).append(c)
    old["converters"] = [c for c in ALL_CONVERTERS if c in old["converters"]]
    old.setdefault("reruns", []).append({"date": new["date"], "seconds": new["total_seconds"],
                                         "ops": [r["name"] for r in new["rows"]], "converters": new["converters"]})
    old["versions"] = new["versions"]
    return old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--converters", default=",".join(DEFAULT_CONVERTERS), help="comma list of: " + ", ".join(ALL_CONVERTERS))
    ap.add_argument("--only", default="", help="comma list of case names (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel lanes (each runs one step at a time)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per conversion before it counts as a timeout")
    ap.add_argument("--recycle", type=int, default=40, help="restart a server after this many jobs")
    ap.add_argument("--work", help="work folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the .tflite files in the work folder")
    ap.add_argument("--json", default=str(Path(__file__).with_name("op_coverage.json")))
    ap.add_argument("--md", default=str(Path(__file__).with_name("op_coverage.md")))
    ap.add_argument("--merge", action="store_true", help="update the rows of an existing --json instead of replacing it")
    ap.add_argument("--no-confirm", action="store_true",
                    help="do not re-run the cells that did not pass in fresh processes (done by default)")
    ap.add_argument("--report-only", action="store_true", help="rewrite --md from --json and exit")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve)

    if args.report_only:
        write_markdown(json.loads(Path(args.json).read_text()), Path(args.md))
        print(f"wrote {args.md}")
        return 0
    sys.path.insert(0, str(CATALOG.parent))
    import op_catalog

    if args.list:
        for c in op_catalog.CASES:
            print(f"{c.name:28s} {c.category:12s} {c.note}")
        print(f"{len(op_catalog.CASES)} cases")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in op_catalog.BY_NAME]
    if unknown:
        ap.error(f"unknown cases {unknown}; see --list")
    cases = [op_catalog.BY_NAME[n] for n in names] if names else list(op_catalog.CASES)
    converters = [c.strip() for c in args.converters.split(",") if c.strip()]
    bad = [c for c in converters if c not in ALL_CONVERTERS]
    if bad:
        ap.error(f"unknown converters {bad}; use {', '.join(ALL_CONVERTERS)}")
    skipped: dict[str, str] = {}
    if "onnx-tf" in converters:
        from edgeport.backends import isolated_status

        st = isolated_status("onnx-tf")
        if not st.get("installed"):
            skipped["onnx-tf"] = f"not installed: {st.get('detail', '')}"
            print(f"onnx-tf is not installed ({st.get('detail', '')}); its column says so. "
                  "Install it with: edgeport backends install onnx-tf", flush=True)
    run_convs = [c for c in converters if c not in skipped]
    work = Path(args.work).absolute() if args.work else Path(tempfile.mkdtemp(prefix="op-coverage-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{len(cases)} cases x {run_convs} in {work} with {args.jobs} lane(s)", flush=True)
    t0 = time.monotonic()
    sched = Scheduler([c.name for c in cases], run_convs, work, args.jobs, args.timeout, args.recycle, args.keep)
    try:
        sched.run()
        if not args.no_confirm:
            sched.confirm()
    except KeyboardInterrupt:
        print("interrupted: writing what finished", flush=True)
    seconds = time.monotonic() - t0
    doc = build_doc(args, cases, sched, converters, skipped, seconds)
    json_path, md_path = Path(args.json), Path(args.md)
    if args.merge and json_path.is_file():
        doc = merge_docs(json.loads(json_path.read_text()), doc)
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    write_markdown(doc, md_path)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    for conv in doc["converters"]:
        cells = [r["cells"].get(conv, {}) for r in doc["rows"]]
        print(f"{conv}: {sum(c.get('status') == 'pass' for c in cells)}/{len(cells)} pass", flush=True)
    print(f"wrote {json_path} and {md_path} ({seconds / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
