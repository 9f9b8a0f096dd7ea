"""The format and runtime registries are the one place those facts live: a format or runtime registered
here shows up in the CLI help, in validate's and bench's file detection, in the bundle's and the model
reference's suffix rules and in the stage order, with no other change."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from edgeport import formats
from edgeport.formats import FORMATS, Format
from edgeport.runtimes import RUNTIMES, Runtime, register, runtime_missing, runtimes_for, unregister

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_runtime():
    rt = register(Runtime("fake_rt", "tests.unit.runtime_targets:AbortSession", ("onnx", "fakefmt"), ("module_not_here_xyz",)))
    yield rt
    unregister(rt.name)


@pytest.fixture
def fake_format():
    fmt = formats.register(Format("fakefmt", "FakeFormat", suffixes=(".fake",), target=True, deployable=True, stage=5,
                                  probe="edgeport.runtimes.job:probe_onnx"))
    yield fmt
    formats.unregister(fmt.name)


def test_a_registered_runtime_appears_everywhere(fake_runtime):
    from edgeport.cli.common import runtime_help

    assert "fake_rt" in runtime_help()
    assert "fake_rt" in runtimes_for("onnx") and runtimes_for("onnx")[0] == "onnxruntime"
    assert runtime_missing("fake_rt") == "module_not_here_xyz is not installed"
    from edgeport.runtimes.job import session_class

    assert session_class("fake_rt").__name__ == "AbortSession"


def test_a_registered_format_appears_everywhere(fake_format, fake_runtime, tmp_path):
    from edgeport.bundle import is_bundle
    from edgeport.validate.pair import detect_format

    f = tmp_path / "m.fake"
    f.write_bytes(b"not a tar")
    assert formats.format_of(f) == "fakefmt" and detect_format(f) == "fakefmt"
    assert "fakefmt" in formats.targets() and formats.targets()[-1] == "fakefmt"  # chain order by stage
    assert "fakefmt" in formats.deployable() and ".fake" in formats.model_suffixes()
    assert not is_bundle(f)
    assert formats.stage("fakefmt") == 5 and formats.label("fakefmt") == "FakeFormat"


def test_a_format_no_runtime_loads_is_refused_by_validate(tmp_path):
    from edgeport.errors import UsageError
    from edgeport.validate.pair import detect_format

    f = tmp_path / "m.pt2"
    f.write_bytes(b"x")
    assert formats.format_of(f) == "exported_program" and not runtimes_for("exported_program")
    with pytest.raises(UsageError, match="cannot tell the format of m.pt2"):
        detect_format(f)


def test_saved_model_folder_is_found_by_its_marker(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert formats.format_of(tmp_path) == "saved_model"
    assert formats.format_of(tmp_path / "nothing") is None


def test_registries_are_consistent():
    for name, f in FORMATS.items():
        assert f.name == name
        if f.probe:
            module, _, attr = f.probe.partition(":")
            assert callable(getattr(importlib.import_module(module), attr)), f.probe
    for rt in RUNTIMES.values():
        assert set(rt.formats) <= set(FORMATS), rt
    assert [formats.stage(t) for t in formats.targets()] == sorted(formats.stage(t) for t in formats.targets())
    assert formats.stage("no_such_format") > max(f.stage for f in FORMATS.values())


def test_device_runtimes_are_the_device_extra():
    """A runtime marked for the device profile must be installable from the ``device`` extra alone."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["device"]
    dists = {d.split("==")[0].split(">=")[0].replace("-", "_").lower() for d in extra}
    device = [r for r in RUNTIMES.values() if r.device]
    assert {r.name for r in device} == {"onnxruntime", "tflite"}
    for r in device:
        assert r.modules[0].split(".")[0] in dists, (r.name, r.modules, dists)
    for r in RUNTIMES.values():
        if not r.device:
            assert not any(m.split(".")[0] in dists for m in r.modules), r
    # a bundle carries exactly what the device profile can run
    assert set(formats.deployable()) == {f for r in device for f in r.formats}
