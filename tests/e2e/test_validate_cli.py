"""``edgeport validate`` end to end: exit codes, reports, crash isolation, localization, no-torch fallback.

The fast tests build their own output folder (tiny_cnn: the model reference, TorchScript and a
TorchScript-exporter ONNX file, reference.npz, manifest.json) in a couple of seconds. The slow test
runs the real ``edgeport convert`` to every format and checks the five-runtime matrix.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from edgeport.testing import edgeport_parity  # noqa: F401 - the fixture, as a conftest would import it

REPO = Path(__file__).resolve().parents[2]
PERTURBED_NODE = "/features/features.3/Conv"  # the second convolution, named by the TorchScript-based exporter


def _build_out(out: Path) -> None:
    import warnings

    import torch

    import sample_models
    from edgeport.fsutil import path_size, sha256_path
    from edgeport.manifest import Artifact, Manifest
    from edgeport.models import resolve_ref
    from edgeport.refdata import save_reference
    from edgeport.spec import IOSpec, TensorSpec

    module, (example,) = sample_models.build("tiny_cnn")
    out.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(module, (example,)), str(out / "model.pt"))
        torch.onnx.export(module, (example,), str(out / "model.onnx"), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"])
    inputs = [example.numpy(), np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)]
    with torch.no_grad():
        outputs = [module(torch.from_numpy(x)).numpy() for x in inputs]
    save_reference(out / "reference.npz", [{"image": x} for x in inputs], [{"logits": y} for y in outputs])
    io = IOSpec(inputs=[TensorSpec("image", (1, 3, 32, 32), layout="NCHW", ref_name="image")],
                outputs=[TensorSpec("logits", (1, 10), ref_name="logits")])
    m = Manifest(root=out, source="sample:tiny_cnn", io=io,
                 reference={"path": "reference.npz", "sha256": sha256_path(out / "reference.npz"), "runtime": "torch_eager", "samples": 2})
    m.put(Artifact("pytorch", "pytorch", "", converter="source", options={"model": resolve_ref("sample:tiny_cnn").to_json()}, io=io))
    for name, fmt, rel in (("torchscript", "torchscript", "model.pt"), ("onnx", "onnx", "model.onnx")):
        m.put(Artifact(name, fmt, rel, sha256=sha256_path(out / rel), size_bytes=path_size(out / rel), parent="pytorch", io=io))
    m.save()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("validate") / "out"
    _build_out(out)
    return out


@pytest.fixture
def out(built, tmp_path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(built, dst)
    return dst


def perturb_onnx(path: Path, node_name: str = PERTURBED_NODE, delta: float = 0.5) -> None:
    """Change one weight of one convolution in place."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.name == node_name)
    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    w = numpy_helper.to_array(init).copy()
    w.flat[5] += delta
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(path))


def add_artifact(out: Path, name: str, fmt: str, rel: str, parent: str = "onnx") -> None:
    from edgeport.manifest import Artifact, Manifest

    m = Manifest.load(out)
    io = m.artifact("onnx").io
    m.put(Artifact(name, fmt, rel, parent=parent, io=io, converter="test"))
    m.save()


def _json(path: Path) -> dict:
    data = json.loads(path.read_text())
    data["by"] = {(r["artifact"], r["runtime"]): r for r in data["results"]}
    return data


# ------------------------------------------------------------------------------------------ fast


def test_all_runtimes_pass(cli, out, tmp_path):
    j, x, md = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "r.md"
    r = cli("validate", str(out), "--json", str(j), "--junit", str(x), "--markdown", str(md))
    assert r.code == 0, r.output
    assert "parity OK: 3 pass" in r.stdout
    data = _json(j)
    assert data["passed"] is True and data["exit_code"] == 0 and data["inputs"]["count"] == 4
    assert set(data["by"]) == {("pytorch", "torch_eager"), ("torchscript", "torchscript"), ("onnx", "onnxruntime")}
    ref = data["by"][("pytorch", "torch_eager")]
    assert ref["role"] == "reference" and ref["compared_with"].startswith("reference.npz")
    onnx_logits = data["by"][("onnx", "onnxruntime")]["outputs"][0]
    assert onnx_logits["name"] == "logits" and onnx_logits["passed"]
    assert onnx_logits["metrics"]["max_abs"] < 1e-5 and onnx_logits["metrics"]["cosine"] > 0.999999
    assert onnx_logits["metrics"]["top1"] == 1.0 and onnx_logits["metrics"]["elements"] == 40
    assert data["by"][("torchscript", "torchscript")]["outputs"][0]["metrics"]["max_abs"] < 1e-5
    assert [(s["parent"], s["artifact"]) for s in data["stages"]] == [("pytorch", "torchscript"), ("pytorch", "onnx")]
    cases = ET.parse(x).getroot().find("testsuite").findall("testcase")
    assert sorted(c.get("name") for c in cases) == ["onnx on onnxruntime", "pytorch on torch_eager", "torchscript on torchscript"]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    assert md.read_text().startswith("### ✅")


