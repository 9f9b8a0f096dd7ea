"""Build OUT/report.html from what the output folder holds (see :mod:`edgeport.report`).

Sections: the model and its inputs; the artifacts (converter, size, ops, checks, delegation when the
check recorded it); the parity matrix coloured by each cell's margin to its tolerance; the error each
conversion step added; the worst output's error histogram and scatter; latency per runtime; the
quantization sweep. A section whose data is missing says which command fills it. Every string from
the model or a file goes through the template's autoescaping.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from edgeport.fsutil import atomic_write_text, human_size
from edgeport.manifest import MANIFEST_NAME, Manifest
from edgeport.report.state import RESULT_NAMES, STATE_DIR, WORST_NAME
from edgeport.validate.worst import tolerance_margin

PAGE_NAME = "report.html"
FILES_DIR = "report_files"
PLOTS = {"stages": "stage_errors.png", "worst": "worst_output.png", "latency": "latency.png"}
QUANT_REPORT = Path("quant") / "report.json"


def update_report(out_dir: str | os.PathLike) -> Path:
    """Rewrite ``OUT/report.html`` (and its PNGs under ``OUT/report_files/``); return the page's path."""
    out = Path(out_dir)
    manifest = Manifest.load(out)
    validate = _load(out / STATE_DIR / RESULT_NAMES["validate"], "edgeport.validate/")
    bench = _load(out / STATE_DIR / RESULT_NAMES["bench"], "edgeport.bench/")
    quant = _load(out / QUANT_REPORT, "edgeport.quantize/")
    files = out / FILES_DIR
    files.mkdir(exist_ok=True)
    made: dict[str, str] = {}
    ctx: dict[str, Any] = {
        "title": manifest.source or str(out), "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "model": _model(manifest), "artifacts": _artifacts(manifest), "attempts": _attempts(manifest),
        "parity": _parity(validate, out, manifest) if validate else None,
        "stages": _stages(validate, files, made) if validate else None,
        "worst": _worst(validate, out, files, made) if validate else None,
        "bench": _bench(bench, out, manifest, files, made) if bench else None,
        "quant": _quant(quant, out) if quant else None,
    }
    for name in PLOTS.values():  # a plot this run did not draw is stale
        if f"{FILES_DIR}/{name}" not in made.values():
            (files / name).unlink(missing_ok=True)
    ctx["plots"] = {name: made.get(name) for name in PLOTS}  # every plot named, None when not drawn
    page = out / PAGE_NAME
    atomic_write_text(page, _render(ctx))
    return page


def _load(path: Path, schema: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith(schema):
        return None
    doc["_mtime"] = path.stat().st_mtime
    return doc


def _stale(doc: dict[str, Any], out: Path) -> bool:
    """Older than the manifest: made before the last conversion."""
    try:
        return doc["_mtime"] < (out / MANIFEST_NAME).stat().st_mtime
    except OSError:
        return False


def _when(doc: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(doc["_mtime"]))


# ------------------------------------------------------------------------------------------ model, artifacts


def _tensors(specs: list[Any]) -> list[dict[str, str]]:
    return [{"name": s.name, "shape": "x".join(str(d) for d in s.shape) or "scalar", "dtype": s.dtype,
             "layout": s.layout or ""} for s in specs]


def _model(m: Manifest) -> dict[str, Any]:
    ref = m.reference or {}
    return {"source": m.source, "created": m.created, "root": str(Path(m.root).resolve()), "inputs": _tensors(m.io.inputs),
            "outputs": _tensors(m.io.outputs), "dims": m.dims, "samples": ref.get("samples"),
            "reference_runtime": ref.get("runtime", ""), "tools": sorted(m.tools.items())}


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_scalar(x) for x in v) if v else "none"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) if v else "none"
    return str(v)


def _artifacts(m: Manifest) -> list[dict[str, Any]]:
    rows = []
    for a in m.artifacts:
        ops = sorted(a.ops.items(), key=lambda kv: (-kv[1], kv[0]))
        checks = a.checks or {}
        check = ""
        if checks:
            check = "passed" if checks.get("passed") else ("failed" if "passed" in checks else "")
            if isinstance(checks.get("worst_rel"), (int, float)):
                check += f", worst rel {checks['worst_rel']:.1e}"
            for key in ("flex_ops", "custom_ops"):
                if checks.get(key):
                    check += f", {key.replace('_', ' ')}: {', '.join(map(str, checks[key]))}"
        delegation = checks.get("delegation")
        rows.append({
            "name": a.name, "format": a.format, "converter": a.converter or ("the model itself" if a.format == "pytorch" else ""),
            "variant": a.variant, "parent": a.parent or "", "path": a.path,
            "size": human_size(a.size_bytes) if a.size_bytes else "", "seconds": f"{a.seconds:.1f} s" if a.seconds else "",
            "op_total": sum(a.ops.values()), "ops": [f"{k} x{v}" for k, v in ops[:8]], "more_ops": max(0, len(ops) - 8),
            "check": check.strip(", "),
            "delegation": [(str(k), _scalar(v)) for k, v in delegation.items() if v is not None and v != "" and v != [] and v != {}]
            if isinstance(delegation, dict) else None,
            "notes": a.notes,
        })
    return rows


