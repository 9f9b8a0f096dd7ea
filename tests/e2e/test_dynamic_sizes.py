"""Dynamic dims end to end: the `dynamic` sample's .tflite keeps batch and sequence dynamic and matches
PyTorch at three other sizes, in convert's gate, in validate, and on a device bundle."""

from __future__ import annotations

import json

import pytest

from edgeport.backends import isolated_status

pytestmark = pytest.mark.skipif(not isolated_status("onnx2tf")["installed"],
                                reason="the onnx2tf 2.x environment is not built (edgeport backends install onnx2tf)")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("dyn") / "out"
    r = run_cli("convert", "sample:dynamic", "--to", "onnx,tflite", "-o", str(out), timeout=900)
    assert r.code == 0, r.output
    return out, json.loads((out / "manifest.json").read_text())


def test_tflite_keeps_the_dynamic_dims_and_passes_at_other_sizes(converted):
    from edgeport.convert.tflite_inspect import inspect_tflite

    out, man = converted
    sizes = man["reference"]["sizes"]
    assert len(sizes["dims"]) >= 3 and all(d != man["model"]["dims"] for d in sizes["dims"])
    tfl = next(a for a in man["artifacts"] if a["format"] == "tflite")
    assert tfl["converter"] == "onnx2tf", [(a["converter"], a["status"], a["reason"]) for a in man["attempts"]]
    sig = inspect_tflite(out / tfl["path"])["inputs"][0]["shape_signature"]
    assert sig.count(-1) == 2, sig
    check = tfl["checks"]["sizes"]
    assert check["checked"] and check["passed"] and check["worst_rel"] <= 1e-4, check
    # a candidate that fixed the dims was not kept, and the manifest says why
    fixed = [a for a in man["attempts"] if a["target"] == "tflite" and a["converter"] == "litert-torch"]
    assert fixed and fixed[0]["status"] == "rejected" and "dynamic" in fixed[0]["reason"]


def test_validate_and_the_bundle_feed_other_sizes(converted, tmp_path):
    from tests.conftest import run_cli

    out, _ = converted
    for target in (str(out), str(tmp_path / "dyn.tgz")):
        if target.endswith(".tgz"):
            assert run_cli("bundle", str(out), "-o", target).code == 0
        r = run_cli("validate", target, "--json", str(tmp_path / "v.json"))
        assert r.code == 0, r.output
        rows = {(x["artifact"], x["runtime"]): x for x in json.loads((tmp_path / "v.json").read_text())["results"]}
        for key in (("tflite", "tflite"), ("onnx", "onnxruntime")):
            assert rows[key]["sizes"]["checked"] and rows[key]["sizes"]["passed"], rows[key]
