"""An edgeport output folder (``-o OUT``): what makes it edgeport's, its state folder, its lock, its staging.

Every command that writes into OUT follows the same rules, kept here once:

- OUT must be new, empty, or made by edgeport (it holds ``.edgeport/`` or ``manifest.json``); edgeport
  never writes into a folder of other files (:func:`check_out`);
- ``OUT/.edgeport/`` holds the state that is not an artifact: the conversion cache, step logs, the last
  validate/bench/quantize results, the lock (:func:`state_dir`, :func:`logs_dir`);
- one writer at a time: :func:`lock` takes an exclusive, non-blocking ``flock`` on ``.edgeport/lock``; a
  second command is refused at once with a one-line error instead of waiting or interleaving files (the
  lock dies with its process, so a killed run never leaves OUT locked);
- files are built in ``OUT/.staging-*`` folders (same file system, so the final rename is atomic) and
  moved into place; a staging folder left by a killed run is removed by the next writer under the lock
  (:func:`remove_stale_staging`).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from pathlib import Path
from typing import Iterator

from edgeport.errors import OutputError
from edgeport.manifest import MANIFEST_NAME

STATE_DIR = ".edgeport"
STAGING_PREFIX = ".staging-"


def state_dir(out: str | Path) -> Path:
    return Path(out) / STATE_DIR


def logs_dir(out: str | Path) -> Path:
    return state_dir(out) / "logs"


def check_out(out: Path) -> None:
    """OUT is a folder that may be written: new, empty, or made by edgeport (OutputError, exit 2, if not)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output path {out} exists and is a file", "choose a folder with -o")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and STATE_DIR not in entries and MANIFEST_NAME not in entries:
            raise OutputError(f"output folder {out} is not empty and was not made by edgeport",
                              "choose a new or empty folder with -o; edgeport never overwrites other files")


def ensure_writable(out: Path) -> None:
    """Create OUT/.edgeport and prove a file can be written there, before any work is done."""
    try:
        state_dir(out).mkdir(parents=True, exist_ok=True)
        probe = state_dir(out) / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except PermissionError:
        raise OutputError(f"output folder {out} is not writable", "choose a writable folder with -o") from None
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}", "choose another folder with -o, or free space") from None


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold OUT's writer lock for the block; OutputError (exit 2) at once when another command holds it."""
    try:
        state_dir(out).mkdir(parents=True, exist_ok=True)
        fh = open(state_dir(out) / "lock", "w")
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}", "check the folder's permissions") from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockRefused(f"another edgeport command is writing to {out}", "wait for it to finish, or write to another folder") from None
        yield
    finally:
        fh.close()


class LockRefused(OutputError):
    """OUT's lock is held by another command: nothing in OUT is this command's to clean up."""


def remove_stale_staging(out: Path) -> None:
    """Staging folders of interrupted runs (only under the lock: another run's may be live otherwise)."""
    for stale in out.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def has_artifacts(out: Path) -> bool:
    """OUT holds something besides edgeport's state and staging folders."""
    return any(p.name != STATE_DIR and not p.name.startswith(STAGING_PREFIX) for p in out.iterdir())
