import json

import pytest

from edgeport.errors import ManifestError
from edgeport.fsutil import atomic_write_bytes, sha256_path
from edgeport.manifest import MANIFEST_NAME, Artifact, Manifest
from edgeport.spec import IOSpec, TensorSpec


def _manifest(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx-bytes")
    io = IOSpec([TensorSpec("x", ("N", 3), layout=None, ref_name="x")], [TensorSpec("y", ("N", 2), ref_name="y")])
    m = Manifest(root=tmp_path, source="sample:x", io=io, dims={"N": 2})
    m.put(Artifact(name="onnx", format="onnx", path="model.onnx", sha256=sha256_path(tmp_path / "model.onnx"), io=io))
    return m


def test_roundtrip(tmp_path):
    m = _manifest(tmp_path)
    m.save()
    back = Manifest.load(tmp_path)
    assert back.to_json()["artifacts"] == m.to_json()["artifacts"]
    assert back.io.inputs[0].shape == ("N", 3)
    assert back.verify() == []


def test_verify_detects_modified_and_missing(tmp_path):
    m = _manifest(tmp_path)
    m.save()
    (tmp_path / "model.onnx").write_bytes(b"tampered")
    assert any("sha256" in p for p in Manifest.load(tmp_path).verify())
    (tmp_path / "model.onnx").unlink()
    assert any("missing" in p for p in Manifest.load(tmp_path).verify())


@pytest.mark.parametrize("content, fragment", [
    (b"", "not valid JSON"),
    (b"{not json", "not valid JSON"),
    (b"[]", "not an edgeport manifest"),
    (json.dumps({"schema": "other/1"}).encode(), "not an edgeport manifest"),
])
def test_bad_manifests(tmp_path, content, fragment):
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(ManifestError, match=fragment):
        Manifest.load(tmp_path)


def test_missing_manifest_and_folder(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json"):
        Manifest.load(tmp_path)
    with pytest.raises(ManifestError, match="does not exist"):
        Manifest.load(tmp_path / "nope")


def test_paths_escaping_the_folder_are_refused(tmp_path):
    m = _manifest(tmp_path)
    data = m.to_json()
    data["artifacts"][0]["path"] = "../../etc/passwd"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="outside"):
        Manifest.load(tmp_path)


def test_atomic_write_leaves_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
