"""The zoo's aggregate report: one row per model, as a console table, JSON, JUnit XML, Markdown and an HTML page.

Exit code: 0 every model passed, 1 a parity or threshold failure (and no failure to convert or run),
3 a conversion or runtime failure. The ``verdict`` column says which, per model.

Every zoo run ends by writing ``OUT/zoo.html`` (:func:`update_zoo_page`): the table's columns, the verdict
coloured, each model's name a relative link to its own page ``OUT/<name>/report.html`` when that page
exists (a model whose conversion never started has none). Every string from the zoo file or a model goes
through the template's autoescaping. Like the per-model page it is a by-product: when it cannot be written
the run prints one ``warning:`` line naming the path and keeps its exit code.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeport import __version__

PAGE_NAME = "zoo.html"
SCHEMA = "edgeport.zoo/1"
VERDICT = {0: "pass", 1: "parity/threshold", 3: "failed"}


@dataclass
class ZooReport:
    zoo: str
    out: str
    executor: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        codes = {int(r.get("exit_code", 3)) for r in self.rows}
        return 3 if 3 in codes or not self.rows else (1 if 1 in codes else 0)

    def summary(self) -> str:
        counts = {v: sum(1 for r in self.rows if VERDICT.get(int(r.get("exit_code", 3)), "failed") == v) for v in VERDICT.values()}
        parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        bad = [r["name"] for r in self.rows if r.get("exit_code")]
        return f"zoo: {len(self.rows)} models, {parts} in {self.seconds:.1f} s" + (f"; not passing: {', '.join(bad)}" if bad else "")

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "edgeport_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "zoo": self.zoo, "out": self.out, "executor": self.executor, "exit_code": self.exit_code,
                "summary": self.summary(), "seconds": round(self.seconds, 3),
                "models": [{**r, "table": table_row(r)} for r in self.rows]}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def worst_parity(row: dict[str, Any]) -> dict[str, float]:
    """Per format: the largest max_rel_scale (max abs error / the output's magnitude) over runtimes and outputs."""
    worst: dict[str, float] = {}
    for r in row.get("steps", {}).get("validate", {}).get("results", []):
        if r.get("role") == "reference" or r.get("variant", "fp32") != "fp32":
            continue
        for o in r.get("outputs", []):
            v = _num(o.get("metrics", {}).get("max_rel_scale"))
            if v is None:
                v = _num(o.get("metrics", {}).get("max_abs"))
            if v is not None:
                worst[r["format"]] = max(worst.get(r["format"], 0.0), v)
    return worst


def p50(row: dict[str, Any], runtime: str) -> float | None:
    vals = [_num(b.get("p50_ms")) for b in row.get("steps", {}).get("bench", {}).get("rows", [])
            if b.get("runtime") == runtime and b.get("status") == "ok" and b.get("variant", "fp32") == "fp32"]
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def formats_ok(row: dict[str, Any]) -> list[str]:
    made = {a["format"] for a in row.get("steps", {}).get("convert", {}).get("artifacts", [])}
    return [f for f in row.get("formats", []) if f in made]


def why(row: dict[str, Any]) -> str:
    """One line: the first reason this model did not pass."""
    if row.get("memory_limit"):
        return row["memory_limit"]
    if row.get("error"):
        return f"{row.get('error_step')}: {row['error']}"
    steps = row.get("steps", {})
    conv = steps.get("convert", {})
    for f in conv.get("failed", []):
        return f"convert {f['target']} ({f['converter']}): {f['reason']}"
    if conv.get("parity_failed"):
        return f"convert parity gate: {', '.join(conv['parity_failed'])}"
    for name in ("validate", "bench", "quantize"):
        st = steps.get(name, {})
        if st.get("exit_code"):
            return f"{name}: {st.get('threshold') or st.get('summary') or 'failed'}"
    return ""


def table_row(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of the console table (also in the JSON, so both say the same)."""
    tfl, ort = p50(row, "tflite"), p50(row, "onnxruntime")
    kept = row.get("steps", {}).get("convert", {}).get("kept", {})
    return {
        "model": row["name"],
        "verdict": VERDICT.get(int(row.get("exit_code", 3)), "failed"),
        "formats_ok": f"{len(formats_ok(row))}/{len(row.get('formats', []))}",
        "converter": ", ".join(f"{t}:{c}" for t, c in kept.items() if t in ("saved_model", "tflite")),
        "worst_parity": worst_parity(row),
        "tflite_p50_ms": tfl,
        "ort_p50_ms": ort,
        "tflite_ort_ratio": round(tfl / ort, 4) if tfl and ort else None,
        "int8_delta": row.get("steps", {}).get("quantize", {}).get("int8_delta"),
        "seconds": row.get("seconds"),
        "reused": row.get("reused", []),
        "why": why(row),
    }


def _fmt(v: Any, spec: str = ".3g") -> str:
    return "" if v is None else format(v, spec)


COLUMNS = ("model", "verdict", "formats ok", "converter kept", "worst parity", "TFLite p50 ms", "ORT p50 ms", "TFLite/ORT",
           "int8 delta", "time s")


def cells(t: dict[str, Any]) -> list[str]:
    """A :func:`table_row` as the text of the table's :data:`COLUMNS` (console, Markdown and HTML)."""
    parity = ", ".join(f"{f} {v:.1e}" for f, v in t["worst_parity"].items())
    return [str(t["model"]), t["verdict"], t["formats_ok"], t["converter"] or "-", parity or "-", _fmt(t["tflite_p50_ms"], ".4g"),
            _fmt(t["ort_p50_ms"], ".4g"), _fmt(t["tflite_ort_ratio"], ".3g"), _fmt(t["int8_delta"], ".3g"), _fmt(t["seconds"], ".1f")]


def print_table(report: ZooReport, console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"edgeport zoo ({report.executor})"), title_justify="left")
    for col in COLUMNS:
        table.add_column(col)
    for row in report.rows:
        t = table_row(row)
        style = {"pass": "green", "parity/threshold": "yellow"}.get(t["verdict"], "red")
        text = cells(t)
        text[-1] += " (reused)" if "convert" in t["reused"] and "validate" in t["reused"] else ""
        table.add_row(*(Text(v, style=style if i == 1 else "") for i, v in enumerate(text)))
    console.print(table)
    for row in report.rows:
        reason = why(row)
        if reason:
            console.print(Text(f"{row['name']}: {reason}", style="red" if row.get("exit_code") == 3 else "yellow"))
    console.print(Text(report.summary()))


def write_json(report: ZooReport, path) -> None:
    from edgeport.fsutil import atomic_write_json

    atomic_write_json(path, report.to_json())


def write_junit(report: ZooReport, path) -> None:
    """One testcase per model x format x runtime (validate's rows; a format that was not made is one failed case)."""
    from xml.sax.saxutils import quoteattr

    from edgeport.fsutil import atomic_write_text

    cases: list[str] = []
    failures = errors = 0
    for row in report.rows:
        steps = row.get("steps", {})
        seen_formats = set()
        for r in steps.get("validate", {}).get("results", []):
            if r.get("role") == "reference":
                continue
            seen_formats.add(r["format"])
            name = f"{row['name']}.{r['artifact']}.{r['runtime']}"
            body = ""
            if r["status"] == "fail":
                failures += 1
                body = f"<failure message={quoteattr(r.get('reason') or 'parity failed')}/>"
            elif r["status"] in ("error", "crash", "timeout"):
                errors += 1
                body = f"<error message={quoteattr(r.get('reason') or r['status'])}/>"
            elif r["status"] == "skipped":
                body = f"<skipped message={quoteattr(r.get('reason') or 'skipped')}/>"
            cases.append(f'  <testcase classname={quoteattr("zoo." + row["name"])} name={quoteattr(name)}>{body}</testcase>')
        for fmt in row.get("formats", []):
            if fmt in seen_formats:
                continue
            errors += 1
            reason = why(row) or f"{fmt} was not made"
            cases.append(f'  <testcase classname={quoteattr("zoo." + row["name"])} name={quoteattr(row["name"] + "." + fmt)}>'
                         f"<error message={quoteattr(reason)}/></testcase>")
    xml = (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="edgeport zoo" tests="{len(cases)}" '
           f'failures="{failures}" errors="{errors}" time="{report.seconds:.3f}">\n' + "\n".join(cases) + "\n</testsuite>\n")
    atomic_write_text(path, xml)


def write_markdown(report: ZooReport, path) -> None:
    from edgeport.fsutil import atomic_write_text

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["### edgeport zoo", "", cell(report.summary()), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in report.rows:
        lines.append("| " + " | ".join(cell(v) for v in cells(table_row(row))) + " |")
    notes = [f"- **{cell(r['name'])}**: {cell(why(r))}" for r in report.rows if why(r)]
    atomic_write_text(path, "\n".join(lines + ([""] + notes if notes else [])) + "\n")


VERDICT_CLASS = {"pass": "v-pass", "parity/threshold": "v-threshold", "failed": "v-failed"}


def page_rows(report: ZooReport, page_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The page's rows: the table's cells, the verdict's CSS class, the link to the model's page (or None)."""
    from urllib.parse import quote

    from edgeport.report.page import PAGE_NAME as MODEL_PAGE

    rows = []
    for row in report.rows:
        t = table_row(row)
        page = Path(row["out"]) / MODEL_PAGE if row.get("out") else None
        link = quote(Path(os.path.relpath(page, page_dir)).as_posix()) if page is not None and page.is_file() else None
        rows.append({"cells": cells(t), "cls": VERDICT_CLASS.get(t["verdict"], "v-failed"), "link": link, "why": t["why"],
                     "reused": "convert" in t["reused"] and "validate" in t["reused"]})
    return rows


def render_html(report: ZooReport, page_dir: str | os.PathLike) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("edgeport", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("zoo.html.j2").render(
        zoo=report.zoo, executor=report.executor, summary=report.summary(), columns=COLUMNS,
        rows=page_rows(report, page_dir), generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def write_html(report: ZooReport, path: str | os.PathLike) -> None:
    """The page at ``path``; its links are relative to ``path``'s folder."""
    from edgeport.fsutil import atomic_write_text

    atomic_write_text(path, render_html(report, Path(path).absolute().parent))


def update_zoo_page(report: ZooReport, console: Any = None) -> Path | None:
    """Write ``OUT/zoo.html`` and print the models' page warnings. Never raises: a page that cannot be
    written is one ``warning:`` line; returns the page's path, or None."""
    from edgeport.report.state import _reason, _warn

    for row in report.rows:
        for line in row.get("warnings", []):
            _warn(console, line)
    path = Path(report.out) / PAGE_NAME
    try:
        write_html(report, path)
    except Exception as exc:  # noqa: BLE001 - the page is a by-product; the run's own result stands
        _warn(console, f"warning: cannot write {path}: {_reason(exc)}")
        return None
    return path
