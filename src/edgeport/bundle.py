"""Device bundles: the deployable artifacts, the manifest and the reference data in one .tar.gz.

    pack("out/", "model.bundle.tar.gz")               # .tflite variants + .onnx + manifest + reference.npz
    root, manifest = open_bundle("model.bundle.tar.gz")  # safe extraction to a temporary folder, sha256-checked
    path = resolve_target(arg)                        # a bundle -> its extracted folder; anything else unchanged

A bundle's manifest lists only the bundled artifacts (no ``pytorch`` entry), so ``edgeport validate`` on
a device with no torch compares against the outputs recorded in reference.npz, and ``edgeport bench``
measures what the device can run. Bundles are deterministic: the same folder gives the same bytes.

Extraction trusts nothing in the archive. Before anything is written, every member is checked: only
regular files and folders; no absolute paths, drive letters, backslashes, ``..`` components, NUL bytes,
links, devices, FIFOs or sparse files; no duplicates; bounded member count and sizes. Python's
``tarfile.data_filter`` is applied on top where available. Files are created with ``O_EXCL|O_NOFOLLOW``
inside a fresh folder, then every file is checked against the manifest's sha256, and a member the
manifest does not account for is refused. Any violation refuses the whole bundle (exit 2).
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from edgeport import __version__
from edgeport.errors import InputError, ManifestError, OutputError, SecurityError, UsageError
from edgeport.fsutil import sha256_path
from edgeport.formats import deployable, model_suffixes
from edgeport.manifest import MANIFEST_NAME, Artifact, Manifest

BUNDLE_SCHEMA = "edgeport.bundle/1"
BUNDLE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".bundle", ".tar.xz", ".tar.bz2")
FIXED_MTIME = 315532800  # 1980-01-01: deterministic archives
_HINT = "re-create it with edgeport bundle OUT -o FILE, and only open bundles from sources you trust"


@dataclass(frozen=True)
class Limits:
    """Upper bounds for what an archive may unpack to."""

    max_members: int = 10_000
    max_member_bytes: int = 4 << 30
    max_total_bytes: int = 8 << 30
    max_name_length: int = 1024


@dataclass
class PackResult:
    path: Path
    artifacts: list[str] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)  # (member name, size)
    size_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "artifacts": self.artifacts, "size_bytes": self.size_bytes,
                "files": [{"name": n, "size_bytes": s} for n, s in self.files]}


# ------------------------------------------------------------------------------------------ pack


def pack(out_dir: str | os.PathLike, dest: str | os.PathLike, artifacts: list[str] | None = None) -> PackResult:
    """Write a bundle of ``out_dir``'s deployable artifacts (or the named ``artifacts``) to ``dest``."""
    m = Manifest.load(out_dir)
    chosen = _chosen_artifacts(m, artifacts)
    problems = m.verify([a.name for a in chosen])
    if problems:
        raise ManifestError(f"cannot bundle {m.root}: {problems[0]}", "re-run edgeport convert to re-create the artifacts")
    files, reference = _bundle_files(m, chosen)
    bundled = replace(m, artifacts=chosen, attempts=[], reference=reference,
                      extra={**m.extra, "bundle": {"schema": BUNDLE_SCHEMA, "edgeport_version": __version__,
                                                   "artifacts": [a.name for a in chosen],
                                                   "from_artifacts": [a.name for a in m.artifacts]}})
    manifest_bytes = (json.dumps(bundled.to_json(), indent=2) + "\n").encode("utf-8")
    result = PackResult(Path(dest), [a.name for a in chosen])
    _write_archive(Path(dest), manifest_bytes, files, result)
    result.size_bytes = result.path.stat().st_size
    return result


def _chosen_artifacts(m: Manifest, artifacts: list[str] | None) -> list[Artifact]:
    """The named artifacts (each once; never the PyTorch model itself), or every deployable one."""
    if not artifacts:
        chosen = [a for a in m.artifacts if a.format in deployable()]
        if not chosen:
            raise UsageError(f"{m.root} has no .tflite or .onnx artifact to bundle",
                             f"run edgeport convert MODEL --to onnx,tflite -o {m.root} first")
        return chosen
    chosen = []
    for name in dict.fromkeys(artifacts):
        a = m.artifact(name)
        if a.format == "pytorch":
            raise UsageError(f"artifact {name!r} is the PyTorch model itself, not a file a device can run",
                             f"bundle converted artifacts, e.g. {', '.join(x.name for x in m.artifacts if x.format in deployable()) or ', '.join(deployable())}")
        chosen.append(a)
    return chosen


