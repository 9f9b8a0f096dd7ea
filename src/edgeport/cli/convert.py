"""``edgeport convert`` and ``edgeport export``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from edgeport.api import SourceOptions
from edgeport.cli.common import WIDE_HELP
from edgeport.convert.options import ConvertOptions
from edgeport.formats import targets

# The option defaults below are these objects' fields: one place for each.
_CONVERT = ConvertOptions()
_SOURCE = SourceOptions()


def _converter_help() -> str:
    from edgeport.convert import CONVERTERS  # the registry: names only, nothing heavy

    names = [c.name for c in CONVERTERS.values() if c.tf_targets]
    return f"auto, or one of {', '.join(names)} (a comma list keeps each); see edgeport backends."


CONVERTER_HELP = _converter_help()
MODEL_HELP = ("file.py:factory, package.module:Class, a TorchScript .pt, an ExportedProgram .pt2, an .onnx file, "
              "or sample:NAME (edgeport samples)")


def convert(
    model: str = typer.Argument(..., help=MODEL_HELP, show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (new, empty, or made by edgeport before)."),
    to: list[str] = typer.Option([",".join(_CONVERT.targets)], "--to", help=f"Formats: {', '.join(targets())} (comma list)."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Input spec SHAPE | NAME:SHAPE[:DTYPE], e.g. x:Nx3x224x224:float32 (a letter is a dynamic dim). Repeat per input."),
    inputs_npz: Optional[Path] = typer.Option(None, "--inputs-npz", help="Sample inputs as an .npz of named arrays."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A state dict to load into the model (weights_only)."),
    trust_pickle: bool = typer.Option(_SOURCE.trust_pickle, "--trust-pickle", help="Allow unpickling a full-model torch.save file (runs its code)."),
    converter: str = typer.Option(_CONVERT.converter, "--converter", help=CONVERTER_HELP),
    select: str = typer.Option(_CONVERT.select, "--select", help="auto: keep the fastest passing .tflite of the fast converters (fastest), or the first that passes (first)."),
    opset: int = typer.Option(_CONVERT.opset, "--opset", help="ONNX opset (dynamo exporter needs >= 18; lower ones use the legacy exporter)."),
    legacy_exporter: bool = typer.Option(_CONVERT.legacy_exporter, "--legacy-exporter", help="Use the TorchScript-based ONNX exporter."),
    script: bool = typer.Option(_CONVERT.script, "--script", help="TorchScript by torch.jit.script instead of tracing."),
    keep_layout: bool = typer.Option(_CONVERT.keep_layout, "--keep-layout", help="Keep PyTorch's layout (NCHW) for TFLite inputs/outputs."),
    allow_flex: bool = typer.Option(_CONVERT.allow_flex, "--allow-flex", help="Keep TFLite files that need Select-TF (Flex) or custom ops."),
    samples: int = typer.Option(_CONVERT.samples, "--samples", min=1, max=1000, help="Reference samples recorded in reference.npz."),
    seed: int = typer.Option(_SOURCE.seed, "--seed", help="Seed for sample models and random inputs."),
    rtol: float = typer.Option(_CONVERT.rtol, "--rtol", help="Parity gate for TF/TFLite candidates, relative to each output's max magnitude."),
    timeout: float = typer.Option(_CONVERT.timeout, "--timeout", help="Seconds per conversion step before it is killed."),
    no_cache: bool = typer.Option(not _CONVERT.use_cache, "--no-cache", help="Convert again even when identical artifacts exist."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result summary as JSON here."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Convert MODEL to the formats in --to, writing OUT/manifest.json and OUT/reference.npz.

    Every step's output is kept in OUT/.edgeport/logs (see edgeport logs OUT). Interrupted, a re-run of the
    same command resumes: finished steps are reused.
    """
    from edgeport.api import targets as parse_targets

    source = _source_options(inputs=inputs, inputs_npz=inputs_npz, weights=weights, trust_pickle=trust_pickle, seed=seed)
    opts = ConvertOptions(targets=parse_targets(to), converter=converter, opset=opset, legacy_exporter=legacy_exporter,
                          script=script, keep_layout=keep_layout, allow_flex=allow_flex, samples=samples, rtol=rtol,
                          select=select, timeout=timeout, use_cache=not no_cache)
    _run(model, output, source=source, opts=opts, json_out=json_out, wide=wide)