def _attempts(m: Manifest) -> list[dict[str, str]]:
    return [{"target": t.target, "converter": t.converter, "status": t.status, "reason": t.reason}
            for t in m.attempts if t.status != "kept"]


# ------------------------------------------------------------------------------------------ parity


def margin_class(margin: float | None, status: str) -> str:
    """CSS class of a parity cell: how far inside (or outside) its tolerance it is."""
    if status in ("error", "crash", "timeout"):
        return "c-error"
    if status == "skipped":
        return "c-skip"
    if margin is None:
        return "c-fail" if status == "fail" else "c-unknown"
    if margin > 1 or status == "fail":
        return "c-fail"
    return "c-near" if margin > 0.5 else ("c-ok" if margin > 0.01 else "c-far")


def _fmt_margin(m: float | None) -> str:
    if m is None:
        return ""
    return "inf" if math.isinf(m) else f"{m:.2g}x"


def _parity(doc: dict[str, Any], out: Path, manifest: Manifest) -> dict[str, Any]:
    results = [r for r in doc.get("results") or [] if isinstance(r, dict)]
    runtimes = list(dict.fromkeys(str(r.get("runtime", "")) for r in results))
    rows: dict[str, dict[str, Any]] = {}
    details = []
    for r in results:
        outs = [o for o in r.get("outputs") or [] if isinstance(o, dict)]
        margins = [(tolerance_margin(o.get("metrics") or {}, o.get("tolerance")), o) for o in outs]
        known = [m for m, _ in margins if m is not None]
        worst = max(known) if known else None
        status = str(r.get("status", ""))
        text = status + (f" {_fmt_margin(worst)}" if worst is not None else "")
        title = r.get("reason") or "; ".join(f"{o.get('name')}: {_fmt_margin(m)} of tolerance" for m, o in margins)
        row = rows.setdefault(str(r.get("artifact", "")), {"artifact": str(r.get("artifact", "")), "cells": {}})
        row["cells"][str(r.get("runtime", ""))] = {"text": text, "cls": margin_class(worst, status), "title": str(title),
                                                   "role": r.get("role", "")}
        for m, o in margins:
            met = o.get("metrics") or {}
            details.append({"key": f"{r.get('artifact')} on {r.get('runtime')}", "output": o.get("name", ""),
                            "passed": o.get("passed"), "max_abs": _num(met.get("max_abs")), "max_rel": _num(met.get("max_rel")),
                            "cosine": _num(met.get("cosine"), ".7f"), "snr_db": _num(met.get("snr_db"), ".1f"),
                            "margin": _fmt_margin(m), "cls": margin_class(m, "pass" if o.get("passed") else "fail"),
                            "tolerance": _tolerance_text(o.get("tolerance"))})
    ref = doc.get("reference") or {}
    return {"summary": doc.get("summary", ""), "runtimes": runtimes, "rows": list(rows.values()), "details": details,
            "reference": f"{ref.get('artifact') or ref.get('source', '')} on {ref.get('runtime', '')}",
            "inputs": (doc.get("inputs") or {}).get("source", ""),
            "localization": [str(x.get("message") or x.get("error") or "") for x in doc.get("localization") or [] if isinstance(x, dict)],
            "notes": [str(n) for n in doc.get("notes") or []], "when": _when(doc), "stale": _stale(doc, out),
            "passed": bool(doc.get("passed"))}


def _tolerance_text(tol: Any) -> str:
    from edgeport.validate.metrics import Tolerance

    if not isinstance(tol, dict):
        return ""
    try:
        return Tolerance(**tol).describe()
    except (TypeError, ValueError):  # a report from another edgeport version
        return _scalar(tol)


def _num(v: Any, spec: str = ".3g") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return format(v, spec)
    return "" if v is None else str(v)


