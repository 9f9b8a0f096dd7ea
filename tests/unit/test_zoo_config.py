"""The zoo file's checks (one-line UsageErrors, exit 2) and the aggregate report's verdicts, without running models."""

from __future__ import annotations

import pytest

from edgeport.errors import UsageError
from edgeport.zoo.config import INIT_TEMPLATE, load_zoo
from edgeport.zoo.report import ZooReport, table_row, write_junit, write_markdown


def _zoo(tmp_path, text):
    p = tmp_path / "zoo.toml"
    p.write_text(text)
    return p


def test_init_template_loads_with_defaults_applied(tmp_path):
    zoo = load_zoo(_zoo(tmp_path, INIT_TEMPLATE))
    assert [m.name for m in zoo.models] == ["tiny_cnn", "multi_io", "dynamic"]
    assert all(m.formats == ("torchscript", "onnx") and m.bench_runs == 50 for m in zoo.models)


def test_model_keys_override_defaults_and_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "net.py").write_text("def build():\n    pass\n")
    zoo = load_zoo(_zoo(tmp_path, '[defaults]\nsamples = 5\n[[model]]\nreference = "net.py:build"\nsamples = 2\n'
                                  'atol = { logits = 1e-3 }\n[[model]]\nreference = "sample:gru"\n'))
    first, second = zoo.models
    assert first.reference == f"{tmp_path.resolve()}/net.py:build" and first.name == "net-build"
    assert first.samples == 2 and first.atol == {"logits": 1e-3}
    assert second.name == "gru" and second.samples == 5


@pytest.mark.parametrize("text, message", [
    ('[[model]]\nreference = "sample:tiny_cnn"\nformatz = ["onnx"]\n', "unknown key 'formatz'"),
    ('[defaults]\nbench_runs = "ten"\n[[model]]\nreference = "sample:tiny_cnn"\n', "bench_runs = 'ten' has the wrong type"),
    ('[defaults]\nbench = 1\n[[model]]\nreference = "sample:tiny_cnn"\n', "bench = 1 has the wrong type"),
    ('[[model]]\nname = "a"\n', "model 1: no reference"),
    ('[[model]]\nname = "a"\nreference = "sample:tiny_cnn"\n[[model]]\nname = "a"\nreference = "sample:gru"\n',
     "models 1 and 2 are both named 'a'"),
    ('[[model]]\nreference = "sample:nope"\n', "unknown sample model 'nope'"),
    ('[[model]]\nreference = "missing.py:build"\n', "does not exist"),
    ('[[model]]\nreference = "sample:tiny_cnn"\nformats = ["tflight"]\n', "unknown format 'tflight'"),
    ('[[model]]\nreference = "sample:tiny_cnn"\nname = "../x"\n', "cannot be a folder name"),
    ('models = 3\n', "unknown top-level key 'models'"),
    ('[defaults]\nformats = ["onnx"]\n', "lists no models"),
    ('[[model]\nreference = 1\n', "is not valid TOML"),
])
def test_bad_zoo_files_are_one_line_usage_errors(tmp_path, text, message):
    with pytest.raises(UsageError) as info:
        load_zoo(_zoo(tmp_path, text))
    line = info.value.one_line()
    assert message in line and "\n" not in line and info.value.exit_code == 2


def _row(name, code, **steps):
    return {"name": name, "reference": f"sample:{name}", "out": "", "formats": ["torchscript", "onnx"], "steps": steps,
            "reused": [], "error": None, "error_step": None, "exit_code": code, "seconds": 1.0}


def _validate(status_by_runtime, rel):
    return {"exit_code": 0, "results": [
        {"artifact": fmt, "format": fmt, "variant": "fp32", "runtime": rt, "role": "candidate", "status": st, "reason": "",
         "outputs": [{"name": "y", "passed": st == "pass", "metrics": {"max_rel_scale": rel, "max_abs": 1.0}}]}
        for (fmt, rt), st in status_by_runtime.items()]}


def test_report_verdicts_and_exit_codes(tmp_path):
    ok = _row("a", 0, convert={"artifacts": [{"format": "torchscript"}, {"format": "onnx"}], "kept": {}},
              validate=_validate({("torchscript", "torchscript"): "pass", ("onnx", "onnxruntime"): "pass"}, 2e-7),
              bench={"rows": [{"runtime": "onnxruntime", "status": "ok", "p50_ms": 0.5},
                              {"runtime": "tflite", "status": "ok", "p50_ms": 0.25}]})
    drift = _row("b", 1, convert={"artifacts": [{"format": "torchscript"}, {"format": "onnx"}], "kept": {}},
                 validate={**_validate({("torchscript", "torchscript"): "pass", ("onnx", "onnxruntime"): "fail"}, 3e-2),
                           "exit_code": 1, "summary": "parity FAILED"})
    broken = {**_row("c", 3), "error": "running the source model failed", "error_step": "convert"}
    t = table_row(ok)
    assert t["verdict"] == "pass" and t["formats_ok"] == "2/2" and t["tflite_ort_ratio"] == 0.5
    assert t["worst_parity"] == {"torchscript": 2e-7, "onnx": 2e-7}
    assert table_row(drift)["verdict"] == "parity/threshold" and table_row(drift)["why"] == "validate: parity FAILED"
    assert table_row(broken)["why"] == "convert: running the source model failed"
    assert ZooReport("z", "o", "pool", [ok]).exit_code == 0
    assert ZooReport("z", "o", "pool", [ok, drift]).exit_code == 1
    assert ZooReport("z", "o", "pool", [ok, drift, broken]).exit_code == 3
    report = ZooReport("z", "o", "pool", [ok, drift, broken])
    write_junit(report, tmp_path / "z.xml")
    xml = (tmp_path / "z.xml").read_text()
    assert 'tests="6" failures="1" errors="2"' in xml
    write_markdown(report, tmp_path / "z.md")
    md = (tmp_path / "z.md").read_text()
    assert "| b | parity/threshold | 2/2 |" in md and "**c**: convert: running the source model failed" in md
