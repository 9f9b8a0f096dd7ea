"""``edgeport validate``: the parity matrix as a CI gate.

Exit codes: 0 every artifact passed, 1 a parity failure, 2 bad input, 3 an artifact failed to load,
run, crashed or timed out. Imports only typer at module level (numpy and the rest load when it runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def validate(
    paths: list[Path] = typer.Argument(..., help="An output folder of edgeport convert (or a bundle of it), or two model files A B (A is the reference).",
                                       show_default=False),
    reference: Optional[str] = typer.Option(None, "--reference", help="Reference: a runtime (torch_eager, onnxruntime, ...), an artifact name, ARTIFACT:RUNTIME, or 'stored' (the outputs in reference.npz, on its samples). Default: PyTorch eager."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, max=10000, help="Number of seeded random inputs (default 4), or the limit for --inputs-npz/--images."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the random inputs (default 0)."),
    inputs_npz: Optional[Path] = typer.Option(None, "--inputs-npz", help="Inputs from an .npz: NAME arrays (a leading sample axis is allowed), K:NAME or input:K:NAME keys."),
    images: Optional[Path] = typer.Option(None, "--images", help="Inputs from a folder of images (for image models)."),
    resize: Optional[str] = typer.Option(None, "--resize", help="Resize images to HxW (default: the model's input size)."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Per-channel mean subtracted from images scaled to [0,1], e.g. 0.485,0.456,0.406."),
    std: Optional[str] = typer.Option(None, "--std", help="Per-channel std images are divided by, e.g. 0.229,0.224,0.225."),
    atol: Optional[list[str]] = typer.Option(None, "--atol", help="Absolute tolerance: VALUE for all outputs or NAME:VALUE for one (repeat)."),
    rtol: Optional[list[str]] = typer.Option(None, "--rtol", help="Relative tolerance: VALUE or NAME:VALUE (repeat)."),
    statistic: Optional[str] = typer.Option(None, "--stat", "--statistic", help="Error statistic checked: elementwise (allclose), max, mean, median or pNN (percentile)."),
    artifacts: Optional[list[str]] = typer.Option(None, "--artifact", "-a", help="Only these artifacts (repeat or comma list)."),
    runtimes: Optional[list[str]] = typer.Option(None, "--runtime", "-r", help="Only these runtimes (repeat or comma list)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=256, help="Threads per runtime (default 1)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=64, help="Artifact x runtime pairs run at once, each in its own process (default 1)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=1.0, help="Seconds per artifact x runtime before it is killed (default 300)."),
    localize: bool = typer.Option(False, "--localize", help="Find the first intermediate tensor where a failing ONNX (vs PyTorch) or TFLite (vs ONNX Runtime) model diverges."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON (schema edgeport.validate/1)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML: one testcase per artifact x runtime."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown summary (for a pull-request comment)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Settings file (edgeport.toml \\[validate] or pyproject.toml \\[tool.edgeport.validate]); default: the nearest one."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore config files."),
    keep_outputs: Optional[Path] = typer.Option(None, "--keep-outputs", help="Keep every runtime's outputs as .npz files in this folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the one-line verdict."),
) -> None:
    """Check numerical parity of every artifact on every runtime against the reference; fail the build on drift."""
    from edgeport.cli.common import console, err_console, split_list
    from edgeport.errors import OutputError, UsageError
    from edgeport.validate.config import ValidateConfig, load_config
    from edgeport.validate.data import parse_resize
    from edgeport.validate.parity import DEFAULT_TIMEOUT, ValidateOptions, validate_dir, validate_files
    from edgeport.validate.report import print_console, write_json, write_junit, write_markdown

    if len(paths) not in (1, 2):
        raise UsageError(f"validate takes an output folder or two model files, got {len(paths)} paths",
                         "edgeport validate OUT, or edgeport validate A.onnx B.tflite")
    cfg = ValidateConfig() if no_config else load_config(config)
    run = cfg.run
    cfg.tolerances.add_cli(atol, rtol, statistic)
    opts = ValidateOptions(
        samples=samples if samples is not None else run.get("samples"),
        seed=int(seed if seed is not None else run.get("seed", 0)),
        inputs_npz=str(inputs_npz) if inputs_npz else None,
        images=str(images) if images else None,
        resize=parse_resize(resize),
        mean=mean,
        std=std,
        reference=reference or run.get("reference"),
        artifacts=split_list(artifacts) or split_list(run.get("artifacts")) or None,
        runtimes=split_list(runtimes) or split_list(run.get("runtimes")) or None,
        tolerances=cfg.tolerances,
        threads=int(threads or run.get("threads", 1)),
        jobs=int(jobs or run.get("jobs", 1)),
        timeout=float(timeout or run.get("timeout", DEFAULT_TIMEOUT)),
        localize=localize or bool(run.get("localize", False)),
        keep_outputs=str(keep_outputs) if keep_outputs else None,
        progress=None if quiet else (lambda msg: err_console.print(f"[dim]{msg}[/]", highlight=False)),
    )
    if cfg.source and not quiet:
        err_console.print(f"[dim]settings from {cfg.source}[/]", highlight=False)
    if len(paths) == 1:
        from edgeport.bundle import resolve_target

        report = validate_dir(resolve_target(paths[0]), opts)  # a device bundle opens to its checked folder
    else:
        report = validate_files(paths[0], paths[1], opts)
    for path, write in ((json_out, write_json), (junit, write_junit), (markdown, write_markdown)):
        if path is None:
            continue
        try:
            write(report, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable path") from None
    if quiet:
        console.print(report.summary(), highlight=False)
    else:
        print_console(report, console)
    raise typer.Exit(report.exit_code)
