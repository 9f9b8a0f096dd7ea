"""``edgeport convert`` and ``edgeport export``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

MODEL_HELP = ("file.py:factory, package.module:Class, a TorchScript .pt, an ExportedProgram .pt2, an .onnx file, "
              "or sample:NAME (edgeport samples)")


def convert(
    model: str = typer.Argument(..., help=MODEL_HELP, show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (new, empty, or made by edgeport before)."),
    to: list[str] = typer.Option(["torchscript,onnx"], "--to", help="Formats: torchscript, onnx, saved_model, tflite (comma list)."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Input spec SHAPE | NAME:SHAPE[:DTYPE], e.g. x:Nx3x224x224:float32 (a letter is a dynamic dim). Repeat per input."),
    inputs_npz: Optional[Path] = typer.Option(None, "--inputs-npz", help="Sample inputs as an .npz of named arrays."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A state dict to load into the model (weights_only)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a full-model torch.save file (runs its code)."),
    converter: str = typer.Option("auto", "--converter", help="auto, or litert-torch, onnx2tf, onnx-tf (comma list keeps each)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (dynamo exporter needs >= 18; lower ones use the legacy exporter)."),
    legacy_exporter: bool = typer.Option(False, "--legacy-exporter", help="Use the TorchScript-based ONNX exporter."),
    script: bool = typer.Option(False, "--script", help="TorchScript by torch.jit.script instead of tracing."),
    keep_layout: bool = typer.Option(False, "--keep-layout", help="Keep PyTorch's layout (NCHW) for TFLite inputs/outputs."),
    allow_flex: bool = typer.Option(False, "--allow-flex", help="Keep TFLite files that need Select-TF (Flex) or custom ops."),
    samples: int = typer.Option(3, "--samples", min=1, max=1000, help="Reference samples recorded in reference.npz."),
    seed: int = typer.Option(0, "--seed", help="Seed for sample models and random inputs."),
    rtol: float = typer.Option(1e-4, "--rtol", help="Parity gate for TF/TFLite candidates, relative to each output's max magnitude."),
    timeout: float = typer.Option(1800.0, "--timeout", help="Seconds per conversion step before it is killed."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Convert again even when identical artifacts exist."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result summary as JSON here."),
) -> None:
    """Convert MODEL to the formats in --to, writing OUT/manifest.json and OUT/reference.npz."""
    _run(model, output, to, inputs, inputs_npz, weights, trust_pickle, converter, opset, legacy_exporter, script,
         keep_layout, allow_flex, samples, seed, rtol, timeout, no_cache, json_out)


def export(
    model: str = typer.Argument(..., help=MODEL_HELP, show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Input spec, e.g. x:Nx3x224x224:float32."),
    inputs_npz: Optional[Path] = typer.Option(None, "--inputs-npz", help="Sample inputs as an .npz."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A state dict to load (weights_only)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a full-model file."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset."),
    legacy_exporter: bool = typer.Option(False, "--legacy-exporter", help="Use the TorchScript-based ONNX exporter."),
    script: bool = typer.Option(False, "--script", help="torch.jit.script instead of tracing."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Export again even when identical artifacts exist."),
) -> None:
    """Export MODEL to TorchScript and ONNX only (convert --to torchscript,onnx)."""
    _run(model, output, ["torchscript,onnx"], inputs, inputs_npz, weights, trust_pickle, "auto", opset, legacy_exporter,
         script, False, False, 3, seed, 1e-4, 1800.0, no_cache, None)


def _run(model, output, to, inputs, inputs_npz, weights, trust_pickle, converter, opset, legacy_exporter, script,
         keep_layout, allow_flex, samples, seed, rtol, timeout, no_cache, json_out) -> None:
    import json
    import time

    from edgeport.cli.common import console, split_list
    from edgeport.fsutil import human_size
    from edgeport.convert.plan import ConvertOptions, convert as run_convert
    from edgeport.errors import InputError, UsageError
    from edgeport.fsutil import atomic_write_json
    from edgeport.models import resolve_ref
    from edgeport.spec import parse_input_specs

    targets = tuple(dict.fromkeys(split_list(to)))
    if not targets:
        raise UsageError("--to names no format", "use e.g. --to torchscript,onnx,saved_model,tflite")
    specs = parse_input_specs(inputs or [])
    if inputs and inputs_npz:
        raise UsageError("--input and --inputs-npz both given", "use one of them")
    ref = resolve_ref(model, trust_pickle=trust_pickle, weights=str(weights) if weights else None)
    ref.seed = seed
    if specs:
        ref.inputs = [s.to_json() for s in specs]
    if inputs_npz:
        if not inputs_npz.is_file():
            raise InputError(f"--inputs-npz {inputs_npz} does not exist", "check the path")
        ref.inputs_npz = str(inputs_npz.resolve())
    opts = ConvertOptions(targets=targets, converter=converter, opset=opset, legacy_exporter=legacy_exporter,
                          script=script, keep_layout=keep_layout, allow_flex=allow_flex, samples=samples, rtol=rtol,
                          timeout=timeout, use_cache=not no_cache)
    start = time.perf_counter()
    result = run_convert(ref, output, opts, on_event=_ProgressPrinter(console))
    total = time.perf_counter() - start
    _render(result, console, human_size, total)
    if json_out:
        atomic_write_json(json_out, {"exit_code": result.exit_code, "seconds": round(total, 3),
                                     "manifest": str(Path(output) / "manifest.json"),
                                     "artifacts": [a.to_json() for a in result.manifest.artifacts],
                                     "attempts": [a.to_json() for a in result.manifest.attempts]})
    _ = json
    raise typer.Exit(result.exit_code)


class _ProgressPrinter:
    """One line per step: started, then done/cached/failed with its time."""

    def __init__(self, console) -> None:
        self.console = console
        self.status = None

    def __call__(self, e) -> None:
        from rich.markup import escape

        label = escape(e.step) + (f" [dim]({escape(e.detail)})[/]" if e.detail and e.status in ("start", "done", "cached") else "")
        if e.status == "start":
            if self.console.is_terminal:
                self.status = self.console.status(f"{label} ...")
                self.status.start()
            else:
                self.console.print(f"  … {e.step} ({e.detail or 'running'})", markup=False)
            return
        if self.status is not None:
            self.status.stop()
            self.status = None
        if e.status == "done":
            self.console.print(f"  [green]✓[/] {label} [dim]{e.seconds:.1f} s[/]")
        elif e.status == "cached":
            self.console.print(f"  [green]✓[/] {label} [dim]reused (unchanged inputs)[/]")
        elif e.status == "rejected":
            self.console.print(f"  [yellow]✗[/] {escape(e.step)} rejected: {escape(e.detail)}", markup=True)
        else:
            self.console.print(f"  [red]✗[/] {escape(e.step)} failed [dim]{e.seconds:.1f} s[/]: {escape(e.detail)}")


def _render(result, console, human_size, total: float) -> None:
    from rich.markup import escape
    from rich.table import Table

    m = result.manifest
    table = Table(title=escape(f"{m.source} -> {m.root}"))
    for col in ("artifact", "format", "converter", "size", "time", "check"):
        table.add_column(col)
    for a in m.artifacts:
        if a.format == "pytorch":
            continue
        check = ""
        if a.checks:
            worst = a.checks.get("worst_rel")
            flex = a.checks.get("flex_ops") or []
            check = ("ok" if a.checks.get("passed") else "FAIL") + (f" rel {worst:.1e}" if isinstance(worst, (int, float)) else "")
            if flex:
                check += f" flex: {','.join(flex)}"
        table.add_row(*(escape(str(v)) for v in (a.name, a.format, a.converter, human_size(a.size_bytes), f"{a.seconds:.1f} s", check)))
    console.print(table)
    for att in m.attempts:
        if att.status not in ("kept",):
            console.print(f"  [yellow]{escape(f'{att.target} via {att.converter}: {att.status}')}[/] {escape(att.reason)}", markup=True)
    for f in result.failed:
        console.print(f"[red]failed:[/] {escape(f'{f.target} ({f.converter}): {f.reason}')}")
    if result.parity_failed:
        console.print(f"[red]parity failed:[/] {escape(', '.join(result.parity_failed))}")
    console.print(f"manifest: {escape(str(m.root / 'manifest.json'))}  [dim]({total:.1f} s)[/]")
