"""Issue 2: export every sample model to TorchScript and ONNX; outputs match eager within 1e-5."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.fsutil import sha256_path
from edgeport.manifest import Manifest
from edgeport.refdata import load_reference

SAMPLES = ["tiny_cnn", "mobile_cnn", "transformer", "gru", "multi_io", "dynamic"]
TOL = 1e-5


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tests.conftest import run_cli

    out = {}
    for name in SAMPLES:
        d = tmp_path_factory.mktemp(name)
        r = run_cli("convert", f"sample:{name}", "--to", "torchscript,onnx", "-o", str(d))
        assert r.code == 0, r.output
        out[name] = d
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_manifest_hashes_match_files(exported, name):
    m = Manifest.load(exported[name])
    assert {a.format for a in m.artifacts} == {"pytorch", "torchscript", "onnx"}
    for a in m.artifacts:
        if a.format == "pytorch":
            continue
        assert a.sha256 == sha256_path(exported[name] / a.path)
        assert a.size_bytes > 0 and a.tools.get("torch", "").startswith("2.13")
    assert m.verify() == []
    raw = json.loads((exported[name] / "manifest.json").read_text())
    assert raw["model"]["io"]["inputs"] and raw["model"]["io"]["outputs"]
    assert sha256_path(exported[name] / "reference.npz") == raw["reference"]["sha256"]


@pytest.mark.parametrize("name", SAMPLES)
def test_onnx_and_torchscript_match_eager(exported, name):
    import onnx
    import onnxruntime as ort
    import torch

    m = Manifest.load(exported[name])
    onnx_art, ts_art = m.artifact("onnx"), m.artifact("torchscript")
    onnx.checker.check_model(str(exported[name] / onnx_art.path), full_check=True)
    sess = ort.InferenceSession(str(exported[name] / onnx_art.path), providers=["CPUExecutionProvider"])
    ts = torch.jit.load(str(exported[name] / ts_art.path))
    inputs, outputs = load_reference(exported[name] / "reference.npz")
    assert len(inputs) == 3
    for feed, ref in zip(inputs, outputs):
        ort_out = sess.run(None, {s.name: feed[s.ref_name] for s in onnx_art.io.inputs})
        for spec, got in zip(onnx_art.io.outputs, ort_out):
            assert _rel(got, ref[spec.ref_name]) < TOL, (name, spec.name)
        with torch.no_grad():
            ts_out = ts(*[torch.from_numpy(feed[s.name]) for s in m.io.inputs])
        ts_out = ts_out if isinstance(ts_out, (tuple, list)) else (ts_out,)
        for spec, got in zip(m.io.outputs, ts_out):
            assert _rel(got.numpy(), ref[spec.name]) < TOL, (name, spec.name)


def test_dynamic_axes_accept_other_sizes(exported):
    import onnxruntime as ort
    import torch

    import sample_models

    d = exported["dynamic"]
    m = Manifest.load(d)
    assert m.io.inputs[0].shape == ("B", "seq", 16)
    assert m.io.outputs[0].shape[0] == "B"
    sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    shape = [str(x) for x in sess.get_inputs()[0].shape]
    assert shape[:2] == ["B", "seq"], shape
    model, _ = sample_models.build("dynamic")
    ts = torch.jit.load(str(d / "model.pt"))
    for b, s in [(3, 7), (1, 5), (5, 20)]:
        x = np.random.default_rng(b * 100 + s).standard_normal((b, s, 16)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
            ts_out = ts(torch.from_numpy(x)).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert got.shape == ref.shape == (b, 8)
        assert _rel(got, ref) < TOL and _rel(ts_out, ref) < TOL


def test_second_identical_convert_reuses_everything(exported, cli, tmp_path):
    d = exported["tiny_cnn"]
    rewritten = ("manifest.json", "report.html")  # written anew by every run (they carry the run's time)
    before = {p.name: sha256_path(p) for p in d.iterdir() if p.is_file() and p.name not in rewritten}
    r = cli("convert", "sample:tiny_cnn", "--to", "torchscript,onnx", "-o", str(d), "--json", str(tmp_path / "r.json"))
    assert r.code == 0, r.output
    report = json.loads((tmp_path / "r.json").read_text())
    kept = [a for a in report["attempts"] if a["status"] == "kept"]
    assert kept and all(a["reason"] == "reused from cache" for a in kept)
    assert "reused" in r.stdout
    after = {p.name: sha256_path(p) for p in d.iterdir() if p.is_file() and p.name not in rewritten}
    assert before == after
    assert Manifest.load(d).verify() == []


def test_legacy_exporter_and_opset(cli, tmp_path):
    import onnx

    r = cli("convert", "sample:tiny_cnn", "--to", "onnx", "--legacy-exporter", "--opset", "13", "-o", str(tmp_path / "o"))
    assert r.code == 0, r.output
    m = Manifest.load(tmp_path / "o")
    a = m.artifact("onnx")
    assert a.options["exporter"] == "legacy"
    proto = onnx.load(str(tmp_path / "o" / a.path))
    assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 13


def test_relative_output_folder(cli, tmp_path):
    """Workers run in their own folder: a relative -o must still land where the user meant."""
    r = cli("convert", "sample:gru", "--to", "onnx", "-o", "rel-out", cwd=tmp_path)
    assert r.code == 0, r.output
    assert Manifest.load(tmp_path / "rel-out").verify() == []
