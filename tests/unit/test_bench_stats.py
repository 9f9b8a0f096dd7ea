"""Benchmark internals without real models: statistics, the timing loop, memory probes, reports, the gate.

Fake sessions stand in for runtimes (no torch, no TensorFlow); the crash test runs real worker
processes. Nothing here asserts on how fast anything is.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeport.bench import SCHEMA
from edgeport.status import CRASH, OK, SKIPPED
from edgeport.bench.gate import IMPROVED, MISSING, NEW, REGRESSED, compare_to_baseline, parse_regression
from edgeport.bench.latency import MemoryProbe, bench_job, latency_stats, subsample, timed_for, timed_loop
from edgeport.bench.report import HTML_BEGIN, HTML_END, markdown, plot_png, write_html
from edgeport.bench.runner import BenchOptions, BenchReport, BenchRow, bench_target
from edgeport.errors import UsageError
from edgeport.manifest import Artifact, Manifest
from edgeport.runtimes.base import Session
from edgeport.spec import IOSpec, TensorSpec
from edgeport.data.samples import save_samples

IO = IOSpec([TensorSpec("x", (1, 4), "float32", ref_name="x")], [TensorSpec("y", (1, 4), "float32", ref_name="y")])


class FakeSession(Session):
    """Doubles its input; aborts the process when the artifact file is named crash*; counts calls."""

    name = "fake"
    calls = 0

    @classmethod
    def load(cls, path, io, threads=1, **options):
        s = cls(Path(path), io, threads)
        s.backend = f"fake ({threads} threads)"
        return s

    def run_native(self, feed):
        FakeSession.calls += 1
        if self.path.name.startswith("crash"):
            os.abort()
        return {"y": feed["x"] * 2}


# ------------------------------------------------------------------------------------------ stats


def test_latency_stats_match_numpy():
    ns = np.array([1_000_000, 2_000_000, 3_000_000, 4_000_000, 100_000_000], dtype=np.int64)  # 1,2,3,4,100 ms
    s = latency_stats(ns)
    ms = ns / 1e6
    for q in (50, 90, 99):
        assert s[f"p{q}"] == pytest.approx(np.percentile(ms, q))
    assert s["mean"] == pytest.approx(22.0)
    assert s["std"] == pytest.approx(np.std(ms, ddof=1))
    assert (s["min"], s["max"]) == (1.0, 100.0)
    assert s["throughput"] == pytest.approx(5 / 0.110)
    assert latency_stats(np.array([5_000], dtype=np.int64))["std"] == 0.0
    with pytest.raises(ValueError):
        latency_stats(np.array([], dtype=np.int64))


def test_timed_loop_times_every_call_and_restores_gc():
    calls = []
    assert gc.isenabled()
    ns = timed_loop(calls.append, 7, 25)
    assert ns.dtype == np.int64 and ns.shape == (25,) and (ns >= 0).all()
    assert calls == [7] * 25
    assert gc.isenabled()


def test_timed_for_stops_and_keeps_min_runs():
    ns = timed_for(lambda _: None, None, seconds=0.01, max_runs=50)
    assert 1 <= ns.size <= 50
    assert timed_for(lambda _: None, None, seconds=1e-9, min_runs=3).size >= 3


def test_subsample_keeps_order_and_ends():
    a = np.arange(10_000, dtype=np.int64)
    s = subsample(a, 100)
    assert s.size == 100 and s[0] == 0 and s[-1] == 9_999 and (np.diff(s) > 0).all()
    assert subsample(a[:50], 100).size == 50


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_probe_sees_an_allocation_above_baseline():
    probe = MemoryProbe()
    assert probe.source == "proc"
    base = probe.rss_mb()
    assert base and base > 0
    probe.reset_peak()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MB, touched
    peak = probe.peak_mb()
    del block
    assert peak - base > 48


def test_bench_job_in_process(tmp_path):
    feeds = tmp_path / "feed.npz"
    save_samples(feeds, [{"x": np.ones((1, 4), np.float32)}])
    (tmp_path / "m.bin").write_bytes(b"fake")
    FakeSession.calls = 0
    v = bench_job(runtime="fake", path=str(tmp_path / "m.bin"), io=IO.to_json(), feeds=str(feeds), threads=2,
                  cls=f"{__name__}:FakeSession", warmup=3, runs=40, max_samples=10)
    assert FakeSession.calls == 1 + 3 + 40  # first inference + warm-up + timed
    assert v["runs"] == 40 and v["warmup"] == 3 and len(v["samples_us"]) == 10
    assert v["backend"] == "fake (2 threads)"
    assert set(v["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"}
    assert v["latency_ms"]["p50"] <= v["latency_ms"]["p90"] <= v["latency_ms"]["p99"]
    assert v["init_ms"] >= 0 and v["first_ms"] >= 0 and v["throughput"] > 0
    assert v["memory"]["baseline_mb"] is not None and v["memory"]["peak_above_baseline_mb"] is not None


# ------------------------------------------------------------------------------------------ matrix with a crash


def _fake_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    arts = []
    for name in ("good", "crash"):
        (out / f"{name}.onnx").write_bytes(b"not really onnx")
        arts.append(Artifact(name=name, format="onnx", path=f"{name}.onnx", io=IO))
    Manifest(root=out, source="fake", io=IO, artifacts=arts).save()
    return out


def test_a_crashing_worker_is_a_row_and_the_others_still_run(tmp_path, monkeypatch):
    from edgeport import runtimes

    monkeypatch.setitem(runtimes.RUNTIMES, "onnxruntime",
                        runtimes.Runtime("onnxruntime", f"{__name__}:FakeSession", ("onnx",), ("onnxruntime",)))
    out = _fake_out(tmp_path)
    report = bench_target(out, BenchOptions(runs=20, warmup=1, timeout=120))
    rows = {r.artifact: r for r in report.rows}
    assert rows["good"].status == OK and rows["good"].p50 is not None
    assert rows["crash"].status == CRASH and "SIGABRT" in rows["crash"].reason
    assert report.exit_code == 3
    assert [r.artifact for r in report.sorted_rows()] == ["good", "crash"]
    doc = report.to_json()
    assert doc["schema"] == SCHEMA and doc["exit_code"] == 3


def test_unknown_artifact_and_bad_options_are_usage_errors(tmp_path):
    out = _fake_out(tmp_path)
    with pytest.raises(UsageError, match="no artifact named nope"):
        bench_target(out, BenchOptions(artifacts=["nope"]))
    with pytest.raises(UsageError, match="--threads 0"):
        bench_target(out, BenchOptions(threads=[0]))
    with pytest.raises(UsageError, match="unknown runtime"):
        bench_target(out, BenchOptions(runtimes=["tensorrt"]))


# ------------------------------------------------------------------------------------------ reports


def _row(artifact: str, p50: float, runtime: str = "onnxruntime", status: str = OK, threads: int = 1) -> BenchRow:
    lat = {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.5, "mean": p50 * 1.05, "std": p50 * 0.1, "min": p50 * 0.9} if status == OK else {}
    return BenchRow(artifact, "onnx", runtime, threads, status, latency_ms=lat, size_bytes=1234, init_ms=5.0, first_ms=1.0,
                    throughput=1000.0 / p50 if status == OK else None, memory={"peak_above_baseline_mb": 12.5},
                    samples_us=list(np.linspace(p50 * 900, p50 * 1200, 50)) if status == OK else [])


def _report(*rows: BenchRow, cpu: str = "cpu A") -> BenchReport:
    return BenchReport(target="out", source="sample:x", machine={"cpu": cpu}, settings={"threads": [1], "warmup": 1, "runs": 50},
                       rows=list(rows))


def test_json_round_trip_and_sorting():
    rep = _report(_row("slow", 2.0), _row("skipped", 0.0, status=SKIPPED), _row("fast", 0.5), _row("bad", 0.0, status=CRASH))
    doc = json.loads(json.dumps(rep.to_json()))
    assert [r["artifact"] for r in doc["results"]] == ["fast", "slow", "bad", "skipped"]
    back = BenchReport.from_json(doc)
    assert [r.key for r in back.sorted_rows()] == [r.key for r in rep.sorted_rows()]
    assert back.rows[0].latency_ms["p50"] == 0.5
    with pytest.raises(Exception, match="not an edgeport benchmark"):
        BenchReport.from_json({"schema": "other"})


def test_markdown_has_every_row_and_column():
    md = markdown(_report(_row("fast", 0.05), _row("slow", 3.0)))
    assert "| artifact | runtime | threads | p50 | p90 | p99 |" in md
    assert "50.0 µs" in md and "3.00 ms" in md and "12.5 MB" in md and "1.2 KB" in md
    assert md.index("| fast |") < md.index("| slow |")


def test_plot_and_html_section_replaced_not_duplicated(tmp_path):
    pytest.importorskip("matplotlib")
    rep = _report(_row("fast", 0.05), _row("slow", 3.0))
    png = plot_png(rep)
    assert png is not None and png.startswith(b"\x89PNG")
    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>validate</h1></body></html>")
    write_html(rep, page, png)
    write_html(rep, page, png)
    text = page.read_text()
    assert text.count(HTML_BEGIN) == 1 and text.count(HTML_END) == 1
    assert "<h1>validate</h1>" in text and "data:image/png;base64," in text
    assert text.index(HTML_END) < text.index("</body>")


# ------------------------------------------------------------------------------------------ gate


@pytest.mark.parametrize("text, value", [("10%", 0.10), ("10", 0.10), ("2.5%", 0.025), (" 0% ", 0.0), ("150%", 1.5)])
def test_parse_regression(text, value):
    assert parse_regression(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["ten", "-5%", "10%%", "", "1e3"])
def test_parse_regression_rejects(bad):
    with pytest.raises(UsageError):
        parse_regression(bad)


def test_gate_judges_each_row():
    base = _report(_row("same", 1.0), _row("slower", 1.0), _row("faster", 1.0), _row("gone", 1.0))
    cur = _report(_row("same", 1.05), _row("slower", 1.3), _row("faster", 0.5), _row("new", 1.0), cpu="cpu B")
    g = compare_to_baseline(cur, base, 0.10)
    status = {r.key.split("/")[0]: r.status for r in g.rows}
    assert status == {"same": "ok", "slower": REGRESSED, "faster": IMPROVED, "new": NEW, "gone": MISSING}
    assert not g and "slower" in g.summary() and "+30%" in g.summary()
    assert any("another CPU" in n for n in g.notes)
    assert compare_to_baseline(cur, base, 0.5)  # 30% is within 50%
    assert compare_to_baseline(cur, base, 0.10, min_delta_ms=0.5)  # +0.3 ms is under the absolute floor
    cur.gate = g.to_json()
    assert cur.exit_code == 1


def test_gate_with_nothing_in_common_is_a_usage_error():
    with pytest.raises(UsageError, match="shares no"):
        compare_to_baseline(_report(_row("a", 1.0)), _report(_row("b", 1.0)), 0.1)
    with pytest.raises(UsageError, match="gate-metric"):
        compare_to_baseline(_report(_row("a", 1.0)), _report(_row("a", 1.0)), 0.1, metric="p42")