def _bundle_files(m: Manifest, chosen: list[Artifact]) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
    """(member name, file) of every artifact file (a folder artifact's files, ONNX external data) and of the
    reference data, and the bundled manifest's reference entry (its ``sizes`` kept only when that file exists)."""
    files: list[tuple[str, Path]] = []
    for a in chosen:
        p = m.abspath(a)
        if p.is_dir():
            files.extend((f"{_norm(a.path)}/{f.relative_to(p).as_posix()}", f) for f in sorted(p.rglob("*")) if f.is_file())
        else:
            files.append((_norm(a.path), p))
        files.extend((_norm(rel), Path(m.root) / rel) for rel in sorted(a.data_files))  # ONNX external data
    reference = dict(m.reference)
    if not reference.get("path"):
        return files, {}
    files.append((_norm(reference["path"]), m.reference_path))
    sizes = reference.get("sizes") or {}
    if sizes.get("path") and (Path(m.root) / sizes["path"]).is_file():  # samples at other dynamic sizes
        files.append((_norm(sizes["path"]), Path(m.root) / sizes["path"]))
    elif sizes:
        reference.pop("sizes")
    return files, reference


def _write_archive(dest: Path, manifest_bytes: bytes, files: list[tuple[str, Path]], result: PackResult) -> None:
    """The deterministic .tar.gz, written to a temporary sibling and renamed into place (nothing left on failure)."""
    if dest.is_dir():
        raise UsageError(f"-o {dest} is a folder", "name the bundle file, e.g. -o model.bundle.tar.gz")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {dest}: {exc.strerror or exc}", "choose a writable path with -o") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=FIXED_MTIME, compresslevel=6) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    _add_bytes(tar, MANIFEST_NAME, manifest_bytes)
                    result.files.append((MANIFEST_NAME, len(manifest_bytes)))
                    for name, path in files:
                        size = _add_file(tar, name, path)
                        result.files.append((name, size))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            if exc.filename not in (None, tmp_name, str(dest)):  # reading an artifact failed
                raise InputError(f"cannot read {exc.filename}: {exc.strerror or exc}", "re-run edgeport convert") from None
            raise OutputError(f"cannot write {dest}: {exc.strerror or exc}", "choose another path with -o, or free space") from None
        raise


def _norm(rel: str) -> str:
    """A manifest path as a tar member name: posix, no "." or empty components."""
    return "/".join(p for p in str(rel).replace("\\", "/").split("/") if p not in ("", "."))


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = FIXED_MTIME
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.type = tarfile.REGTYPE
    return ti


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> int:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        tar.addfile(_tarinfo(name, size), fh)
    return size


# ------------------------------------------------------------------------------------------ checks


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_member_name(name: str, limits: Limits = Limits()) -> str:
    """The member's normalised relative path; SecurityError when it could land outside the folder."""
    shown = name if len(name) <= 80 else name[:77] + "..."
    if "\x00" in name:
        raise SecurityError(f"bundle member {shown!r} has a NUL byte in its name", _HINT)
    if len(name) > limits.max_name_length:
        raise SecurityError(f"bundle member name of {len(name)} characters is too long", _HINT)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise SecurityError(f"bundle member {shown!r} has an absolute path", _HINT)
    if "\\" in name:
        raise SecurityError(f"bundle member {shown!r} has a backslash in its path", _HINT)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SecurityError(f"bundle member {shown!r} escapes the extraction folder with '..'", _HINT)
    long = next((p for p in parts if len(p.encode("utf-8", "surrogateescape")) > 255), None)
    if long is not None:  # no file system takes a longer name; fail here, not half-way through extracting
        raise InputError(f"bundle member {shown!r} has a path component of {len(long)} characters (the limit is 255)", _HINT)
    return "/".join(parts)


