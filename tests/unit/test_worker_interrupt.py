"""Ctrl-C with steps in threads: every worker any thread waits on is killed at once, and its log says so."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from edgeport.worker import log_footer, run_in_worker, stop_workers_on_ctrl_c


def test_ctrl_c_stops_the_workers_other_threads_wait_on(tmp_path):
    logs = [tmp_path / f"step{i}.log" for i in range(2)]
    errors: list[BaseException] = []

    def step(log):
        try:
            run_in_worker("tests.unit.log_targets:sleepy", {"seconds": 60}, timeout=120, log_path=log)
        except BaseException as exc:  # noqa: BLE001 - what the thread saw
            errors.append(exc)

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with stop_workers_on_ctrl_c():
            threads = [threading.Thread(target=step, args=(log,)) for log in logs]
            for t in threads:
                t.start()
            while not all(p.is_file() and "sleeping" in p.read_text() for p in logs):
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            for t in threads:  # interrupted while joining, as a pipeline waiting on its steps is
                t.join()
    for t in threads:
        t.join(timeout=10)
    assert time.monotonic() - t0 < 30, "the workers ran on after Ctrl-C"
    assert len(errors) == 2 and all(isinstance(e, KeyboardInterrupt) for e in errors)
    assert all(log_footer(p)["status"] == "interrupted" for p in logs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
