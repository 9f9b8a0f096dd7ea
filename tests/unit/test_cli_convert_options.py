"""What ``edgeport convert`` and ``edgeport export`` hand to the pipeline when given no options: the defaults of
ConvertOptions and SourceOptions, from one place (the command is stopped before anything runs)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edgeport.api import SourceOptions
from edgeport.cli import convert as cli_convert
from edgeport.cli.app import app
from edgeport.convert.options import ConvertOptions


@pytest.fixture
def captured(monkeypatch):
    calls = []
    monkeypatch.setattr(cli_convert, "_run", lambda model, output, **kw: calls.append((model, output, kw)))
    return calls


def test_convert_without_options_uses_the_option_objects_defaults(captured, tmp_path):
    r = CliRunner().invoke(app, ["convert", "sample:tiny_cnn", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    ((model, output, kw),) = captured
    assert model == "sample:tiny_cnn" and output == tmp_path / "out"
    assert kw["opts"] == ConvertOptions() and kw["source"] == SourceOptions()
    assert kw["json_out"] is None and kw["wide"] is False


def test_export_is_convert_to_torchscript_and_onnx_with_the_given_options(captured, tmp_path):
    r = CliRunner().invoke(app, ["export", "sample:tiny_cnn", "-o", str(tmp_path / "out"), "--opset", "17", "--no-cache",
                                 "--seed", "4"])
    assert r.exit_code == 0, r.output
    ((_, _, kw),) = captured
    assert kw["opts"] == ConvertOptions(targets=("torchscript", "onnx"), opset=17, use_cache=False)
    assert kw["source"] == SourceOptions(seed=4)
