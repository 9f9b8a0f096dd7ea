"""``edgeport samples``: the built-in sample models (no torch import)."""

from __future__ import annotations

import typer


def samples(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the built-in sample models (use them as MODEL with sample:NAME)."""
    import json

    import sample_models

    if json_out:
        print(json.dumps([{"name": s.name, "description": s.description, "inputs": list(s.inputs),
                           "outputs": list(s.outputs), "default": s.name == sample_models.DEFAULT_SAMPLE}
                          for s in sample_models.SAMPLES.values()], indent=2))
        return
    from rich.table import Table

    from edgeport.cli.common import console

    table = Table(title="sample models (MODEL = sample:NAME)")
    table.add_column("name", style="bold")
    table.add_column("inputs")
    table.add_column("outputs")
    table.add_column("description")
    for s in sample_models.SAMPLES.values():
        name = s.name + (" (default)" if s.name == sample_models.DEFAULT_SAMPLE else "")
        table.add_row(name, "\n".join(s.inputs), ", ".join(s.outputs), s.description)
    console.print(table)