def test_perturbed_onnx_fails_and_is_localized(cli, out, tmp_path):
    perturb_onnx(out / "model.onnx")
    j = tmp_path / "r.json"
    r = cli("validate", str(out), "--localize", "--json", str(j), "--runtime", "torch_eager,onnxruntime")
    assert r.code == 1, r.output
    assert "onnx on onnxruntime, output logits" in r.stdout and "parity FAILED" in r.stdout
    assert PERTURBED_NODE in r.stdout
    data = _json(j)
    row = data["by"][("onnx", "onnxruntime")]
    assert row["status"] == "fail" and not row["outputs"][0]["passed"] and row["outputs"][0]["metrics"]["max_abs"] > 1e-3
    assert data["by"][("pytorch", "torch_eager")]["status"] == "pass"
    assert data["by"][("torchscript", "torchscript")]["status"] == "skipped"
    [loc] = data["localization"]
    assert loc["found"] and loc["node"] == PERTURBED_NODE and loc["op_type"] == "Conv" and loc["module"] == "features.3"
    assert any("does not match its sha256" in n for n in data["notes"])


def test_corrupt_tflite_is_an_error_and_the_others_still_report(cli, out, tmp_path):
    (out / "model.tflite").write_bytes(b"TFL3" + bytes(range(256)) * 8)
    add_artifact(out, "tflite", "tflite", "model.tflite")
    j, x = tmp_path / "r.json", tmp_path / "r.xml"
    r = cli("validate", str(out), "--runtime", "onnxruntime,tflite", "--json", str(j), "--junit", str(x))
    assert r.code == 3, r.output
    data = _json(j)
    assert data["by"][("pytorch", "torch_eager")]["role"] == "reference"  # runs although not selected
    assert data["by"][("pytorch", "torch_eager")]["status"] == "pass"
    assert data["by"][("tflite", "tflite")]["status"] in ("error", "crash")
    assert data["by"][("tflite", "tflite")]["reason"]
    assert data["by"][("onnx", "onnxruntime")]["status"] == "pass"
    cases = ET.parse(x).getroot().find("testsuite").findall("testcase")
    assert len(cases) == len(data["results"]) == 4  # pytorch (reference), torchscript (skipped: not selected), onnx, tflite
    bad = next(c for c in cases if c.get("name") == "tflite on tflite")
    assert bad.find("error") is not None


def test_crash_and_hang_are_isolated(out, monkeypatch):
    """A runtime that aborts and one that hangs become crash/timeout rows; ONNX Runtime still passes."""
    from edgeport.runtimes import RUNTIMES, Runtime
    from edgeport.validate.parity import ValidateOptions, validate_dir

    monkeypatch.setitem(RUNTIMES, "abort_rt", Runtime("abort_rt", "tests.unit.runtime_targets:AbortSession", ("onnx",), ("onnxruntime",)))
    monkeypatch.setitem(RUNTIMES, "hang_rt", Runtime("hang_rt", "tests.unit.runtime_targets:HangSession", ("onnx",), ("onnxruntime",)))
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")
    rep = validate_dir(out, ValidateOptions(runtimes=["onnxruntime", "abort_rt", "hang_rt"], reference="stored", timeout=4, jobs=2))
    by = {(r.artifact, r.runtime): r for r in rep.results}
    assert by[("onnx", "abort_rt")].status == "crash" and "SIGABRT" in by[("onnx", "abort_rt")].reason
    assert by[("onnx", "hang_rt")].status == "timeout" and "timed out" in by[("onnx", "hang_rt")].reason
    assert by[("onnx", "onnxruntime")].status == "pass"
    assert rep.exit_code == 3 and not rep


