"""Run one step in a child process: a JSON job in, a JSON result out.

Converters and runtimes run here so that a segfault, an abort, a hang or an out-of-memory kill in one
of them becomes a reported result (``crash`` with the signal, ``timeout`` with the time) while the
command that asked goes on. The child also refuses network access: edgeport works offline, and a
library that tries to download something fails loudly instead of hanging or fetching.

    result = run_in_worker("edgeport.convert.onnx_export:export", {"src": ..., "out": ...}, timeout=600)
    if result.ok: value = result.value

The target is a ``module:function`` taking keyword arguments and returning JSON-serialisable data.

The child's stdout and stderr (the converters' own output, C++ logs included) go to ``log_path``: a
header line naming the target, the output cleaned of terminal noise once the child has ended (ANSI
escapes, carriage-return spinners and progress bars reduced to their last state, runs of identical
lines counted), then one final line with the outcome, the wall time and the child's peak RSS
(:func:`footer_line`, read back by :func:`parse_footer`). A worker that a worker starts without a log
of its own writes into its parent's log (the step's log). A child may mark where it is with
:func:`report_stage`; the line carries the seconds since the child started, so the log shows where
the time went, and a live display can show the stage (:func:`last_stage`).

On Linux a worker dies with the command that started it (``PR_SET_PDEATHSIG``), so a killed command
leaves no converter writing on. ``EDGEPORT_FAULT=MATCH:KIND`` is a test hook (see :func:`_inject_fault`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from edgeport.errors import EdgeportError
from edgeport.status import CRASH, ERROR, OK, TIMEOUT

# CPU-only, offline children whose output goes to their step log.
_CHILD_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "1",  # TensorFlow warnings land in the step log (converter messages); info does not
    "CUDA_VISIBLE_DEVICES": "",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONFAULTHANDLER": "1",
    "JAX_PLATFORMS": "cpu",
    "TF_USE_LEGACY_KERAS": "0",
}


@dataclass
class WorkerResult:
    status: str
    value: Any = None
    error: dict | None = None
    returncode: int | None = None
    signal: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    log_tail: str = ""
    log_path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def reason(self) -> str:
        """One line saying why this step did not succeed."""
        if self.status == OK:
            return ""
        if self.status == TIMEOUT:
            return f"timed out after {self.seconds:.0f} s"
        if self.status == CRASH:
            last = _last_meaningful_line(self.log_tail)
            sig = f"killed by {self.signal}" if self.signal else f"exited with code {self.returncode}"
            return f"process crashed ({sig})" + (f": {last}" if last else "")
        err = self.error or {}
        msg = err.get("message") or "failed"
        return f"{err.get('type', 'Error')}: {msg}" if err.get("type") not in (None, "EdgeportError") else msg

    def user_error(self) -> EdgeportError | None:
        """The EdgeportError the child raised on purpose (bad input), if that is why it failed."""
        if self.status == ERROR and self.error and self.error.get("edgeport"):
            return EdgeportError.from_json(self.error)
        return None

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason(),
            "returncode": self.returncode,
            "signal": self.signal,
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": self.peak_rss_mb,
            "log_tail": self.log_tail[-2000:] if self.status != OK else "",
        }


def _last_meaningful_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(("File ", "Current thread", "Thread 0x", "Fatal Python", "Stack (most", "Extension modules:", LOG_MARK.strip(),
                                         STAGE_MARK.strip())):
            return line[:300]
    return ""


# ------------------------------------------------------------------------------------------ step logs
LOG_MARK = "-- edgeport: "
STAGE_MARK = "-- edgeport stage "
_FOOTER = re.compile(r"^-- edgeport: (?P<status>\S+)(?: \((?P<why>.*)\))? after (?P<seconds>[0-9.]+) s wall time, "
                     r"peak RSS (?P<rss>[0-9.]+ MB|unknown)$")
_ANSI_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def footer_line(status: str, seconds: float, peak_rss_mb: float | None, why: str = "") -> str:
    """The last line of a step log: outcome, wall time, peak RSS of the worker process."""
    rss = f"{peak_rss_mb:.1f} MB" if peak_rss_mb is not None else "unknown"
    return f"{LOG_MARK}{status}{f' ({why})' if why else ''} after {seconds:.2f} s wall time, peak RSS {rss}"


def parse_footer(line: str) -> dict | None:
    """``footer_line`` read back: {"status", "why", "seconds", "peak_rss_mb"}, or None for any other line."""
    m = _FOOTER.match(line.strip())
    if m is None:
        return None
    rss = m["rss"]
    return {"status": m["status"], "why": m["why"] or "", "seconds": float(m["seconds"]),
            "peak_rss_mb": None if rss == "unknown" else float(rss.split()[0])}


def log_footer(path: str | os.PathLike) -> dict | None:
    """The parsed final line of a finished step log (None while the step runs, or for another file)."""
    lines = _tail(Path(path), 2000).rstrip("\n").splitlines()
    return parse_footer(lines[-1]) if lines else None


def report_stage(name: str) -> None:
    """In a worker: write a stage line (seconds since the worker started, then ``name``) to the step log."""
    start = float(os.environ.get("EDGEPORT_WORKER_T0") or 0) or time.time()
    print(f"{STAGE_MARK}{time.time() - start:7.1f} s: {' '.join(str(name).split())}", flush=True)


def last_stage(path: str | os.PathLike) -> str:
    """The latest stage a running worker reported in its log ("" when none)."""
    for line in reversed(_tail(Path(path), 16_000).splitlines()):
        if line.startswith(STAGE_MARK):
            return line.split(": ", 1)[-1].strip()
    return ""


def clean_line(raw: str) -> str:
    """A line as a terminal would have shown it at the end: escapes dropped, carriage returns and backspaces applied."""
    line = _ANSI_ESCAPES.sub("", raw.rstrip("\r\n"))
    if "\r" in line:
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    if "\b" in line:
        out: list[str] = []
        for ch in line:
            if ch == "\b":
                if out:
                    out.pop()
            else:
                out.append(ch)
        line = "".join(out)
    return _CONTROL.sub("", line).rstrip()


def _clean_log(path: Path, offset: int) -> None:
    """Rewrite what the child wrote (from ``offset`` on) as :func:`clean_line` lines, runs of repeats counted."""
    tmp = path.with_name(path.name + ".cleaning")
    with open(path, "rb") as src, open(tmp, "w", encoding="utf-8", errors="replace") as dst:
        dst.write(src.read(offset).decode("utf-8", "replace"))
        last, repeats = None, 0
        for raw in src:
            line = clean_line(raw.decode("utf-8", "replace"))
            if line == last:
                repeats += 1
                continue
            if repeats:
                dst.write(f"[the line above repeated {repeats} more times]\n")
            last, repeats = line, 0
            dst.write(line + "\n")
        if repeats:
            dst.write(f"[the line above repeated {repeats} more times]\n")
    os.replace(tmp, path)


def _finish_log(log: Path, offset: int) -> str:
    """Clean what the child wrote; returns the cleaned tail."""
    try:
        _clean_log(log, offset)
    except OSError:
        pass
    return _tail(log)


def _append_line(log: Path, line: str) -> None:
    try:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_in_worker(
    target: str,
    kwargs: dict[str, Any],
    *,
    timeout: float = 900.0,
    python: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    log_path: str | os.PathLike | None = None,
    script: str | os.PathLike | None = None,
) -> WorkerResult:
    """Run ``target(**kwargs)`` in a fresh interpreter and return what happened.

    ``python`` selects another interpreter (an isolated backend venv); there, ``script`` names a
    standalone file run instead of ``-m edgeport.worker`` (edgeport is not installed in such venvs).
    """
    with tempfile.TemporaryDirectory(prefix="edgeport-job-") as tmp:
        job = Path(tmp) / "job.json"
        res = Path(tmp) / "result.json"
        log = Path(log_path) if log_path else Path(tmp) / "worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        job.write_text(json.dumps({"target": target, "kwargs": kwargs}))
        exe = python or sys.executable
        cmd = [exe, str(script), str(job), str(res)] if script else [exe, "-m", "edgeport.worker", str(job), str(res)]
        child_env = dict(os.environ)
        child_env.update(_CHILD_ENV)
        child_env["EDGEPORT_WORKER_PARENT"] = str(os.getpid())
        if env:
            child_env.update(env)
        if script is None:
            # The child sees what we see (edgeport, sample_models, the user's packages), also from a source tree.
            src = str(Path(__file__).resolve().parent.parent)
            paths = [src] + [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
            child_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        child_env["EDGEPORT_WORKER_T0"] = repr(time.time())
        start = time.perf_counter()
        with open(log, "ab") as logf:
            offset = logf.tell()
            logf.write(f"{LOG_MARK}{target} in {exe}\n".encode("utf-8", "replace"))
            logf.flush()
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=child_env,
                    cwd=str(cwd) if cwd else tmp, start_new_session=True,
                )
                status_code, rusage, timed_out = _wait(proc, timeout)
            except BaseException:
                _finish_log(log, offset)
                _append_line(log, footer_line("interrupted", time.perf_counter() - start, None))
                raise
        seconds = time.perf_counter() - start
        peak = rusage.ru_maxrss / 1024.0 if rusage is not None else None
        result = _result(status_code, timed_out, res, seconds, peak, str(log) if log_path else None)
        result.log_tail = _finish_log(log, offset)
        _append_line(log, footer_line(result.status, seconds, peak, result.reason()[:300]))
        if not log_path and os.environ.get("EDGEPORT_WORKER_PARENT"):
            _into_our_log(log)
        return result


def _into_our_log(log: Path) -> None:
    """A worker started by a worker without a log of its own: its log goes into ours (the step's log)."""
    try:
        body = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    sys.stdout.write(body if body.endswith("\n") else body + "\n")
    sys.stdout.flush()


def _result(status_code: int, timed_out: bool, res: Path, seconds: float, peak: float | None,
            log_path: str | None) -> WorkerResult:
    common = {"seconds": seconds, "peak_rss_mb": peak, "log_path": log_path}
    if timed_out:
        return WorkerResult(TIMEOUT, **common)
    if os.WIFSIGNALED(status_code):
        sig = os.WTERMSIG(status_code)
        return WorkerResult(CRASH, returncode=-sig, signal=_signame(sig), **common)
    rc = os.WEXITSTATUS(status_code)
    payload = None
    if res.exists():
        try:
            payload = json.loads(res.read_text())
        except ValueError:
            payload = None
    if payload is None:
        return WorkerResult(CRASH, returncode=rc, **common)
    if payload.get("ok"):
        return WorkerResult(OK, value=payload.get("value"), returncode=rc, **common)
    return WorkerResult(ERROR, error=payload.get("error"), returncode=rc, **common)


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_INTERRUPTED = threading.Event()
_WAITING: set[int] = set()  # pids of the workers being waited on, in any thread


def interrupt_all() -> None:
    """Stop every worker this process waits on, in any thread (each wait raises KeyboardInterrupt)."""
    _INTERRUPTED.set()


@contextlib.contextmanager
def stop_workers_on_ctrl_c() -> Iterator[None]:
    """While inside: Ctrl-C (SIGINT) also ends the workers that other threads wait on, so a command that runs
    steps in threads stops at once instead of waiting for them. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        interrupt_all()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        deadline = time.monotonic() + 10
        while _INTERRUPTED.is_set() and _WAITING and time.monotonic() < deadline:
            time.sleep(0.02)  # until every thread's worker is gone
        _INTERRUPTED.clear()


def _wait(proc: subprocess.Popen, timeout: float):
    """Wait for the child, killing its whole process group on timeout or on our own interruption."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    _WAITING.add(proc.pid)
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return status, rusage, False
            if time.monotonic() > deadline:
                _kill_group(proc)
                pid, status, rusage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                return status, rusage, True
            if _INTERRUPTED.is_set():  # Ctrl-C reached the main thread: workers waited on in other threads stop too
                raise KeyboardInterrupt
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
    except BaseException:
        _kill_group(proc)
        try:
            os.wait4(proc.pid, 0)
        except ChildProcessError:
            pass
        raise
    finally:
        _WAITING.discard(proc.pid)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------------------------------------------- child


def _install_network_guard() -> None:
    """Refuse connections to anything but this machine: edgeport never downloads at run time. The rule is
    the one the managed environments' job scripts install (stdlib only, so they can share it)."""
    from edgeport.convert._job_protocol import install_network_guard

    install_network_guard()


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this worker when the command that started it dies (even by SIGKILL), so a
    killed ``edgeport convert`` leaves no converter running on into its output folder."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = os.environ.get("EDGEPORT_WORKER_PARENT", "")
    if parent.isdigit() and os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)


