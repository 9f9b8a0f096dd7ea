"""``edgeport bench``: latency, memory and size of every artifact on every runtime, here or on a device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from edgeport.cli.common import WIDE_HELP, runtime_help

TARGET_HELP = "An edgeport convert output folder, a bundle (.tar.gz from edgeport bundle), or a .onnx/.tflite/.pt file."


def bench(
    target: Path = typer.Argument(..., help=TARGET_HELP, show_default=False),
    artifact: Optional[list[str]] = typer.Option(None, "--artifact", "-a", help="Only these artifacts (repeat or comma list)."),
    runtime: Optional[list[str]] = typer.Option(None, "--runtime", "-r", help=runtime_help()),
    threads: str = typer.Option("1", "--threads", "-t", help="Thread counts to sweep, e.g. 1,2,4 (1 is the reproducible default)."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs before timing."),
    runs: int = typer.Option(100, "--runs", "-n", help="Timed runs per row."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Time each row for this many seconds instead of --runs."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="For a bare model file: NAME:SHAPE\\[:DTYPE] (needed for .pt; fixes dynamic dims)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON (schema edgeport.bench/1)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the results as a Markdown table."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of the latency distribution per runtime (needs matplotlib)."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Add the results to this HTML report (created if missing). OUT/report.html always shows the latest run."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A JSON from an earlier edgeport bench --json to compare with."),
    max_regression: str = typer.Option("10%", "--max-regression", help="With --baseline: exit 1 when a row got slower than this."),
    gate_metric: str = typer.Option("p50", "--gate-metric", help="Latency statistic the gate compares: p50, p90, p99, mean, min."),
    min_delta_ms: float = typer.Option(0.0, "--min-delta-ms", help="With --baseline: ignore slow-downs smaller than this many ms."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per worker before it is killed."),
    remote: Optional[str] = typer.Option(None, "--remote", help="Run on another machine: ssh://user@host\\[:port] (needs edgeport\\[device] there)."),
    remote_edgeport: str = typer.Option("edgeport", "--remote-edgeport", help="The edgeport command on the remote machine."),
    ssh_option: Optional[list[str]] = typer.Option(None, "--ssh-option", help="Extra ssh -o KEY=VALUE (repeat)."),
    ssh_identity: Optional[Path] = typer.Option(None, "--ssh-identity", help="Private key for --remote."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, only the summary line."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
    profile: bool = typer.Option(False, "--profile", help="Also print the per-op time table (.onnx: ONNX Runtime's profiler; .tflite: each op timed alone)."),
    profile_top: int = typer.Option(15, "--profile-top", min=1, help="With --profile: list this many op types, slowest first."),
) -> None:
    """Measure load time, first inference, latency percentiles, throughput, peak memory and size of each artifact."""
    _run(BenchArgs(
        target=target, artifact=artifact, runtime=runtime, threads=threads, warmup=warmup, runs=runs, seconds=seconds,
        inputs=inputs, json_out=json_out, markdown_out=markdown_out, plot=plot, html_out=html_out, baseline=baseline,
        max_regression=max_regression, gate_metric=gate_metric, min_delta_ms=min_delta_ms, timeout=timeout, remote=remote,
        remote_edgeport=remote_edgeport, ssh_option=ssh_option, ssh_identity=ssh_identity, quiet=quiet, wide=wide,
        profile=profile, profile_top=profile_top))


@dataclass(frozen=True)
class BenchArgs:
    """The parsed command line of ``edgeport bench`` (every field given: the defaults live in the option declarations)."""

    target: Path
    artifact: Optional[list[str]]
    runtime: Optional[list[str]]
    threads: str
    warmup: int
    runs: int
    seconds: Optional[float]
    inputs: Optional[list[str]]
    json_out: Optional[Path]
    markdown_out: Optional[Path]
    plot: Optional[Path]
    html_out: Optional[Path]
    baseline: Optional[Path]
    max_regression: str
    gate_metric: str
    min_delta_ms: float
    timeout: float
    remote: Optional[str]
    remote_edgeport: str
    ssh_option: Optional[list[str]]
    ssh_identity: Optional[Path]
    quiet: bool
    wide: bool
    profile: bool
    profile_top: int


def _run(a: BenchArgs) -> None:
    """Check the output paths, benchmark (here or --remote), write and show the results, exit with the report's code."""
    from edgeport.cli.common import console, err_console
    from edgeport.fsutil import check_writable

    for path, what in ((a.json_out, "--json"), (a.markdown_out, "--markdown"), (a.plot, "--plot"), (a.html_out, "--html")):
        if path is not None:
            check_writable(path, what)  # before the measurements, not after
    from edgeport.api import bench as run_bench

    report = run_bench(  # the library call: options, the regression gate, here or --remote
        a.target, artifacts=a.artifact, runtimes=a.runtime, threads=a.threads, warmup=a.warmup, runs=a.runs,
        seconds=a.seconds, timeout=a.timeout, inputs=list(a.inputs) if a.inputs else None,
        profile=a.profile_top if a.profile else 0, baseline=a.baseline, max_regression=a.max_regression,
        gate_metric=a.gate_metric, min_delta_ms=a.min_delta_ms, remote=a.remote,
        ssh_identity=str(a.ssh_identity) if a.ssh_identity else None, ssh_options=list(a.ssh_option or []),
        remote_edgeport=a.remote_edgeport,
        progress=None if a.quiet else (lambda s: err_console.print(f"> {s}", style="dim", markup=False, highlight=False)))
    _write_outputs(report, a.target, a.json_out, a.markdown_out, a.plot, a.html_out, console, err_console)
    _show(report, a.wide, a.quiet, console, err_console)
    from edgeport.report.state import after_command

    after_command("bench", a.target, report)  # an output folder keeps its latest result and gets OUT/report.html
    raise typer.Exit(report.exit_code)