def export(
    model: str = typer.Argument(..., help=MODEL_HELP, show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Input spec, e.g. x:Nx3x224x224:float32."),
    inputs_npz: Optional[Path] = typer.Option(None, "--inputs-npz", help="Sample inputs as an .npz."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A state dict to load (weights_only)."),
    trust_pickle: bool = typer.Option(_SOURCE.trust_pickle, "--trust-pickle", help="Allow unpickling a full-model file."),
    opset: int = typer.Option(_CONVERT.opset, "--opset", help="ONNX opset."),
    legacy_exporter: bool = typer.Option(_CONVERT.legacy_exporter, "--legacy-exporter", help="Use the TorchScript-based ONNX exporter."),
    script: bool = typer.Option(_CONVERT.script, "--script", help="torch.jit.script instead of tracing."),
    seed: int = typer.Option(_SOURCE.seed, "--seed", help="Seed."),
    no_cache: bool = typer.Option(not _CONVERT.use_cache, "--no-cache", help="Export again even when identical artifacts exist."),
) -> None:
    """Export MODEL to TorchScript and ONNX only (convert --to torchscript,onnx)."""
    source = _source_options(inputs=inputs, inputs_npz=inputs_npz, weights=weights, trust_pickle=trust_pickle, seed=seed)
    opts = ConvertOptions(targets=("torchscript", "onnx"), opset=opset, legacy_exporter=legacy_exporter, script=script,
                          use_cache=not no_cache)  # every other option at its default
    _run(model, output, source=source, opts=opts)


def _source_options(*, inputs: Optional[list[str]], inputs_npz: Optional[Path], weights: Optional[Path],
                    trust_pickle: bool, seed: int) -> SourceOptions:
    """The MODEL-side options of convert and export."""
    return SourceOptions(inputs=tuple(inputs or ()), inputs_npz=str(inputs_npz) if inputs_npz else None,
                         weights=str(weights) if weights else None, trust_pickle=trust_pickle, seed=seed)


def _run(model: str, output: Path, *, source: SourceOptions, opts: ConvertOptions, json_out: Optional[Path] = None,
         wide: bool = False) -> None:
    """Convert through the library call (:func:`edgeport.api.run_convert`), with progress lines, then render."""
    import time

    from edgeport.api import run_convert
    from edgeport.cli.common import console, err_console
    from edgeport.fsutil import atomic_write_json, human_size
    from edgeport.worker import stop_workers_on_ctrl_c

    start_wall, start = time.time(), time.perf_counter()
    progress = _ProgressPrinter(console, Path(output))
    try:
        with stop_workers_on_ctrl_c():  # steps run in threads: Ctrl-C ends every running worker
            result = run_convert(model, output, source, opts, on_event=progress)
    except KeyboardInterrupt:
        progress.stop()
        err_console.print(progress.interrupted_line(), markup=False)
        from edgeport.errors import EXIT_INTERRUPTED

        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        progress.stop()
    total = time.perf_counter() - start
    _render(result, console, human_size, total, wide)
    _point_to_logs(Path(output), start_wall, console)
    if json_out:
        atomic_write_json(json_out, {"exit_code": result.exit_code, "seconds": round(total, 3),
                                     "manifest": str(Path(output) / "manifest.json"),
                                     "artifacts": [a.to_json() for a in result.manifest.artifacts],
                                     "attempts": [a.to_json() for a in result.manifest.attempts]})
    from edgeport.report.state import after_command

    after_command("convert", output)  # OUT/report.html
    raise typer.Exit(result.exit_code)


HEARTBEAT_S = float(os.environ.get("EDGEPORT_HEARTBEAT_S") or 60)


class _ProgressPrinter:
    """One line per finished step (done / reused / failed, with its time). While steps run (several at once): on an
    interactive terminal a live line per step with its converter, the elapsed time and the stage its worker reports;
    elsewhere (pipes, CI) a line when it starts and one every HEARTBEAT_S seconds (EDGEPORT_HEARTBEAT_S) after.
    Events come from the pipeline's step threads."""

    def __init__(self, console, out: Path) -> None:
        import threading

        self.console, self.out = console, out
        self.live = None
        self.heartbeat = None  # threading.Event that stops the heartbeat thread
        self.running: dict[tuple[str, str], tuple[str, float]] = {}  # (step, converter) -> (label, start time)
        self.kept: list[str] = []
        self.lock = threading.RLock()

    def __call__(self, e) -> None:
        with self.lock:
            self._event(e)

    def _event(self, e) -> None:
        import time

        from rich.text import Text

        label = e.step + (f" ({e.detail})" if e.detail and e.status in ("start", "done", "cached") else "")
        if e.status == "start":
            self.running[(e.step, e.detail)] = (label, time.time())
            if not self._start_live():
                self.console.print(f"  > {e.step} ({e.detail or 'running'})", markup=False)
                self._start_heartbeat()
            return
        self._finished(e)
        line = Text("  ")
        if e.status in ("done", "cached"):
            self.kept.append(e.step)
            line.append("✓ ", style="green").append(label)
            line.append(f" {e.seconds:.1f} s" if e.status == "done" else " reused (unchanged inputs)", style="dim")
        elif e.status == "rejected":
            line.append("✗ ", style="yellow").append(f"{e.step} rejected: {e.detail}")
        elif e.status == "measured":
            line.append("· ", style="cyan").append(f"{e.step} latency, 1 thread: {e.detail}")
        else:
            line.append("✗ ", style="red").append(f"{e.step} failed").append(f" {e.seconds:.1f} s", style="dim")
            line.append(f": {e.detail}")
        self.console.print(line)  # above the live lines while they run
        if not self.running:
            self.stop()

    def _finished(self, e) -> None:
        """Take a finished step off the running ones (its event names the converter, or a runtime, or converter: why)."""
        converter = e.detail.split(":", 1)[0] if e.status in ("failed", "rejected") else e.detail
        if self.running.pop((e.step, converter), None) is None:
            same = [k for k in self.running if k[0] == e.step]
            if same and e.status != "measured":
                self.running.pop(same[0])

    def _start_live(self) -> bool:
        from edgeport.cli.render import live_ok

        if self.live is not None:
            return True
        if not live_ok(self.console):
            return False
        from rich.live import Live
        from rich.spinner import Spinner

        self.live = Live(Spinner("dots", text=_Running(self)), console=self.console, refresh_per_second=4, transient=True)
        self.live.start()
        return True

    def _start_heartbeat(self) -> None:
        """Pipes and CI logs: a line per running step every HEARTBEAT_S seconds, so a long step is not silent."""
        import threading
        import time

        if self.heartbeat is not None:
            return
        stop = self.heartbeat = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                with self.lock:
                    for key, (label, t0) in list(self.running.items()):
                        if time.time() - t0 >= HEARTBEAT_S:
                            stage = self.stage(key)
                            self.console.print(f"  > {label} still running: {time.time() - t0:.0f} s"
                                               + (f", {stage}" if stage else ""), markup=False, style="dim")

        threading.Thread(target=beat, daemon=True, name="edgeport-heartbeat").start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.heartbeat is not None:
            self.heartbeat.set()
            self.heartbeat = None

    def stage(self, key: tuple[str, str]) -> str:
        """The stage a running step's worker last reported: from the newest log named after the step since it began."""
        from edgeport.cli.logs import step_logs
        from edgeport.worker import last_stage

        t0 = self.running[key][1] if key in self.running else None
        if t0 is None:
            return ""
        logs = [p for n, p in step_logs(self.out).items() if n.startswith(key[0]) and p.stat().st_mtime >= t0 - 1]
        return last_stage(logs[-1]) if logs else ""

    def interrupted_line(self) -> str:
        import time

        with self.lock:
            now = time.time()
            where = ", ".join(f"{label} after {now - t0:.0f} s" for label, t0 in self.running.values())
            where = f" during {where}" if where else ""
            if not self.out.is_dir() or not self.kept:
                return f"interrupted{where}: nothing was kept; run the same command again to start over"
            return (f"interrupted{where}: kept {', '.join(dict.fromkeys(self.kept))} in {self.out}; run the same "
                    "command again to resume (finished steps are reused)")


class _Running:
    """The live lines: per running step its label (converter), elapsed seconds, reported stage; re-rendered on every
    refresh."""

    def __init__(self, printer: _ProgressPrinter) -> None:
        self.printer = printer

    def __rich__(self):
        import time

        from rich.text import Text

        lines = []
        with self.printer.lock:
            running = list(self.printer.running.items())
        for key, (label, t0) in running:
            line = Text(label).append(f"  {time.time() - t0:.0f} s", style="dim")
            try:
                stage = self.printer.stage(key)
            except OSError:
                stage = ""
            lines.append(line.append(f"  {stage}", style="dim") if stage else line)
        return Text("\n").join(lines)


def _render(result, console, human_size, total: float, wide: bool) -> None:
    from rich.text import Text

    from edgeport.cli.render import Column, Row, TableSpec, print_table

    m = result.manifest
    cols = [Column("artifact", key=True), Column("format"), Column("converter", key=True),
            Column("size", right=True, key=True), Column("time", right=True, key=True), Column("check", key=True),
            Column("flex ops", wrap=True)]
    rows = []
    for a in m.artifacts:
        if a.format == "pytorch":
            continue
        check, flex = "", ""
        if a.checks:
            worst = a.checks.get("worst_rel")
            check = ("ok" if a.checks.get("passed") else "FAIL") + (f" rel {worst:.1e}" if isinstance(worst, (int, float)) else "")
            flex = ", ".join(a.checks.get("flex_ops") or [])
        rows.append(Row([a.name, a.format, a.converter, human_size(a.size_bytes), f"{a.seconds:.1f} s", check, flex]))
    print_table(console, TableSpec(cols, rows, title=f"{m.source} -> {m.root}"), wide)
    for att in m.attempts:
        if att.status not in ("kept",):
            console.print(Text("  ").append(f"{att.target} via {att.converter}: {att.status}", style="yellow")
                          .append(f" {att.reason}"))
    for f in result.failed:
        console.print(Text("failed: ", style="red").append(f"{f.target} ({f.converter}): {f.reason}"))
    if result.parity_failed:
        console.print(Text("parity failed: ", style="red").append(", ".join(result.parity_failed)))
    console.print(Text(f"manifest: {m.root / 'manifest.json'}").append(f"  ({total:.1f} s)", style="dim"))


def _point_to_logs(out: Path, since: float, console) -> None:
    """A step that failed in this run: where its log is (all it printed, its time and memory)."""
    from edgeport.cli.logs import step_logs
    from edgeport.worker import log_footer

    for name, path in step_logs(out).items():
        f = log_footer(path) if path.stat().st_mtime >= since else None
        if f is not None and f["status"] != "ok":
            console.print(f"  log of {name} ({f['status']}): {path}  (edgeport logs {out} {name})", markup=False,
                          style="yellow")
