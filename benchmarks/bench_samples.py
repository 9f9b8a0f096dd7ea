#!/usr/bin/env python
"""Benchmark every sample model on every runtime and write benchmarks/results.md.

    .venv/bin/python benchmarks/bench_samples.py [--runs 300] [--samples tiny_cnn,transformer] [--work DIR]

Each sample is converted with ``edgeport convert sample:NAME --to torchscript,onnx,saved_model,tflite``
(reused from ``--work`` when nothing changed; a target that cannot be converted is listed, not fatal),
then measured with ``edgeport bench OUT --json`` at 1 thread. The Markdown has the machine, one table
per model (every artifact x runtime), and a summary with the ratio of TFLite fp32 latency to ONNX
Runtime latency per model (p50; below 1 means LiteRT is faster). Prints where it wrote; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))


def _cli(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeport", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**__import__("os").environ, "COLUMNS": "200"})


def _ms(v: float | None) -> str:
    from edgeport.bench.report import fmt_ms

    return fmt_ms(v)


def convert(name: str, work: Path) -> tuple[Path | None, list[str]]:
    out = work / name
    r = _cli("convert", f"sample:{name}", "--to", "torchscript,onnx,saved_model,tflite", "-o", str(out))
    problems = [line.strip() for line in (r.stdout + r.stderr).splitlines() if line.strip().startswith(("failed:", "parity failed:", "error:"))]
    if not (out / "manifest.json").is_file():
        return None, problems or [f"convert exited {r.returncode}"]
    return out, problems


def bench(out: Path, runs: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "b.json"
        r = _cli("bench", str(out), "--runs", str(runs), "--warmup", str(warmup), "--json", str(js), "-q")
        if not js.is_file():
            raise SystemExit(f"bench failed on {out}: {r.stderr.strip()[-400:]}")
        return json.loads(js.read_text())


def ratio_row(name: str, doc: dict[str, Any], out: Path) -> tuple[str, ...]:
    from edgeport.manifest import Manifest

    rows = [r for r in doc["results"] if r["status"] == "ok" and r["threads"] == 1]
    ort = next((r for r in rows if r["runtime"] == "onnxruntime"), None)
    tfl = next((r for r in rows if r["runtime"] == "tflite" and r.get("variant", "fp32") == "fp32"), None)
    o = ort["latency_ms"]["p50"] if ort else None
    t = tfl["latency_ms"]["p50"] if tfl else None
    ratio = f"{t / o:.2f}" if o and t else "-"
    art = Manifest.load(out).find(tfl["artifact"]) if tfl else None
    return name, _ms(o), _ms(t), ratio, art.converter if art else "-"


def main(argv: list[str] | None = None) -> int:
    import sample_models

    from edgeport.bench.report import fmt_mb, fmt_size, machine_line
    from edgeport.bench.runner import BenchReport

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--samples", default=",".join(sample_models.SAMPLES), help="comma list of sample models")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgeport-bench-samples",
                    help="where converted samples are kept (reused across runs)")
    ap.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results.md")
    args = ap.parse_args(argv)

    names = [n.strip() for n in args.samples.split(",") if n.strip()]
    start = time.perf_counter()
    sections: list[str] = []
    summary: list[tuple[str, ...]] = []
    machine = ""
    for name in names:
        print(f"converting {name} ...", flush=True)
        out, problems = convert(name, args.work)
        if out is None:
            sections.append(f"#### {name}\n\nnot converted: {'; '.join(problems)}\n")
            continue
        print(f"benchmarking {name} ...", flush=True)
        doc = bench(out, args.runs, args.warmup)
        rep = BenchReport.from_json(doc)
        machine = machine or machine_line(rep)
        lines = [f"#### {name}", "", "| artifact | runtime | p50 | p90 | p99 | init | first run | peak RSS | size |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rep.sorted_rows():
            if r.status == "ok":
                lat = r.latency_ms
                lines.append(f"| {r.artifact} | {r.runtime} | {_ms(lat['p50'])} | {_ms(lat['p90'])} | {_ms(lat['p99'])} | "
                             f"{_ms(r.init_ms)} | {_ms(r.first_ms)} | {fmt_mb(r.peak_mb)} | {fmt_size(r.size_bytes)} |")
            else:
                lines.append(f"| {r.artifact} | {r.runtime} | {r.status}: {r.reason.replace('|', '/')[:100]} | | | | | | |")
        if problems:
            lines += ["", "Conversion notes: " + "; ".join(p.replace("|", "/")[:300] for p in problems)]
        sections.append("\n".join(lines) + "\n")
        summary.append(ratio_row(name, doc, out))

    text = [
        "## Benchmarks: sample models on every runtime",
        "",
        f"Made by `benchmarks/bench_samples.py` ({time.strftime('%Y-%m-%d')}, {time.perf_counter() - start:.0f} s). "
        f"Machine: {machine}. 1 thread, {args.warmup} warm-up + {args.runs} timed runs per row; latency is "
        "`Session.run_native` alone (each row in its own process); peak RSS is that worker's high-water mark above its idle "
        "baseline (runtime library + model + inference); input: reference.npz sample 0.",
        "",
        "| model | ONNX Runtime p50 | TFLite fp32 p50 | TFLite / ORT | .tflite made by |",
        "|---|---:|---:|---:|---|",
        *["| " + " | ".join(row) + " |" for row in summary],
        "",
        *sections,
    ]
    args.output.write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
