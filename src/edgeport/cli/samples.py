"""``edgeport samples``: the built-in sample models (no torch import)."""

from __future__ import annotations

import typer

from edgeport.cli.common import WIDE_HELP


def samples(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """List the built-in sample models (use them as MODEL with sample:NAME)."""
    import json

    import sample_models

    if json_out:
        print(json.dumps([{"name": s.name, "description": s.description, "inputs": list(s.inputs),
                           "outputs": list(s.outputs), "default": s.name == sample_models.DEFAULT_SAMPLE,
                           "dataset": s.dataset, "trained": sample_models.training_facts(s.name)}
                          for s in sample_models.SAMPLES.values()], indent=2))
        return
    from edgeport.cli.common import console
    from edgeport.cli.render import Column, Row, TableSpec, print_table

    cols = [Column("name", key=True), Column("inputs", key=True), Column("outputs"), Column("data set", wrap=True),
            Column("description", wrap=True)]
    rows = []
    for s in sample_models.SAMPLES.values():
        name = s.name + (" (default)" if s.name == sample_models.DEFAULT_SAMPLE else "")
        facts = sample_models.training_facts(s.name)
        data = f"{s.dataset} (held-out fp32 accuracy {facts['test_accuracy']:.4f})" if s.dataset else "random weights"
        rows.append(Row([name, " ".join(s.inputs), ", ".join(s.outputs), data, s.description]))
    print_table(console, TableSpec(cols, rows, title="sample models (MODEL = sample:NAME)"), wide)
