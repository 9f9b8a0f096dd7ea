"""The child side of edgeport.worker's protocol, for standalone job scripts run by a managed venv.

Managed converter environments (onnx-tf, onnx2tf 2.x) have no edgeport installed, so their job scripts
import only the standard library and their converter. This module is the part they share; it sits next
to them and is found because Python puts a script's own folder first on ``sys.path``.

    python SCRIPT.py JOB.json RESULT.json
    JOB.json    {"target": NAME, "kwargs": {...}}
    RESULT.json {"ok": true, "value": {...}}  or  {"ok": false, "error": {"type", "message", "hint"}}

The result is written atomically, and non-local network connections are refused, as in
edgeport's own workers (``EDGEPORT_ALLOW_NETWORK=1`` lifts that, for debugging only).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any, Callable


class JobError(Exception):
    """An expected failure with a one-line message and a hint (becomes a ConversionError upstream)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())
        self.hint = " ".join(str(hint).split())


def install_network_guard() -> None:
    """Refuse connections to anything but this machine (same rule as edgeport.worker)."""
    if os.environ.get("EDGEPORT_ALLOW_NETWORK") == "1":
        return
    import socket

    def local(host: object) -> bool:
        h = str(host)
        return h in ("localhost", "", "::1", "0.0.0.0", "::") or h.startswith("127.")

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None):
                return
            host = address[0] if isinstance(address, tuple) and address else address
            if not local(host):
                raise ConnectionRefusedError(f"edgeport runs offline: refused a network connection to {address!r}")
        elif event == "socket.getaddrinfo":
            if args and not local(args[0]):
                raise ConnectionRefusedError(f"edgeport runs offline: refused to resolve {args[0]!r}")

    sys.addaudithook(hook)


def write_result(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str], targets: dict[str, Callable[..., Any]], script: str) -> int:
    """Run ``targets[job["target"]](**job["kwargs"])`` and write its result; the exit code says how it went."""
    import faulthandler

    faulthandler.enable()
    if len(argv) != 2:
        sys.stderr.write(f"usage: {script} JOB.json RESULT.json\n")
        return 2
    job_path, result_path = (os.path.abspath(a) for a in argv)  # a job may chdir
    install_network_guard()
    start = time.perf_counter()
    try:
        with open(job_path) as fh:
            job = json.load(fh)
        fn = targets.get(job.get("target") or next(iter(targets)))
        if fn is None:
            raise JobError(f"unknown target {job.get('target')!r}", f"{script} does: {', '.join(targets)}")
        value = fn(**job.get("kwargs", {}))
        write_result(result_path, {"ok": True, "value": value})
        return 0
    except JobError as exc:
        write_result(result_path, {"ok": False, "error": {"type": "ConversionError", "message": exc.message,
                                                          "hint": exc.hint, "traceback": traceback.format_exc()}})
        return 1
    except BaseException as exc:  # noqa: BLE001 - everything becomes a reported result
        msg = " ".join(str(exc).split())[:1000] or type(exc).__name__
        write_result(result_path, {"ok": False, "error": {"type": type(exc).__name__, "message": msg,
                                                          "traceback": traceback.format_exc()}})
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.write(f"[{script}: {time.perf_counter() - start:.2f} s]\n")
        sys.stdout.flush()
