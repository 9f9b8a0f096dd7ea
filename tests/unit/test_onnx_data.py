"""ONNX external data: which files a model needs, where they may be, copies and single-file merges."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeport import onnx_data  # noqa: E402
from edgeport.errors import ConversionError, ModelError, SecurityError  # noqa: E402


def _model(folder: Path, location: str = "weights.bin", name: str = "model.onnx") -> Path:
    """x @ w + b with live random weights, both initializers in one external file."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal((8,)).astype(np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=[w, b]),
                              opset_imports=[helper.make_opsetid("", 18)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=0)
    return path


def _run(path: Path) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _relocate(path: Path, location: str) -> None:
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save_model(proto, str(path))


def test_external_files_lists_each_file_once(tmp_path):
    path = _model(tmp_path / "m", "data/weights.bin")
    assert onnx_data.external_files(path) == [(tmp_path / "m" / "data" / "weights.bin").resolve()]
    inline = tmp_path / "inline.onnx"
    onnx.save_model(onnx.load(str(path)), str(inline))
    assert onnx_data.external_files(inline) == []


@pytest.mark.parametrize("location", ["../x.bin", "/tmp/x.bin", "data/../../x.bin"])
def test_locations_outside_the_folder_are_refused(tmp_path, location):
    path = _model(tmp_path / "m")
    (tmp_path / "x.bin").write_bytes((tmp_path / "m" / "weights.bin").read_bytes())
    _relocate(path, location)
    with pytest.raises(SecurityError, match="outside the model folder"):
        onnx_data.external_files(path)
    with pytest.raises(SecurityError):
        onnx_data.copy_with_data(path, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_a_link_leading_out_is_refused(tmp_path):
    path = _model(tmp_path / "m")
    outside = tmp_path / "elsewhere.bin"
    os.replace(tmp_path / "m" / "weights.bin", outside)
    (tmp_path / "m" / "weights.bin").symlink_to(outside)
    with pytest.raises(SecurityError, match="outside the model folder"):
        onnx_data.external_files(path)


def test_missing_and_truncated_data_files(tmp_path):
    path = _model(tmp_path / "m")
    data = tmp_path / "m" / "weights.bin"
    full = data.read_bytes()
    data.write_bytes(full[:100])
    with pytest.raises(ModelError, match="truncated"):
        onnx_data.external_files(path)
    data.unlink()
    with pytest.raises(ModelError, match="missing"):
        onnx_data.external_files(path)


def test_copy_with_data_keeps_or_moves_locations(tmp_path):
    src = _model(tmp_path / "m")
    want = _run(src)
    kept = onnx_data.copy_with_data(src, tmp_path / "a")
    assert [p.relative_to(tmp_path / "a").as_posix() for p in kept] == ["model.onnx", "weights.bin"]
    moved = onnx_data.copy_with_data(src, tmp_path / "b", "net.onnx", data_dir="net.data")
    assert [p.relative_to(tmp_path / "b").as_posix() for p in moved] == ["net.onnx", "net.data/weights.bin"]
    assert onnx_data.external_files(moved[0]) == [moved[1].resolve()]
    for path in (kept[0], moved[0]):
        np.testing.assert_array_equal(_run(path), want)
    assert src.read_bytes() != moved[0].read_bytes() and onnx_data.external_files(src)  # the source is untouched


def test_single_file_merges_and_refuses_over_the_limit(tmp_path, monkeypatch):
    src = _model(tmp_path / "m")
    one = onnx_data.single_file(src, tmp_path / "one.onnx", converter="onnx2tf", instead="--converter litert-torch")
    assert onnx_data.external_files(one) == [] and one.stat().st_size > (16 * 8 + 8) * 4
    np.testing.assert_array_equal(_run(one), _run(src))
    size = onnx_data.data_size(src)
    assert (16 * 8 + 8) * 4 < size < (16 * 8 + 8) * 4 + 1000
    monkeypatch.setattr(onnx_data, "PROTOBUF_LIMIT", size - 1)
    with pytest.raises(ConversionError) as info:
        onnx_data.single_file(src, tmp_path / "two.onnx", converter="onnx2tf", instead="--converter litert-torch")
    assert "protobuf limits one file to" in info.value.message and "onnx2tf" in info.value.message
    assert "litert-torch" in info.value.hint
    assert not (tmp_path / "two.onnx").exists()


def test_digest_covers_the_data_files(tmp_path):
    path = _model(tmp_path / "m")
    before = onnx_data.digest_with_data(path)
    data = tmp_path / "m" / "weights.bin"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert onnx_data.digest_with_data(path) != before
