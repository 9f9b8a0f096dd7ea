"""``edgeport logs OUT [STEP]``: the step logs of an output folder (what every worker printed).

Each step of convert (and quantize) runs in a worker whose stdout and stderr land in
``OUT/.edgeport/logs/STEP.log``, cleaned of terminal noise and ending with a line giving the outcome,
the wall time and the worker's peak RSS (see :mod:`edgeport.worker`). Without STEP this lists the
steps; with STEP it prints that log (or, for a step name such as ``tflite``, every ``tflite-*`` log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeport.cli.common import WIDE_HELP


def logs_dir(out: Path) -> Path:
    from edgeport import outdir

    return outdir.logs_dir(out)


def step_logs(out: Path) -> dict[str, Path]:
    """Step name -> its log file, in the order the steps ran."""
    folder = logs_dir(out)
    files = [p for p in folder.glob("*.log") if p.is_file()] if folder.is_dir() else []
    return {p.stem: p for p in sorted(files, key=lambda p: (p.stat().st_mtime, p.name))}


def logs(
    out: Path = typer.Argument(..., help="An edgeport convert (or quantize) output folder.", show_default=False),
    step: Optional[str] = typer.Argument(None, help="The step whose log to print, e.g. reference, onnx-torch.onnx or tflite (every tflite-* log). Default: list the steps.",
                                         show_default=False),
    tail: Optional[int] = typer.Option(None, "--tail", "-n", min=1, help="Print only the last N lines of each log."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """List the step logs of OUT, or print the log of STEP (stdout and stderr of its worker, its time and peak RSS)."""
    from edgeport.cli.common import console
    from edgeport.errors import InputError, UsageError

    if not out.is_dir():
        raise InputError(f"{out} is not a folder", "pass the output folder of edgeport convert (-o)")
    found = step_logs(out)
    if not found:
        raise InputError(f"{out} holds no step logs (no {logs_dir(out).relative_to(out)}/*.log)",
                         "pass the output folder of an edgeport convert run")
    if step is None:
        _list(out, found, console, wide)
        return
    name = step[:-4] if step.endswith(".log") else step
    chosen = [found[name]] if name in found else [p for n, p in found.items() if n.startswith(name + "-")]
    if not chosen:
        raise UsageError(f"no step {step!r} in {out}", f"use one of: {', '.join(found)}")
    for i, path in enumerate(chosen):
        if len(chosen) > 1:
            console.print(f"{'' if i == 0 else chr(10)}== {path.stem} ({path})", style="bold", markup=False)
        _print_log(path, tail)


def _print_log(path: Path, tail: int | None) -> None:
    """The log as written, byte for byte (it may hold anything a converter printed: never read as markup)."""
    import sys

    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        if tail is None:
            for line in fh:
                sys.stdout.write(line)
        else:
            from collections import deque

            sys.stdout.writelines(deque(fh, maxlen=tail))
    sys.stdout.flush()


def _list(out: Path, found: dict[str, Path], console, wide: bool) -> None:
    from edgeport.cli.render import Column, Row, TableSpec, print_table
    from edgeport.fsutil import human_size

    from edgeport.worker import log_footer

    cols = [Column("step", key=True), Column("status", key=True), Column("wall time", right=True, key=True),
            Column("peak RSS", right=True, key=True), Column("size", right=True), Column("reason", wrap=True),
            Column("file", wrap=True)]
    rows = []
    for name, path in found.items():
        f = log_footer(path)
        wall = f"{f['seconds']:.2f} s" if f else "-"
        rss = f"{f['peak_rss_mb']:.1f} MB" if f and f["peak_rss_mb"] is not None else "-"
        style = None if f and f["status"] == "ok" else "red"
        rows.append(Row([name, f["status"] if f else "unfinished", wall, rss, human_size(path.stat().st_size),
                         f["why"] if f else "", str(path)], style=style))
    print_table(console, TableSpec(cols, rows, title=f"step logs of {out}"), wide)
    console.print(f"print one with: edgeport logs {out} STEP", style="dim", markup=False)
