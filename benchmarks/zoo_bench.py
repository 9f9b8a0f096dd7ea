#!/usr/bin/env python
"""Wall time of the sample zoo with --jobs 1, --jobs 2 and on Ray, side by side (and of a re-run).

    .venv/bin/python benchmarks/zoo_bench.py [--models tiny_cnn,multi_io,dynamic] [--work DIR] [--no-ray]

Each executor converts the zoo into a fresh folder (``edgeport zoo ZOO -o WORK/<executor>``: torchscript and
onnx, validated and benchmarked on ONNX Runtime), so no run reuses another's artifacts; the re-run repeats the
``--jobs 2`` command on its finished folder. Prints one line per run with its wall time and exit code, then the
ratios the project targets (jobs 2 <= 0.65x jobs 1; Ray <= 1.15x the pool at the same parallelism; re-run <= 5%
of the first run). Ray needs ``pip install 'edgeport[ray]'``; without it the Ray line says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ZOO_HEAD = """\
[defaults]
formats = ["torchscript", "onnx"]
samples = 2
bench_runs = 20
bench_warmup = 3
bench_runtimes = ["onnxruntime"]
"""


def _zoo_text(models: list[str]) -> str:
    return ZOO_HEAD + "".join(f'\n[[model]]\nname = "{m}"\nreference = "sample:{m}"\n' for m in models)


def _run(zoo: Path, out: Path, *extra: str) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "COLUMNS": "200"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgeport", "zoo", str(zoo), "-o", str(out), *extra], env=env,
                          capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return seconds, proc.returncode, last if proc.returncode == 0 else (proc.stderr.strip().splitlines() or [last])[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny_cnn,multi_io,dynamic", help="Sample models in the zoo (comma list).")
    ap.add_argument("--work", type=Path, default=None, help="Folder for the zoo file and outputs (default: a temporary one).")
    ap.add_argument("--no-ray", action="store_true", help="Skip the Ray run.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="edgeport-zoo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    zoo = work / "zoo.toml"
    zoo.write_text(_zoo_text([m.strip() for m in args.models.split(",") if m.strip()]))
    runs: dict[str, tuple[float, int, str]] = {}
    plan = [("jobs 1", "jobs1", ("--jobs", "1")), ("jobs 2", "jobs2", ("--jobs", "2"))]
    ray_ok = importlib.util.find_spec("ray") is not None and not args.no_ray
    if ray_ok:
        plan.append(("ray auto, 2 CPUs", "ray", ("--jobs", "2", "--ray", "auto")))
    plan.append(("re-run jobs 2", "jobs2", ("--jobs", "2")))
    for label, folder, extra in plan:
        out = work / folder
        if label != "re-run jobs 2" and out.exists():
            import shutil

            shutil.rmtree(out)
        runs[label] = _run(zoo, out, *extra)
        secs, code, last = runs[label]
        print(f"{label:<18} {secs:8.1f} s  exit {code}  {last}", flush=True)
    if not ray_ok:
        print(f"{'ray':<18} {'-':>8}    {'skipped: --no-ray' if args.no_ray else 'ray is not installed'}")
    j1, j2, again = runs["jobs 1"][0], runs["jobs 2"][0], runs["re-run jobs 2"][0]
    print(f"\njobs 2 / jobs 1 = {j2 / j1:.2f} (target <= 0.65)")
    if ray_ok:
        print(f"ray / jobs 2     = {runs['ray auto, 2 CPUs'][0] / j2:.2f} (target <= 1.15)")
    print(f"re-run / jobs 2  = {again / j2:.3f} (target <= 0.05)")
    print(f"(zoo file and outputs in {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0 if all(code == 0 for _, code, _ in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
