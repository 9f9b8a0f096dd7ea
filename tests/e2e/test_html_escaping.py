"""Model-provided strings stay text in every HTML report edgeport writes.

An artifact name, a model source, a layer or ONNX node name, an error reason: all come from files a user
may have been handed. Each HTML writer gets ``<script>alert(1)</script>`` in every such field, through the
real CLI (bench --html, quantize's report.html) and through the renderers with a crafted report (the
per-layer table and keep-float lists, which need a SavedModel sweep to appear for real).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _assert_escaped(html: str) -> None:
    assert EVIL not in html and "<script" not in html.lower(), "a model-provided string was written as HTML"
    assert ESCAPED in html, "the string is missing from the report"


@pytest.fixture(scope="module")
def evil_out(tmp_path_factory) -> Path:
    """tiny_cnn as pytorch/torchscript/onnx, with the ONNX artifact and the model source renamed to EVIL."""
    from tests.e2e.test_validate_cli import _build_out

    out = tmp_path_factory.mktemp("html") / "out"
    _build_out(out)
    p = out / "manifest.json"
    data = json.loads(p.read_text())
    data["model"]["source"] = EVIL
    for a in data["artifacts"]:
        if a["name"] == "onnx":
            a["name"] = EVIL
    p.write_text(json.dumps(data, indent=2))
    return out


def test_bench_html_escapes_model_strings(evil_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(evil_out, out)
    page = tmp_path / "bench.html"
    args = ("bench", str(out), "-r", "onnxruntime", "--runs", "3", "--warmup", "0")
    r = run_cli(*args, "--html", str(page))
    assert r.code == 0, r.output
    html = page.read_text()
    assert "<table>" in html and "onnxruntime" in html
    _assert_escaped(html)
    assert EVIL in r.stdout  # the console shows the name as it is (rich markup off), no crash
    # the section injected into an existing OUT/validate.html is escaped too
    (out / "validate.html").write_text("<!doctype html><html><body><h1>mine</h1></body></html>\n")
    r = run_cli(*args)
    assert r.code == 0, r.output
    html = (out / "validate.html").read_text()
    assert "<h1>mine</h1>" in html and "edgeport-bench" in html
    _assert_escaped(html)
    # and the output folder's own page, OUT/report.html, rewritten by bench
    html = (out / "report.html").read_text()
    assert 'id="latency"' in html and "onnxruntime" in html
    _assert_escaped(html)


def test_quantize_html_escapes_model_strings(evil_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(evil_out, out)
    # a relative OUT (run from its parent): the sweep's workers run elsewhere (this once failed: holdout.npz not found)
    r = run_cli("quantize", "out", "--modes", "ort-dynamic", "--latency-runs", "5", "--holdout-samples", "4", cwd=tmp_path,
                timeout=600)
    assert r.code == 0, r.output
    html = (out / "quant" / "report.html").read_text()
    assert "ort-dynamic" in html
    _assert_escaped(html)
    html = (out / "report.html").read_text()  # the output folder's page, rewritten by quantize
    assert 'id="quantization"' in html and "ort-dynamic" in html and 'src="quant/' in html
    _assert_escaped(html)


def test_renderers_escape_every_model_string():
    """The parts of the HTML that the CLI runs above do not reach: layer tables, keep-float, reasons, warnings."""
    from edgeport.bench.report import html_section
    from edgeport.bench.runner import BenchReport, BenchRow
    from edgeport.quantize.report import render_html
    from edgeport.quantize.sweep import SweepReport, VariantRow

    rows = [VariantRow(name=EVIL, variant="int8", format="tflite", runtime="tflite", path=f"quant/{EVIL}.tflite",
                       status="error", stage="convert", reason=EVIL, flags=[EVIL]),
            VariantRow(name="int8-keepfloat", variant="int8-keepfloat", format="tflite", runtime="tflite", path="k.tflite")]
    layer = {"rank": 1, "layer": EVIL, "module": EVIL, "module_type": EVIL, "op": EVIL, "onnx_nodes": [EVIL, EVIL],
             "tensor": EVIL, "snr_db": 3.0, "rmse_scale": 2.0, "mean_abs": 0.1, "max_abs": 1.0}
    report = SweepReport(root=EVIL, source=EVIL, data={"source": EVIL, "holdout_samples": 4, "calibration_samples": 8},
                         reference={"runtime": EVIL, "backend": EVIL}, rows=rows, layers=[layer],
                         layer_info={"rank_by": EVIL, "samples": 8, "named": 1, "layers": 1},
                         keep_float={"layers": [EVIL], "requested": EVIL}, warnings=[EVIL], notes=[EVIL])
    html = render_html(report, {})  # no plots: every variant failed (this once raised jinja2's UndefinedError)
    assert EVIL not in html and html.count(ESCAPED) >= 8
    assert "<script" not in html.lower()

    bench = BenchReport(target=EVIL, source=EVIL, rows=[BenchRow(artifact=EVIL, format="onnx", runtime=EVIL, threads=1,
                                                                 status="error", reason=EVIL, path=EVIL)],
                        notes=[EVIL], gate={"summary": EVIL})
    section = html_section(bench, None)
    assert EVIL not in section and ESCAPED in section
