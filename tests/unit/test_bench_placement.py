"""Bench rows carry the delegation report and the per-op table through JSON, Markdown and the console;
ONNX Runtime's trace is summarized per op type with the median over runs."""

from __future__ import annotations

import io

import pytest

from edgeport.bench.runner import BenchReport, BenchRow

DELEGATION = {"partitions": 2, "builtin_ops": {"CUMSUM": 1}, "delegated_ops": {"CONV_2D": 2}, "outside_share": 0.25,
              "note": "measured"}
PROFILE = {"method": "tflite cut-out op timing", "op_types": 2, "total_ms": 0.4, "full_ms": 0.38, "note": "alone",
           "ops": [{"op": "CONV_2D", "placement": "delegate", "count": 2, "ms": 0.3, "share": 0.75},
                   {"op": "CUMSUM", "placement": "builtin", "count": 1, "ms": 0.1, "share": 0.25}]}


def _report() -> BenchReport:
    row = BenchRow("m", "tflite", "tflite", 1, "ok", latency_ms={"p50": 0.4}, delegation=DELEGATION, profile=PROFILE)
    bad = BenchRow("o", "onnx", "onnxruntime", 1, "ok", latency_ms={"p50": 0.5}, profile={"error": "no trace"})
    return BenchReport(target="x", rows=[row, bad])


def test_row_json_round_trip_keeps_delegation_and_profile():
    doc = _report().to_json()
    back = BenchReport.from_json(doc)
    row = {r.artifact: r for r in back.rows}
    assert row["m"].delegation == DELEGATION and row["m"].profile == PROFILE
    assert row["o"].delegation is None and row["o"].profile == {"error": "no trace"}
    assert "delegation" not in doc["results"][1]


def test_markdown_and_console_show_placement_and_table():
    from rich.console import Console

    from edgeport.bench.report import markdown, print_placement, print_profiles

    md = markdown(_report())
    assert "- m/tflite/1t: 2 XNNPACK partitions; builtin kernels: CUMSUM x1; 25% of the time outside the delegate" in md
    assert "| CUMSUM | builtin | 1 | 0.1000 | 25.0% |" in md and "unavailable: no trace" in md
    buf = io.StringIO()
    console = Console(file=buf, width=120)
    print_placement(_report(), console)
    print_profiles(_report(), console)
    text = buf.getvalue()
    assert "m/tflite/1t: 2 XNNPACK partitions" in text and "CONV_2D" in text and "75.0%" in text
    assert "o/onnxruntime/1t: per-op profile unavailable: no trace" in text


def test_ort_trace_median_over_runs():
    from edgeport.runtimes.onnxruntime import summarize_trace

    def node(name, op, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op, "provider": "CPUExecutionProvider"}}

    events = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
              node("c1", "Conv", 1, 60), node("r1", "Relu", 70, 20),
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
              node("c1", "Conv", 201, 40), node("r1", "Relu", 250, 20),
              {"cat": "Session", "name": "model_run", "ts": 400, "dur": 1000},  # a disturbed run
              node("c1", "Conv", 401, 900), node("r1", "Relu", 1310, 20),
              node("late", "Conv", 5000, 999)]  # outside every run: ignored
    s = summarize_trace(events)
    conv, relu = s["ops"]
    assert (conv["op"], conv["count"], conv["ms"], conv["placement"]) == ("Conv", 1, 0.06, "CPU")
    assert (relu["op"], relu["ms"]) == ("Relu", 0.02)
    assert conv["share"] == pytest.approx(0.75) and relu["share"] == pytest.approx(0.25)
    assert s["runs"] == 3 and s["run_ms"] == 0.1 and s["total_ms"] == 0.08
    assert len(summarize_trace(events, top=1)["ops"]) == 1
