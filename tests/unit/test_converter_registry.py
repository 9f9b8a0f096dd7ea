"""The converter registry is the one place a converter is described; order, help and listing derive from it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from edgeport import backends
from edgeport.convert import CONVERTERS, Converter, register, tf_converters, unregister
from edgeport.convert.plan import _converter_order
from edgeport.errors import UsageError


def test_auto_order_puts_the_fast_tier_first():
    order = _converter_order(("saved_model", "tflite"), "auto", True)
    assert order["tflite"] == ["onnx2tf", "litert-torch", "onnx2tf-1", "onnx-tf"]
    assert order["saved_model"] == ["onnx2tf", "onnx2tf-1", "onnx-tf"]
    assert [c.name for c in tf_converters("tflite") if c.fast] == ["onnx2tf", "litert-torch"]


def test_auto_order_drops_what_cannot_run():
    from_onnx = _converter_order(("tflite",), "auto", torch_source=False)
    assert "litert-torch" not in from_onnx["tflite"]
    no_managed = _converter_order(("tflite",), "auto", True, available=lambda c: c.env is None)
    assert no_managed["tflite"] == ["litert-torch", "onnx2tf-1"]


@pytest.mark.parametrize("converter,targets,torch_source,text", [
    ("nope", ("tflite",), True, "unknown converter 'nope'"),
    ("litert-torch", ("tflite",), False, "converts from PyTorch"),
    ("litert-torch", ("saved_model", "tflite"), True, "makes no SavedModel"),
])
def test_explicit_order_errors_are_one_line(converter, targets, torch_source, text):
    with pytest.raises(UsageError) as info:
        _converter_order(targets, converter, torch_source)
    line = info.value.one_line()
    assert text in line and "\n" not in line
    if converter == "nope":  # the hint lists the registry's converters
        assert all(n in line for n in ("onnx2tf", "onnx2tf-1", "litert-torch", "onnx-tf"))


def test_explicit_list_keeps_the_users_order():
    order = _converter_order(("saved_model", "tflite"), "onnx2tf-1,litert-torch,onnx2tf", True)
    assert order == {"saved_model": ["onnx2tf-1", "onnx2tf"], "tflite": ["onnx2tf-1", "litert-torch", "onnx2tf"]}


@pytest.fixture
def fake_converter():
    conv = register(Converter("fake-tfl", "tests.unit.worker_targets:echo", "onnx", ("tflite",),
                              "a converter registered by a test", auto=5, fast=True))
    yield conv
    unregister(conv.name)


def test_a_registered_converter_appears_everywhere(fake_converter, monkeypatch, tmp_path):
    """One registry entry: help, `edgeport backends`, auto's order and --converter validation all see it."""
    from edgeport.cli.convert import _converter_help

    monkeypatch.setenv("EDGEPORT_HOME", str(tmp_path))
    assert "fake-tfl" in _converter_help()
    assert "fake-tfl" in [e["name"] for e in backends.status()]
    assert _converter_order(("tflite",), "auto", True)["tflite"][0] == "fake-tfl"
    assert _converter_order(("tflite",), "fake-tfl,onnx2tf", True)["tflite"] == ["fake-tfl", "onnx2tf"]
    assert "fake-tfl" not in _converter_order(("saved_model",), "auto", True)["saved_model"]


def test_register_refuses_a_bad_entry():
    with pytest.raises(ValueError, match="source"):
        register(Converter("bad", "m:f", "keras", ("tflite",), "x"))
    with pytest.raises(ValueError, match="unknown targets"):
        register(Converter("bad", "m:f", "onnx", ("coreml",), "x"))
    assert "bad" not in CONVERTERS


def test_managed_converters_name_their_environment():
    for conv in CONVERTERS.values():
        if conv.env:
            assert conv.env in backends.MANAGED
            assert (Path(backends.__file__).parent / "requirements" / backends.MANAGED[conv.env].requirements).is_file()


# ------------------------------------------------------------------ finding a Python >= 3.12
REAL_PYENV = Path(os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv"))  # before any fixture moves HOME
def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """No pyenv, no uv, PATH with only a python3.12 shim that refuses to run (as pyenv's shim does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.delenv("EDGEPORT_PYTHON312", raising=False)
    return bin_dir


def test_no_python312_is_one_line_with_the_fix(bare):
    if sys.version_info[:2] >= (3, 12):
        pytest.skip("this interpreter is itself >= 3.12")
    with pytest.raises(UsageError) as info:
        backends.find_python(backends.MANAGED["onnx2tf"])
    line = info.value.one_line()
    assert "needs Python >= 3.12 and none was found" in line and "EDGEPORT_PYTHON312" in line and "\n" not in line


def test_explicit_interpreter_must_really_run(bare, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPORT_PYTHON312", str(_script(tmp_path / "broken", "exit 1")))
    with pytest.raises(UsageError, match="is not a working Python >= 3.12"):
        backends.find_python(backends.MANAGED["onnx2tf"])


def test_pyenv_versions_are_found(bare, tmp_path, monkeypatch):
    """A real interpreter >= 3.12 laid out as pyenv does is found, the shim on PATH skipped."""
    real = next((p for p in sorted(REAL_PYENV.glob("versions/3.1[2-9]*/bin/python"))), None)
    if real is None and sys.version_info[:2] < (3, 12):
        pytest.skip("no Python >= 3.12 on this machine")
    real = real or Path(sys.executable)
    fake_root = tmp_path / "pyenv"
    (fake_root / "versions" / "3.12.9" / "bin").mkdir(parents=True)
    (fake_root / "versions" / "3.12.9" / "bin" / "python").symlink_to(real)
    monkeypatch.setenv("PYENV_ROOT", str(fake_root))
    assert backends.find_python(backends.MANAGED["onnx2tf"]) == str(fake_root / "versions" / "3.12.9" / "bin" / "python")
