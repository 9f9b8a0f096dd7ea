"""Rendering a sweep: a console table, report.json, report.html and two PNG plots.

- ``accuracy_vs_latency.png``: SNR against the reference (dB, higher is better) over latency p50 (ms, 1 thread),
  one point per variant, TFLite and ONNX Runtime marked apart: the upper-left corner is where to ship from;
- ``sizes.png``: file size per variant, with its ratio to the fp32 file of the same format.

Plots use matplotlib's Agg backend (no display needed); HTML is a jinja2 template with autoescaping on,
so model names and tensor names cannot inject markup.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from edgeport.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, human_size

SNR_PLOT_CAP = 60.0  # dB; fp32 rows agree to ~1e-6 (>100 dB), which would flatten everything else
PNG_SCATTER = "accuracy_vs_latency.png"
PNG_SIZES = "sizes.png"


def label(row: Any) -> str:
    runtime = "LiteRT" if row.runtime == "tflite" else "ORT"
    return f"{runtime} {row.variant}"


def fmt_size(n: int | float) -> str:
    return human_size(n)


def fmt_num(v: Any, spec: str = ".4f") -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return format(v, spec)


def fmt_overflow(layer: dict[str, Any]) -> str:
    share, worst = layer.get("overflow"), layer.get("overflow_max")
    if not isinstance(share, (int, float)):
        return "-"
    if not share:
        return "0"
    return f"{share * 100:.2g}% (up to {worst:.2g}x range)" if isinstance(worst, (int, float)) else f"{share * 100:.2g}%"


def overflow_line(report: Any) -> str:
    """One sentence on activations leaving their calibrated ranges on held-out inputs (empty when not measured)."""
    info = (report.layer_info or {}).get("overflow") or {}
    n = info.get("layers")
    if not info.get("holdout_samples"):
        return ""
    if not n:
        return f"on {info['holdout_samples']} held-out inputs no int8 layer left its calibrated range"
    worst = sorted(((float(x[0]), str(x[1])) for x in info.get("worst", [])), reverse=True)[:3]
    names = ", ".join(f"{name} ({v:.2g}x the range)" for v, name in worst)
    return (f"on {info['holdout_samples']} held-out inputs {n} int8 layers overflow their calibrated range and saturate; "
            f"furthest: {names}. More (or more varied) calibration data widens those ranges.")


def diagnosis(report: Any) -> list[str]:
    """Plain-language conclusions about int8 on this model, from the per-layer numbers and the rows."""
    out: list[str] = []
    layers = [x for x in report.layers if isinstance(x.get("rmse_scale"), (int, float))]
    if layers:
        worst = max(layers, key=lambda x: x["rmse_scale"])
        bad = [x for x in layers if x["rmse_scale"] > 0.7]
        if bad:
            names = ", ".join(str(x.get("layer")) for x in sorted(bad, key=lambda x: -x["rmse_scale"])[:3])
            out.append(f"{len(bad)} int8 layer(s) quantize badly (rmse/scale > 0.7, plain rounding is 0.29): {names}; "
                       "they are the first candidates for --keep-float.")
        else:
            out.append(f"No int8 layer stands out: the largest rmse/scale is {worst['rmse_scale']:.2f} (plain rounding is 0.29), "
                       f"so the error is spread over all {len(report.layers)} layers and leaving a few in float buys little.")
    line = overflow_line(report)
    if line:
        out.append(line[0].upper() + line[1:])
    kf, base = report.row("int8-keepfloat"), report.row("int8")
    if kf is not None and base is not None and kf.ok and base.ok:
        a, b = kf.summary.get("snr_db"), base.summary.get("snr_db")
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            verb = "raises" if a > b else "does not raise"
            out.append(f"Keeping {len(report.keep_float.get('layers', []))} layer(s) in float {verb} the SNR "
                       f"({b:.1f} -> {a:.1f} dB) for {fmt_size(kf.size_bytes - base.size_bytes)} more.")
    return out


def table_rows(report: Any) -> list[dict[str, str]]:
    """Display strings per row (shared by the console table and the HTML page)."""
    out = []
    for r in report.rows:
        s = r.summary
        status = r.status if r.status == "ok" else f"{r.status} ({r.stage})"
        if r.flags:
            status += " FLAGGED"
        out.append({
            "variant": label(r), "name": r.name, "file": r.path, "status": status,
            "size": fmt_size(r.size_bytes) if r.size_bytes else "-",
            "ratio": f"{r.size_ratio:.2f}x" if r.size_ratio is not None else "-",
            "p50": fmt_num(r.latency.get("p50"), ".3f") if r.latency else "-",
            "partitions": str(r.delegation["partitions"]) if isinstance((r.delegation or {}).get("partitions"), int) else "-",
            "cosine": fmt_num(s.get("cosine"), ".5f"), "snr": fmt_num(s.get("snr_db"), ".1f"),
            "max_abs": fmt_num(s.get("max_abs"), ".3g"),
            "top1": fmt_num(s.get("top1"), ".3f"), "top5": fmt_num(s.get("top5"), ".3f"),
            "task": fmt_num(r.task.get("accuracy"), ".3f") if r.task else "-",
            "reason": r.reason or "; ".join(r.flags),
            "ok": r.status == "ok" and not r.flags,
        })
    return out


def render_console(report: Any, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    has_task = any(r.task for r in report.rows)
    t = Table(title=escape(f"quantization sweep: {report.source or report.root}"))
    cols = ["variant", "size", "ratio", "p50 ms", "parts", "cosine", "SNR dB", "max abs", "top-1", "top-5"]
    cols += ["accuracy"] if has_task else []
    cols += ["status"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("variant", "status") else "right")
    for d in table_rows(report):
        vals = [d["variant"], d["size"], d["ratio"], d["p50"], d["partitions"], d["cosine"], d["snr"], d["max_abs"], d["top1"], d["top5"]]
        vals += [d["task"]] if has_task else []
        vals += [d["status"] if d["status"] == "ok" else f"{d['status']}: {d['reason']}"[:90]]
        t.add_row(*(escape(v) for v in vals), style=None if d["ok"] else "yellow")  # names and reasons are not markup
    console.print(t)
    from edgeport.quantize.model import floor_text, recommend
    from edgeport.quantize.remedies import remedies_line, speed_line

    for line in (remedies_line(report.remedies, report.rows), speed_line(report.int8_speed)):
        if line:
            console.print(line, markup=False)
    rec = recommend(report)
    if rec.get("line"):
        console.print(rec["line"], markup=False, style="bold green" if rec.get("smallest") else "bold yellow")
    ref = report.reference
    data = report.data
    console.print(f"reference: {ref.get('runtime')} ({ref.get('backend', '')}); held-out samples: {data.get('holdout_samples')}, "
                  f"calibration samples: {data.get('calibration_samples')} from {data.get('source')}", markup=False)
    for w in report.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(w)}", markup=True, highlight=False)
    if report.layers:
        info = report.layer_info
        console.print(f"int8 layers with the largest quantization error (of {len(report.layers)}, ranked by "
                      f"{info.get('rank_by')}; {info.get('named')} named):", markup=False)
        lt = Table(show_header=True)
        for c in ("#", "layer (PyTorch module / ONNX node)", "op", "SNR dB", "rmse/scale", "held-out overflow", "ONNX nodes"):
            lt.add_column(c)
        for layer in report.layers[:5]:
            lt.add_row(*(escape(str(v)) for v in (
                layer["rank"], layer.get("layer", ""), layer.get("op", ""), fmt_num(layer.get("snr_db"), ".1f"),
                fmt_num(layer.get("rmse_scale"), ".2f"), fmt_overflow(layer), ", ".join(layer.get("onnx_nodes", []))[:60])))
        console.print(lt)
        for line in diagnosis(report):
            console.print(line, markup=False)
    if report.keep_float:
        console.print(f"kept in float: {', '.join(report.keep_float.get('layers', []))}", markup=False)
    _console_sensitivity(report, console, floor_text(report.floor or {}))
    for n in report.notes:
        console.print(f"note: {n}", markup=False, style="dim")
    for key in ("html", "json"):
        if report.files.get(key):
            console.print(f"{key}: {Path(report.root) / report.files[key]}", markup=False)


def _console_sensitivity(report: Any, console: Any, floor: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    sens = report.sensitivity or {}
    if sens.get("layers"):
        console.print(f"most sensitive ops, isolated ({sens.get('mode')}: only this op quantized / all but this op; "
                      f"plain: SNR {fmt_num(sens['full'].get('snr_db'), '.1f')} dB, accuracy {fmt_num(sens['full'].get('accuracy'), '.4f')}):",
                      markup=False)
        st = Table(show_header=True)
        for c in ("#", "layer", "op", "only: SNR dB", "only: acc", "all but: SNR dB", "all but: acc"):
            st.add_column(c)
        for d in sens["layers"][:5]:
            st.add_row(*(escape(str(v)) for v in (d["rank"], d.get("layer") or d["tensor"][:40], d["op"],
                                                   fmt_num(d["only"].get("snr_db"), ".1f"), fmt_num(d["only"].get("accuracy"), ".4f"),
                                                   fmt_num(d["all_but"].get("snr_db"), ".1f"), fmt_num(d["all_but"].get("accuracy"), ".4f"))))
        console.print(st)
    elif sens.get("status") and sens.get("status") != "ok":
        console.print(f"per-op sensitivity: {sens.get('status')} ({sens.get('reason')})", markup=False)
    search = search_view(report)
    for step in search.get("steps", []):
        console.print(f"search step {step['float_ops']} op(s) float [{', '.join(step['float_names']) or '-'}]: "
                      f"{fmt_size(step['size_bytes'])}, {fmt_num(step.get('latency_ms'), '.3f')} ms, SNR {fmt_num(step.get('snr_db'), '.1f')} dB, "
                      f"accuracy {fmt_num(step.get('accuracy'), '.4f')} -> {'meets' if step['meets'] else 'below'} {floor}", markup=False)


# ----------------------------------------------------------------------------------------------- plots


def _floor_line(ax: Any, report: Any, use_task: bool) -> None:
    """The accuracy floor (with labels) or the SNR floor as a dashed line, when the report has one."""
    floor = report.floor or {}
    ref_acc = next((r.task.get("reference_accuracy") for r in report.rows if r.task), None)
    if use_task and floor.get("max_accuracy_drop") is not None and isinstance(ref_acc, (int, float)):
        ax.axhline(ref_acc - floor["max_accuracy_drop"], color="#2ca02c", linestyle="--", linewidth=1, label="accuracy floor")
    elif not use_task and floor.get("min_snr_db") is not None:
        ax.axhline(floor["min_snr_db"], color="#2ca02c", linestyle="--", linewidth=1, label="SNR floor")


def _plot_scatter(report: Any, path: Path) -> bool:
    """The Pareto plot: task accuracy (or SNR without labels) over latency, marker area = file size; the
    recommended variants (smallest, fastest meeting the floor) ringed and named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_task = any(r.task for r in report.rows)

    def y_of(r: Any) -> Any:
        return r.task.get("accuracy") if use_task else r.summary.get("snr_db")

    pts = [(r, r.latency.get("p50"), y_of(r)) for r in report.rows if r.ok and r.latency]
    pts = [(r, x, y) for r, x, y in pts if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not math.isnan(y)]
    if not pts:
        return False
    rec = recommend_names(report)
    biggest = max((r.size_bytes for r, _, _ in pts), default=0) or 1
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    capped = False
    for runtime, marker, colour in (("tflite", "o", "#1f77b4"), ("onnxruntime", "s", "#d62728")):
        sel = [(r, x, y if use_task else min(y, SNR_PLOT_CAP)) for r, x, y in pts if r.runtime == runtime]
        capped = capped or (not use_task and any(y >= SNR_PLOT_CAP for _, _, y in sel))
        if not sel:
            continue
        ax.scatter([x for _, x, _ in sel], [y for _, _, y in sel], marker=marker, s=[30 + 400 * r.size_bytes / biggest for r, _, _ in sel],
                   color=colour, alpha=0.75, label="LiteRT (TFLite)" if runtime == "tflite" else "ONNX Runtime",
                   edgecolors="black", linewidths=0.5)
        for k, (r, x, y) in enumerate(sel):
            tag = "".join(f" [{w}]" for w in rec.get(r.name, []))
            ax.annotate(r.variant + (" !" if r.flags else "") + tag, (x, y), textcoords="offset points",
                        xytext=(6, 5 if k % 2 == 0 else -11), fontsize=8, fontweight="bold" if tag else "normal")
    marked = [(x, y if use_task else min(y, SNR_PLOT_CAP)) for r, x, y in pts if r.name in rec]
    if marked:
        ax.scatter([x for x, _ in marked], [y for _, y in marked], marker="*", s=260, facecolors="#2ca02c",
                   edgecolors="black", linewidths=0.8, zorder=5, label="recommended (meets the floor)")
    _floor_line(ax, report, use_task)
    xs = [x for _, x, _ in pts if x > 0]
    if xs and max(xs) / min(xs) > 20:
        from matplotlib.ticker import FormatStrFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.margins(x=0.15, y=0.12)
    ax.set_xlabel("latency p50 (ms, 1 thread); marker area = file size")
    ax.set_ylabel("task accuracy on held-out samples" if use_task else
                  f"SNR vs reference (dB){' - capped at %d' % SNR_PLOT_CAP if capped else ''}")
    ax.set_title("accuracy vs latency (upper left is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


def recommend_names(report: Any) -> dict[str, list[str]]:
    """Row name -> ["smallest"] / ["fastest"] / both, from the recommendation."""
    from edgeport.quantize.model import recommend

    rec = recommend(report)
    out: dict[str, list[str]] = {}
    for key in ("smallest", "fastest"):
        if rec.get(key):
            out.setdefault(rec[key]["name"], []).append(key)
    return out


def _plot_sizes(report: Any, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if r.size_bytes]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4), dpi=110)
    names = [label(r) for r in rows]
    sizes = [r.size_bytes / 1024.0 for r in rows]
    colours = ["#1f77b4" if r.runtime == "tflite" else "#d62728" for r in rows]
    bars = ax.barh(range(len(rows)), sizes, color=colours, edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    for b, r in zip(bars, rows):
        text = fmt_size(r.size_bytes) + (f"  ({r.size_ratio:.2f}x fp32)" if r.size_ratio is not None else "")
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, "  " + text, va="center", fontsize=8)
    ax.set_xlabel("file size (KB)")
    ax.set_xlim(0, max(sizes) * 1.45)
    ax.set_title("model file size per variant")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


