"""``edgeport validate``: the parity matrix as a CI gate.

Exit codes: 0 every artifact passed, 1 a parity failure, 2 bad input, 3 an artifact failed to load,
run, crashed or timed out. Imports only typer at module level (numpy and the rest load when it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from edgeport.cli.common import WIDE_HELP, runtime_help


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
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="scale (default for fp32/fp16: every element within atol + rtol x the output's max |ref|) or elementwise (numpy allclose: atol + rtol x |ref|); MODE or NAME:MODE (repeat)."),
    artifacts: Optional[list[str]] = typer.Option(None, "--artifact", "-a", help="Only these artifacts (repeat or comma list)."),
    runtimes: Optional[list[str]] = typer.Option(None, "--runtime", "-r", help=runtime_help()),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=256, help="Threads per runtime (default 1)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=64, help="Artifact x runtime pairs run at once, each in its own process (default 1)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=1.0, help="Seconds per artifact x runtime before it is killed (default 300)."),
    localize: bool = typer.Option(False, "--localize", help="Find the first intermediate tensor where a failing ONNX (vs PyTorch) or TFLite (vs ONNX Runtime) model diverges; with two ONNX (or two TFLite) files, B vs A."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON (schema edgeport.validate/1)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML: one testcase per artifact x runtime."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown summary (for a pull-request comment)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Settings file (edgeport.toml \\[validate] or pyproject.toml \\[tool.edgeport.validate]); default: the nearest one."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore config files."),
    keep_outputs: Optional[Path] = typer.Option(None, "--keep-outputs", help="Keep every runtime's outputs as .npz files in this folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the one-line verdict."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
    remote: Optional[str] = typer.Option(None, "--remote", help="Validate on another machine: ssh://user@host[:port] (needs edgeport\\[device] there); the bundle is made and copied for you."),
    remote_edgeport: str = typer.Option("edgeport", "--remote-edgeport", help="The edgeport command on the remote machine."),
    ssh_option: Optional[list[str]] = typer.Option(None, "--ssh-option", help="Extra ssh -o KEY=VALUE (repeat)."),
    ssh_identity: Optional[Path] = typer.Option(None, "--ssh-identity", help="Private key for --remote."),
) -> None:
    """Check numerical parity of every artifact on every runtime against the reference; fail the build on drift."""
    _run(ValidateArgs(
        paths=tuple(paths), reference=reference, samples=samples, seed=seed, inputs_npz=inputs_npz, images=images,
        resize=resize, mean=mean, std=std, atol=atol, rtol=rtol, statistic=statistic, compare=compare, artifacts=artifacts,
        runtimes=runtimes, threads=threads, jobs=jobs, timeout=timeout, localize=localize, json_out=json_out, junit=junit,
        markdown=markdown, config=config, no_config=no_config, keep_outputs=keep_outputs, quiet=quiet, wide=wide,
        remote=remote, remote_edgeport=remote_edgeport, ssh_option=ssh_option, ssh_identity=ssh_identity))


@dataclass(frozen=True)
class ValidateArgs:
    """The parsed command line of ``edgeport validate`` (every field given; None: the settings file's value, then the default)."""

    paths: tuple[Path, ...]
    reference: Optional[str]
    samples: Optional[int]
    seed: Optional[int]
    inputs_npz: Optional[Path]
    images: Optional[Path]
    resize: Optional[str]
    mean: Optional[str]
    std: Optional[str]
    atol: Optional[list[str]]
    rtol: Optional[list[str]]
    statistic: Optional[str]
    compare: Optional[list[str]]
    artifacts: Optional[list[str]]
    runtimes: Optional[list[str]]
    threads: Optional[int]
    jobs: Optional[int]
    timeout: Optional[float]
    localize: bool
    json_out: Optional[Path]
    junit: Optional[Path]
    markdown: Optional[Path]
    config: Optional[Path]
    no_config: bool
    keep_outputs: Optional[Path]
    quiet: bool
    wide: bool
    remote: Optional[str]
    remote_edgeport: str
    ssh_option: Optional[list[str]]
    ssh_identity: Optional[Path]


def _run(a: ValidateArgs) -> None:
    """Check the arguments, validate (here, or on the --remote machine), write the reports, show the verdict, exit."""
    from edgeport.cli.common import console, err_console
    from edgeport.errors import UsageError
    from edgeport.validate.report import print_console

    if len(a.paths) not in (1, 2):
        raise UsageError(f"validate takes an output folder or two model files, got {len(a.paths)} paths",
                         "edgeport validate OUT, or edgeport validate A.onnx B.tflite")
    if a.remote:
        _validate_remote(a.paths[0], a.remote, a.remote_edgeport, a.ssh_option, a.ssh_identity, _remote_args(a),
                         a.json_out, a.quiet, a.wide)
    _check_writable(a)
    from edgeport.api import validate as run_validate

    report = run_validate(  # the library call; None means the settings file's value, then the default
        a.paths[0], a.paths[1] if len(a.paths) == 2 else None, config=False if a.no_config else a.config, atol=a.atol,
        rtol=a.rtol, statistic=a.statistic, compare=a.compare, resize=a.resize, samples=a.samples, seed=a.seed,
        inputs_npz=a.inputs_npz, images=a.images, mean=a.mean, std=a.std, reference=a.reference, artifacts=a.artifacts,
        runtimes=a.runtimes, threads=a.threads, jobs=a.jobs, timeout=a.timeout, localize=a.localize or None,
        keep_outputs=a.keep_outputs,
        progress=None if a.quiet else (lambda msg: err_console.print(msg, style="dim", markup=False, highlight=False)))
    _write_reports(report, a)
    if a.quiet:
        console.print(report.summary(), markup=False)
    else:
        print_console(report, console, wide=a.wide)
    if len(a.paths) == 1:  # an output folder keeps its latest result and gets OUT/report.html (a bundle does not)
        from edgeport.report.state import after_command

        after_command("validate", a.paths[0], report)
    raise typer.Exit(report.exit_code)


def _remote_args(a: ValidateArgs) -> list[str]:
    """The remote ``edgeport validate`` command line; options that need local files are refused."""
    from edgeport.errors import UsageError

    if len(a.paths) != 1:
        raise UsageError("--remote validates one output folder or bundle", "edgeport validate OUT --remote ssh://user@host")
    for flag, val in (("--inputs-npz", a.inputs_npz), ("--images", a.images), ("--junit", a.junit),
                      ("--markdown", a.markdown), ("--keep-outputs", a.keep_outputs)):
        if val is not None:
            raise UsageError(f"{flag} cannot be used with --remote", "validate remotely with --json, or run it on the device")
    args: list[str] = ["--quiet", "--no-config"]
    for flag, val in (("--reference", a.reference), ("--samples", a.samples), ("--seed", a.seed), ("--stat", a.statistic),
                      ("--threads", a.threads), ("--jobs", a.jobs), ("--timeout", a.timeout)):
        if val is not None:
            args += [flag, str(val)]
    for flag, vals in (("--atol", a.atol), ("--rtol", a.rtol), ("--compare", a.compare), ("--artifact", a.artifacts),
                       ("--runtime", a.runtimes)):
        for v in vals or []:
            args += [flag, v]
    if a.localize:
        args.append("--localize")
    return args


def _check_writable(a: ValidateArgs) -> None:
    """Every report path is writable: checked before minutes of runs, not after."""
    from edgeport.fsutil import check_writable

    for path, what in ((a.json_out, "--json"), (a.junit, "--junit"), (a.markdown, "--markdown")):
        if path is not None:
            check_writable(path, what)
    if a.keep_outputs is not None:
        check_writable(a.keep_outputs, "--keep-outputs", folder=True)


def _write_reports(report, a: ValidateArgs) -> None:
    from edgeport.errors import OutputError
    from edgeport.validate.report import write_json, write_junit, write_markdown

    for path, write in ((a.json_out, write_json), (a.junit, write_junit), (a.markdown, write_markdown)):
        if path is None:
            continue
        try:
            write(report, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable path") from None


def _validate_remote(target: Path, url: str, remote_edgeport: str, ssh_option, ssh_identity, args: list[str],
                     json_out: Optional[Path], quiet: bool, wide: bool = False) -> None:
    """Bundle TARGET if needed, run ``edgeport validate`` on the remote machine, show and keep its JSON."""
    import json
    import tempfile

    from edgeport.bundle import is_bundle, pack
    from edgeport.cli.common import console, err_console
    from edgeport.errors import InputError, OutputError, RuntimeFailure, UsageError
    from edgeport.fsutil import atomic_write_text
    from edgeport.remote import parse_ssh_url, run_remote

    where = parse_ssh_url(url, identity=str(ssh_identity) if ssh_identity else None, options=list(ssh_option or []),
                          edgeport=remote_edgeport)
    if not target.exists():
        raise InputError(f"{target} does not exist", "pass an edgeport convert output folder or a bundle")
    with tempfile.TemporaryDirectory(prefix="edgeport-remote-") as tmp:
        if is_bundle(target):
            bundle = target
        elif target.is_dir():
            bundle = Path(tmp) / "model.bundle.tar.gz"
            pack(target, bundle, None)
        else:
            raise UsageError(f"--remote needs a convert output folder or a bundle, not {target.name}",
                             "run edgeport bundle OUT -o model.bundle.tar.gz first")
        if not quiet:
            err_console.print(f"> running edgeport validate on {where.label()}", style="dim", markup=False, highlight=False)
        result = run_remote(where, "validate", bundle, args, timeout=3600.0)
    doc = result.data or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or "exit_code" not in doc:
        raise RuntimeFailure(f"edgeport validate on {where.label()} returned JSON that is not a validate report",
                             "check that the remote edgeport is the same version as this one")
    doc["remote"] = result.remote
    if json_out is not None:
        try:
            atomic_write_text(json_out, json.dumps(doc, indent=2, sort_keys=False) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write {json_out}: {exc.strerror or exc}", "choose a writable path") from None
    if not quiet:
        from edgeport.cli.render import Column, Row, TableSpec, print_table

        cols = [Column(h, key=h != "cosine", right=h in ("max abs err", "cosine"))
                for h in ("artifact", "runtime", "status", "worst output", "max abs err", "cosine")]
        rows = []
        for r in doc["results"]:
            outs = [o for o in r.get("outputs") or [] if isinstance(o, dict)]
            worst = max(outs, key=lambda o: _metric(o, "max_abs"), default={})
            m = worst.get("metrics") if isinstance(worst.get("metrics"), dict) else {}
            rows.append(Row([str(v) for v in (r.get("artifact", ""), r.get("runtime", ""), r.get("status", ""),
                                              worst.get("name", ""), _fmt(m.get("max_abs")), _fmt(m.get("cosine")))]))
        print_table(console, TableSpec(cols, rows, title=f"edgeport validate on {where.label()}"), wide)
    console.print(str(doc.get("summary", "")), markup=False, highlight=False)
    code = doc.get("exit_code")
    raise typer.Exit(code if code in (0, 1, 3) else 3)


def _metric(output: dict, name: str) -> float:
    m = output.get("metrics") if isinstance(output.get("metrics"), dict) else {}
    try:
        return float(m.get(name))
    except (TypeError, ValueError):
        return float("inf")  # "nan"/"inf"/missing sort as the worst


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else ("" if v is None else str(v))
