"""Shared state under concurrency: two edgeport processes on one output folder, two installs of one
managed environment, and a SIGKILL during an install.

One writer at a time: the second refuses in one line (exit 2) and touches nothing of the first's work;
the first ends with a complete folder (every manifest sha256 matches) that a re-run reuses. An install
killed mid-way leaves nothing that passes as installed, and the next install cleans up and succeeds.

The install tests use a managed environment registered for the test (its requirement file pins nothing,
so pip installs nothing and needs no network; its smoke import is plain Python): they run the real
venv, lock, stamp and rename code of :mod:`edgeport.backends` in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edgeport import backends
from edgeport.errors import UsageError
from edgeport.outdir import lock as folder_lock
from tests.conftest import REPO, run_cli
from tests.e2e.test_fault_injection import CONVERT, _assert_consistent, _assert_rerun_completes, _cmdline, _env, _wait_for

BUSY = "another edgeport command is writing to"


def _start(*args: str, tmpdir: Path) -> subprocess.Popen:
    tmpdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "edgeport", *args], env=_env({"TMPDIR": str(tmpdir)}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def _assert_refused(code: int, stdout: str, stderr: str, out: Path) -> None:
    assert code == 2, stdout + stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and BUSY in lines[0] and str(out) in lines[0], stderr
    assert "Traceback" not in stdout + stderr


# ------------------------------------------------------------------------------------------ output folder


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime)} of every file under ``root`` but the lock file (opened by every writer)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and p.name != "lock"}


def test_two_converts_into_one_folder_one_refuses_and_the_other_finishes(tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    args = (*CONVERT, "--legacy-exporter", "-o", str(out))
    procs = [_start(*args, tmpdir=tmpdir / str(i)) for i in range(2)]  # at once, into a folder neither has made
    results = [_finish(p, timeout=300) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], [r[0] for r in results]
    loser = next(r for r in results if r[0] == 2)
    _assert_refused(*loser, out)
    m = _assert_consistent(out)  # the refused run removed nothing of the winner's
    assert m is not None and {"torchscript", "onnx"} <= {a.name for a in m.artifacts}
    assert not list(out.glob(".staging-*"))
    _assert_rerun_completes(out, tmpdir, *args, reused=("reference", "torchscript", "onnx"))


def test_convert_and_quantize_on_one_folder_exclude_each_other(tmp_path):
    """While one command holds the folder, the other refuses in one line and leaves the holder's files alone
    (a convert that cleaned '.staging-*' before taking the lock used to delete quantize's work in progress)."""
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    r = run_cli("convert", "sample:tiny_cnn", "--to", "onnx", "--legacy-exporter", "-o", str(out),
                timeout=300, env={"TMPDIR": str(tmpdir)})
    assert r.code == 0, r.output
    before = _files(out)
    with folder_lock(out):  # what quantize holds while it writes
        busy = out / ".staging-held"
        (busy / "variant").mkdir(parents=True)
        code, stdout, stderr = _finish(_start("convert", "sample:tiny_cnn", "--to", "onnx", "--legacy-exporter",
                                              "-o", str(out), tmpdir=tmpdir), timeout=120)
        _assert_refused(code, stdout, stderr, out)
        assert (busy / "variant").is_dir(), "convert removed a staging folder it did not own"
        assert (out / "manifest.json").is_file()
        code, stdout, stderr = _finish(_start("quantize", str(out), "--modes", "ort-dynamic", tmpdir=tmpdir), timeout=120)
        _assert_refused(code, stdout, stderr, out)
        busy.rename(tmp_path / "held")
    assert _files(out) == before
    assert _assert_consistent(out) is not None


# ------------------------------------------------------------------------------------------ managed environments

TEST_ENV = "edgeport-test-env"


@pytest.fixture
def test_env(tmp_path, monkeypatch):
    """A managed environment that installs offline in seconds, under an empty EDGEPORT_HOME."""
    req = tmp_path / "req.txt"
    req.write_text("# nothing to install: the test exercises venv, lock, stamp and rename\n")
    monkeypatch.setenv("EDGEPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGEPORT_TEST_ENV_REQUIREMENTS", str(req))
    monkeypatch.delenv("EDGEPORT_TEST_ENV_PYTHON", raising=False)

    def register(smoke: str) -> backends.ManagedEnv:
        env = backends.ManagedEnv(name=TEST_ENV, requirements="none.txt", python_env="EDGEPORT_TEST_ENV_PYTHON",
                                  requirements_env="EDGEPORT_TEST_ENV_REQUIREMENTS", smoke_import=smoke,
                                  description="test environment")
        monkeypatch.setitem(backends.MANAGED, TEST_ENV, env)
        return env

    return register


def test_two_installs_at_once_one_builds_the_other_refuses(test_env):
    test_env("import json")
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = backends.install(TEST_ENV, echo=lambda _l: None)
        except UsageError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "an install did not finish in 180 s"
    refused = [r for r in results if isinstance(r, UsageError)]
    built = [r for r in results if isinstance(r, dict)]
    assert len(refused) == 1 and len(built) == 1, results
    assert f"another edgeport is installing the {TEST_ENV} backend" in refused[0].one_line()
    assert "\n" not in refused[0].one_line()
    st = backends.isolated_status(TEST_ENV)
    assert st["installed"] is True and built[0]["installed"] is True, st
    run = subprocess.run([st["python"], "-c", "import json, sys; print(json.dumps(sys.prefix))"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and str(backends.venv_dir(TEST_ENV)) in run.stdout, run
    assert not list(backends.backends_root().glob(f".{TEST_ENV}.tmp-*"))
    t0 = time.monotonic()
    again = backends.install(TEST_ENV, echo=lambda _l: None)  # installed: nothing rebuilt
    assert again["installed"] is True and time.monotonic() - t0 < 5


_KILLED_INSTALL = textwrap.dedent("""
    import sys
    from edgeport import backends
    backends.MANAGED[sys.argv[1]] = backends.ManagedEnv(
        name=sys.argv[1], requirements="none.txt", python_env="EDGEPORT_TEST_ENV_PYTHON",
        requirements_env="EDGEPORT_TEST_ENV_REQUIREMENTS", smoke_import=sys.argv[2], description="test")
    backends.install(sys.argv[1])
""")


def _smoke_process(code: str, under: Path) -> int | None:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            cmd = _cmdline(int(d.name))
            if code in cmd and cmd and cmd[0].startswith(str(under)):
                return int(d.name)
    return None


def test_sigkill_during_an_install_leaves_nothing_that_passes_as_installed(test_env, tmp_path):
    slow = "import time; time.sleep(60)"
    test_env(slow)
    env = _env({k: os.environ[k] for k in ("EDGEPORT_HOME", "EDGEPORT_TEST_ENV_REQUIREMENTS")})
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_INSTALL, TEST_ENV, slow], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = backends.backends_root()
    smoke = None
    try:
        smoke = _wait_for("the smoke import of the install", lambda: _smoke_process(slow, root), timeout=120, proc=proc)
        proc.send_signal(signal.SIGKILL)  # pip is done, the stamp not yet written: the worst moment
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if smoke is not None:
            os.kill(smoke, signal.SIGKILL)  # the smoke import runs in a session of its own
        proc.stderr.close()
    st = backends.isolated_status(TEST_ENV)
    assert st["installed"] is False and st["detail"] == "not installed", st
    final = backends.venv_dir(TEST_ENV)
    assert not (final / backends.STAMP_NAME).exists()
    stale = list(root.glob(f".{TEST_ENV}.tmp-*"))
    assert len(stale) == 1 and (stale[0] / "bin" / "python").exists(), stale  # the half-built venv, unstamped
    with pytest.raises(backends.ConversionError) as exc:
        backends.python_for(TEST_ENV)
    assert "not installed" in exc.value.one_line() and f"edgeport backends install {TEST_ENV}" in exc.value.one_line()

    test_env("import json")
    st = backends.install(TEST_ENV, echo=lambda _l: None)
    assert st["installed"] is True, st
    assert not list(root.glob(f".{TEST_ENV}.tmp-*")), "the next install did not clean the killed one's folder"
    assert (final / backends.STAMP_NAME).is_file()
    run = subprocess.run([str(backends._venv_python(final)), "-c", "import json"], timeout=60)
    assert run.returncode == 0
