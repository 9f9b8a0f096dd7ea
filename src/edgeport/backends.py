"""Converter backends: which ones are usable here, and installing the isolated ones.

Most converters run in edgeport's own environment ("in-process" backends: torch.onnx, torchscript,
onnx2tf, litert-torch; they still run in a worker process, but with this interpreter). Some cannot:
onnx-tf needs TensorFlow 2.15 / Keras 2 and onnx 1.15, which cannot share an environment with
TensorFlow >= 2.16. Such "isolated" backends live in their own virtual environment under
``$EDGEPORT_HOME/backends/NAME`` (``EDGEPORT_HOME`` defaults to ``~/.cache/edgeport``), built by
``edgeport backends install NAME`` from a pinned requirement file shipped in the package
(``edgeport/requirements/NAME.txt``). edgeport is not installed there: the converter runs a standalone
script with that venv's interpreter (see :mod:`edgeport.convert.onnx_tf_backend`).

An isolated venv counts as installed only when its stamp file records the sha256 of the current
requirement file. The venv is built in a temporary sibling folder and renamed into place with the stamp
already inside, so an interrupted or failed install never looks installed, and a changed pin shows as
"not installed (pins changed)" until it is reinstalled.

Listing (:func:`status`) imports nothing heavy and starts no interpreter for the venvs edgeport
built: it reads the ``*.dist-info`` folder names of their site-packages. Only an interpreter given
through ``EDGEPORT_ONNX_TF_PYTHON`` is asked for its versions, in one short subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgeport.errors import ConversionError, UsageError

STAMP_NAME = "edgeport-backend.json"
INSTALL_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class ManagedEnv:
    """A virtual environment edgeport builds for converters that cannot share its own.

    - ``requirements``: the pinned file under edgeport/requirements/; with ``no_deps`` it is a complete
      lock (every distribution pinned) installed with ``pip --no-deps``, so nothing else is resolved.
    - ``min_python``: the interpreter version the venv needs; edgeport finds one (:func:`find_python`).
    - ``python_env`` names an interpreter to use instead of the managed venv; ``requirements_env`` another
      requirement file (tests, air-gapped mirrors).
    """

    name: str
    requirements: str
    python_env: str
    requirements_env: str
    smoke_import: str
    description: str
    min_python: tuple[int, int] = (3, 9)
    max_python: tuple[int, int] = (3, 99)
    no_deps: bool = False
    shown: tuple[str, ...] = ()  # distributions `edgeport backends` lists (all pinned ones when empty)


MANAGED: dict[str, ManagedEnv] = {
    "onnx-tf": ManagedEnv(
        name="onnx-tf",
        requirements="onnx-tf.txt",
        python_env="EDGEPORT_ONNX_TF_PYTHON",
        requirements_env="EDGEPORT_ONNX_TF_REQUIREMENTS",
        smoke_import="import onnx, numpy, tensorflow, onnx_tf.backend",
        description="legacy onnx/onnx-tensorflow: ONNX -> SavedModel -> TFLite (TF 2.15, keeps NCHW)",
        max_python=(3, 11),
    ),
    "onnx2tf": ManagedEnv(
        name="onnx2tf",
        requirements="onnx2tf.txt",
        python_env="EDGEPORT_ONNX2TF_PYTHON",
        requirements_env="EDGEPORT_ONNX2TF_REQUIREMENTS",
        smoke_import="import onnx2tf, onnx, onnxruntime, tensorflow",
        description="onnx2tf 2.x (flatbuffer_direct): ONNX -> .tflite in seconds, + SavedModel (Python >= 3.12)",
        min_python=(3, 12),
        no_deps=True,
        shown=("onnx2tf", "onnx", "onnxsim", "onnxruntime", "tensorflow-cpu", "numpy"),
    ),
}
# Kept for callers that predate the registry: the managed environments by name.
ISOLATED = MANAGED


def _converters() -> dict[str, Any]:
    from edgeport.convert import CONVERTERS

    return CONVERTERS


def names() -> list[str]:
    """Every converter backend, in registry order."""
    return list(_converters())


# ------------------------------------------------------------------------------------------ locations


def edgeport_home() -> Path:
    return Path(os.environ.get("EDGEPORT_HOME") or Path.home() / ".cache" / "edgeport").expanduser()


def backends_root() -> Path:
    return edgeport_home() / "backends"


def venv_dir(name: str) -> Path:
    return backends_root() / _isolated(name).name


def _venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def requirements_path(name: str) -> Path:
    """The pinned requirement file for ``name`` (package data), or the file its env var names."""
    b = _isolated(name)
    override = os.environ.get(b.requirements_env)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent / "requirements" / b.requirements


def _isolated(name: str) -> ManagedEnv:
    conv = _converters().get(name)
    env_name = conv.env if conv is not None and conv.env else name
    try:
        return MANAGED[env_name]
    except KeyError:
        if conv is not None:
            raise UsageError(f"backend {name!r} runs in edgeport's own environment and needs no install",
                             "install edgeport's dependencies instead: pip install -r requirements/main.txt") from None
        raise UsageError(f"unknown backend {name!r}", f"choose one of: {', '.join(MANAGED)}") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _requirement_names(path: Path) -> list[str]:
    """Distribution names pinned in a requirement file (options and comments skipped)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._\-]*", line)
        if m:
            out.append(m.group(0))
    return out


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------------------------------ status


