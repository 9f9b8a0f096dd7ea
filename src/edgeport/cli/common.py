"""Helpers shared by the commands: the consoles (made in :mod:`edgeport.cli.render`), option parsing."""

from __future__ import annotations

import os
import sys

from edgeport.cli.render import make_console

console = make_console(stderr=False)
err_console = make_console(stderr=True)

WIDE_HELP = "Print the full tables even when the output is narrower than 100 columns (pipes and CI logs are 80)."


def runtime_help() -> str:
    """The registered runtimes for --runtime's help (the registry imports nothing heavy)."""
    from edgeport.runtimes import names

    return f"Only these runtimes: {names()} (repeat or comma list)."


def debug_enabled() -> bool:
    return os.environ.get("EDGEPORT_DEBUG") == "1" or "--debug" in sys.argv


def split_list(values: list[str] | str | None) -> list[str]:
    """``--to a,b --to c`` -> [a, b, c]"""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


