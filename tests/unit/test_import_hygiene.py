"""`edgeport --help`, `edgeport samples` and `import edgeport.cli` load neither torch nor TensorFlow."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "tensorflow", "onnx", "onnxruntime", "jax", "litert_torch", "onnx2tf", "numpy")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return env


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, check=True)
    return __import__("json").loads(out.stdout.strip().splitlines()[-1])


def test_import_cli_loads_nothing_heavy():
    assert _loaded_after("import edgeport.cli.app") == []


@pytest.mark.parametrize("argv", [["--help"], ["samples"], ["convert", "--help"], ["--version"]])
def test_light_commands_load_nothing_heavy(argv):
    code = ("import sys\nsys.argv = ['edgeport'] + %r\nfrom edgeport.cli.app import app\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n") % (argv,)
    assert _loaded_after(code) == []


def test_samples_lists_every_sample():
    import sample_models

    out = subprocess.run([sys.executable, "-m", "edgeport", "samples"], env={**_env(), "COLUMNS": "200"},
                         capture_output=True, text=True, check=True).stdout
    for name in sample_models.SAMPLES:
        assert name in out
    assert "mobile_cnn (default)" in out


def test_every_module_imports():
    """Polygraphy's habit: every module of the package imports in the full environment."""
    import edgeport

    failures = []
    for mod in pkgutil.walk_packages(edgeport.__path__, "edgeport."):
        if mod.name.rsplit(".", 1)[-1] in STANDALONE_JOBS:
            continue  # standalone scripts run by a managed environment's interpreter: see the test below
        try:
            importlib.import_module(mod.name)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{mod.name}: {type(exc).__name__}: {exc}")
    assert not failures, failures


STANDALONE_JOBS = ("_onnx_tf_job", "_onnx2tf2_job")


@pytest.mark.parametrize("name", STANDALONE_JOBS)
def test_standalone_job_scripts_run_as_scripts(name):
    """A managed venv has no edgeport: the script must find its protocol module beside it, stdlib only."""
    import edgeport.convert

    script = Path(edgeport.convert.__file__).with_name(f"{name}.py")
    proc = subprocess.run([sys.executable, "-S", str(script)], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 2, proc.stderr
    assert f"usage: {name}.py JOB.json RESULT.json" in proc.stderr