def test_two_files(cli, out, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    shutil.copy(out / "model.onnx", a)
    shutil.copy(out / "model.onnx", b)
    j = tmp_path / "r.json"
    r = cli("validate", str(a), str(b), "--json", str(j))
    assert r.code == 0, r.output
    assert _json(j)["by"][("b.onnx", "onnxruntime")]["outputs"][0]["metrics"]["max_abs"] == 0.0
    perturb_onnx(b)
    r = cli("validate", str(a), str(b), "--samples", "2")
    assert r.code == 1, r.output
    assert "b.onnx on onnxruntime, output logits" in r.stdout


def test_tolerances_from_cli_and_config(cli, out, tmp_path):
    perturb_onnx(out / "model.onnx", delta=0.02)
    base = ("validate", str(out), "--runtime", "onnxruntime", "--reference", "stored", "--no-config")
    assert cli(*base).code == 1
    r = cli(*base, "--atol", "logits:0.1")
    assert r.code == 0, r.output
    assert cli(*base, "--atol", "other:0.1").code == 1  # an override for another output does not help
    assert cli(*base, "--stat", "mean", "--atol", "0.05").code == 0
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "demo"
        [tool.edgeport.validate]
        runtimes = ["onnxruntime"]
        reference = "stored"
        [tool.edgeport.validate.outputs.logits]
        atol = 0.1
    """))
    r = cli("validate", str(out), cwd=proj)
    assert r.code == 0, r.output
    assert "pyproject.toml" in r.stderr


def test_without_torch_uses_stored_reference(cli, out, tmp_path):
    """The device profile: no torch. The stored reference.npz is the reference; torch rows are skipped."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "tensorflow"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, _Block())
    """))
    env = {"PYTHONPATH": f"{block}:{REPO / 'src'}:{REPO}"}
    j = tmp_path / "r.json"
    r = cli("validate", str(out), "--json", str(j), env=env)
    assert r.code == 0, r.output
    data = _json(j)
    assert data["reference"]["source"] == "reference.npz"
    assert data["by"][("pytorch", "torch_eager")]["status"] == "skipped"
    assert "torch is not installed" in data["by"][("torchscript", "torchscript")]["reason"]
    assert data["by"][("onnx", "onnxruntime")]["status"] == "pass" and data["inputs"]["count"] == 2
    r = cli("validate", str(out), "--samples", "3", env=env)
    assert r.code == 2 and "cannot compute reference outputs" in r.stderr and "Traceback" not in r.output


def test_assert_parity(out, monkeypatch, edgeport_parity):  # noqa: F811 - the fixture
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")
    rep = edgeport_parity(out, runtimes=["onnxruntime"], reference="stored", config=False)
    assert rep and rep.exit_code == 0 and rep.reference["source"] == "reference.npz"
    perturb_onnx(out / "model.onnx")
    with pytest.raises(AssertionError, match=r"onnx/onnxruntime output 'logits'"):
        edgeport_parity(out, runtimes=["onnxruntime"], reference="stored", config=False)
    edgeport_parity(out, runtimes=["onnxruntime"], reference="stored", config=False, atol={"logits": 10.0})


def test_bad_input_is_one_line(cli, out, tmp_path):
    for args, fragment in (((str(tmp_path / "nope"),), "does not exist"),
                           ((str(out), "--atol", "abc"), "not a number"),
                           ((str(out), "--reference", "bogus"), "--reference bogus"),
                           ((str(out), "--artifact", "nope"), "no artifact named nope"),
                           ((str(out), "--stat", "avg"), "unknown error statistic"),
                           ((str(out), str(out), str(out)), "two model files")):
        r = cli("validate", *args)
        assert r.code == 2, (args, r.output)
        assert "Traceback" not in r.output and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ------------------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_converted_sample_every_runtime(cli, tmp_path):
    """The real pipeline: convert to all formats, validate on five runtimes, then break it three ways."""
    out = tmp_path / "out"
    r = cli("convert", "sample:tiny_cnn", "--to", "torchscript,onnx,saved_model,tflite", "-o", str(out))
    assert r.code == 0, r.output
    j = tmp_path / "r.json"
    r = cli("validate", str(out), "--json", str(j), "--jobs", "2")
    assert r.code == 0, r.output
    data = _json(j)
    runtimes = {rt for (_, rt), row in data["by"].items() if row["status"] == "pass"}
    assert runtimes == {"torch_eager", "torchscript", "onnxruntime", "tensorflow", "tflite"}, data["by"].keys()
    assert len(data["stages"]) >= 3

    # one weight of the ONNX model changed: the ONNX row fails and --localize names the node
    from edgeport.manifest import Manifest

    onnx_path = Manifest.load(out).abspath(Manifest.load(out).artifact("onnx"))
    import onnx

    conv = [n.name for n in onnx.load(str(onnx_path)).graph.node if n.op_type == "Conv"][1]
    backup = tmp_path / "model.onnx.bak"
    shutil.copy(onnx_path, backup)
    perturb_onnx(onnx_path, conv)
    r = cli("validate", str(out), "--localize", "--json", str(j), "--runtime", "torch_eager,onnxruntime,tflite")
    assert r.code == 1, r.output
    data = _json(j)
    assert data["by"][("onnx", "onnxruntime")]["status"] == "fail"
    assert data["by"][("tflite", "tflite")]["status"] == "pass"
    assert [loc["node"] for loc in data["localization"]] == [conv] and conv in r.stdout
    shutil.copy(backup, onnx_path)

    # a corrupt .tflite: error or crash for that row, the other runtimes still report, exit 3
    tfl = Manifest.load(out).abspath(Manifest.load(out).artifact("tflite"))
    tfl.write_bytes(tfl.read_bytes()[:200])
    x = tmp_path / "r.xml"
    r = cli("validate", str(out), "--json", str(j), "--junit", str(x))
    assert r.code == 3, r.output
    data = _json(j)
    assert data["by"][("tflite", "tflite")]["status"] in ("error", "crash")
    assert all(row["status"] == "pass" for key, row in data["by"].items() if key != ("tflite", "tflite"))
    assert len(ET.parse(x).getroot().find("testsuite").findall("testcase")) == len(data["results"])
