"""The validate console report at 80 columns (a CI log) and in a wide terminal: every header, name and number
whole; model-provided names printed verbatim."""

from __future__ import annotations

import io

from rich.console import Console

from edgeport.validate.results import StageResult
from edgeport.validate.report import fmt, print_console
from tests.unit.test_validate_reports import _report, _row

ODD = "n:abc:[red]x[/red][bold]"


def _render(width: int, wide: bool = False) -> str:
    rows = [_row(ODD, "onnxruntime", "fail", err=0.01), _row("tflite", "tflite", "crash", reason="process crashed (killed by SIGABRT)")]
    rep = _report(*rows)
    rep.stages = [StageResult("pytorch", ODD, "torch_eager", "onnxruntime",
                              {"logits": {"added_max_abs": 0.0123, "total_max_abs": 0.0125, "added_cosine": 0.999871}})]
    buf = io.StringIO()
    print_console(rep, Console(file=buf, width=width, force_terminal=False, emoji=False, highlight=False, soft_wrap=True), wide=wide)
    return buf.getvalue(), rep


def _values(rep) -> list[str]:
    out = []
    for r in rep.results:
        for o in r.outputs:
            m = o.metrics
            out += [o.name, fmt(m["max_abs"]), fmt(m["max_rel"]), fmt(m["mean_abs"]), fmt(m["cosine"], "cos"),
                    o.tolerance.describe()]
    return out + ["1.23e-02", "1.25e-02", "0.999871", "process crashed (killed by SIGABRT)"]


def test_80_columns_a_row_per_artifact_and_runtime_with_details_below():
    text, rep = _render(80)
    assert "…" not in text and "🔤" not in text
    missing = [v for v in _values(rep) if v not in text]
    assert not missing, text
    lines = text.splitlines()
    assert lines[1].split() == ["status", "artifact", "runtime", "output", "max", "abs"]
    row = next(ln for ln in lines if ln.startswith("fail"))
    assert row.split() == ["fail", ODD, "onnxruntime", "logits", fmt(rep.results[1].outputs[0].metrics["max_abs"])]
    table = [ln for ln in lines if not ln.startswith(("edgeport validate", "ran on:", "  ✗", "parity"))]
    assert max(len(ln) for ln in table) <= 80, text
    assert any(ln.startswith("    embedding: max abs 0") for ln in lines)  # the other output, under its row


def test_a_wide_terminal_gets_the_full_table_and_wide_forces_it():
    for width, wide in ((220, False), (80, True)):
        text, rep = _render(width, wide)
        assert "…" not in text and all(v in text for v in _values(rep))
        header = next(ln for ln in text.splitlines() if "max rel" in ln)
        assert all(h in header for h in ("status", "kind", "mean abs", "cosine", "SNR dB", "top-1", "tolerance"))
