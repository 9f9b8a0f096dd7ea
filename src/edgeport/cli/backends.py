"""``edgeport backends``: list the converter backends; ``edgeport backends install NAME``.

Listing imports neither torch nor TensorFlow (see :mod:`edgeport.backends`), so it stays fast.
"""

from __future__ import annotations

import typer

from edgeport.backends import MANAGED
from edgeport.cli.common import WIDE_HELP

backends_app = typer.Typer(
    help=f"List converter backends and their versions; install the managed ones ({', '.join(MANAGED)}).",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


@backends_app.callback()
def _list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
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
    from rich.text import Text

    from edgeport.cli.common import console
    from edgeport.cli.render import Column, NarrowRow, Pairs, Row, TableSpec, print_table

    cols = [Column("name", key=True), Column("kind", key=True), Column("installed", key=True), Column("versions"),
            Column("note", wrap=True)]
    rows, narrow = [], []
    for e in entries:
        mark = Text("yes", style="green") if e["installed"] else Text("no", style="red")
        versions = [f"{k} {v}" for k, v in e.get("versions", {}).items()]
        note = "" if e["installed"] else str(e.get("detail") or "")
        rows.append(Row([e["name"], e["kind"], mark, "\n".join(versions) or "-", note]))
        details = ([Pairs(versions, lead=Text("versions", style="dim"))] if versions else []) + ([note] if note else [])
        narrow.append(NarrowRow([e["name"], e["kind"], mark], details))
    if not any(r.cells[-1] for r in rows):
        cols, rows = cols[:-1], [Row(r.cells[:-1]) for r in rows]
    print_table(console, TableSpec(cols, rows, title="converter backends", narrow=narrow), wide)
    # In-process backends share this interpreter; isolated ones have their own (long paths: below the table).
    for e in entries:
        if e["kind"] == "isolated":
            where = e.get("python") if e["installed"] else e.get("location")
            console.print(f"{e['name']}: {where}", style="dim", overflow="fold", markup=False)
    missing = [e["name"] for e in entries if e["kind"] == "isolated" and not e["installed"]]
    for name in missing:
        console.print(f"install with: edgeport backends install {name}", style="dim", markup=False)


@backends_app.command("install")
def install(
    name: str = typer.Argument(..., help=f"Backend to install: {', '.join(MANAGED)}."),
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