def _inject_fault(target: str, kwargs: dict) -> None:
    """Test hook for tests/e2e/test_fault_injection.py, inert unless ``EDGEPORT_FAULT`` is set.

    ``EDGEPORT_FAULT=MATCH:KIND``: a worker whose target or JSON arguments contain MATCH does its work, then,
    before reporting, dies by SIGKILL (``kill``), ``abort``, SIGSEGV (``segv``), or hangs (``hang``).
    """
    spec = os.environ.get("EDGEPORT_FAULT")
    if not spec or ":" not in spec:
        return
    match, _, kind = spec.rpartition(":")
    if match not in target + " " + json.dumps(kwargs, sort_keys=True):
        return
    sys.stdout.flush()
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "abort":
        os.abort()
    elif kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "hang":
        while True:
            time.sleep(3600)


def _write_result(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def child_main(argv: list[str]) -> int:
    import faulthandler
    import importlib

    faulthandler.enable()
    _die_with_parent()
    job_path, result_path = argv[0], argv[1]
    _install_network_guard()
    job = json.loads(Path(job_path).read_text())
    try:
        module_name, func_name = job["target"].split(":")
        report_stage(f"importing {module_name}")
        func = getattr(importlib.import_module(module_name), func_name)
        report_stage(f"running {job['target']}")
        value = func(**job.get("kwargs", {}))
        report_stage("finished")
        _inject_fault(job["target"], job.get("kwargs", {}))
        _write_result(result_path, {"ok": True, "value": value})
        return 0
    except EdgeportError as exc:
        err = exc.to_json()
        err["edgeport"] = True
        err["traceback"] = traceback.format_exc()
        _write_result(result_path, {"ok": False, "error": err})
        traceback.print_exc()
        return 1
    except BaseException as exc:  # noqa: BLE001 - everything becomes a reported result
        msg = " ".join(str(exc).split())[:1000] or type(exc).__name__
        _write_result(result_path, {"ok": False, "error": {"type": type(exc).__name__, "message": msg,
                                                           "traceback": traceback.format_exc()}})
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
