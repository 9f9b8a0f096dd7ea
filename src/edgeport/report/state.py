"""The hook commands call when they finish: keep the latest result in OUT/.edgeport/, rewrite the page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeport.outdir import STATE_DIR
from edgeport.manifest import MANIFEST_NAME

RESULT_NAMES = {"validate": "validate.json", "bench": "bench.json"}
WORST_NAME = "validate-worst.npz"


def output_folder(target: str | os.PathLike | None) -> Path | None:
    """``target`` when it is an edgeport output folder (a directory with manifest.json), else None
    (a bundle, a model file, two files, nothing)."""
    if target is None:
        return None
    p = Path(target)
    return p if p.is_dir() and (p / MANIFEST_NAME).is_file() else None


def save_result(out: Path, command: str, report: Any) -> None:
    """Write ``report.to_json()`` to OUT/.edgeport/<command>.json (and validate's worst output values)."""
    import numpy as np

    from edgeport.fsutil import atomic_write_bytes, atomic_write_json

    state = out / STATE_DIR
    state.mkdir(exist_ok=True)
    doc = report.to_json()
    worst = getattr(report, "worst", None)
    if command == "validate":
        npz = state / WORST_NAME
        if worst:
            import io

            meta = {k: v for k, v in worst.items() if k not in ("reference", "candidate")}
            buf = io.BytesIO()
            np.savez(buf, reference=worst["reference"], candidate=worst["candidate"])
            atomic_write_bytes(npz, buf.getvalue())
            doc["worst_output"] = {**meta, "file": f"{STATE_DIR}/{WORST_NAME}"}
        else:
            npz.unlink(missing_ok=True)
    atomic_write_json(state / RESULT_NAMES[command], doc)


def after_command(command: str, target: str | os.PathLike | None, report: Any = None, console: Any = None) -> Path | None:
    """Keep ``report`` (validate, bench) in OUT/.edgeport/ and rewrite OUT/report.html.

    Never raises and never changes the command's exit code: a failure prints one warning line naming
    the path. Returns the page's path, or None when there is none (not an output folder, or it failed)."""
    out = output_folder(target)
    if out is None:
        return None
    where = out / STATE_DIR / RESULT_NAMES.get(command, "")
    try:
        if report is not None and command in RESULT_NAMES:
            save_result(out, command, report)
        where = out / "report.html"
        from edgeport.report.page import update_report

        return update_report(out)
    except Exception as exc:  # noqa: BLE001 - the page is a by-product; the command's own result stands
        _warn(console, f"warning: cannot write {where}: {_reason(exc)}")
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _warn(console: Any, line: str) -> None:
    if console is None:
        from edgeport.cli.common import err_console as console
    console.print(line, style="yellow", markup=False, highlight=False)
