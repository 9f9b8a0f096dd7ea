"""The device profile: a fresh venv with only ``pip install <repo>[device]`` validates and benchmarks a bundle.

The venv gets a non-editable install of a copy of the repository (so pip's build leaves nothing in the
working tree) with only the ``device`` extra: numpy, ai-edge-litert, onnxruntime; no torch, no
TensorFlow, no matplotlib, no psutil. The bundle is made in the main environment from a converted
sample, then ``edgeport validate BUNDLE`` and ``edgeport bench BUNDLE`` run inside the device venv
with a clean environment (no PYTHONPATH pointing back at the repository). pip uses the local wheel
cache and index, so building the venv takes well under a minute here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.device

COPY = ("pyproject.toml", "README.md", "src", "sample_models")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".pytest_cache")


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "EDGEPORT_"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["COLUMNS"] = "200"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["TMPDIR"] = str(home)
    return env


@pytest.fixture(scope="module")
def device(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("device")
    src = root / "edgeport-src"
    src.mkdir()
    for name in COPY:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=IGNORE)
        else:
            shutil.copy2(p, src / name)
    venv = root / "venv"
    env = _clean_env(root)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{src}[device]"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    seconds = time.perf_counter() - t0
    print(f"\ndevice venv built in {seconds:.1f} s")
    shutil.rmtree(src)  # the venv must work from its own install, not from a source tree
    return {"root": root, "venv": venv, "env": env, "seconds": seconds}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bundle")
    r = run_cli("convert", "sample:tiny_cnn", "--to", "onnx,tflite", "--legacy-exporter", "-o", str(d / "out"))
    assert r.code == 0, r.output
    r = run_cli("bundle", str(d / "out"), "-o", str(d / "model.bundle.tar.gz"))
    assert r.code == 0, r.output
    return d / "model.bundle.tar.gz"


NOT_WIRED = ("edgeport validate does not open bundles yet: call edgeport.bundle.resolve_target(path) on its argument "
             "(cli/validate.py, before validate_dir)")


def _check_validate_opens_bundles(r: subprocess.CompletedProcess) -> None:
    assert not ("no manifest.json in" in r.stderr and ".tar.gz" in r.stderr), NOT_WIRED


def _run(device: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(device["venv"] / "bin" / args[0]), *args[1:]], cwd=device["root"], env=device["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_device_venv_has_no_torch_and_no_tensorflow(device):
    probe = ("import importlib.util as u, json\n"
             "mods = ['torch', 'tensorflow', 'tf_keras', 'jax', 'litert_torch', 'onnx2tf', 'matplotlib', 'psutil',\n"
             "        'numpy', 'onnxruntime', 'ai_edge_litert', 'edgeport']\n"
             "print(json.dumps({m: u.find_spec(m) is not None for m in mods}))\n")
    r = _run(device, "python", "-c", probe)
    assert r.returncode == 0, r.stderr
    have = json.loads(r.stdout)
    assert have == {"torch": False, "tensorflow": False, "tf_keras": False, "jax": False, "litert_torch": False,
                    "onnx2tf": False, "matplotlib": False, "psutil": False,
                    "numpy": True, "onnxruntime": True, "ai_edge_litert": True, "edgeport": True}
    for mod in ("torch", "tensorflow"):
        r = _run(device, "python", "-c", f"import {mod}")
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr
    r = _run(device, "python", "-c", "import edgeport, sys; print(edgeport.__file__)")
    assert str(device["venv"]) in r.stdout, r.stdout  # the installed copy, not the repository


def test_device_validates_a_bundle(device, bundle):
    out = device["root"] / "validate.json"
    r = _run(device, "edgeport", "validate", str(bundle), "--json", str(out))
    _check_validate_opens_bundles(r)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["passed"] is True
    rows = {(x["artifact"], x["runtime"]): x for x in doc["results"]}
    assert rows[("onnx", "onnxruntime")]["status"] == "pass" and rows[("tflite", "tflite")]["status"] == "pass"
    assert doc["reference"]["source"] == "reference.npz"  # the recorded outputs: there is no torch here


def test_device_benchmarks_a_bundle(device, bundle):
    out = device["root"] / "bench.json"
    plot = device["root"] / "bench.png"
    r = _run(device, "edgeport", "bench", str(bundle), "--runs", "30", "--warmup", "3", "--json", str(out), "--plot", str(plot))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "matplotlib is not installed" in r.stderr and not plot.exists()  # skipped with a note, not an error
    doc = json.loads(out.read_text())
    rows = {(x["artifact"], x["runtime"]): x for x in doc["results"]}
    assert set(rows) == {("onnx", "onnxruntime"), ("tflite", "tflite")}
    for x in rows.values():
        assert x["status"] == "ok" and 0 < x["latency_ms"]["p50"] <= x["latency_ms"]["p99"]
        assert x["init_ms"] > 0 and x["size_bytes"] > 0
        assert x["memory"]["source"] == "proc" and x["peak_rss_mb"] > 0  # /proc, since psutil is absent
    assert "ai-edge-litert" in rows[("tflite", "tflite")]["backend"]


def test_device_refuses_a_traversal_bundle(device, tmp_path):
    import io
    import tarfile

    evil = tmp_path / "evil.bundle.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    for command in ("bench", "validate"):
        r = _run(device, "edgeport", command, str(evil))
        _check_validate_opens_bundles(r)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "escapes the extraction folder" in r.stderr, (command, r.stderr)
    assert not (device["root"].parent / "escaped.txt").exists()
