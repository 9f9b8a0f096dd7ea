"""Bundles: round trip, determinism, and refusal of every unsafe archive with a one-line exit 2.

Malicious archives are built with tarfile by hand: a ``../`` member, an absolute path, a symlink, a
hard link, a device file, a FIFO, a tampered file, an unlisted file. Each is refused before anything
is written, and nothing appears outside the extraction folder. No model runtime is needed here.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest

from edgeport.bundle import Limits, is_bundle, open_bundle, pack, resolve_target, safe_extract
from edgeport.errors import EXIT_BAD_INPUT, EdgeportError, InputError, ManifestError, SecurityError
from edgeport.fsutil import sha256_path
from edgeport.manifest import Artifact, Manifest
from edgeport.refdata import save_reference
from edgeport.spec import IOSpec, TensorSpec
from tests.conftest import run_cli

IO = IOSpec([TensorSpec("x", (1, 4), "float32", ref_name="x")], [TensorSpec("y", (1, 4), "float32", ref_name="y")])


@pytest.fixture
def out(tmp_path) -> Path:
    """A convert-like output folder with a fake .onnx, .tflite and .pt, and a real reference.npz."""
    d = tmp_path / "out"
    d.mkdir()
    arts = [Artifact(name="pytorch", format="pytorch", path="", io=IO)]
    for name, fmt, rel in (("torchscript", "torchscript", "model.pt"), ("onnx", "onnx", "model.onnx"),
                           ("tflite", "tflite", "model.tflite"), ("tflite-fp16", "tflite", "model_fp16.tflite")):
        (d / rel).write_bytes(f"{name} bytes".encode())
        arts.append(Artifact(name=name, format=fmt, path=rel, sha256=sha256_path(d / rel), size_bytes=(d / rel).stat().st_size,
                             io=IO, parent="pytorch"))
    save_reference(d / "reference.npz", [{"x": np.ones((1, 4), np.float32)}], [{"y": np.full((1, 4), 2, np.float32)}])
    Manifest(root=d, source="fake", io=IO, artifacts=arts,
             reference={"path": "reference.npz", "sha256": sha256_path(d / "reference.npz"), "runtime": "torch_eager", "samples": 1}).save()
    return d


def test_pack_keeps_only_deployable_artifacts_and_round_trips(out, tmp_path):
    res = pack(out, tmp_path / "m.bundle.tar.gz")
    assert sorted(res.artifacts) == ["onnx", "tflite", "tflite-fp16"]
    with tarfile.open(res.path) as tar:
        names = tar.getnames()
        assert names[0] == "manifest.json"
        assert sorted(names) == ["manifest.json", "model.onnx", "model.tflite", "model_fp16.tflite", "reference.npz"]
        assert all(m.isreg() and m.mode == 0o644 and m.uid == 0 for m in tar.getmembers())
    root, m = open_bundle(res.path)
    try:
        assert [a.name for a in m.artifacts] == ["onnx", "tflite", "tflite-fp16"]
        assert m.extra["bundle"]["schema"] == "edgeport.bundle/1"
        assert (root / "model.tflite").read_bytes() == b"tflite bytes"
        assert m.verify() == []
    finally:
        import shutil

        shutil.rmtree(root)


def test_pack_is_deterministic_and_selectable(out, tmp_path):
    a = pack(out, tmp_path / "a.tar.gz").path.read_bytes()
    b = pack(out, tmp_path / "b.tar.gz").path.read_bytes()
    assert a == b
    only = pack(out, tmp_path / "c.tar.gz", ["tflite"])
    assert only.artifacts == ["tflite"]
    with pytest.raises(EdgeportError, match="PyTorch model itself"):
        pack(out, tmp_path / "d.tar.gz", ["pytorch"])


def test_pack_refuses_a_modified_artifact(out, tmp_path):
    (out / "model.onnx").write_bytes(b"changed after convert")
    with pytest.raises(ManifestError, match="sha256"):
        pack(out, tmp_path / "m.tar.gz")


def test_resolve_target_extracts_once_and_passes_other_paths(out, tmp_path):
    bundle = pack(out, tmp_path / "m.bundle.tar.gz").path
    assert is_bundle(bundle) and not is_bundle(out) and not is_bundle(out / "model.onnx")
    first = resolve_target(bundle)
    assert (first / "manifest.json").is_file() and resolve_target(bundle) == first
    assert resolve_target(out) == out


# ------------------------------------------------------------------------------------------ malicious archives


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    return ti, None


def _valid_members(out: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The members of a genuine bundle of ``out`` (so only the injected member is wrong)."""
    with tarfile.open(pack(out, out.parent / "genuine.tar.gz").path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


ESCAPE = f"edgeport-escape-{uuid.uuid4().hex[:8]}"
CASES = {
    "dotdot": (lambda: _file(f"../../{ESCAPE}"), "escapes the extraction folder"),
    "dotdot-inner": (lambda: _file(f"sub/../../{ESCAPE}"), "escapes the extraction folder"),
    "absolute": (lambda: _file(f"/tmp/{ESCAPE}"), "absolute path"),
    "symlink": (lambda: _special("link", tarfile.SYMTYPE, f"/tmp/{ESCAPE}"), "symbolic link"),
    "hardlink": (lambda: _special("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    "chardev": (lambda: _special("dev", tarfile.CHRTYPE), "device file"),
    "blockdev": (lambda: _special("blk", tarfile.BLKTYPE), "device file"),
    "fifo": (lambda: _special("pipe", tarfile.FIFOTYPE), "FIFO"),
    "backslash": (lambda: _file(f"..\\..\\{ESCAPE}"), "backslash"),
}


def _nothing_escaped(tmp_path: Path) -> None:
    for where in (Path("/tmp"), tmp_path, tmp_path.parent, Path.cwd()):
        assert not (where / ESCAPE).exists(), f"{where / ESCAPE} was written"


@pytest.mark.parametrize("case", sorted(CASES))
def test_unsafe_member_is_refused_before_anything_is_written(case, out, tmp_path):
    member, fragment = CASES[case]
    evil = _tar(tmp_path / f"{case}.tar.gz", _valid_members(out) + [member()])
    dest = tmp_path / "dest"
    with pytest.raises(SecurityError, match=fragment) as info:
        safe_extract(evil, dest)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert list(dest.iterdir()) == []  # checked first, nothing extracted
    _nothing_escaped(tmp_path)


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "hardlink", "chardev"])
def test_cli_refuses_unsafe_bundles_with_a_one_line_exit_2(case, out, tmp_path):
    member, fragment = CASES[case]
    evil = _tar(tmp_path / f"{case}.bundle.tar.gz", _valid_members(out) + [member()])
    command = "bench" if case == "dotdot" else "bundle"
    r = run_cli(command, str(evil), cwd=tmp_path)
    assert r.code == 2, r.output
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr
    assert "Traceback" not in r.output
    _nothing_escaped(tmp_path)


def test_tampered_unlisted_duplicate_and_oversize_members_are_refused(out, tmp_path):
    good = _valid_members(out)
    tampered = [(m, b"evil bytes" if m.name == "model.onnx" else d) for m, d in good]
    with pytest.raises(ManifestError, match="sha256"):
        open_bundle(_tar(tmp_path / "t.tar.gz", tampered))
    with pytest.raises(SecurityError, match="does not list"):
        open_bundle(_tar(tmp_path / "u.tar.gz", good + [_file("extra.py", b"import os")]))
    with pytest.raises(SecurityError, match="twice"):
        open_bundle(_tar(tmp_path / "d.tar.gz", good + [_file("model.onnx", b"again")]))
    with pytest.raises(SecurityError, match="byte limit"):
        safe_extract(_tar(tmp_path / "o.tar.gz", good), tmp_path / "o", Limits(max_member_bytes=100))
    with pytest.raises(SecurityError, match="more than 2 members"):
        safe_extract(_tar(tmp_path / "n.tar.gz", good), tmp_path / "n", Limits(max_members=2))


def test_manifest_pointing_outside_is_refused(out, tmp_path):
    good = _valid_members(out)
    doc = json.loads(next(d for m, d in good if m.name == "manifest.json"))
    doc["artifacts"][0]["path"] = f"../{ESCAPE}"
    data = json.dumps(doc).encode()
    evil = [(m, data if m.name == "manifest.json" else d) for m, d in good]
    with pytest.raises(ManifestError, match="outside"):
        open_bundle(_tar(tmp_path / "m.tar.gz", evil))
    _nothing_escaped(tmp_path)


def test_truncated_and_non_bundles_are_input_errors(out, tmp_path):
    data = pack(out, tmp_path / "ok.tar.gz").path.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt|not a readable"):
        open_bundle(cut)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(InputError):
        open_bundle(junk)
