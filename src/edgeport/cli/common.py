"""Helpers shared by the commands: the console, option parsing."""

from __future__ import annotations

import os
import sys

from rich.console import Console


console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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


