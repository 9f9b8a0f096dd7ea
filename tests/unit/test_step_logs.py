"""Step logs: a worker's stdout and stderr, cleaned of terminal noise, end with its outcome, wall time and
peak RSS; stages carry their time."""

from __future__ import annotations

from edgeport.worker import clean_line, log_footer, parse_footer, footer_line, run_in_worker

T = "tests.unit.log_targets:"


def test_clean_line_shows_what_the_terminal_showed():
    assert clean_line("\x1b[31;1mred\x1b[0m text\n") == "red text"
    assert clean_line("\r 10%|#   |\r 50%|##  |\r100%|####|\r\n") == "100%|####|"
    assert clean_line("abc\b\bX") == "aX"
    assert clean_line("osc \x1b]0;title\x07end") == "osc end"


def test_footer_round_trip():
    line = footer_line("crash", 12.345, 512.04, "process crashed (killed by SIGKILL)")
    assert parse_footer(line) == {"status": "crash", "why": "process crashed (killed by SIGKILL)", "seconds": 12.35,
                                  "peak_rss_mb": 512.0}
    assert parse_footer(footer_line("ok", 1, None))["peak_rss_mb"] is None
    assert parse_footer("-- edgeport: something else") is None


def test_a_step_log_holds_the_output_cleaned_and_ends_with_time_and_rss(tmp_path):
    log = tmp_path / "logs" / "tflite-fake.log"
    res = run_in_worker(T + "noisy", {"megabytes": 160}, timeout=120, log_path=log)
    assert res.ok, res.reason()
    text = log.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("-- edgeport: tests.unit.log_targets:noisy in ")
    assert "INFO: converting node Conv_0" in lines
    assert "100%|##########| 100/100" in lines and " 50%" not in text  # the bar's last state only
    assert lines.count("WARNING: the same line again") == 1
    assert "[the line above repeated 49 more times]" in lines
    assert "from C: ok" in lines  # fd-level output too, backspaces applied
    assert "\x1b" not in text and "\r" not in text
    stages = [ln for ln in lines if ln.startswith("-- edgeport stage ")]
    assert [s.split(": ", 1)[1] for s in stages] == ["importing tests.unit.log_targets", "running tests.unit.log_targets:noisy",
                                                     "loading the graph", "writing the model", "finished"]
    f = parse_footer(lines[-1])
    assert f == log_footer(log)
    assert f["status"] == "ok" and 0 < f["seconds"] <= res.seconds + 0.01
    assert f["peak_rss_mb"] >= 160, f  # the worker's own high-water mark, with the 160 MB it touched
    assert res.log_tail and "[the line above repeated" in res.log_tail and "-- edgeport: ok" not in res.log_tail


def test_a_failed_step_log_says_why_and_keeps_the_traceback(tmp_path):
    log = tmp_path / "fail.log"
    res = run_in_worker(T + "fails_loudly", {}, timeout=120, log_path=log)
    assert not res.ok
    text = log.read_text()
    assert "about to fail" in text and "Traceback" in text and "ConversionError: the converter gave up" in text
    f = log_footer(log)
    assert f["status"] == "error" and "the converter gave up" in f["why"]


def test_a_worker_started_by_a_worker_writes_into_the_step_log(tmp_path):
    log = tmp_path / "outer.log"
    res = run_in_worker(T + "nested", {}, timeout=120, log_path=log)
    assert res.ok and res.value is True, res.reason()
    lines = log.read_text().splitlines()
    inner = lines.index("-- edgeport: tests.unit.log_targets:noisy in " + lines[0].split(" in ", 1)[1])
    assert lines.index("outer before") < inner < lines.index("outer after ok")
    assert "INFO: converting node Conv_0" in lines and parse_footer(lines[-1])["status"] == "ok"
    assert sum(1 for ln in lines if parse_footer(ln)) == 2  # the inner step's footer, then ours
