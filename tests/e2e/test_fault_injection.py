"""Faults from outside: a converter worker SIGKILLed mid-step, the CLI itself SIGKILLed mid-convert, a
disk that fills up, a runtime that aborts, segfaults or hangs during validate.

After each fault the output folder is either unfinished (no manifest.json) or finished (a manifest whose
every sha256 matches), the CLI (when it survives) says what happened in one line, and running the same
command again finishes with exit 0, reusing what the interrupted run completed.

Faults are injected for real where that is cheap and deterministic (SIGKILL of a worker or of the CLI
found through /proc, a tmpfs that is too small); runtime crashes use the ``EDGEPORT_FAULT`` hook of
:mod:`edgeport.worker` (``MATCH:KIND``; inert unless set).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeport.manifest import Manifest
from tests.conftest import REPO, run_cli

CONVERT = ("convert", "sample:tiny_cnn", "--to", "torchscript,onnx")


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("COLUMNS", "200")
    env.pop("EDGEPORT_DEBUG", None)
    env.pop("EDGEPORT_FAULT", None)
    env.update(extra or {})
    return env


def _popen(*args: str, tmpdir: Path) -> subprocess.Popen:
    tmpdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "edgeport", *args], env=_env({"TMPDIR": str(tmpdir)}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _workers(mentioning: str) -> list[tuple[int, str]]:
    """(pid, job target) of every live edgeport worker whose command line mentions ``mentioning``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        cmd = _cmdline(int(d.name))
        if "edgeport.worker" in cmd and any(mentioning in c for c in cmd):
            try:
                state = Path(f"/proc/{d.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state == "Z":
                    continue
                target = json.loads(Path(cmd[cmd.index("edgeport.worker") + 1]).read_text())["target"]
            except (OSError, ValueError, IndexError, KeyError):
                continue
            found.append((int(d.name), target))
    return found


def _wait_for(what: str, cond, timeout: float = 240.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _assert_consistent(out: Path) -> Manifest | None:
    """No manifest (an unfinished run), or a manifest whose every file is present with its sha256."""
    if not (out / "manifest.json").exists():
        return None
    m = Manifest.load(out)
    assert m.verify() == [], m.verify()
    return m


def _assert_rerun_completes(out: Path, tmpdir: Path, *args: str, reused: tuple[str, ...] = ()) -> Manifest:
    r = run_cli(*args, timeout=600, env={"TMPDIR": str(tmpdir)})
    assert r.code == 0, r.output
    m = _assert_consistent(out)
    assert m is not None
    assert {"torchscript", "onnx"} <= {a.name for a in m.artifacts}
    for step in reused:
        assert any(step in line and "reused" in line for line in r.output.splitlines()), f"{step} was not reused:\n{r.output}"
    assert not list(out.glob(".staging-*")), "a staging folder was left behind"
    return m


# ------------------------------------------------------------------------------------------ convert


def test_sigkill_of_a_converter_worker_is_a_reported_crash(tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    proc = _popen(*CONVERT, "-o", str(out), tmpdir=tmpdir)
    try:
        pid, _ = _wait_for("the ONNX export worker", lambda: next(iter(
            [w for w in _workers(str(tmpdir)) if w[1].startswith("edgeport.convert.onnx_export")]), None), proc=proc)
        time.sleep(0.5)  # mid-step: importing torch or exporting
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stdout + stderr  # a conversion crashed
    assert "Traceback" not in stdout + stderr
    failed = [line for line in stdout.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "onnx" in failed[0] and "SIGKILL" in failed[0], stdout
    m = _assert_consistent(out)
    assert m is not None and m.find("torchscript") is not None and m.find("onnx") is None
    assert any(a.target == "onnx" and a.status == "crash" for a in m.attempts)
    assert not list(out.glob(".staging-*"))
    _assert_rerun_completes(out, tmpdir, *CONVERT, "-o", str(out), reused=("reference", "torchscript"))


def test_sigkill_of_the_cli_mid_convert_leaves_an_unfinished_folder_and_no_orphans(tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    proc = _popen(*CONVERT, "-o", str(out), tmpdir=tmpdir)
    try:
        # kill once TorchScript is installed, while the ONNX export (which runs beside it) still runs
        _wait_for("TorchScript done while the ONNX export runs",
                  lambda: (out / "model.pt").exists()
                  and any(t.startswith("edgeport.convert.onnx_export") for _, t in _workers(str(tmpdir))), proc=proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    # the kernel takes the workers down with the CLI (PR_SET_PDEATHSIG): nothing keeps writing into OUT
    _wait_for("the workers to exit", lambda: not _workers(str(tmpdir)), timeout=5)
    assert not (out / "manifest.json").exists(), "a killed run must not look finished"
    assert (out / "model.pt").exists()  # finished before the kill, kept for the next run
    r = run_cli("validate", str(out), env={"TMPDIR": str(tmpdir)})
    assert r.code == 2 and "no manifest.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    _assert_rerun_completes(out, tmpdir, *CONVERT, "-o", str(out), reused=("reference", "torchscript"))


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs (root only); None on success, else why not."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "needs root and mount(8)"
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    return None if r.returncode == 0 else f"mount -t tmpfs failed: {r.stderr.strip()}"


# Free space left on a 1 MB tmpfs; the disk fills while the reference step writes its data (24), while the ONNX
# exporter writes (56: the step fails; 80: once made edgeport fall back to the legacy exporter and cache its file),
# or while edgeport writes the cache and manifest itself (84: once an internal error, exit 4).
@pytest.mark.parametrize("free_kb", [24, pytest.param(56, marks=pytest.mark.slow), pytest.param(80, marks=pytest.mark.slow), 84])
def test_a_full_disk_is_a_one_line_error_and_the_rerun_completes(tmp_path, free_kb):
    mnt, tmpdir = tmp_path / "mnt", tmp_path / "tmp"
    why = _mount_tmpfs(mnt, "1m")
    if why:
        pytest.skip(f"no small file system to fill: {why}")
    try:
        out = mnt / "out"
        filler = mnt / "filler"
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        filler.write_bytes(b"\0" * (free - free_kb * 1024))
        args = ("convert", "sample:tiny_cnn", "--to", "onnx", "-o", str(out))
        r = run_cli(*args, timeout=600, env={"TMPDIR": str(tmpdir)})
        assert r.code in (2, 3), r.output  # an output error (the folder cannot be written) or a failed step
        assert "Traceback" not in r.output and "internal error" not in r.output, r.output
        said = [line for line in r.output.splitlines() if "No space left" in line]
        assert said and len(r.stderr.strip().splitlines()) <= 1, r.output
        _assert_consistent(out)
        if out.exists():
            assert not list(out.glob(".staging-*")), "a staging folder was left behind"
        filler.unlink()
        m = _assert_rerun_completes_onnx(out, tmpdir, *args)
        # the full disk did not make edgeport switch to (and cache) the fallback exporter's file
        assert m.artifact("onnx").converter == "torch.onnx(dynamo)"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _assert_rerun_completes_onnx(out: Path, tmpdir: Path, *args: str) -> Manifest:
    r = run_cli(*args, timeout=600, env={"TMPDIR": str(tmpdir)})
    assert r.code == 0, r.output
    m = _assert_consistent(out)
    assert m is not None
    assert not list(out.glob(".staging-*"))
    return m


# ------------------------------------------------------------------------------------------ validate


@pytest.fixture(scope="module")
def validated_out(tmp_path_factory) -> Path:
    from tests.e2e.test_validate_cli import _build_out

    out = tmp_path_factory.mktemp("faults") / "out"
    _build_out(out)  # pytorch, torchscript and onnx artifacts of tiny_cnn, built in-process in seconds
    return out


@pytest.mark.parametrize("kind,status,word", [("abort", "crash", "SIGABRT"),
                                              pytest.param("segv", "crash", "SIGSEGV", marks=pytest.mark.slow),
                                              ("hang", "timeout", "timed out")])
def test_a_runtime_that_dies_or_hangs_is_one_row_and_the_others_report(validated_out, tmp_path, kind, status, word):
    out = tmp_path / "out"
    shutil.copytree(validated_out, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    j = tmp_path / "r.json"
    fault = '"runtime": "onnxruntime":' + kind  # the ONNX Runtime worker dies (or hangs) after running
    r = run_cli("validate", str(out), "--timeout", "8", "--json", str(j), env={"EDGEPORT_FAULT": fault})
    assert r.code == 3, r.output  # an artifact crashed or timed out
    assert "Traceback" not in r.output
    data = json.loads(j.read_text())
    by = {(x["artifact"], x["runtime"]): x for x in data["results"]}
    assert by[("onnx", "onnxruntime")]["status"] == status and word in by[("onnx", "onnxruntime")]["reason"]
    assert by[("torchscript", "torchscript")]["status"] == "pass"
    assert by[("pytorch", "torch_eager")]["status"] == "pass"
    lines = [line for line in r.stdout.splitlines() if "onnx on onnxruntime" in line and word in line]
    assert len(lines) == 1, r.stdout
    # validate writes only its own result (OUT/.edgeport/validate.json) and the report page: no artifact changes
    from edgeport.report.page import FILES_DIR, PAGE_NAME

    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in (PAGE_NAME, FILES_DIR, ".edgeport")}
    assert after == {k: v for k, v in before.items() if k != ".edgeport"}
    r = run_cli("validate", str(out))
    assert r.code == 0, r.output
