"""Render a :class:`~edgeport.validate.results.ValidationReport`: console table, JSON, JUnit XML, Markdown.

- JSON (``--json``): ``report.to_json()``, schema ``edgeport.validate/1``: ``passed``, ``exit_code`` and
  per artifact and runtime a ``status`` (pass/fail/error/crash/timeout/skipped) with metrics per output.
  Non-finite numbers are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``.
- JUnit XML (``--junit``): one ``<testcase>`` per artifact x runtime; a parity miss is a ``<failure>``,
  a load/run failure, crash or timeout an ``<error>``, a runtime that cannot run here ``<skipped>``.
- Markdown (``--markdown``): a summary table for a pull-request comment, failures first.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgeport.fsutil import atomic_write_text
from edgeport.validate.metrics import OutputComparison
from edgeport.status import CRASH, ERROR, FAIL, PASS, SKIPPED, TIMEOUT
from edgeport.validate.results import TargetResult, ValidationReport

ICONS = {PASS: "✅", FAIL: "❌", ERROR: "💥", CRASH: "💥", TIMEOUT: "⏱️", SKIPPED: "➖"}
STYLES = {PASS: "green", FAIL: "bold red", ERROR: "bold magenta", CRASH: "bold magenta", TIMEOUT: "bold magenta", SKIPPED: "dim"}


def fmt(v: Any, kind: str = "g") -> str:
    """Compact number formatting for tables ("-" for missing)."""
    if v is None or v == "":
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "cos":
        return f"{v:.6f}"
    if kind == "db":
        return f"{v:.1f}"
    if isinstance(v, int):
        return str(v)
    return f"{v:.2e}" if v != 0 else "0"


def worst_output(r: TargetResult) -> OutputComparison | None:
    """The failing output with the largest error, else the one with the largest max abs error."""
    if not r.outputs:
        return None
    fails = [o for o in r.outputs if not o.passed]
    pool = fails or r.outputs
    return max(pool, key=lambda o: _num(o.metrics.get("max_abs")))


def _num(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v) if not (isinstance(v, float) and math.isnan(v)) else math.inf
    return -1.0


def backends_line(report: ValidationReport) -> str:
    """Which library ran each runtime, e.g. ``tflite: ai-edge-litert 2.3.0``."""
    seen: dict[str, str] = {}
    for r in report.results:
        if r.backend and r.runtime not in seen:
            seen[r.runtime] = r.backend
    return "; ".join(f"{k}: {v}" for k, v in seen.items())


def _sorted(results: list[TargetResult]) -> list[TargetResult]:
    rank = {FAIL: 0, CRASH: 1, ERROR: 1, TIMEOUT: 1, PASS: 2, SKIPPED: 3}
    return sorted(results, key=lambda r: rank.get(r.status, 9))


# ------------------------------------------------------------------------------------------ JSON


def write_json(report: ValidationReport, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")


# ------------------------------------------------------------------------------------------ JUnit


def junit_tree(report: ValidationReport) -> ET.ElementTree:
    c = report.counts()
    failures = c.get(FAIL, 0)
    errors = c.get(ERROR, 0) + c.get(CRASH, 0) + c.get(TIMEOUT, 0)
    skipped = c.get(SKIPPED, 0)
    total = len(report.results)
    attrs = {"tests": str(total), "failures": str(failures), "errors": str(errors), "skipped": str(skipped),
             "time": f"{report.seconds:.3f}"}
    root = ET.Element("testsuites", {"name": "edgeport validate", **attrs})
    suite = ET.SubElement(root, "testsuite", {"name": "edgeport.validate", **attrs})
    props = ET.SubElement(suite, "properties")
    for k, v in (("root", report.root), ("reference", f"{report.reference.get('artifact')}/{report.reference.get('runtime')}"),
                 ("inputs", report.feeds.get("source", "")), ("passed", str(report.passed).lower()),
                 ("exit_code", str(report.exit_code))):
        ET.SubElement(props, "property", {"name": k, "value": str(v)})
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": f"edgeport.validate.{r.artifact}",
                                                 "name": f"{r.artifact} on {r.runtime}", "time": f"{r.seconds:.3f}"})
        lines = [f"{r.artifact} ({r.format}, {r.variant}) on {r.runtime}" + (f" [{r.backend}]" if r.backend else "")]
        for o in r.outputs:
            m = o.metrics
            lines.append(f"  {o.name}: {'pass' if o.passed else 'FAIL'} max_abs={fmt(m.get('max_abs'))} max_rel={fmt(m.get('max_rel'))} "
                         f"mean_abs={fmt(m.get('mean_abs'))} rmse={fmt(m.get('rmse'))} cosine={fmt(m.get('cosine'), 'cos')} "
                         f"snr_db={fmt(m.get('snr_db'), 'db')}" + (f" top1={fmt(m.get('top1'), 'pct')}" if "top1" in m else "")
                         + (f" tolerance: {o.tolerance.describe()}" if o.tolerance else ""))
            lines.extend(f"    - {f}" for f in o.failures)
        if r.status == FAIL:
            bad = r.failing_outputs()
            msg = "; ".join(f"{o.name}: {o.failures[0]}" for o in bad if o.failures) or r.reason or "parity check failed"
            el = ET.SubElement(case, "failure", {"message": msg[:1000], "type": "ParityFailure"})
            el.text = "\n".join(lines)
        elif r.status in (ERROR, CRASH, TIMEOUT):
            el = ET.SubElement(case, "error", {"message": (r.reason or r.status)[:1000], "type": r.status})
            el.text = (r.log_tail or r.reason)[-4000:]
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", {"message": r.reason or "skipped"})
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(lines)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: ValidationReport, path: str | Path) -> None:
    tree = junit_tree(report)
    text = ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=False)
    atomic_write_text(path, '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n")


# ------------------------------------------------------------------------------------------ Markdown


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: ValidationReport) -> str:
    head = "✅ **edgeport parity: passed**" if report.passed else (
        "❌ **edgeport parity: FAILED**" if report.exit_code == 1 else "💥 **edgeport parity: an artifact failed to run**")
    ref = report.reference
    lines = [f"### {head}", "", f"{_md(report.summary())}", "",
             f"Reference: `{ref.get('artifact') or ref.get('source')}` on `{ref.get('runtime')}` · "
             f"inputs: {_md(report.feeds.get('source', ''))} · {report.seconds:.1f} s", "",
             "| | Artifact | Runtime | Kind | Output | Max abs | Max rel | Cosine | SNR dB | Top-1 | Tolerance |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in _sorted(report.results):
        icon = ICONS.get(r.status, "")
        if not r.outputs:
            lines.append(f"| {icon} | `{_md(r.artifact)}` | {_md(r.runtime)} | {_md(r.variant)} | | | | | | | {_md(r.status)}: {_md(r.reason)} |")
            continue
        for o in r.outputs:
            m = o.metrics
            oi = "" if o.passed else " ❌"
            lines.append(f"| {icon} | `{_md(r.artifact)}` | {_md(r.runtime)} | {_md(r.variant)} | `{_md(o.name)}`{oi} | "
                         f"{fmt(m.get('max_abs'))} | {fmt(m.get('max_rel'))} | {fmt(m.get('cosine'), 'cos')} | "
                         f"{fmt(m.get('snr_db'), 'db')} | {fmt(m.get('top1'), 'pct')} | "
                         f"{_md(o.tolerance.describe() if o.tolerance else '')} |")
    fails = [(r, o) for r in report.results for o in r.outputs if not o.passed]
    if fails:
        lines += ["", "**Failures**", ""]
        for r, o in fails:
            lines.append(f"- `{_md(r.artifact)}` on {_md(r.runtime)}, output `{_md(o.name)}`: {_md('; '.join(o.failures))}")
    broken = [r for r in report.results if r.status in (ERROR, CRASH, TIMEOUT)]
    if broken:
        lines += ["", "**Could not run**", ""]
        for r in broken:
            lines.append(f"- `{_md(r.artifact)}` on {_md(r.runtime)}: {r.status}: {_md(r.reason)}")
    if report.stages:
        lines += ["", "**Error added per conversion step**", "",
                  "| Step | Output | Added (max abs vs parent) | Total (max abs vs reference) | Cosine vs parent |", "|---|---|---|---|---|"]
        for s in report.stages:
            for name, d in s.outputs.items():
                lines.append(f"| `{_md(s.parent)}` → `{_md(s.artifact)}` | `{_md(name)}` | {fmt(d.get('added_max_abs'))} | "
                             f"{fmt(d.get('total_max_abs'))} | {fmt(d.get('added_cosine'), 'cos')} |")
    for loc in report.localizations:
        lines += ["", f"**Divergence localization** ({_md(loc.get('reference'))} vs {_md(loc.get('candidate'))}): "
                  f"{_md(loc.get('message') or loc.get('error') or '')}"]
    if backends_line(report):
        lines += ["", f"Ran on: {_md(backends_line(report))}"]
    if report.notes:
        lines += ["", "<details><summary>Notes</summary>", ""] + [f"- {_md(n)}" for n in report.notes] + ["", "</details>"]
    return "\n".join(lines) + "\n"


def write_markdown(report: ValidationReport, path: str | Path) -> None:
    atomic_write_text(path, markdown(report))


# ------------------------------------------------------------------------------------------ console
PARITY_COLUMNS = (("status", True), ("artifact", True), ("runtime", True), ("kind", False), ("output", True),
                  ("max abs", True), ("max rel", False), ("mean abs", False), ("cosine", False), ("SNR dB", False),
                  ("top-1", False), ("tolerance", False), ("ms", False))  # (header, in the narrow layout's row)
METRIC_HEADERS = ("max abs", "max rel", "mean abs", "cosine", "SNR dB", "top-1", "tolerance")


def _parity_table(results: list[TargetResult]) -> Any:
    """Full table: a row per artifact x runtime x output. Narrow: a row per artifact x runtime with its worst
    output's max abs error, and a line per output with the other metrics under it."""
    from rich.text import Text

    from edgeport.cli.render import Column, NarrowRow, Pairs, Row, TableSpec

    cols = [Column(h, right=h in METRIC_HEADERS[:-1] or h == "ms", key=k, wrap=h == "tolerance") for h, k in PARITY_COLUMNS]
    rows, narrow = [], []
    for r in results:
        status = Text(r.status, style=STYLES.get(r.status, ""))
        ms = f"{r.latency_ms:.2f}" if r.latency_ms is not None else ""
        name = r.artifact + (" (ref)" if r.role == "reference" else "")
        head = f"kind {r.variant}" + (f", {ms} ms" if ms else "")
        if not r.outputs:
            rows.append(Row([status, name, r.runtime, r.variant, "", "", "", "", "", "", "", r.reason, ms]))
            narrow.append(NarrowRow([status, name, r.runtime, "", ""], [f"{head}: {r.reason}" if r.reason else head]))
            continue
        details: list[Any] = [head]
        for k, o in enumerate(r.outputs):
            cells = _metric_cells(o)
            first = k == 0
            rows.append(Row([status if first else "", name if first else "", r.runtime if first else "",
                             r.variant if first else "", Text(o.name, style="" if o.passed else "red"), *cells,
                             ms if first else ""]))
            pairs = [f"{h} {c}" for h, c in zip(METRIC_HEADERS, cells) if c not in ("", "-")]
            details.append(Pairs(pairs, lead=Text(f"{o.name}:", style="" if o.passed else "red")))
        worst = worst_output(r)
        known = worst is not None  # (a comparison is falsy when it fails)
        narrow.append(NarrowRow([status, name, r.runtime, worst.name if known else "",
                                 fmt(worst.metrics.get("max_abs")) if known else ""], details))
    return TableSpec(cols, rows, narrow=narrow)


