"""Reports of a parity run: JSON schema, JUnit XML, Markdown, console; exit codes and verdicts."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgeport.validate.metrics import Tolerance, compare_output
from edgeport.validate.results import SCHEMA, TargetResult, ValidationReport
from edgeport.validate.report import junit_tree, markdown, print_console, write_json, write_junit, write_markdown

REF = np.linspace(-3, 3, 20).reshape(2, 10)


def _row(artifact: str, runtime: str, status: str, err: float = 0.0, reason: str = "", fmt: str = "onnx") -> TargetResult:
    r = TargetResult(artifact, fmt, "fp32", runtime, status, parent="pytorch", reason=reason, seconds=0.5)
    if status in ("pass", "fail"):
        r.outputs = [compare_output("logits", REF, REF + err, Tolerance()), compare_output("embedding", REF, REF, Tolerance())]
        r.latency_ms = 0.25
    if status == "crash":
        r.log_tail = "Fatal Python error: Aborted\n"
    return r


def _report(*rows: TargetResult) -> ValidationReport:
    ref = _row("pytorch", "torch_eager", "pass", fmt="pytorch")
    ref.role = "reference"
    return ValidationReport(root="out", reference={"artifact": "pytorch", "runtime": "torch_eager", "source": "run"},
                            feeds={"source": "random (seed 0, 2 samples)", "count": 2}, results=[ref, *rows], seconds=3.2)


def test_rows_are_consistent_with_their_metrics():
    ok, bad = _row("onnx", "onnxruntime", "pass"), _row("onnx", "onnxruntime", "fail", err=0.01)
    assert all(ok.outputs) and not bad.outputs[0] and bad.outputs[1]
    assert bad.failing_outputs()[0].name == "logits"


@pytest.mark.parametrize("statuses,code,passed", [
    (["pass", "pass"], 0, True),
    (["pass", "fail"], 1, False),
    (["fail", "crash"], 3, False),
    (["pass", "timeout"], 3, False),
    (["pass", "error"], 3, False),
    (["pass", "skipped"], 0, True),
])
def test_exit_codes(statuses, code, passed):
    rows = [_row(f"a{i}", "onnxruntime", s, err=0.01 if s == "fail" else 0.0, reason=s) for i, s in enumerate(statuses)]
    rep = _report(*rows)
    assert rep.exit_code == code
    assert bool(rep) is passed and rep.passed is passed


def test_nothing_ran_is_a_failure():
    rep = ValidationReport(root="out", reference={}, feeds={}, results=[_row("tflite", "tflite", "skipped", reason="x")])
    assert not rep and rep.exit_code == 3 and "nothing could be validated" in rep.summary()


def test_summary_names_artifact_and_output():
    rep = _report(_row("tflite", "tflite", "fail", err=0.5), _row("saved_model", "tensorflow", "crash", reason="process crashed"))
    s = rep.summary()
    assert "tflite/tflite (logits)" in s and "saved_model/tensorflow [crash]" in s and "embedding" not in s


def test_json_schema(tmp_path):
    rep = _report(_row("onnx", "onnxruntime", "fail", err=0.01), _row("tflite", "tflite", "crash", reason="process crashed (killed by SIGSEGV)"))
    path = tmp_path / "r.json"
    write_json(rep, path)
    data = json.loads(path.read_text())  # strict JSON: inf/nan are strings
    assert data["schema"] == SCHEMA and data["passed"] is False and data["exit_code"] == 3
    rows = {(r["artifact"], r["runtime"]): r for r in data["results"]}
    assert rows[("onnx", "onnxruntime")]["status"] == "fail"
    assert rows[("tflite", "tflite")]["status"] == "crash" and "SIGSEGV" in rows[("tflite", "tflite")]["reason"]
    assert "log_tail" in rows[("tflite", "tflite")]
    out = {o["name"]: o for o in rows[("onnx", "onnxruntime")]["outputs"]}
    assert out["logits"]["passed"] is False and out["logits"]["metrics"]["max_abs"] == pytest.approx(0.01)
    for key in ("max_abs", "max_rel", "mean_abs", "rmse", "cosine", "snr_db", "top1", "top5"):
        assert key in out["logits"]["metrics"], key
    assert out["embedding"]["metrics"]["snr_db"] == "inf"
    assert out["logits"]["tolerance"] == {"atol": 1e-4, "rtol": 1e-3, "statistic": "elementwise"}
    assert rows[("pytorch", "torch_eager")]["role"] == "reference"


def test_junit_one_testcase_per_row(tmp_path):
    rows = [_row("onnx", "onnxruntime", "pass"), _row("tflite", "tflite", "fail", err=1.0),
            _row("saved_model", "tensorflow", "timeout", reason="timed out after 300 s"),
            _row("torchscript", "torchscript", "skipped", reason="torch is not installed")]
    rep = _report(*rows)
    path = tmp_path / "r.xml"
    write_junit(rep, path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(rep.results) == 5
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("errors") == "1" and suite.get("skipped") == "1"
    by = {c.get("name"): c for c in cases}
    assert set(by) == {"pytorch on torch_eager", "onnx on onnxruntime", "tflite on tflite", "saved_model on tensorflow",
                       "torchscript on torchscript"}
    fail = by["tflite on tflite"].find("failure")
    assert fail is not None and "logits" in fail.get("message") and "values outside" in fail.get("message")
    assert by["saved_model on tensorflow"].find("error").get("type") == "timeout"
    assert by["torchscript on torchscript"].find("skipped").get("message") == "torch is not installed"
    assert by["onnx on onnxruntime"].find("failure") is None and by["onnx on onnxruntime"].find("error") is None
    assert junit_tree(rep).getroot().tag == "testsuites"


def test_markdown(tmp_path):
    rep = _report(_row("onnx", "onnxruntime", "pass"), _row("tflite", "tflite", "fail", err=1.0))
    rep.localizations = [{"reference": "onnx", "candidate": "tflite", "message": "first divergence at ONNX node node_Conv_41 [Conv]"}]
    text = markdown(rep)
    assert text.startswith("### ❌ **edgeport parity: FAILED**")
    assert "| ❌ | `tflite` | tflite | fp32 | `logits` ❌ |" in text
    assert "node_Conv_41" in text and "**Failures**" in text
    # failures are listed first
    assert text.index("`tflite`") < text.index("`onnx`")
    write_markdown(rep, tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == text
    assert markdown(_report(_row("onnx", "onnxruntime", "pass"))).startswith("### ✅")


def test_console():
    from rich.console import Console

    buf = io.StringIO()
    rep = _report(_row("onnx", "onnxruntime", "fail", err=1.0), _row("tflite", "tflite", "crash", reason="process crashed (killed by SIGABRT)"))
    print_console(rep, Console(file=buf, width=220, force_terminal=False))
    out = buf.getvalue()
    assert "onnx on onnxruntime, output logits" in out and "SIGABRT" in out and "parity FAILED" in out
