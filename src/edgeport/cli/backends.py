"""``edgeport backends``: list the converter backends; ``edgeport backends install NAME``.

Listing imports neither torch nor TensorFlow (see :mod:`edgeport.backends`), so it stays fast.
"""

from __future__ import annotations

import typer

backends_app = typer.Typer(
    help="List converter backends and their versions; install the isolated ones (onnx-tf).",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


@backends_app.callback()
def _list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List every converter backend: installed or not, its interpreter and package versions."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from edgeport import backends

    entries = backends.status()
    if json_out:
        print(json.dumps(entries, indent=2))
        return
    from rich.table import Table

    from edgeport.cli.common import console

    table = Table(title="converter backends")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("installed")
    table.add_column("versions", no_wrap=True)
    for e in entries:
        mark = "[green]yes[/]" if e["installed"] else "[red]no[/]"
        if not e["installed"] and e.get("detail"):
            mark += f"\n[dim]{e['detail']}[/]"
        versions = "\n".join(f"{k} {v}" for k, v in e.get("versions", {}).items()) or "-"
        table.add_row(e["name"], e["kind"], mark, versions)
    console.print(table)
    # In-process backends share this interpreter; isolated ones have their own (long paths: below the table).
    for e in entries:
        if e["kind"] == "isolated":
            where = e.get("python") if e["installed"] else e.get("location")
            console.print(f"{e['name']}: {where}", style="dim", overflow="fold")
    missing = [e["name"] for e in entries if e["kind"] == "isolated" and not e["installed"]]
    if missing:
        console.print(f"install with: edgeport backends install {missing[0]}", style="dim")


@backends_app.command("install")
def install(
    name: str = typer.Argument(..., help="Backend to install, e.g. onnx-tf."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when it is already installed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not stream pip's output."),
) -> None:
    """Build the isolated virtual environment of backend NAME from its pinned requirement file."""
    import sys

    from edgeport import backends

    def echo(line: str) -> None:
        if quiet and not line.startswith(("creating", "installing", "checking")):
            return
        sys.stderr.write(line if line.endswith("\n") else line + "\n")
        sys.stderr.flush()

    entry = backends.install(name, echo=echo, force=force)
    versions = ", ".join(f"{k} {v}" for k, v in entry.get("versions", {}).items())
    print(f"{name}: installed ({entry.get('python')}; {versions})")