def _metric_cells(o: OutputComparison) -> list[str]:
    m = o.metrics
    return [fmt(m.get("max_abs")), fmt(m.get("max_rel")), fmt(m.get("mean_abs")), fmt(m.get("cosine"), "cos"),
            fmt(m.get("snr_db"), "db"), fmt(m.get("top1"), "pct"), o.tolerance.describe() if o.tolerance else ""]


def _stage_table(report: ValidationReport) -> Any:
    from edgeport.cli.render import Column, Row, TableSpec

    cols = [Column("step", key=True, wrap=True), Column("output", key=True),
            Column("added (max abs vs parent)", right=True, key=True), Column("total (max abs vs reference)", right=True),
            Column("cosine vs parent", right=True)]
    rows = [Row([f"{s.parent} ({s.parent_runtime}) -> {s.artifact} ({s.runtime})", name, fmt(d.get("added_max_abs")),
                 fmt(d.get("total_max_abs")), fmt(d.get("added_cosine"), "cos")])
            for s in report.stages for name, d in s.outputs.items()]
    return TableSpec(cols, rows, title="error added per conversion step")




def print_console(report: ValidationReport, console: Any = None, verbose: bool = False, wide: bool | None = None) -> None:
    """The parity table (see :func:`edgeport.cli.render.print_table` for its layouts), stage attribution,
    localization, summary. Artifact, output and node names come from the model: printed as text, never markup."""
    from rich.markup import escape as _escape

    from edgeport.cli.render import make_console, print_table

    def esc(value: Any) -> str:
        return _escape(str(value))

    console = console or make_console()
    ref = report.reference
    console.print(f"[bold]edgeport validate[/] {esc(report.root)}  reference: {esc(ref.get('artifact') or ref.get('source'))} on "
                  f"{esc(ref.get('runtime'))}  inputs: {esc(report.feeds.get('source', ''))}", highlight=False)
    shown = [r for r in _sorted(report.results)
             if not (r.status == SKIPPED and not verbose and r.reason.startswith("not selected"))]
    print_table(console, _parity_table(shown), wide)
    backends = backends_line(report)
    if backends:
        console.print(f"[dim]ran on: {esc(backends)}[/]", highlight=False)
    for r in report.results:
        for o in r.outputs:
            for f in o.failures:
                console.print(f"  [red]✗[/] {esc(f'{r.artifact} on {r.runtime}, output {o.name}: {f}')}", highlight=False)
        if r.status in (ERROR, CRASH, TIMEOUT):
            console.print(f"  [magenta]✗[/] {esc(f'{r.artifact} on {r.runtime}: {r.status}: {r.reason}')}", highlight=False)
    if report.stages:
        print_table(console, _stage_table(report), wide)
    for loc in report.localizations:
        msg = loc.get("message") or loc.get("error") or ""
        console.print(f"[bold]localize[/] {esc(loc.get('reference'))} vs {esc(loc.get('candidate'))}: {esc(msg)}", highlight=False)
        for u in loc.get("unobservable_before", [])[:5]:
            console.print(f"    before it (not observable): {esc(u['node'])} {esc('[' + str(u['op_type']) + ']')}", highlight=False)
    for n in report.notes:
        console.print(f"[dim]note: {esc(n)}[/]", highlight=False)
    style = "bold green" if report.passed else ("bold red" if report.exit_code == 1 else "bold magenta")
    console.print(f"[{style}]{esc(report.summary())}[/]  ({report.seconds:.1f} s)", highlight=False)
