"""ONNX models whose weights live in external data files.

Exporters write the weights of large models next to the graph (``onnx.save_model(...,
save_as_external_data=True)``): each tensor names a ``location`` relative to the model's folder.
edgeport follows a location only when it stays inside that folder (no absolute paths, no ``..``, no
link that leads out) and the file is there and long enough; anything else is refused before a byte is
read or written.

- :func:`external_files` lists and checks the data files of a model (``[]`` for a self-contained one).
- :func:`copy_with_data` copies a model and its data files into a folder, keeping the locations.
- :func:`single_file` writes a self-contained copy for a converter that reads one file only; protobuf
  caps one serialized file at 2 GB, so a larger model fails with a message naming the limit and what
  can take it instead (:func:`fits_one_file` is that check alone, for a converter that loads the model
  into memory and writes its own copy).

Runs in any process that has ``onnx`` (it reads the graph without its weights).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeport.errors import ConversionError, InputError, ModelError, SecurityError
from edgeport.fsutil import human_size, sha256_file

PROTOBUF_LIMIT = 2 * 1024**3 - 1  # bytes: protobuf refuses to serialize one message of 2 GB or more
DATA_DIR = "model.onnx.data"  # where an output folder keeps the external data of its model.onnx


def digest_with_data(model_path: str | Path) -> str:
    """sha256 of the model file, folded with its data files' (the plain file sha256 without any);
    a file ONNX cannot parse gets its plain sha256 (the step that reads it says what is wrong)."""
    import hashlib

    path = Path(model_path)
    digest = sha256_file(path)
    try:
        files = external_files(path)
    except (InputError, ImportError):
        return digest
    if not files:
        return digest
    root = path.resolve().parent
    parts = [digest] + [f"{f.relative_to(root).as_posix()}:{sha256_file(f)}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _load_graph(model_path: Path):
    import onnx

    try:
        return onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise several types
        raise InputError(f"{model_path.name} is not a readable ONNX model: {type(exc).__name__}: {str(exc)[:120]}",
                         "re-export it with torch.onnx.export") from None


def _external_tensors(proto) -> list:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(proto) if uses_external_data(t)]


def _entry(tensor, key: str) -> str:
    return next((e.value for e in tensor.external_data if e.key == key), "")


def external_files(model_path: str | Path, proto=None) -> list[Path]:
    """The external data files of the ONNX model at ``model_path``, resolved, each listed once.

    Raises SecurityError when a location leaves the model's folder, ModelError when a file is missing
    or shorter than the tensors it should hold."""
    path = Path(model_path)
    proto = proto if proto is not None else _load_graph(path)
    root = path.resolve().parent
    files: dict[Path, int] = {}
    for t in _external_tensors(proto):
        location = _entry(t, "location")
        target = (root / location).resolve()
        if not location or Path(location).is_absolute() or (target != root and root not in target.parents):
            raise SecurityError(f"ONNX tensor {t.name!r} points at external data outside the model folder ({location!r})",
                                "keep external data files next to the model, or save it without external data")
        if not target.is_file():
            raise ModelError(f"ONNX external data file {location!r} for {t.name!r} is missing", "copy it next to the model")
        try:
            end = int(_entry(t, "offset") or 0) + int(_entry(t, "length") or 0)
        except ValueError:
            raise ModelError(f"ONNX tensor {t.name!r} has a malformed external data offset or length", "re-save the model") from None
        files[target] = max(files.get(target, 0), end)
    for target, end in files.items():
        if target.stat().st_size < end:
            raise ModelError(f"ONNX external data file {target.name!r} is truncated ({target.stat().st_size} bytes, "
                             f"its tensors need {end})", "copy the complete file next to the model")
    return sorted(files)


def copy_with_data(src: str | Path, dst_dir: str | Path, name: str = "model.onnx", data_dir: str | None = None) -> list[Path]:
    """Copy the model ``src`` to ``dst_dir/name`` and its data files beside it.

    The data files keep their locations, or with ``data_dir`` go under ``dst_dir/data_dir/`` (the
    copy's locations are rewritten to match, so they cannot collide with other files of ``dst_dir``).
    Returns the written files, the model first. The locations are checked before anything is copied."""
    import onnx

    src, dst_dir = Path(src), Path(dst_dir)
    proto = _load_graph(src)
    root = src.resolve().parent
    data = external_files(src, proto)
    prefix = Path(data_dir) if data_dir else Path()
    rels = {f: prefix / f.relative_to(root) for f in data}
    if Path(name) in rels.values():
        raise ModelError(f"{src.name}'s external data file is named {name!r}, the name of the model copy",
                         "rename the data file (onnx.save_model(..., location='weights.bin'))")
    dst_dir.mkdir(parents=True, exist_ok=True)
    written = [dst_dir / name]
    if data_dir and data:
        for t in _external_tensors(proto):
            entry = next(e for e in t.external_data if e.key == "location")
            entry.value = rels[(root / entry.value).resolve()].as_posix()
        onnx.save_model(proto, str(written[0]))
    else:
        shutil.copyfile(src, written[0])
    for f, rel in rels.items():
        dst = dst_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)
        written.append(dst)
    return written


def data_size(model_path: str | Path) -> int:
    """Bytes the model takes as one file: its graph plus every external tensor."""
    path = Path(model_path)
    proto = _load_graph(path)
    total = proto.ByteSize()
    for t in _external_tensors(proto):
        length = _entry(t, "length")
        if length:
            total += int(length)
        else:  # no length: the tensor runs to the end of its file
            total += (path.resolve().parent / _entry(t, "location")).stat().st_size - int(_entry(t, "offset") or 0)
    return total


def fits_one_file(src: str | Path, *, converter: str, instead: str, limit: int | None = None) -> int:
    """The size of ``src`` as one file (:func:`data_size`); ConversionError naming the protobuf limit and
    ``instead`` (what can take the model) when ``converter``, which reads one file, cannot."""
    src = Path(src)
    limit = PROTOBUF_LIMIT if limit is None else limit
    size = data_size(src)
    if size >= limit:
        raise ConversionError(
            f"{src.name} with its external data is {human_size(size)}; {converter} reads one ONNX file and "
            f"protobuf limits one file to {human_size(limit)}",
            f"use {instead}")
    return size


def single_file(src: str | Path, dst: str | Path, *, converter: str, instead: str, limit: int | None = None) -> Path:
    """Write ``src`` with every external tensor loaded into the one file ``dst`` (a plain copy when it
    has none), for ``converter``, which reads a single file; over the protobuf limit, the error of
    :func:`fits_one_file`."""
    import onnx

    src, dst = Path(src), Path(dst)
    if not external_files(src):
        shutil.copyfile(src, dst)
        return dst
    fits_one_file(src, converter=converter, instead=instead, limit=limit)
    model = onnx.load(str(src), load_external_data=True)
    onnx.save_model(model, str(dst), save_as_external_data=False)
    return dst
