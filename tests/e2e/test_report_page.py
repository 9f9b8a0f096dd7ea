"""OUT/report.html after a real convert, validate and bench: sections, plots, escaping, valid HTML, a browser.

One output folder (tiny_cnn to TorchScript and ONNX, validated, benchmarked with 20 runs) is built per
module; the page the commands wrote is checked as it is, and copies of the folder with hostile strings
or an unwritable page check escaping and the warning.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import run_cli

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECTIONS = ("model", "artifacts", "parity", "stages", "worst", "latency", "quantization")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    for args in (("convert", "sample:tiny_cnn", "--to", "torchscript,onnx", "-o", str(out)),
                 ("validate", str(out)), ("bench", str(out), "--runs", "20")):
        r = run_cli(*args)
        assert r.code == 0, r.output
        assert "warning: cannot write" not in r.output
    return out


class StrictParser(HTMLParser):
    """Fails on what a validator rejects and a browser silently repairs: unclosed or mis-nested elements,
    stray end tags, duplicate ids, a missing doctype; collects ids, links and images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[dict[str, str]] = []
        self.doctype = ""
        self.elements: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.elements.append(tag)
        if "id" in a:
            if a["id"] in self.ids:
                self.errors.append(f"duplicate id {a['id']}")
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "img":
            self.images.append(a)
            if not a.get("alt"):
                self.errors.append("img without alt text")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.errors.append(f"self-closed <{tag}/>")
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag of void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> at {self.getpos()}")
        else:
            self.stack.pop()


def parse(html: str) -> StrictParser:
    p = StrictParser()
    p.feed(html)
    p.close()
    if p.stack:
        p.errors.append(f"unclosed elements: {p.stack}")
    if p.doctype.lower() != "doctype html":
        p.errors.append(f"doctype is {p.doctype!r}")
    return p


def test_strict_parser_catches_broken_html():
    for bad in ("<!DOCTYPE html><html><body><table><tr><td>x</tr></table></body></html>",
                "<!DOCTYPE html><html><body><p id=a></p><p id=a></p></body></html>",
                "<html><body></body></html>", "<!DOCTYPE html><html><body><div></body></html>"):
        assert parse(bad).errors, bad


def _non_blank(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as im:
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colors) if colors is not None else 1 << 20


def test_page_has_every_section_with_the_numbers(out):
    html = (out / "report.html").read_text()
    p = parse(html)
    assert not p.errors, p.errors
    assert set(SECTIONS) <= p.ids
    assert all(h[1:] in p.ids for h in p.hrefs if h.startswith("#"))
    assert "script" not in p.elements
    validate = json.loads((out / ".edgeport" / "validate.json").read_text())
    bench = json.loads((out / ".edgeport" / "bench.json").read_text())
    assert validate["passed"] and validate["summary"] in html
    onnx = next(r for r in validate["results"] if r["artifact"] == "onnx")
    max_abs = onnx["outputs"][0]["metrics"]["max_abs"]
    assert 0 < max_abs < 1e-4 and f">{max_abs:.3g}<" in html  # the parity table shows validate's number
    # the ONNX cell is coloured by its margin: far inside the tolerance
    assert re.search(r'<td class="c-far" title="logits: [0-9.e-]+x of tolerance">pass [0-9.e-]+x</td>', html)
    assert "torch.onnx(dynamo)" in html and "Conv x2" in html  # converter and ops of the ONNX artifact
    assert bench["summary"] in html and html.count(" on onnxruntime</td>") >= 2
    assert "No quantization sweep yet" in html
    images = {img["src"] for img in p.images}
    assert images == {"report_files/stage_errors.png", "report_files/worst_output.png", "report_files/latency.png"}
    for src in images:
        assert _non_blank(out / src) > 50, src  # a real plot, not a single colour


def test_model_strings_are_escaped(out, tmp_path):
    from edgeport.report.page import update_report

    evil = tmp_path / "out"
    shutil.copytree(out, evil)
    m = json.loads((evil / "manifest.json").read_text())
    m["model"]["source"] = EVIL
    m["model"]["io"]["inputs"][0]["name"] = EVIL
    for a in m["artifacts"]:
        a["notes"] = [EVIL]
        if a["name"] == "onnx":
            a["converter"] = EVIL
            a["ops"] = {EVIL: 3}
            a["checks"] = {"passed": True, "delegation": {EVIL: EVIL}}
    (evil / "manifest.json").write_text(json.dumps(m))
    v = json.loads((evil / ".edgeport" / "validate.json").read_text())
    v["results"][-1]["outputs"][0]["name"] = EVIL
    v["notes"] = [EVIL]
    v["localization"] = [{"message": EVIL}]
    (evil / ".edgeport" / "validate.json").write_text(json.dumps(v))
    html = update_report(evil).read_text()
    assert EVIL not in html and "<script" not in html.lower()
    assert html.count(ESCAPED) >= 7  # title, heading, source, input, converter, op, delegation, output, notes
    assert not parse(html).errors


def test_unwritable_page_warns_and_never_raises(out, tmp_path):
    from rich.console import Console

    from edgeport.report.state import after_command

    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    (copy / "report.html").mkdir()  # a folder where the page goes: the write fails
    buf = io.StringIO()
    assert after_command("convert", copy, None, Console(file=buf, width=300)) is None
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: cannot write {copy / 'report.html'}"), lines
    # not an output folder (a bundle file, a model file): no page, no warning
    buf = io.StringIO()
    assert after_command("validate", copy / "model.onnx", None, Console(file=buf)) is None and buf.getvalue() == ""


# ------------------------------------------------------------------------------------------ headless browser


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/run_tests.sh installs Debian's chromium when run as root)")
    return exe


def _load(exe: str, url: str, shot: Path) -> str:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1200,2400",
           "--enable-logging=stderr", "--v=0", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return proc.stderr


def _console_messages(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def test_page_loads_in_headless_chromium(out, tmp_path):
    exe = _chromium()
    # the check can fail: a page with a script error logs it
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><title>x</title></head><body><script>no_such_function();</script></body></html>")
    assert any("no_such_function" in m for m in _console_messages(_load(exe, bad.as_uri(), tmp_path / "bad.png")))

    shot = tmp_path / "page.png"
    log = _load(exe, (out / "report.html").resolve().as_uri(), shot)
    assert _console_messages(log) == []
    assert _non_blank(shot) > 50
