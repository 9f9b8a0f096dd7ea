"""Shared fixtures: run the CLI as a user does, in a subprocess, and read what it left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900) -> CliResult:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
    full_env.setdefault("COLUMNS", "200")
    full_env.pop("EDGEPORT_DEBUG", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "edgeport", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# ------------------------------------------------------------------ reliability figures of this run
def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def pytest_runtest_logreport(report):
    from tests.figures import add

    if report.when != "call":
        return
    mod = _module(report.nodeid)
    if mod == "test_fault_injection.py":
        add("faults injected")
        add("faults survived", int(report.passed))
    elif mod == "test_fuzz_parsers.py":
        add("fuzz seconds", report.duration)
        add("fuzz tests failed", int(report.failed))


def pytest_terminal_summary(terminalreporter):
    from tests.figures import FIGURES as f

    if not f:
        return
    lines = []
    if f["bad inputs tried"]:
        lines.append(f"bad inputs: {int(f['bad inputs tried'])} tried, {int(f['bad inputs handled'])} handled "
                     "(one-line error, documented exit code, nothing left behind)")
    if f["faults injected"]:
        lines.append(f"faults injected: {int(f['faults injected'])}, survived: {int(f['faults survived'])}")
    if f["fuzz examples"]:
        lines.append(f"fuzzing: {int(f['fuzz examples'])} generated inputs in {f['fuzz seconds']:.1f} s, "
                     f"{int(f['fuzz tests failed'])} fuzz tests failed")
    if lines:
        terminalreporter.section("edgeport reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


# ------------------------------------------------------------------ the fast tier
# `make test-fast` (and the first stage of `make test`) runs tests/unit except what builds TensorFlow
# models, trains a model or installs a venv: no conversion, no heavy subprocess. Listed here, in one
# place, with the reason; everything listed still runs in the second stage of `make test`.
HEAVY_UNIT = {
    "test_architectures.py": "builds eight full-size architectures and perturbs every tensor",
    "test_tflite_delegation.py": "builds .tflite models with TensorFlow",
    "test_tflite_inspect.py": "builds .tflite models with TensorFlow",
    "test_sample_models.py::test_every_tensor_is_live[mobile_cnn]": "one forward per parameter tensor of a CNN",
    "test_sample_models.py::test_digits_cnn_training_reproduces_the_committed_weights": "trains the digits sample",
    "test_backends.py::test_failed_install_leaves_nothing_installed": "creates a venv and runs pip",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if path.parent.name != "unit":
            continue
        name = item.nodeid.split("/")[-1]
        if path.name in HEAVY_UNIT or name in HEAVY_UNIT:
            continue
        item.add_marker(pytest.mark.fast)
