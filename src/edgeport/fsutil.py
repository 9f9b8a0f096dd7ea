"""Atomic file and folder writes, content hashes.

Files are written to a temporary sibling, fsynced and renamed into place, so a reader sees the old
content or the new, never a half-written file. Folders (a SavedModel) are built in a temporary sibling
and swapped in the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder: over its sorted relative paths and file contents."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0")
        h.update(sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def path_size(path: str | os.PathLike) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def install_path(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a finished file or folder ``tmp`` to ``final``, replacing what was there atomically."""
    tmp, final = Path(tmp), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if tmp.is_dir():
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    _fsync_dir(final.parent)


@contextlib.contextmanager
def staging_dir(parent: str | os.PathLike, prefix: str = ".staging-") -> Iterator[Path]:
    """A temporary folder inside ``parent`` (same file system, so renames are atomic); removed after."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str | os.PathLike, what: str, *, folder: bool = False) -> None:
    """Fail early, before any work, when ``path`` cannot be created or replaced.

    The nearest existing ancestor must be a folder we may write to; an existing ``path`` must be a file
    (or, with ``folder``, a folder). Raises OutputError (exit 2). Root passes the permission test
    regardless of the mode bits; the later write still reports its own error.
    """
    from edgeport.errors import OutputError

    p = Path(path).expanduser()
    hint = f"choose another {what} path"
    if p.exists():
        if folder and not p.is_dir():
            raise OutputError(f"cannot write {what} {p}: it exists and is not a folder", hint)
        if not folder and p.is_dir():
            raise OutputError(f"cannot write {what} {p}: it is a folder", hint)
        if not os.access(p if folder else p.parent, os.W_OK):
            raise OutputError(f"cannot write {what} {p}: the folder is not writable", hint)
        return
    parent = p.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {what} {p}: {parent} is not a folder", hint)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {p}: {parent} is not writable", hint)


def human_size(n: int | float) -> str:
    """1536 -> "1.5 KB" (binary units, as the CLI tables show file sizes)."""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