def _kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return f"a symbolic link (to {m.linkname!r})"
    if m.islnk():
        return f"a hard link (to {m.linkname!r})"
    if m.ischr() or m.isblk():
        return "a device file"
    if m.isfifo():
        return "a FIFO"
    if m.issparse():
        return "a sparse file"
    return f"an entry of unsupported type {m.type!r}"


def check_members(tar: tarfile.TarFile, dest: Path, limits: Limits = Limits()) -> list[tuple[tarfile.TarInfo, str]]:
    """Every member with its normalised name, or SecurityError naming the first unsafe one."""
    out: list[tuple[tarfile.TarInfo, str]] = []
    seen: set[str] = set()
    total = 0
    data_filter = getattr(tarfile, "data_filter", None)
    for m in tar:
        if len(out) >= limits.max_members:
            raise SecurityError(f"bundle has more than {limits.max_members} members", _HINT)
        rel = check_member_name(m.name, limits)
        if not (m.isreg() or m.isdir()) or m.issparse():
            raise SecurityError(f"bundle member {m.name!r} is {_kind(m)}; bundles hold only regular files", _HINT)
        if m.isreg():
            if m.size < 0 or m.size > limits.max_member_bytes:
                raise SecurityError(f"bundle member {m.name!r} is {m.size} bytes, over the {limits.max_member_bytes} byte limit", _HINT)
            total += m.size
            if total > limits.max_total_bytes:
                raise SecurityError(f"bundle unpacks to more than {limits.max_total_bytes} bytes", _HINT)
        if not rel:
            continue  # the archive's own "." entry
        if rel in seen:
            raise SecurityError(f"bundle member {m.name!r} appears twice", _HINT)
        seen.add(rel)
        if data_filter is not None:
            try:
                data_filter(m, str(dest))
            except tarfile.FilterError as exc:
                raise SecurityError(f"bundle member {m.name!r} is unsafe: {exc}", _HINT) from None
        out.append((m, rel))
    return out


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, limits: Limits = Limits()) -> list[str]:
    """Extract ``archive`` into the empty folder ``dest`` after checking every member; the file names written."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty", "extract into a new or empty folder")
    root = dest.resolve()
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{archive} is not a readable bundle ({type(exc).__name__}: {str(exc)[:80]})", _HINT) from None
    written: list[str] = []
    try:
        with tar:
            try:
                members = check_members(tar, root, limits)
            except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
                raise InputError(f"{archive} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:80]})", _HINT) from None
            for m, rel in members:
                target = root.joinpath(*rel.split("/"))
                try:
                    if m.isdir():
                        _mkdirs(root, target)
                        continue
                    _mkdirs(root, target.parent)
                    _write_member(tar, m, target)
                except OSError as exc:  # disk full, a path too long for this file system, ...
                    if exc.errno is None:  # gzip.BadGzipFile and friends: a corrupt archive (handled below)
                        raise
                    raise OutputError(f"cannot extract {rel[:80]!r} from {archive.name}: {exc.strerror or exc}",
                                      "free some space or extract into a folder with a shorter path") from None
                written.append(rel)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{archive} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:80]})", _HINT) from None
    return written


def _inside(root: Path, p: Path) -> bool:
    return p == root or root in p.parents


def _mkdirs(root: Path, target: Path) -> None:
    """Create ``target`` and its parents under ``root``, refusing to pass through anything but real folders."""
    rel = target.relative_to(root)
    cur = root
    for part in rel.parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise SecurityError(f"bundle member path {rel.as_posix()!r} passes through a non-folder", _HINT)
    if not _inside(root, target.resolve()):
        raise SecurityError(f"bundle member {rel.as_posix()!r} resolves outside the extraction folder", _HINT)


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
    src = tar.extractfile(m)
    if src is None:
        raise SecurityError(f"bundle member {m.name!r} has no data", _HINT)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, 0o644)
    remaining = m.size
    with os.fdopen(fd, "wb") as out, src:
        while remaining > 0:
            block = src.read(min(1 << 20, remaining))
            if not block:
                raise InputError(f"bundle member {m.name!r} is truncated", _HINT)
            out.write(block)
            remaining -= len(block)


# ------------------------------------------------------------------------------------------ open


def is_bundle(path: str | os.PathLike) -> bool:
    """A file that looks like a bundle: a tar suffix, or tar content under an unknown suffix."""
    p = Path(path)
    if not p.is_file():
        return False
    name = p.name.lower()
    if name.endswith(BUNDLE_SUFFIXES):
        return True
    if p.suffix.lower() in model_suffixes() + (".json", ".npz", ".py"):
        return False
    try:
        return tarfile.is_tarfile(p)
    except OSError:
        return False


def open_bundle(path: str | os.PathLike, dest: str | os.PathLike | None = None,
                limits: Limits = Limits()) -> tuple[Path, Manifest]:
    """Extract the bundle safely (into ``dest`` or a new temporary folder) and check it against its manifest.

    The caller owns the returned folder (see :func:`resolve_target` for one cleaned up at exit).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist", "pass a file made by edgeport bundle")
    made = dest is None
    root = Path(tempfile.mkdtemp(prefix="edgeport-bundle-")) if dest is None else Path(dest)
    try:
        written = safe_extract(p, root, limits)
        if MANIFEST_NAME not in written:
            raise ManifestError(f"{p.name} has no {MANIFEST_NAME} at its top level", _HINT)
        try:
            m = Manifest.load(root)
        except ManifestError as exc:
            raise ManifestError(f"{p.name}: {exc.message}", _HINT) from None
        _check_contents(p.name, m, written)
        return root, m
    except BaseException:
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _check_contents(label: str, m: Manifest, written: list[str]) -> None:
    """Every artifact and the reference present with a recorded, matching sha256; no unlisted files."""
    allowed_files = {MANIFEST_NAME}
    allowed_dirs: list[str] = []
    for a in m.artifacts:
        if a.format == "pytorch":
            continue
        if not a.sha256:
            raise ManifestError(f"{label}: artifact {a.name!r} has no sha256 in the manifest", _HINT)
        allowed_files.add(_norm(a.path))
        allowed_files.update(_norm(rel) for rel in a.data_files)
        allowed_dirs.append(_norm(a.path).rstrip("/") + "/")
    if m.reference.get("path"):
        if not m.reference.get("sha256"):
            raise ManifestError(f"{label}: the reference data has no sha256 in the manifest", _HINT)
        allowed_files.add(_norm(m.reference["path"]))
        sizes = m.reference.get("sizes") or {}
        if sizes.get("path"):
            rel = _norm(sizes["path"])
            if rel not in written or sha256_path(Path(m.root) / rel) != sizes.get("sha256"):
                raise ManifestError(f"{label}: {rel} is missing or does not match its sha256 in the manifest", _HINT)
            allowed_files.add(rel)
    for rel in written:
        if rel not in allowed_files and not any(rel.startswith(d) for d in allowed_dirs):
            raise SecurityError(f"{label} holds {rel!r}, which its manifest does not list", _HINT)
    problems = m.verify()
    if problems:
        raise ManifestError(f"{label} is damaged or was modified: {problems[0]}", _HINT)


