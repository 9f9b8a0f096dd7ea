"""The worker turns crashes, hangs and errors into results, and refuses network access."""

import os
import sys
import time

from edgeport.errors import ModelError
from edgeport.worker import CRASH, ERROR, OK, TIMEOUT, run_in_worker

T = "tests.unit.worker_targets"


def _env():
    return {"PYTHONPATH": os.pathsep.join(sys.path)}


def test_ok_value_roundtrip():
    r = run_in_worker(f"{T}:add", {"a": 2, "b": 40}, timeout=60, env=_env())
    assert r.status == OK and r.value == 42


def test_exception_is_error_with_reason():
    r = run_in_worker(f"{T}:boom", {}, timeout=60, env=_env())
    assert r.status == ERROR
    assert "ValueError" in r.reason() and "kaboom" in r.reason()
    assert r.user_error() is None


def test_edgeport_error_crosses_the_process_boundary():
    r = run_in_worker(f"{T}:user_error", {}, timeout=60, env=_env())
    err = r.user_error()
    assert isinstance(err, ModelError) and err.exit_code == 2 and "bad model" in err.message


def test_abort_is_crash_with_signal():
    r = run_in_worker(f"{T}:abort", {}, timeout=60, env=_env())
    assert r.status == CRASH and r.signal == "SIGABRT"
    assert "SIGABRT" in r.reason()


def test_segfault_is_crash():
    r = run_in_worker(f"{T}:segfault", {}, timeout=60, env=_env())
    assert r.status == CRASH and r.signal == "SIGSEGV"


def test_hang_is_timeout_and_the_group_is_killed(tmp_path):
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    r = run_in_worker(f"{T}:hang_with_child", {"pidfile": str(pidfile)}, timeout=3, env=_env())
    assert r.status == TIMEOUT
    assert time.monotonic() - t0 < 30
    child = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    if alive:  # a zombie reaped by init still answers kill(0); check its state
        with open(f"/proc/{child}/stat") as fh:
            alive = fh.read().split()[2] != "Z"
    assert not alive, "the grandchild survived the timeout"


def test_network_is_refused_in_workers():
    r = run_in_worker(f"{T}:connect", {"host": "example.com", "port": 80}, timeout=60, env=_env())
    assert r.status == ERROR
    assert "offline" in r.reason()


def test_exit_without_result_is_crash():
    r = run_in_worker(f"{T}:hard_exit", {}, timeout=60, env=_env())
    assert r.status == CRASH and r.returncode == 7