def _png(render: Any, report: Any, path: Path) -> bool:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if not render(report, tmp):
            return False
        atomic_write_bytes(path, tmp.read_bytes())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def render_html(report: Any, plots: dict[str, str]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("edgeport", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_num
    env.filters["size"] = fmt_size
    env.filters["overflow"] = fmt_overflow
    tpl = env.get_template("quantize.html.j2")
    plots = {"scatter": "", "sizes": "", **plots}  # a plot is missing when no variant ran (or without matplotlib)
    from edgeport.quantize.model import floor_text, recommend
    from edgeport.quantize.remedies import remedies_line, speed_line

    kf_row, int8_row = report.row("int8-keepfloat"), report.row("int8")
    return tpl.render(report=report, rows=table_rows(report), plots=plots, layers=report.layers[:25], diagnosis=diagnosis(report),
                      has_task=any(r.task for r in report.rows), keep_float=report.keep_float, kf_row=kf_row, int8_row=int8_row,
                      data=report.data, reference=report.reference, json_name="report.json", recommendation=recommend(report),
                      sensitivity=report.sensitivity, search=search_view(report), floor_text=floor_text(report.floor or {}),
                      speed=report.int8_speed or {}, speed_line=speed_line(report.int8_speed or {}),
                      remedies_line=remedies_line(report.remedies or {}, report.rows))


def search_view(report: Any) -> dict[str, Any]:
    """The search's steps with the kept ops named as in the sensitivity table (module / ONNX node where known)."""
    search = dict(report.search or {})
    from edgeport.tflite_fb import layer_hint

    layers = (report.sensitivity or {}).get("layers", [])
    names = {d["tensor"]: f"{d.get('layer') or layer_hint(d['tensor'])[:60]} ({d['op']})" for d in layers}
    search["steps"] = [{**st, "float_names": [names.get(t, layer_hint(t)[:60]) for t in st.get("float_layers", [])]}
                       for st in search.get("steps", [])]
    return search


def write_reports(report: Any, folder: Path, root: Path) -> dict[str, str]:
    """Write the PNGs, report.html and report.json into ``folder``; return their paths relative to ``root``."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    plots: dict[str, str] = {}
    rel = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
    for key, name, fn in (("scatter", PNG_SCATTER, _plot_scatter), ("sizes", PNG_SIZES, _plot_sizes)):
        if _png(fn, report, folder / name):
            plots[key] = name
            files[key] = f"{rel}/{name}"
    files["json"] = f"{rel}/report.json"
    files["html"] = f"{rel}/report.html"
    report.files = files
    atomic_write_text(folder / "report.html", render_html(report, plots))
    atomic_write_json(folder / "report.json", report.to_json())
    return files


def load_report(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
