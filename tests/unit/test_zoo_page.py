"""OUT/zoo.html from a hand-made aggregate: one row per model, escaped names, links only to pages that exist."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from edgeport.zoo.report import PAGE_NAME, ZooReport, cells, table_row, update_zoo_page


class _Page(HTMLParser):
    """The model rows of the page: each row's cell texts, the verdict cell's class and the name's link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "model":
            self.rows.append({"cells": [], "classes": [], "href": None})
        elif tag == "td" and self.rows:
            self._cell = []
            self.rows[-1]["classes"].append(a.get("class"))
        elif tag == "a" and self._cell is not None:
            self.rows[-1]["href"] = a["href"]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None


def _row(name: str, out: Path, *, exit_code: int = 0, tfl: float | None = 2.5, ort: float = 1.25) -> dict:
    bench = [{"runtime": "onnxruntime", "status": "ok", "variant": "fp32", "p50_ms": ort}]
    if tfl is not None:
        bench.append({"runtime": "tflite", "status": "ok", "variant": "fp32", "p50_ms": tfl})
    return {
        "name": name, "out": str(out), "formats": ["onnx", "tflite"], "reused": [], "error": None, "exit_code": exit_code,
        "seconds": 12.34,
        "steps": {
            "convert": {"exit_code": 0, "artifacts": [{"format": "onnx"}, {"format": "tflite"}], "kept": {"tflite": "onnx2tf"},
                        "failed": [], "parity_failed": []},
            "validate": {"exit_code": exit_code, "summary": "parity failed" if exit_code else "ok", "results": [
                {"format": "onnx", "variant": "fp32", "role": "candidate", "outputs": [{"metrics": {"max_rel_scale": 3e-7}}]},
                {"format": "tflite", "variant": "fp32", "role": "candidate", "outputs": [{"metrics": {"max_rel_scale": 4e-5}}]}]},
            "bench": {"exit_code": 0, "rows": bench},
            "quantize": {"exit_code": 0, "int8_delta": 0.0625},
        },
    }


def _report(tmp_path: Path) -> ZooReport:
    root = tmp_path / "zoo-out"
    for name in ("<b>x</b>", "plain"):
        (root / name).mkdir(parents=True)
    (root / "<b>x</b>" / "report.html").write_text("<html></html>")  # "plain" has no page of its own
    rows = [_row("<b>x</b>", root / "<b>x</b>"), _row("plain", root / "plain", exit_code=1, tfl=None),
            {"name": "crashed", "out": str(root / "crashed"), "formats": ["onnx"], "steps": {}, "reused": [],
             "error": "SIGKILL", "error_step": "model process", "exit_code": 3, "seconds": 0.5}]
    return ZooReport(zoo="zoo & co.toml", out=str(root), executor="process pool, 2 jobs", rows=rows, seconds=20.0)


def test_one_row_per_model_with_the_table_cells_and_coloured_verdicts(tmp_path):
    report = _report(tmp_path)
    page = update_zoo_page(report, console=_Lines())
    assert page == Path(report.out) / PAGE_NAME and page.is_file()
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert [r["cells"][0] for r in parsed.rows] == ["<b>x</b>", "plain", "crashed"]
    for got, row in zip(parsed.rows, report.rows):
        assert got["cells"] == cells(table_row(row))  # the same text as the console and Markdown tables
    first, plain, crashed = parsed.rows
    assert first["cells"][1:] == ["pass", "2/2", "tflite:onnx2tf", "onnx 3.0e-07, tflite 4.0e-05", "2.5", "1.25", "2", "0.0625", "12.3"]
    assert plain["cells"][5:8] == ["", "1.25", ""]  # no TFLite latency, so no ratio
    assert [r["classes"][1] for r in parsed.rows] == ["v-pass", "v-threshold", "v-failed"]
    assert crashed["cells"][1:3] == ["failed", "0/1"]


def test_links_only_to_model_pages_that_exist_and_strings_are_escaped(tmp_path):
    report = _report(tmp_path)
    page = update_zoo_page(report, console=_Lines())
    html = page.read_text(encoding="utf-8")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "zoo &amp; co.toml" in html
    parsed = _Page()
    parsed.feed(html)
    hrefs = [r["href"] for r in parsed.rows]
    assert hrefs[1:] == [None, None]
    assert not Path(hrefs[0]).is_absolute()
    target = (page.parent / unquote(hrefs[0])).resolve()
    assert target == (Path(report.out) / "<b>x</b>" / "report.html").resolve() and target.is_file()
    assert "crashed</b>: model process: SIGKILL" in html  # the reason a model did not pass


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, line, **_):
        self.lines.append(line)


def test_a_page_that_cannot_be_written_is_one_warning_line(tmp_path):
    report = _report(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    report.out = str(blocker)  # OUT/zoo.html cannot be made inside a file
    report.rows[0]["warnings"] = ["warning: cannot write /m/report.html: Permission denied"]
    console = _Lines()
    assert update_zoo_page(report, console=console) is None
    assert console.lines[0] == "warning: cannot write /m/report.html: Permission denied"
    assert len(console.lines) == 2 and console.lines[1].startswith(f"warning: cannot write {blocker / PAGE_NAME}: ")
    assert "\n" not in console.lines[1] and blocker.read_text() == "not a folder"