def _read_stamp(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _site_versions(root: Path) -> dict[str, str]:
    """{canonical name: version} from the venv's ``*.dist-info`` folder names, without starting Python."""
    out: dict[str, str] = {}
    for info in root.glob("lib/python3*/site-packages/*.dist-info"):
        stem = info.name[: -len(".dist-info")]
        dist, sep, version = stem.partition("-")
        if sep:
            out[_canon(dist)] = version
    return out


def _pyvenv_version(root: Path) -> str | None:
    try:
        for line in (root / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return value.strip()
    except OSError:
        pass
    return None


_PROBE = (
    "import json, sys\n"
    "from importlib import metadata\n"
    "out = {'python': '.'.join(map(str, sys.version_info[:3]))}\n"
    "for n in sys.argv[1:]:\n"
    "    try: out[n] = metadata.version(n)\n"
    "    except metadata.PackageNotFoundError: pass\n"
    "print(json.dumps(out))\n"
)


def _probe_interpreter(python: str, dists: list[str]) -> dict[str, str] | None:
    """Versions of ``dists`` as seen by another interpreter (one short subprocess, no heavy imports)."""
    try:
        proc = subprocess.run([python, "-I", "-c", _PROBE, *dists], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def isolated_status(name: str) -> dict[str, Any]:
    """Status of one isolated backend: installed, its interpreter, pinned package versions, why not."""
    b = _isolated(name)
    req = requirements_path(name)
    wanted = list(b.shown) or _requirement_names(req)
    override = os.environ.get(b.python_env)
    entry: dict[str, Any] = {"name": name, "kind": "isolated", "description": b.description, "installed": False,
                             "python": None, "versions": {}, "location": None, "detail": ""}
    if override:
        entry["python"] = override
        entry["location"] = f"${b.python_env}"
        probed = _probe_interpreter(override, wanted)
        if probed is None:
            entry["detail"] = f"${b.python_env}={override} is not a working Python interpreter"
            return entry
        entry["versions"] = probed
        missing = [w for w in wanted if w not in probed]
        entry["installed"] = not missing
        entry["detail"] = f"missing there: {', '.join(missing)}" if missing else f"from ${b.python_env}"
        return entry
    root = venv_dir(name)
    entry["location"] = str(root)
    stamp = _read_stamp(root)
    python = _venv_python(root)
    if stamp is None or not python.exists():
        entry["detail"] = "not installed"
        return entry
    entry["python"] = str(python)
    found = _site_versions(root)
    versions = {"python": _pyvenv_version(root) or "?"}
    versions.update({w: found[_canon(w)] for w in wanted if _canon(w) in found})
    entry["versions"] = versions
    try:
        current = _sha256(req)
    except OSError:
        entry["detail"] = f"requirement file {req} is unreadable"
        return entry
    if stamp.get("requirements_sha256") != current:
        entry["detail"] = "pinned requirements changed since install: reinstall"
        return entry
    entry["installed"] = True
    entry["detail"] = f"installed {stamp.get('created', '')}".strip()
    return entry


def in_process_status(name: str) -> dict[str, Any]:
    from importlib import metadata

    b = _converters()[name]
    versions: dict[str, str] = {}
    missing: list[str] = []
    for req in b.requires:
        alts = req if isinstance(req, tuple) else (req,)
        got = False
        for dist in alts:
            try:
                versions[dist] = metadata.version(dist)
                got = True
                break
            except metadata.PackageNotFoundError:
                continue
        if not got:
            missing.append(" or ".join(alts))
    for dist in b.also_report:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {"name": name, "kind": "in-process", "description": b.description, "installed": not missing,
            "python": sys.executable, "versions": versions, "location": None,
            "detail": f"missing: {', '.join(missing)}" if missing else ""}


def status() -> list[dict[str, Any]]:
    """Every converter backend: {name, kind, installed, python, versions, location, detail, description}."""
    out = []
    for conv in _converters().values():
        entry = isolated_status(conv.env) if conv.env else in_process_status(conv.name)
        out.append({**entry, "name": conv.name, "description": conv.description})
    return out


def venv_bin(python: str | os.PathLike) -> Path:
    """The ``bin`` folder beside an interpreter (where a venv's console scripts, e.g. onnxsim, live)."""
    return Path(python).parent


def python_for(name: str) -> str:
    """The interpreter to run isolated backend ``name`` with; a one-line ConversionError when missing."""
    st = isolated_status(name)
    if st["installed"]:
        return str(st["python"])
    b = _isolated(name)
    if os.environ.get(b.python_env):
        raise ConversionError(f"the {name} backend is not usable: {st['detail']}",
                              f"fix or unset ${b.python_env}, or run: edgeport backends install {name}")
    if st["detail"].startswith("pinned requirements changed"):
        raise ConversionError(f"the {name} backend is out of date (its pinned requirements changed)",
                              f"run: edgeport backends install {name}")
    raise ConversionError(f"the {name} backend is not installed", f"run: edgeport backends install {name}")


# ------------------------------------------------------------------------------------------ install

Echo = Callable[[str], None]


def _default_echo(line: str) -> None:
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def _install_lock(root: Path):
    """One install per backend at a time: a second one refuses in one line instead of racing the rename."""
    import fcntl

    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another edgeport is installing the {root.name} backend right now",
                             "wait for it to finish, then run the command again") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_streamed(cmd: list[str], echo: Echo, *, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``cmd``, echoing its output line by line; return (exit code, last lines).

    A timer kills the process group at ``timeout`` even when the command prints nothing; Ctrl-C (or any
    exception) kills it too before re-raising, so no pip keeps writing into a folder being removed.
    """
    import threading

    tail: deque[str] = deque(maxlen=40)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, bufsize=1, env=env, start_new_session=True)

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            echo(line)
        rc = proc.wait()
    except BaseException:
        kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    if rc == -signal.SIGKILL and not timer.is_alive():
        tail.append(f"timed out after {timeout:.0f} s")
    return rc, "\n".join(tail)


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("ERROR:") or "Error" in ln.split(":", 1)[0]:
            return ln[:300]
    return lines[-1][:300] if lines else ""


def _relocate_scripts(root: Path, old: Path, new: Path) -> None:
    """Point console-script shebangs and activate scripts at the final venv path (venvs embed it)."""
    old_s, new_s = str(old), str(new)
    for f in (root / "bin").iterdir():
        if f.is_symlink() or not f.is_file():
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:1024] or old_s.encode() not in data:
            continue
        mode = f.stat().st_mode
        f.write_bytes(data.replace(old_s.encode(), new_s.encode()))
        os.chmod(f, mode)


def install(name: str, *, echo: Echo | None = None, force: bool = False, base_python: str | None = None) -> dict[str, Any]:
    """Build the isolated venv for ``name`` and return its status entry.

    Steps: ``python -m venv`` into a temporary sibling of the final folder, ``pip install -r`` the pinned
    requirement file (output streamed through ``echo``), a smoke import, then the stamp (requirement
    file sha256) and an atomic rename into place. Any failure or interruption removes the temporary
    folder, and the previous install (if any) stays as it was.
    """
    b = _isolated(name)
    echo = echo or _default_echo
    req = _install_requirements(b, name)
    root = venv_dir(name)
    current = isolated_status(name)
    if current["installed"] and not force:
        echo(f"{name} is already installed in {root} (use --force to rebuild)")
        return current
    base = base_python or find_python(b)
    root.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with _install_lock(root):
        if not force and isolated_status(name)["installed"]:  # another install finished since the check above
            echo(f"{name} is already installed in {root} (use --force to rebuild)")
            return isolated_status(name)
        for stale in root.parent.glob(f".{root.name}.tmp-*"):  # left by a killed install
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            _build_venv(b, name, base, req, tmp, root, echo)
            stamp = {"name": name, "requirements": str(req), "requirements_sha256": _sha256(req),
                     "base_python": base, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "install_seconds": round(time.monotonic() - start, 1)}
            (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
            _relocate_scripts(tmp, tmp, root)
            from edgeport.fsutil import install_path

            install_path(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    echo(f"{name} installed in {root} ({time.monotonic() - start:.0f} s)")
    return isolated_status(name)


def _install_requirements(b: ManagedEnv, name: str) -> Path:
    """The pinned requirement file to install from; a UsageError when edgeport is told to manage no venv."""
    if os.environ.get(b.python_env):
        raise UsageError(f"${b.python_env} is set, so edgeport uses that interpreter for {name} and manages no venv",
                         f"unset {b.python_env} to let edgeport install its own")
    req = requirements_path(name)
    if not req.is_file():
        raise UsageError(f"requirement file {req} for the {name} backend does not exist",
                         f"reinstall edgeport, or fix ${b.requirements_env}")
    return req


def _build_venv(b: ManagedEnv, name: str, base: str, req: Path, tmp: Path, root: Path, echo: Echo) -> None:
    """``python -m venv`` into ``tmp``, ``pip install -r req`` there, and a smoke import; ConversionError on a failed step."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(var, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    echo(f"creating a virtual environment with {base} in {root} ...")
    rc, tail = _run_streamed([base, "-m", "venv", str(tmp)], echo, timeout=600, env=env)
    if rc != 0:
        raise ConversionError(f"creating the {name} venv failed: {_last_error_line(tail) or f'exit code {rc}'}",
                              "check that this Python has the venv module (Debian: apt-get install python3-venv)")
    py = _venv_python(tmp)
    echo(f"installing {req.name} (pinned; TensorFlow is large, this takes a few minutes) ...")
    pip = [str(py), "-m", "pip", "install", "--no-input", "--prefer-binary", *(["--no-deps"] if b.no_deps else []),
           "-r", str(req)]
    rc, tail = _run_streamed(pip, echo, timeout=INSTALL_TIMEOUT_S, env=env)
    if rc != 0:
        raise ConversionError(f"installing the {name} backend failed: {_last_error_line(tail) or f'pip exit code {rc}'}",
                              "check the network access to the package index and the pins in " + str(req))
    echo("checking the installed backend imports ...")
    env_smoke = dict(env)
    env_smoke.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    rc, tail = _run_streamed([str(py), "-c", b.smoke_import], lambda _l: None, timeout=600, env=env_smoke)
    if rc != 0:
        raise ConversionError(f"the {name} backend installed but does not import: {_last_error_line(tail)}",
                              f"report this; the pins in {req} may need an update")


def _python_version(python: str) -> tuple[int, int] | None:
    """(major, minor) of an interpreter that really runs and has venv + ensurepip, else None."""
    code = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        major, minor = proc.stdout.strip().splitlines()[-1].split(".")
        return int(major), int(minor)
    except (ValueError, IndexError):
        return None


def _python_candidates(env: ManagedEnv) -> list[tuple[str, str]]:
    """(interpreter, where it was found), in the order they are tried."""
    cands: list[tuple[str, str]] = []
    given = os.environ.get("EDGEPORT_PYTHON312")
    if given:
        cands.append((given, "$EDGEPORT_PYTHON312"))
    if env.min_python <= sys.version_info[:2] <= env.max_python:
        cands.append((sys.executable, "this interpreter"))
    for minor in range(env.min_python[1], min(env.max_python[1], 20) + 1):
        found = shutil.which(f"python{env.min_python[0]}.{minor}")
        if found:
            cands.append((found, "PATH"))
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    for root in dict.fromkeys(r for r in roots if r):
        for exe in sorted(Path(root).glob("versions/3.*/bin/python"), key=_version_key):
            cands.append((str(exe), "pyenv"))
    uv = shutil.which("uv")
    if uv:
        try:
            proc = subprocess.run([uv, "python", "find", f"{env.min_python[0]}.{env.min_python[1]}"], capture_output=True,
                                  text=True, timeout=30, stdin=subprocess.DEVNULL)
            if proc.returncode == 0 and proc.stdout.strip():
                cands.append((proc.stdout.strip().splitlines()[-1], "uv python find"))
        except (OSError, subprocess.TimeoutExpired):
            pass
    return cands


def _version_key(exe: Path) -> tuple[int, ...]:
    """pyenv's versions/3.12.1/bin/python -> (3, 12, 1): the oldest that fits is the one measured most."""
    parts = re.findall(r"\d+", exe.parent.parent.name)
    return tuple(int(p) for p in parts) or (0,)


def find_python(env: ManagedEnv) -> str:
    """An interpreter that can build ``env``'s venv: $EDGEPORT_PYTHON312, this one, PATH, pyenv, uv.

    Candidates are run (a ``python3.12`` shim that refuses to run does not count). None found is a
    one-line UsageError that says how to get one.
    """
    if env.min_python <= sys.version_info[:2] <= env.max_python and "EDGEPORT_PYTHON312" not in os.environ:
        return sys.executable
    want = f"{env.min_python[0]}.{env.min_python[1]}"
    tried = []
    for exe, where in _python_candidates(env):
        version = _python_version(exe)
        tried.append(f"{exe} ({where}): {'%d.%d' % version if version else 'does not run'}")
        if version and env.min_python <= version <= env.max_python:
            return exe
        if where == "$EDGEPORT_PYTHON312":
            raise UsageError(f"$EDGEPORT_PYTHON312={exe} is not a working Python >= {want} with venv",
                             f"point EDGEPORT_PYTHON312 at a Python >= {want} interpreter, or unset it")
    raise UsageError(f"the {env.name} backend needs Python >= {want} and none was found (tried PATH, pyenv, uv)",
                     f"install one (e.g. `uv python install {want}`, `pyenv install {want}` or your OS package "
                     f"python{want}) or set EDGEPORT_PYTHON312=/path/to/python{want}")