_OPENED: dict[tuple[str, int, int], Path] = {}


def _cleanup(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def resolve_target(path: str | os.PathLike) -> Path:
    """What ``validate``/``bench`` should work on: a bundle's extracted folder, else ``path`` unchanged.

    A bundle is extracted once per process (safely, sha256-checked) to a temporary folder removed at exit.
    """
    p = Path(path)
    if not is_bundle(p):
        return p
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key in _OPENED and _OPENED[key].is_dir():
        return _OPENED[key]
    root, _ = open_bundle(p)
    atexit.register(_cleanup, str(root))
    _OPENED[key] = root
    return root


@contextlib.contextmanager
def opened_bundle(path: str | os.PathLike) -> Iterator[tuple[Path, Manifest]]:
    """``with opened_bundle(f) as (root, manifest): ...``; the folder is removed afterwards."""
    root, m = open_bundle(path)
    try:
        yield root, m
    finally:
        shutil.rmtree(root, ignore_errors=True)


def extract_to(path: str | os.PathLike, dest: str | os.PathLike) -> tuple[Path, Manifest]:
    """Extract a bundle into the new (or empty) folder ``dest``; it appears only once complete and checked."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists and is not an empty folder", "extract into a new or empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        open_bundle(path, staging)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest, Manifest.load(dest)
