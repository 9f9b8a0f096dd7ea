"""Many models through convert -> validate -> bench (-> quantize) in one command, on a process pool or on Ray.

    from edgeport.zoo import run_zoo
    report = run_zoo("zoo.toml", "out/", jobs=2)      # ZooReport; report.exit_code 0 / 1 / 3

Modules: :mod:`.config` (the TOML file and its checks), :mod:`.run` (one model, with the library API of
:mod:`edgeport.api`), :mod:`.executors` (local pool, Ray), :mod:`.report` (table, JSON, JUnit, Markdown, OUT/zoo.html).
Only the standard library is imported until a model runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

DEFAULT_MEMORY_SHARE = 0.8  # of the machine's RAM, split between the jobs


def default_memory_mb(jobs: int) -> float | None:
    """Each job's share of the machine's memory (None when it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return None
    return round(total * DEFAULT_MEMORY_SHARE / max(1, jobs))


def run_zoo(zoo_file: str | os.PathLike, out: str | os.PathLike, *, jobs: int = 1, ray: str | None = None,
            max_memory_mb: float | None = None, only: list[str] | None = None,
            on_done: Callable[[dict[str, Any]], None] | None = None):
    """Run every model of ``zoo_file`` into ``out/<name>/`` and return the aggregate ZooReport."""
    from edgeport.errors import OutputError, UsageError
    from edgeport.zoo.config import load_zoo
    from edgeport.zoo.executors import run_pool, run_ray
    from edgeport.zoo.report import ZooReport, update_zoo_page

    zoo = load_zoo(zoo_file)
    specs = zoo.models
    if only:
        unknown = [n for n in only if n not in {s.name for s in specs}]
        if unknown:
            raise UsageError(f"--model {unknown[0]!r} is not in {zoo_file}", f"use one of: {', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in only]
    if jobs < 1:
        raise UsageError(f"--jobs {jobs} must be at least 1", "use e.g. --jobs 2")
    root = Path(out).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise OutputError(f"output path {root} exists and is a file", "choose a folder with -o")
    root.mkdir(parents=True, exist_ok=True)
    memory = max_memory_mb if max_memory_mb is not None else default_memory_mb(jobs)
    start = time.perf_counter()
    if ray:
        rows = run_ray(specs, str(root), ray, jobs, memory or None, on_done)
        executor = f"ray {ray}"
    else:
        rows = run_pool(specs, str(root), jobs, memory or None, on_done)
        executor = f"process pool, {jobs} job{'s' if jobs != 1 else ''}"
    report = ZooReport(zoo=zoo.path, out=str(root), executor=executor, rows=rows, seconds=time.perf_counter() - start)
    update_zoo_page(report)  # OUT/zoo.html; a page that cannot be written is a warning line
    return report
