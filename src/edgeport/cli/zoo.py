"""``edgeport zoo``: many models through convert -> validate -> bench (-> quantize), one table at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def zoo(
    file: Path = typer.Argument(..., help="The zoo file (TOML): a \\[defaults] table and one \\[\\[model]] table per model.", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder: each model goes to OUT/<name>/."),
    init: bool = typer.Option(False, "--init", help="Write a commented example zoo file to FILE and stop."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Models run at once on the local process pool."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on Ray: 'auto' starts a local instance on 127.0.0.1, an ADDRESS joins that cluster (needs edgeport\\[ray])."),
    max_memory: Optional[float] = typer.Option(None, "--max-memory-mb", min=64, help="Resident memory per model (its process and workers); default: 80% of RAM / jobs."),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Only these models (repeat or comma list)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the aggregate report as JSON (schema edgeport.zoo/1)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML: one testcase per model x format x runtime."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown table."),
) -> None:
    """Convert, validate and benchmark every model of a zoo file; exit 0 all pass, 1 parity/threshold, 3 failure."""
    from edgeport.cli.common import console, err_console, split_list
    from edgeport.errors import OutputError, UsageError
    from edgeport.fsutil import check_writable

    if init:
        _write_example(file, console)
        raise typer.Exit(0)
    if output is None:
        raise UsageError("edgeport zoo needs an output folder", "add -o OUT (each model goes to OUT/<name>/)")
    for path, what in ((json_out, "--json"), (junit, "--junit"), (markdown, "--markdown")):
        if path is not None:
            check_writable(path, what)
    from edgeport.zoo import run_zoo
    from edgeport.zoo.report import print_table, write_json, write_junit, write_markdown

    def done(row: dict) -> None:
        verdict = {0: "pass", 1: "parity/threshold failure"}.get(row.get("exit_code"), "failed")
        err_console.print(f"… {row['name']}: {verdict} ({row.get('seconds', 0):.1f} s)", style="dim", markup=False, highlight=False)

    report = run_zoo(file, output, jobs=jobs, ray=ray, max_memory_mb=max_memory, only=split_list(model) or None, on_done=done)
    for path, write in ((json_out, write_json), (junit, write_junit), (markdown, write_markdown)):
        if path is not None:
            try:
                write(report, path)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable path") from None
    print_table(report, console)
    raise typer.Exit(report.exit_code)


def _write_example(file: Path, console) -> None:
    from edgeport.errors import OutputError
    from edgeport.fsutil import atomic_write_text
    from edgeport.zoo.config import INIT_TEMPLATE

    if file.exists():
        raise OutputError(f"{file} exists", "choose a new file name for the example; edgeport never overwrites your files")
    try:
        atomic_write_text(file, INIT_TEMPLATE)
    except OSError as exc:
        raise OutputError(f"cannot write {file}: {exc.strerror or exc}", "choose a writable path") from None
    console.print(f"wrote {file}; run: edgeport zoo {file} -o zoo-out", markup=False, highlight=False)
