"""Benchmark reports: JSON (schema ``edgeport.bench/1``), Markdown, a rich table, a PNG plot, an HTML section.

Rows are sorted by speed (p50, fastest first); rows that failed follow, skipped rows come last. The
plot shows each row's latency distribution (box: quartiles, whiskers: p1..p99) and needs matplotlib,
imported lazily with the Agg backend; without it (the device profile) the plot is skipped with a note.
The HTML section is injected between ``<!-- edgeport-bench:begin -->`` and ``<!-- edgeport-bench:end -->``
markers into an existing report (replacing an earlier section), or written as a page of its own.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

from edgeport.status import OK, SKIPPED
from edgeport.bench.runner import BenchReport, BenchRow
from edgeport.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, human_size

HTML_BEGIN = "<!-- edgeport-bench:begin -->"
HTML_END = "<!-- edgeport-bench:end -->"


# ------------------------------------------------------------------------------------------ formatting


def fmt_ms(v: float | None) -> str:
    """A latency: microseconds below 1 ms, else milliseconds."""
    if v is None:
        return "-"
    if v < 1.0:
        return f"{v * 1000:.1f} µs" if v < 0.1 else f"{v * 1000:.0f} µs"
    return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"


def fmt_size(n: int | float | None) -> str:
    return "-" if n is None else human_size(n)


def fmt_mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} MB"


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}/s" if v >= 10 else f"{v:.2f}/s"


def row_label(r: BenchRow) -> str:
    t = f" x{r.threads}t" if r.threads != 1 else ""
    return f"{r.artifact} on {r.runtime}{t}"


COLUMNS = ("artifact", "runtime", "threads", "p50", "p90", "p99", "mean ± std", "throughput", "import", "init",
           "first run", "peak RSS", "size", "status")


def _cells(r: BenchRow) -> list[str]:
    lat = r.latency_ms
    status = r.status if r.status == OK else f"{r.status}: {r.reason}" if r.reason else r.status
    mean = f"{fmt_ms(lat.get('mean'))} ± {fmt_ms(lat.get('std'))}" if "mean" in lat else "-"
    return [r.artifact, r.runtime, str(r.threads), fmt_ms(lat.get("p50")), fmt_ms(lat.get("p90")), fmt_ms(lat.get("p99")),
            mean, fmt_rate(r.throughput), fmt_ms(r.import_ms), fmt_ms(r.init_ms), fmt_ms(r.first_ms), fmt_mb(r.peak_mb), fmt_size(r.size_bytes), status]


def machine_line(report: BenchReport) -> str:
    m = report.machine
    parts = [str(m.get("cpu", "unknown CPU"))]
    if m.get("logical_cpus"):
        parts.append(f"{m.get('usable_cpus', m['logical_cpus'])}/{m['logical_cpus']} CPUs usable")
    if m.get("memory_gb"):
        parts.append(f"{m['memory_gb']} GB RAM")
    parts.append(str(m.get("platform", "")))
    parts.append(f"Python {m.get('python', '?')}")
    if m.get("loadavg"):
        parts.append(f"load {m['loadavg'][0]}")
    return ", ".join(p for p in parts if p)


def settings_line(report: BenchReport) -> str:
    s = report.settings
    loop = f"{s.get('seconds')} s per row" if s.get("seconds") else f"{s.get('runs')} timed runs"
    return f"{s.get('warmup')} warm-up + {loop}; threads {','.join(str(t) for t in s.get('threads', []))}; input: {report.feed.get('source', '?')}"


# ------------------------------------------------------------------------------------------ writers


def write_json(report: BenchReport, path: str | os.PathLike) -> None:
    atomic_write_json(path, report.to_json())


def markdown(report: BenchReport, title: str | None = None) -> str:
    lines = [f"### {title or 'Benchmark: ' + (report.source or report.target)}", ""]
    lines.append(f"Machine: {machine_line(report)}" + (f" (remote: {report.remote.get('url')})" if report.remote else ""))
    lines.append("")
    lines.append(f"Settings: {settings_line(report)}. Latency of `Session.run_native` alone; peak RSS is the worker's "
                 "high-water mark above its idle baseline (runtime library + model + inference).")
    lines.append("")
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" if i < 3 or i == len(COLUMNS) - 1 else "---:" for i in range(len(COLUMNS))) + "|")
    for r in report.sorted_rows():
        lines.append("| " + " | ".join(_md(c) for c in _cells(r)) + " |")
    lines.append("")
    if report.gate:
        lines.append(f"Gate: {report.gate.get('summary', '')}")
        lines.append("")
    for r in report.sorted_rows():
        if r.delegation is not None:
            lines.append(f"- {_md(r.key)}: {_md(delegation_line(r.delegation))}")
    for r in report.sorted_rows():
        if r.profile is not None:
            lines.extend(["", f"Per-op time, {_md(r.key)} ({_md(r.profile.get('method') or 'unavailable')}):", ""])
            lines.extend(_md_profile(r.profile))
    lines.append("")
    for n in report.notes:
        lines.append(f"- note: {_md(n)}")
    return "\n".join(lines).rstrip() + "\n"


def _md_profile(profile: dict[str, Any]) -> list[str]:
    if profile.get("error"):
        return [f"unavailable: {_md(profile['error'])}"]
    out = ["| op | where | nodes | ms / inference | share |", "|---|---|---:|---:|---:|"]
    for o in profile.get("ops", []):
        out.append(f"| {_md(o['op'])} | {o.get('placement', '')} | {o['count']} | {o['ms']:.4f} | {o['share'] * 100:.1f}% |")
    return out


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_markdown(report: BenchReport, path: str | os.PathLike) -> None:
    atomic_write_text(path, markdown(report))


def print_table(report: BenchReport, console: Any = None, wide: bool | None = None) -> None:
    """The results table (see :func:`edgeport.cli.render.print_table` for the layouts), machine and settings."""
    from edgeport.cli.render import Column, Row, TableSpec, make_console, print_table as render_table

    console = console or make_console()
    key = {"artifact", "runtime", "p50", "p99", "peak RSS", "status"}
    cols = [Column(c, right=3 <= i < len(COLUMNS) - 1, key=c in key) for i, c in enumerate(COLUMNS)]
    cols.append(Column("reason", wrap=True))
    rows = [Row(_cells(r)[:-1] + [r.status, r.reason or ""], style=_style(r)) for r in report.sorted_rows()]
    render_table(console, TableSpec(cols, rows, title=f"edgeport bench: {report.source or report.target}"), wide)
    remote = f" (remote: {report.remote.get('url')})" if report.remote else ""
    console.print(machine_line(report) + remote, style="dim", markup=False, highlight=False)
    console.print(settings_line(report), style="dim", markup=False, highlight=False)
    for n in report.notes:
        console.print(f"note: {n}", style="yellow", markup=False, highlight=False)


def _style(r: BenchRow) -> str | None:
    return None if r.status == OK else ("dim" if r.status == SKIPPED else "red")


# ------------------------------------------------------------------------------------------ plot


def plot_png(report: BenchReport) -> bytes | None:
    """PNG bytes of the latency distributions, or None when matplotlib is missing or nothing was measured."""
    rows = [r for r in report.sorted_rows() if r.status == OK and r.samples_us]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import numpy as np

    data = [np.asarray(r.samples_us, dtype=float) for r in rows]
    labels = [row_label(r) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.6), dpi=110)
    try:
        style: dict[str, Any] = {"whis": (1, 99), "showfliers": False, "widths": 0.6, "medianprops": {"color": "#c0392b", "linewidth": 2}}
        try:
            ax.boxplot(data[::-1], orientation="horizontal", **style)  # matplotlib >= 3.10
        except TypeError:
            ax.boxplot(data[::-1], vert=False, **style)
        ax.set_yticks(range(1, len(rows) + 1))
        ax.set_yticklabels(labels[::-1], fontsize=8)
        lo = min(float(d.min()) for d in data)
        hi = max(float(np.percentile(d, 99)) for d in data)
        if lo > 0 and hi / lo > 20:
            ax.set_xscale("log")
        ax.set_xlabel("latency per inference (µs); box: p25-p75, line: p50, whiskers: p1-p99")
        ax.set_title(f"edgeport bench: {report.source or report.target}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def write_plot(report: BenchReport, path: str | os.PathLike) -> str | None:
    """Write the PNG; None on success, else the reason it was skipped (one line)."""
    png = plot_png(report)
    if png is None:
        if not any(r.status == OK and r.samples_us for r in report.rows):
            return "plot skipped: no row was measured"
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    atomic_write_bytes(path, png)
    return None


# ------------------------------------------------------------------------------------------ html


def html_section(report: BenchReport, png: bytes | None) -> str:
    esc = html.escape
    out = [HTML_BEGIN, '<section id="edgeport-bench">', f"<h2>Benchmark: {esc(report.source or report.target)}</h2>",
           f"<p>{esc(machine_line(report))}<br>{esc(settings_line(report))}</p>"]
    if png is not None:
        out.append(f'<img alt="latency distribution per runtime" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    else:
        out.append("<p><em>plot skipped: matplotlib is not installed</em></p>")
    out.append("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>")
    for r in report.sorted_rows():
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(r)) + "</tr>")
    out.append("</tbody></table>")
    if report.gate:
        out.append(f"<p>{esc(str(report.gate.get('summary', '')))}</p>")
    out.append("</section>")
    out.append(HTML_END)
    return "\n".join(out)


def write_html(report: BenchReport, path: str | os.PathLike, png: bytes | None = None) -> str:
    """Inject the section into the HTML file at ``path`` (or create a page). Returns "updated" or "created"."""
    p = Path(path)
    section = html_section(report, png if png is not None else plot_png(report))
    if p.is_file():
        text = p.read_text(encoding="utf-8", errors="replace")
        if HTML_BEGIN in text and HTML_END in text and text.index(HTML_BEGIN) < text.index(HTML_END):
            a, b = text.index(HTML_BEGIN), text.index(HTML_END) + len(HTML_END)
            text = text[:a] + section + text[b:]
        elif "</body>" in text.lower():
            i = text.lower().rindex("</body>")
            text = text[:i] + section + "\n" + text[i:]
        else:
            text = text + "\n" + section + "\n"
        atomic_write_text(p, text)
        return "updated"
    page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>edgeport bench</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}"
            "img{max-width:100%}</style></head><body>\n" + section + "\n</body></html>\n")
    atomic_write_text(p, page)
    return "created"


# ------------------------------------------------------------------------------------------ placement and per-op time


def delegation_line(d: dict[str, Any]) -> str:
    """The one console line of a .tflite row's delegation report (or why there is none)."""
    if d.get("error"):
        return f"delegation report unavailable: {d['error']}"
    from edgeport.runtimes.tflite_delegation import summary_line

    return summary_line(d)