def _stages(doc: dict[str, Any], files: Path, made: dict[str, str]) -> dict[str, Any] | None:
    from edgeport.report import plots

    stages = [s for s in doc.get("stages") or [] if isinstance(s, dict)]
    if not stages:
        return None
    bars, rows = [], []
    for s in stages:
        outs = s.get("outputs") or {}
        for name, d in outs.items():
            added = d.get("added_max_abs")
            label = f"{s.get('parent')} -> {s.get('artifact')}" + (f" [{name}]" if len(outs) > 1 else "")
            bars.append((label, added if isinstance(added, (int, float)) else None))
            rows.append({"step": label, "output": name, "added": _num(added), "total": _num(d.get("total_max_abs")),
                         "cosine": _num(d.get("added_cosine"), ".7f")})
    if plots.stage_errors(bars, files / PLOTS["stages"]):
        made["stages"] = f"{FILES_DIR}/{PLOTS['stages']}"
    return {"rows": rows}


def _worst(doc: dict[str, Any], out: Path, files: Path, made: dict[str, str]) -> dict[str, Any] | None:
    import numpy as np

    from edgeport.report import plots

    meta = doc.get("worst_output")
    npz = out / STATE_DIR / WORST_NAME
    if not isinstance(meta, dict) or not npz.is_file():
        return None
    with np.load(npz, allow_pickle=False) as data:
        ref, cand = data["reference"], data["candidate"]
    title = f"{meta.get('output')} of {meta.get('artifact')} on {meta.get('runtime')}"
    if plots.worst_output(ref, cand, title, files / PLOTS["worst"]):
        made["worst"] = f"{FILES_DIR}/{PLOTS['worst']}"
    margin = meta.get("margin")
    return {"title": title, "margin": _fmt_margin(float(margin)) if isinstance(margin, (int, float)) else str(margin),
            "shown": int(ref.size), "elements": meta.get("elements")}


# ------------------------------------------------------------------------------------------ bench, quantize


def _bench(doc: dict[str, Any], out: Path, manifest: Manifest, files: Path, made: dict[str, str]) -> dict[str, Any]:
    from edgeport.bench.report import fmt_mb, fmt_ms, machine_line, plot_png, row_label, settings_line
    from edgeport.bench.runner import BenchReport
    from edgeport.fsutil import atomic_write_bytes

    report = BenchReport.from_json({k: v for k, v in doc.items() if k != "_mtime"}, str(out / STATE_DIR / RESULT_NAMES["bench"]))
    png = plot_png(report)
    if png is not None:
        atomic_write_bytes(files / PLOTS["latency"], png)
        made["latency"] = f"{FILES_DIR}/{PLOTS['latency']}"
    rows = [{"label": row_label(r), "status": r.status + (f": {r.reason}" if r.reason and not r.ok else ""),
             "p50": fmt_ms(r.latency_ms.get("p50")), "p90": fmt_ms(r.latency_ms.get("p90")),
             "p99": fmt_ms(r.latency_ms.get("p99")), "init": fmt_ms(r.init_ms), "peak": fmt_mb(r.peak_mb)}
            for r in report.sorted_rows()]
    return {"rows": rows, "machine": machine_line(report), "settings": settings_line(report), "summary": report.summary(),
            "when": _when(doc), "stale": _stale(doc, out), "measured": any(r.ok for r in report.rows)}


def _quant(doc: dict[str, Any], out: Path) -> dict[str, Any]:
    rows = []
    for r in doc.get("rows") or []:
        if not isinstance(r, dict):
            continue
        s, lat = r.get("summary") or {}, r.get("latency_ms") or {}
        rows.append({"variant": r.get("variant", ""), "format": r.get("format", ""), "status": r.get("status", ""),
                     "size": human_size(r["size_bytes"]) if r.get("size_bytes") else "", "ratio": _num(r.get("size_ratio"), ".2f"),
                     "p50": _num(lat.get("p50"), ".3g"), "snr": _num(s.get("snr_db"), ".1f"), "cosine": _num(s.get("cosine"), ".6f")})
    files = doc.get("files") or {}
    images = [str(v) for v in files.values() if isinstance(v, str) and v.endswith(".png") and (out / v).is_file()]
    html = files.get("html") if isinstance(files.get("html"), str) and (out / str(files.get("html"))).is_file() else None
    return {"rows": rows, "images": images, "html": html, "warnings": [str(w) for w in doc.get("warnings") or []],
            "when": _when(doc), "stale": _stale(doc, out)}


# ------------------------------------------------------------------------------------------ render


def _render(ctx: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("edgeport", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**ctx)
