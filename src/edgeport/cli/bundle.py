"""``edgeport bundle``: pack a convert output folder for a device, or check/extract a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeport.cli.common import WIDE_HELP


def bundle(
    source: Path = typer.Argument(..., help="An edgeport convert output folder (to pack) or a bundle file (to check or extract).",
                                  show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Packing: the bundle file to write (default OUT.bundle.tar.gz). "
                                          "From a bundle: a new folder to extract into."),
    artifact: Optional[list[str]] = typer.Option(None, "--artifact", "-a", help="Bundle only these artifacts (default: every .tflite and .onnx)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write what was bundled as JSON."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Pack the deployable artifacts (.tflite variants, .onnx), manifest and reference data into one .tar.gz.

    On a device with only `pip install edgeport\\[device]`, `edgeport validate FILE` and `edgeport bench FILE` work on it.

    Given a bundle, this checks it (safe extraction, sha256 of every file) and with -o extracts it.
    """
    from edgeport.bundle import extract_to, is_bundle, opened_bundle, pack
    from edgeport.cli.common import console, split_list
    from edgeport.fsutil import human_size
    from edgeport.errors import InputError
    from edgeport.fsutil import atomic_write_json, sha256_file

    from edgeport.fsutil import check_writable

    if not source.exists():
        raise InputError(f"{source} does not exist", "pass an edgeport convert output folder or a bundle file")
    if json_out:
        check_writable(json_out, "--json")
    if is_bundle(source):
        if output is not None:
            check_writable(output, "-o", folder=True)
            root, m = extract_to(source, output)
            console.print(f"extracted {source} to {root}: {', '.join(a.name for a in m.artifacts)} (every sha256 matches)",
                          markup=False)
        else:
            with opened_bundle(source) as (_root, m):
                console.print(f"bundle OK: {source} holds {', '.join(f'{a.name} ({human_size(a.size_bytes)})' for a in m.artifacts)}"
                              f"; reference: {m.reference.get('path') or 'none'} (every sha256 matches)", markup=False)
        if json_out:
            atomic_write_json(json_out, {"bundle": str(source), "artifacts": [a.to_json() for a in m.artifacts]})
        raise typer.Exit(0)

    root = source.parent if source.name == "manifest.json" else source
    dest = output or root.resolve().parent / f"{root.resolve().name}.bundle.tar.gz"
    if not dest.is_dir():  # a folder is refused by pack() with its own message
        check_writable(dest, "bundle")
    result = pack(root, dest, split_list(artifact) or None)
    from edgeport.cli.render import Column, Row, TableSpec, print_table

    rows = [Row([name, human_size(size)]) for name, size in result.files]
    print_table(console, TableSpec([Column("file", key=True), Column("size", right=True, key=True)], rows, title=str(dest)), wide)
    digest = sha256_file(dest)
    console.print(f"bundle: {dest} ({human_size(result.size_bytes)}, sha256 {digest}) with {', '.join(result.artifacts)}",
                  markup=False)
    if json_out:
        atomic_write_json(json_out, {**result.to_json(), "sha256": digest})
    raise typer.Exit(0)