def print_placement(report: BenchReport, console: Any) -> None:
    """One line per .tflite row: partitions, builtin-kernel ops, time outside the delegate."""
    for r in report.sorted_rows():
        if r.delegation is not None:
            console.print(f"{r.key}: {delegation_line(r.delegation)}", markup=False, highlight=False)


def print_profiles(report: BenchReport, console: Any) -> None:
    """The per-op time table of every profiled row (``edgeport bench --profile``)."""
    from rich.table import Table
    from rich.text import Text

    for r in report.sorted_rows():
        prof = r.profile
        if prof is None:
            continue
        if prof.get("error"):
            console.print(f"{r.key}: per-op profile unavailable: {prof['error']}", style="yellow", markup=False, highlight=False)
            continue
        table = Table(title=Text(f"per-op time: {r.key} ({prof.get('method')})"), title_justify="left")
        for i, col in enumerate(("op", "where", "nodes", "ms/inference", "share")):
            table.add_column(col, justify="right" if i >= 2 else "left")
        for o in prof.get("ops", []):
            table.add_row(Text(o["op"]), Text(o.get("placement", "")), str(o["count"]), f"{o['ms']:.4f}", f"{o['share'] * 100:.1f}%")
        console.print(table)
        shown, types = len(prof.get("ops", [])), prof.get("op_types", 0)
        whole = prof.get("full_ms") if prof.get("full_ms") is not None else prof.get("run_ms")
        console.print(f"{shown} of {types} op types; sum of ops {prof.get('total_ms')} ms, whole model {whole} ms; "
                      f"{prof.get('note', '')}", style="dim", markup=False, highlight=False)
