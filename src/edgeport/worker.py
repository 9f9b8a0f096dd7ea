"""Run one step in a child process: a JSON job in, a JSON result out.

Converters and runtimes run here so that a segfault, an abort, a hang or an out-of-memory kill in one
of them becomes a reported result (``crash`` with the signal, ``timeout`` with the time) while the
command that asked goes on. The child also refuses network access: edgeport works offline, and a
library that tries to download something fails loudly instead of hanging or fetching.

    result = run_in_worker("edgeport.convert.onnx_export:export", {"src": ..., "out": ...}, timeout=600)
    if result.ok: value = result.value

The target is a ``module:function`` taking keyword arguments and returning JSON-serialisable data.

On Linux a worker dies with the command that started it (``PR_SET_PDEATHSIG``), so a killed command
leaves no converter writing on. ``EDGEPORT_FAULT=MATCH:KIND`` is a test hook (see :func:`_inject_fault`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeport.errors import EdgeportError

OK, ERROR, CRASH, TIMEOUT = "ok", "error", "crash", "timeout"

# Quiet, CPU-only, offline children.
_CHILD_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
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
        if line and not line.startswith(("File ", "Current thread", "Thread 0x", "Fatal Python", "Stack (most")):
            return line[:300]
    return ""


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
        start = time.perf_counter()
        with open(log, "ab") as logf:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=child_env,
                cwd=str(cwd) if cwd else tmp, start_new_session=True,
            )
            status_code, rusage, timed_out = _wait(proc, timeout)
        seconds = time.perf_counter() - start
        peak = rusage.ru_maxrss / 1024.0 if rusage is not None else None
        tail = _tail(log)
        if timed_out:
            return WorkerResult(TIMEOUT, seconds=seconds, peak_rss_mb=peak, log_tail=tail, log_path=str(log) if log_path else None)
        if os.WIFSIGNALED(status_code):
            sig = os.WTERMSIG(status_code)
            return WorkerResult(CRASH, returncode=-sig, signal=_signame(sig), seconds=seconds, peak_rss_mb=peak,
                                log_tail=tail, log_path=str(log) if log_path else None)
        rc = os.WEXITSTATUS(status_code)
        payload = None
        if res.exists():
            try:
                payload = json.loads(res.read_text())
            except ValueError:
                payload = None
        if payload is None:
            return WorkerResult(CRASH, returncode=rc, seconds=seconds, peak_rss_mb=peak, log_tail=tail,
                                log_path=str(log) if log_path else None)
        if payload.get("ok"):
            return WorkerResult(OK, value=payload.get("value"), returncode=rc, seconds=seconds, peak_rss_mb=peak,
                                log_tail=tail, log_path=str(log) if log_path else None)
        return WorkerResult(ERROR, error=payload.get("error"), returncode=rc, seconds=seconds, peak_rss_mb=peak,
                            log_tail=tail, log_path=str(log) if log_path else None)


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _wait(proc: subprocess.Popen, timeout: float):
    """Wait for the child, killing its whole process group on timeout or on our own interruption."""
    deadline = time.monotonic() + timeout
    delay = 0.005
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
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
    except BaseException:
        _kill_group(proc)
        try:
            os.wait4(proc.pid, 0)
        except ChildProcessError:
            pass
        raise


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------------------------------------------- child


def _install_network_guard() -> None:
    """Refuse connections to anything but this machine: edgeport never downloads at run time."""
    if os.environ.get("EDGEPORT_ALLOW_NETWORK") == "1":
        return
    import socket

    def local(host: object) -> bool:
        h = str(host)
        return h in ("localhost", "", "::1", "0.0.0.0", "::") or h.startswith("127.")

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) == socket.AF_UNIX:
                return
            host = address[0] if isinstance(address, tuple) and address else address
            if not local(host):
                raise ConnectionRefusedError(f"edgeport runs offline: refused a network connection to {address!r}")
        elif event == "socket.getaddrinfo":
            if args and not local(args[0]):
                raise ConnectionRefusedError(f"edgeport runs offline: refused to resolve {args[0]!r}")

    sys.addaudithook(hook)


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
        func = getattr(importlib.import_module(module_name), func_name)
        value = func(**job.get("kwargs", {}))
        _inject_fault(job["target"], job.get("kwargs", {}))
        _write_result(result_path, {"ok": True, "value": value})
        return 0
    except EdgeportError as exc:
        err = exc.to_json()
        err["edgeport"] = True
        err["traceback"] = traceback.format_exc()
        _write_result(result_path, {"ok": False, "error": err})
        return 1
    except BaseException as exc:  # noqa: BLE001 - everything becomes a reported result
        msg = " ".join(str(exc).split())[:1000] or type(exc).__name__
        _write_result(result_path, {"ok": False, "error": {"type": type(exc).__name__, "message": msg,
                                                           "traceback": traceback.format_exc()}})
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
