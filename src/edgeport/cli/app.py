"""``edgeport``: the Typer application and its error handling.

Exit codes: 0 ok, 1 a check failed (parity, thresholds), 2 bad input or usage, 3 a conversion or
runtime failed, 4 an internal error (a bug in edgeport: please report it with --debug output).
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from edgeport import __version__
from edgeport.cli.common import debug_enabled, err_console

app = typer.Typer(
    name="edgeport",
    help="Take a PyTorch model to TorchScript, ONNX, TF SavedModel and TFLite, and prove it still works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        print(f"edgeport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Take a PyTorch model to TorchScript, ONNX, TF SavedModel and TFLite, and prove it still works."""


# ---- command registration (one line per command module; modules import only typer/rich at top) ----
from edgeport.cli.convert import convert as _convert_cmd, export as _export_cmd  # noqa: E402
from edgeport.cli.samples import samples as _samples_cmd  # noqa: E402
from edgeport.cli.bench import bench as _bench_cmd  # noqa: E402
from edgeport.cli.bundle import bundle as _bundle_cmd  # noqa: E402
from edgeport.cli.validate import validate as _validate_cmd  # noqa: E402
from edgeport.cli.quantize import quantize as _quantize_cmd  # noqa: E402
from edgeport.cli.backends import backends_app as _backends_app  # noqa: E402
from edgeport.cli.zoo import zoo as _zoo_cmd  # noqa: E402
from edgeport.cli.logs import logs as _logs_cmd  # noqa: E402

app.command("convert")(_convert_cmd)
app.command("export")(_export_cmd)
app.command("samples")(_samples_cmd)
app.command("bench")(_bench_cmd)
app.command("bundle")(_bundle_cmd)
app.command("validate")(_validate_cmd)
app.command("quantize")(_quantize_cmd)
app.add_typer(_backends_app, name="backends")
app.command("zoo")(_zoo_cmd)
app.command("logs")(_logs_cmd)
# ---- end of registration ----


def _click_error(exc: BaseException) -> bool:
    """Typer vendors click (typer._click); match its exceptions by their API, not by import path."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code") and any(
        c.__name__ == "ClickException" for c in type(exc).__mro__)


def _render_click_error(exc) -> int:
    names = {c.__name__ for c in type(exc).__mro__}
    if "NoArgsIsHelpError" in names:  # help was printed already
        return 2
    if "UsageError" in names:
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "edgeport"
        msg = " ".join(exc.format_message().split())
        err_console.print(f"[bold red]error:[/] {escape(msg)} (see {escape(cmd)} --help)", highlight=False)
        return 2
    err_console.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))}", highlight=False)
    return int(exc.exit_code)


def main() -> None:
    from edgeport.errors import EXIT_INTERRUPTED, EdgeportError

    if "--debug" in sys.argv[1:]:
        import os

        os.environ["EDGEPORT_DEBUG"] = "1"
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except EdgeportError as exc:
        if debug_enabled():
            err_console.print_exception()
        # messages carry paths and model-provided names: escaped, so "[/x]" is text, not rich markup
        err_console.print(f"[bold red]error:[/] {escape(exc.one_line())}", markup=True, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - click usage errors, else a bug: one line unless --debug
        if _click_error(exc):
            sys.exit(_render_click_error(exc))
        if type(exc).__name__ == "Abort":
            err_console.print("[bold red]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)
        if debug_enabled():
            err_console.print_exception()
        msg = " ".join(str(exc).split())[:300]
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(msg)} (run with --debug and report it)")
        sys.exit(4)


if __name__ == "__main__":
    main()
