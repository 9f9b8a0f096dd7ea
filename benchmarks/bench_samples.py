#!/usr/bin/env python
"""Benchmark every sample model on every runtime and write benchmarks/results.md.

    .venv/bin/python benchmarks/bench_samples.py [--runs 300] [--samples tiny_cnn,transformer] [--work DIR]
    .venv/bin/python benchmarks/bench_samples.py --samples "" --to onnx,tflite --converter onnx2tf,litert-torch \
        --models benchmarks/slow_families.py:lstm,benchmarks/architectures.py:bilstm -o benchmarks/slow_families.md

Each sample (``sample:NAME``) and each ``--models`` reference (``file.py:factory``) is converted with
``edgeport convert REF --to TARGETS [--converter C]`` (reused from ``--work`` when nothing changed; a target
that cannot be converted is listed, not fatal), then measured with ``edgeport bench OUT --json`` at 1 thread.
The Markdown has the machine, one table per model (every artifact x runtime), and a summary with the ratio
of TFLite fp32 latency to ONNX Runtime latency (p50; below 1 means LiteRT is faster), one row per .tflite:
``--converter onnx2tf,litert-torch`` keeps each converter's .tflite, so their ratios stand side by side
(ONNX Runtime timed in the same bench run). Prints the summary and where it wrote; asserts nothing.
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


def convert(name: str, work: Path, ref: str = "", to: str = "torchscript,onnx,saved_model,tflite",
            converter: str = "auto") -> tuple[Path | None, list[str]]:
    out = work / name
    r = _cli("convert", ref or f"sample:{name}", "--to", to, "--converter", converter, "-o", str(out))
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


def ratio_rows(name: str, doc: dict[str, Any], out: Path) -> list[tuple[str, ...]]:
    """One summary row per fp32 .tflite: ONNX Runtime p50, its p50, the ratio, the converter that made it."""
    from edgeport.manifest import Manifest

    rows = [r for r in doc["results"] if r["status"] == "ok" and r["threads"] == 1]
    ort = next((r for r in rows if r["runtime"] == "onnxruntime"), None)
    tfls = [r for r in rows if r["runtime"] == "tflite" and r.get("variant", "fp32") == "fp32"] or [None]
    o = ort["latency_ms"]["p50"] if ort else None
    manifest = Manifest.load(out)
    summary = []
    for tfl in tfls:
        t = tfl["latency_ms"]["p50"] if tfl else None
        art = manifest.find(tfl["artifact"]) if tfl else None
        summary.append((name, _ms(o), _ms(t), f"{t / o:.2f}" if o and t else "-", art.converter if art else "-"))
    return summary


def main(argv: list[str] | None = None) -> int:
    import sample_models

    from edgeport.bench.report import fmt_mb, fmt_size, machine_line
    from edgeport.bench.runner import BenchReport

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--samples", default=",".join(sample_models.SAMPLES), help="comma list of sample models")
    ap.add_argument("--models", default="", help="comma list of file.py:factory references, after the samples")
    ap.add_argument("--to", default="torchscript,onnx,saved_model,tflite", help="edgeport convert --to")
    ap.add_argument("--converter", default="auto", help="edgeport convert --converter (a comma list keeps each)")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgeport-bench-samples",
                    help="where converted samples are kept (reused across runs)")
    ap.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results.md")
    args = ap.parse_args(argv)

    refs = {n.strip(): "" for n in args.samples.split(",") if n.strip()}
    refs.update({m.strip().rsplit(":", 1)[-1]: m.strip() for m in args.models.split(",") if m.strip()})
    start = time.perf_counter()
    sections: list[str] = []
    summary: list[tuple[str, ...]] = []
    machine = ""
    for name, ref in refs.items():
        print(f"converting {name} ...", flush=True)
        out, problems = convert(name, args.work, ref, args.to, args.converter)
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
        summary.extend(ratio_rows(name, doc, out))

    text = [
        "## Benchmarks: sample models on every runtime",
        "",
        f"Made by `benchmarks/bench_samples.py{''.join(' ' + a for a in (argv if argv is not None else sys.argv[1:]))}` "
        f"({time.strftime('%Y-%m-%d')}, {time.perf_counter() - start:.0f} s). "
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
    for row in summary:
        print("  ".join(row))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
