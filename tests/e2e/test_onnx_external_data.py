"""An ONNX model with external data files converts and validates; one pointing outside its folder is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


def _export(folder, location="weights.bin"):
    """A small MLP with live random weights, exported with its weights in one external data file."""
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.GELU(), torch.nn.LayerNorm(32), torch.nn.Linear(32, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.7, 0.7)
    folder.mkdir(parents=True)
    tmp = folder / "plain.onnx"
    torch.onnx.export(net.eval(), (torch.randn(2, 12),), str(tmp), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["scores"])
    path = folder / "model.onnx"
    onnx.save_model(onnx.load(str(tmp)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    tmp.unlink()
    return path


def test_external_data_converts_and_validates(cli, tmp_path):
    src = _export(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in src.parent.iterdir()}
    assert set(before) == {"model.onnx", "weights.bin"} and len(before["weights.bin"]) > 12 * 32 * 4
    out = tmp_path / "out"
    r = cli("convert", str(src), "--to", "onnx", "-o", str(out))
    assert r.code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    art = next(a for a in m["artifacts"] if a["name"] == "onnx")
    assert list(art["data_files"]) == ["model.onnx.data/weights.bin"]
    assert (out / "model.onnx.data" / "weights.bin").read_bytes() == before["weights.bin"]
    assert art["size_bytes"] > len(before["weights.bin"])
    assert {p.name: p.read_bytes() for p in src.parent.iterdir()} == before  # the user's files are untouched
    report = tmp_path / "r.json"
    r = cli("validate", str(out), "--json", str(report))
    assert r.code == 0, r.output
    data = json.loads(report.read_text())
    res = next(x for x in data["results"] if x["runtime"] == "onnxruntime")
    assert res["passed"] and [o["name"] for o in res["outputs"]] == ["scores"]
    assert res["outputs"][0]["metrics"]["max_abs"] < 1e-6
    # the reference really used the weights in the data file
    with np.load(out / "reference.npz") as ref:
        assert float(np.abs(ref["output:0:scores"]).max()) > 1e-2
    # a data file changed after convert is caught
    (out / "model.onnx.data" / "weights.bin").write_bytes(before["weights.bin"][::-1])
    r = cli("validate", str(out))
    assert r.code != 0 and "weights.bin" in r.output


def test_external_data_outside_the_folder_is_refused(cli, tmp_path):
    src = _export(tmp_path / "model")
    (tmp_path / "x.bin").write_bytes((src.parent / "weights.bin").read_bytes())
    proto = onnx.load(str(src), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../x.bin"
    onnx.save_model(proto, str(src))
    out = tmp_path / "out"
    r = cli("convert", str(src), "--to", "onnx", "-o", str(out))
    assert r.code == 2, r.output
    assert "outside the model folder" in r.output and "Traceback" not in r.output
    assert not out.exists()