def _show(report, wide: bool, quiet: bool, console, err_console) -> None:
    """The tables (unless quiet), the gate's verdict and notes, every failed row, and the summary line."""
    if not quiet:
        from edgeport.bench.report import print_placement, print_profiles, print_table

        print_table(report, console, wide)
        print_placement(report, console)
        print_profiles(report, console)
    if report.gate is not None:
        ok = report.gate.get("passed")
        console.print(report.gate["summary"], style="green" if ok else "red", markup=False, highlight=False)
        for n in report.gate.get("notes", []):
            console.print(f"note: {n}", style="yellow", markup=False, highlight=False)
    for r in report.failed:
        err_console.print(f"{r.status}: {r.key}: {r.reason}", style="red", markup=False, highlight=False)
    console.print(report.summary(), highlight=False, markup=False)


def _write_outputs(report, target: Path, json_out, markdown_out, plot, html_out, console, err_console) -> None:
    from edgeport.errors import OutputError

    try:
        _write_outputs_unchecked(report, target, json_out, markdown_out, plot, html_out, console, err_console)
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        raise OutputError(f"cannot write{where}: {exc.strerror or exc}", "choose a writable path") from None


def _write_outputs_unchecked(report, target: Path, json_out, markdown_out, plot, html_out, console, err_console) -> None:
    from edgeport.bench import report as rep

    if json_out:
        rep.write_json(report, json_out)
    if markdown_out:
        rep.write_markdown(report, markdown_out)
    png = None
    html_target = html_out
    if html_target is None and target.is_dir():
        existing = [target / n for n in ("validate.html",) if (target / n).is_file()]  # OUT/report.html is rewritten whole
        html_target = existing[0] if existing else None
    if plot or html_target:
        png = rep.plot_png(report)
    if plot:
        if png is None:
            skipped = rep.write_plot(report, plot)
            err_console.print(f"note: {skipped}", style="yellow", markup=False, highlight=False)
        else:
            from edgeport.fsutil import atomic_write_bytes

            atomic_write_bytes(plot, png)
    if html_target:
        how = rep.write_html(report, html_target, png)
        console.print(f"benchmark section {how} in {html_target}", style="dim", markup=False, highlight=False)
