"""The console layouts: narrow (80 columns, pipes, CI) and full tables keep every header and number whole,
and user text prints verbatim (no emoji codes, no markup)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.text import Text

from edgeport.cli import render
from edgeport.cli.render import Column, Row, TableSpec, print_table

ODD = "x:abc: [red]x[/red] [bold]"


def _console(width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=False, highlight=False, emoji=False, soft_wrap=True), buf


def _spec() -> TableSpec:
    cols = [Column("artifact", key=True), Column("runtime", key=True), Column("p50", right=True, key=True),
            Column("p99", right=True), Column("mean ± std", right=True), Column("throughput", right=True),
            Column("peak RSS", right=True), Column("size", right=True), Column("description", wrap=True)]
    rows = [Row(["saved_model", "tensorflow", "708.1 µs", "1.94 ms", "741.0 µs ± 102.3 µs", "1,350/s", "412.5 MB",
                 "1.2 MB", "a long piece of prose that has to wrap somewhere when the table is narrow " * 2]),
            Row(["tflite", "tflite", "", "-", "", "", "", "", ""]),
            Row([ODD, "onnxruntime", "35.2 µs", "61.0 µs", "38.1 µs ± 4.0 µs", "26,247/s", "88.0 MB", "32.3 KB", ODD])]
    return TableSpec(cols, rows, title="edgeport bench: " + ODD)


def _cells(spec: TableSpec) -> list[str]:
    return [str(c) for r in spec.rows for c in r.cells if str(c) not in ("", "-")] + [c.header for c in spec.columns]


@pytest.mark.parametrize("width,wide", [(80, False), (80, True), (100, False), (250, False)])
def test_no_header_or_value_is_cut(width, wide):
    console, buf = _console(width)
    spec = _spec()
    print_table(console, spec, wide)
    out = buf.getvalue()
    assert "…" not in out
    flat = " ".join(out.replace("│", " ").replace("┃", " ").split())
    for cell in _cells(spec):
        if cell in ("description",) or len(cell) > 60:  # prose may wrap: every word of it is there
            assert all(w in flat for w in cell.split()), cell
        else:
            assert cell in out, cell  # headers, names and numbers on one line, whole
    assert ODD in out and "🔤" not in out


def test_narrow_layout_is_a_line_per_row_with_details_below():
    console, buf = _console(80)
    print_table(console, _spec())
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["artifact", "runtime", "p50"]
    row = next(i for i, line in enumerate(lines) if line.startswith("saved_model"))
    assert lines[row].split() == ["saved_model", "tensorflow", "708.1", "µs"]
    assert lines[row + 1].startswith("    p99 1.94 ms, mean ± std 741.0 µs ± 102.3 µs, throughput 1,350/s")
    assert not any(line != line.rstrip() for line in lines), "no trailing blanks in a CI log"


def test_wide_layout_fits_a_wide_terminal_and_goes_beyond_a_narrow_one_when_forced():
    console, buf = _console(250)
    print_table(console, _spec())
    wide_lines = buf.getvalue().splitlines()
    assert "┃ artifact" in wide_lines[2] and max(len(x) for x in wide_lines) <= 250
    console, buf = _console(80)
    print_table(console, _spec(), wide=True)
    forced = buf.getvalue().splitlines()
    assert "mean ± std" in forced[2] and max(len(x) for x in forced) > 80  # every column, whole
    assert console.width == 80  # the console is left as it was


def test_a_column_empty_in_every_row_is_left_out():
    console, buf = _console(200)
    print_table(console, TableSpec([Column("name", key=True), Column("check", key=True)], [Row(["onnx", ""])]))
    assert "check" not in buf.getvalue() and "onnx" in buf.getvalue()


def test_consoles_print_user_text_verbatim(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    console = render.make_console()
    console.print(Text(f"--atol logits{ODD}"))
    console.print(f"--atol {render.text(ODD)}", markup=False)
    out = capsys.readouterr().out
    assert out.count(ODD) == 2 and "🔤" not in out


def _coloured(monkeypatch, env: dict) -> tuple[bool, bool]:
    """(colour escapes printed, live display allowed) of a command console on a (forced) terminal."""
    for k in ("NO_COLOR", "CI"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("FORCE_COLOR", "1")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    c = render.make_console()
    c.file = io.StringIO()
    c.print("[red]x[/red]")
    return bool(re.search(r"\x1b\[[0-9;]*m", c.file.getvalue())), render.live_ok(c)


def test_a_terminal_gets_colour(monkeypatch):
    assert _coloured(monkeypatch, {}) == (True, True)


@pytest.mark.parametrize("env,live", [({"NO_COLOR": "1"}, True), ({"TERM": "dumb"}, False), ({"CI": "true"}, False)])
def test_colour_and_live_display_follow_the_environment(monkeypatch, env, live):
    """NO_COLOR takes the colours away; a dumb terminal and CI the live display too."""
    assert _coloured(monkeypatch, env) == (False, live)
