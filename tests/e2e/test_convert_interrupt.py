"""Ctrl-C during convert: one line saying what was kept and that a re-run resumes, exit code 130, the
step's log closed with an "interrupted" line; the re-run reuses the finished steps. (The default run covers the
same logic without a conversion: tests/unit/test_convert_progress.py and test_worker_interrupt.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def _start(out: Path, fault: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["EDGEPORT_FAULT"] = fault
    env.pop("EDGEPORT_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "edgeport", "convert", "sample:tiny_cnn", "--to", "torchscript",
                             "-o", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, text: str, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{path} never said {text!r}")


@pytest.mark.slow
def test_ctrl_c_says_what_was_kept_and_exits_130(tmp_path):
    out = tmp_path / "out"
    proc = _start(out, "convert.torchscript:run:hang")  # the TorchScript worker does its work, then hangs
    log = out / ".edgeport" / "logs" / "torchscript-torchscript.log"
    _wait_for(log, ": finished", proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("interrupted during torchscript (torchscript) after ")
    assert f"kept reference in {out}; run the same command again to resume" in lines[0]
    assert "Traceback" not in stdout + stderr
    assert log.read_text().splitlines()[-1].startswith("-- edgeport: interrupted after ")
    assert (out / "reference.npz").is_file() and not (out / "model.pt").exists()


@pytest.mark.slow
def test_the_run_after_ctrl_c_resumes(tmp_path):
    out = tmp_path / "out"
    proc = _start(out, "convert.torchscript:run:hang")
    _wait_for(out / ".edgeport" / "logs" / "torchscript-torchscript.log", ": finished", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    r = run_cli("convert", "sample:tiny_cnn", "--to", "torchscript", "-o", str(out), timeout=600)
    assert r.code == 0, r.output
    assert "reference (torch_eager) reused" in r.stdout and (out / "model.pt").is_file()
