"""The backend registry (edgeport.backends) and the onnx-tf ONNX preparation, without TensorFlow.

Installs here never reach a package index: a failing install uses a requirement file with
``--no-index`` and a pin that cannot resolve, so it fails in seconds, offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeport import backends
from edgeport.errors import ConversionError, EdgeportError, UsageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty EDGEPORT_HOME, no interpreter override, the shipped requirement file."""
    monkeypatch.setenv("EDGEPORT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEPORT_ONNX_TF_PYTHON", raising=False)
    monkeypatch.delenv("EDGEPORT_ONNX_TF_REQUIREMENTS", raising=False)
    return tmp_path / "home"


def _fake_venv(root: Path, requirements: Path, stamp: bool = True) -> None:
    """The on-disk shape of an installed backend venv, enough for status() (which starts no Python)."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to(sys.executable)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.7\n")
    site = root / "lib" / "python3.11" / "site-packages"
    for dist in ("onnx_tf-1.10.0", "tensorflow_cpu-2.15.1", "onnx-1.15.0", "numpy-1.26.4"):
        (site / f"{dist}.dist-info").mkdir(parents=True)
    if stamp:
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        (root / backends.STAMP_NAME).write_text(json.dumps({"name": "onnx-tf", "requirements_sha256": digest}))


def _entry(name: str) -> dict:
    return next(e for e in backends.status() if e["name"] == name)


def test_requirement_file_ships_exact_pins():
    req = Path(backends.__file__).parent / "requirements" / "onnx-tf.txt"
    pins = [ln.split("#")[0].strip() for ln in req.read_text().splitlines() if ln.split("#")[0].strip()]
    assert pins and all("==" in p for p in pins), pins
    names = {p.split("==")[0] for p in pins}
    assert {"onnx-tf", "tensorflow-cpu", "onnx", "numpy", "protobuf"} <= names


def test_status_lists_every_backend(home):
    from edgeport.convert import CONVERTERS

    names = [e["name"] for e in backends.status()]
    assert names == ["torchscript", "torch.onnx", "onnx2tf", "litert-torch", "onnx2tf-1", "onnx-tf"] == list(CONVERTERS)
    for e in backends.status():
        assert set(e) >= {"name", "kind", "installed", "python", "versions"}
        assert isinstance(e["installed"], bool)


def test_not_installed_when_folder_missing(home):
    e = _entry("onnx-tf")
    assert e["installed"] is False and e["python"] is None and e["kind"] == "isolated"
    assert e["location"] == str(home / "backends" / "onnx-tf")
    with pytest.raises(ConversionError) as info:
        backends.python_for("onnx-tf")
    assert info.value.one_line() == "the onnx-tf backend is not installed (run: edgeport backends install onnx-tf)"


def test_installed_follows_folder_and_stamp(home):
    root = home / "backends" / "onnx-tf"
    _fake_venv(root, backends.requirements_path("onnx-tf"))
    e = _entry("onnx-tf")
    assert e["installed"] is True
    assert e["python"] == str(root / "bin" / "python")
    assert e["versions"]["onnx-tf"] == "1.10.0" and e["versions"]["tensorflow-cpu"] == "2.15.1"
    assert e["versions"]["python"] == "3.11.7"
    assert backends.python_for("onnx-tf") == str(root / "bin" / "python")
    (root / backends.STAMP_NAME).unlink()  # what an interrupted install looks like
    assert _entry("onnx-tf")["installed"] is False


def test_changed_pins_mean_not_installed(home, tmp_path, monkeypatch):
    _fake_venv(home / "backends" / "onnx-tf", backends.requirements_path("onnx-tf"))
    other = tmp_path / "other.txt"
    other.write_text("onnx-tf==1.10.0\nonnx==1.16.0\n")
    monkeypatch.setenv("EDGEPORT_ONNX_TF_REQUIREMENTS", str(other))
    e = _entry("onnx-tf")
    assert e["installed"] is False and "changed" in e["detail"]
    with pytest.raises(ConversionError, match="out of date"):
        backends.python_for("onnx-tf")


def test_interpreter_override(home, monkeypatch):
    monkeypatch.setenv("EDGEPORT_ONNX_TF_PYTHON", sys.executable)  # this env has no onnx-tf
    e = _entry("onnx-tf")
    assert e["installed"] is False and "onnx-tf" in e["detail"] and e["python"] == sys.executable
    assert "python" in e["versions"]
    with pytest.raises(UsageError, match="EDGEPORT_ONNX_TF_PYTHON"):
        backends.install("onnx-tf")
    monkeypatch.setenv("EDGEPORT_ONNX_TF_PYTHON", "/nonexistent/python")
    assert "not a working Python" in _entry("onnx-tf")["detail"]


def test_in_process_backends_report_versions(home):
    from importlib import metadata

    e = _entry("torchscript")
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        assert e["installed"] is False and "torch" in e["detail"]
    else:
        assert e["installed"] is True and e["versions"]["torch"] == torch_version


@pytest.mark.parametrize("name,cls,text", [
    ("nope", UsageError, "unknown backend 'nope'"),
    ("onnx2tf-1", UsageError, "needs no install"),
])
def test_install_bad_name_is_a_one_line_error(home, name, cls, text):
    with pytest.raises(cls) as info:
        backends.install(name)
    assert text in info.value.one_line() and "\n" not in info.value.one_line()


def test_cli_install_unknown_is_one_line(home):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), EDGEPORT_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "edgeport", "backends", "install", "nope"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown backend 'nope'" in lines[0], proc.stderr


def test_cli_lists_backends(home):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), EDGEPORT_HOME=str(home),
               COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "edgeport", "backends", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {e["name"] for e in data} >= {"onnx-tf", "onnx2tf", "torch.onnx"}
    proc = subprocess.run([sys.executable, "-m", "edgeport", "backends"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "onnx-tf" in proc.stdout, proc.stdout
    for name in ("onnx2tf", "onnx-tf"):  # both managed environments are missing in this empty home
        assert f"edgeport backends install {name}" in proc.stdout


def test_failed_install_leaves_nothing_installed(home, tmp_path, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_text("--no-index\nedgeport-no-such-package==0.0.0\n")
    monkeypatch.setenv("EDGEPORT_ONNX_TF_REQUIREMENTS", str(bad))
    lines: list[str] = []
    with pytest.raises(ConversionError) as info:
        backends.install("onnx-tf", echo=lines.append)
    msg = info.value.one_line()
    assert msg.startswith("installing the onnx-tf backend failed") and "\n" not in msg
    assert "edgeport-no-such-package" in msg
    assert any("creating a virtual environment" in ln for ln in lines)  # output was streamed
    assert _entry("onnx-tf")["installed"] is False
    parent = home / "backends"
    assert not (parent / "onnx-tf").exists()
    assert [p.name for p in parent.iterdir() if not p.name.endswith(".lock")] == []  # no temp folder left


def test_interrupted_install_keeps_previous_install(home, tmp_path, monkeypatch):
    root = home / "backends" / "onnx-tf"
    _fake_venv(root, backends.requirements_path("onnx-tf"))
    calls = []

    def fake_run(cmd, echo, *, timeout, env=None):
        calls.append(cmd)
        if len(calls) == 1:  # "python -m venv TMP": make the folder, as venv would
            Path(cmd[-1], "bin").mkdir(parents=True, exist_ok=True)
            return 0, ""
        raise KeyboardInterrupt  # Ctrl-C during pip install

    monkeypatch.setattr(backends, "_run_streamed", fake_run)
    with pytest.raises(KeyboardInterrupt):
        backends.install("onnx-tf", force=True)
    assert len(calls) == 2 and "pip" in calls[1]
    assert _entry("onnx-tf")["installed"] is True  # the old venv is untouched
    assert sorted(p.name for p in root.parent.iterdir() if not p.name.endswith(".lock")) == ["onnx-tf"]


def test_install_skips_when_already_installed(home):
    _fake_venv(home / "backends" / "onnx-tf", backends.requirements_path("onnx-tf"))
    lines: list[str] = []
    entry = backends.install("onnx-tf", echo=lines.append)
    assert entry["installed"] is True and "already installed" in lines[0]


def test_errors_are_edgeport_errors():
    assert issubclass(ConversionError, EdgeportError)


# ----------------------------------------------------------------------- ONNX preparation for onnx-tf


def _ln_gelu_model(opset: int = 18):
    """x -> LayerNormalization -> exact GELU (Erf) -> ReduceMean over the last axis, at ``opset``."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.uniform(-0.5, 0.5, 8).astype(np.float32), "beta"),
        numpy_helper.from_array(np.array([0.7071067811865476], np.float32), "rsqrt2"),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        numpy_helper.from_array(np.array([0.5], np.float32), "half"),
        numpy_helper.from_array(np.array([-1], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("Mul", ["ln", "rsqrt2"], ["s"]),
        helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["ln", "e1"], ["g"]),
        helper.make_node("Mul", ["g", "half"], ["y.0"]),
        helper.make_node("ReduceMean", ["y.0", "axes"], ["pooled"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4, 8])],
        [helper.make_tensor_value_info("y.0", TensorProto.FLOAT, ["B", 4, 8]),
         helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def _run_ort(model, feed):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def test_make_compatible_downgrades_and_keeps_numbers():
    pytest.importorskip("onnx")
    import numpy as np

    from edgeport.convert.onnx_downgrade import MAX_IR, make_compatible

    src = _ln_gelu_model()
    out, notes, renamed = make_compatible(src)
    ops = {n.op_type for n in out.graph.node}
    assert "LayerNormalization" not in ops and "Erf" not in ops
    assert next(o.version for o in out.opset_import if o.domain == "") == 15
    assert out.ir_version == MAX_IR
    assert renamed == {"y.0": "y_0"}  # a TF signature key must be a plain identifier
    assert any("LayerNormalization" in n for n in notes) and any("Erf" in n for n in notes)
    for node in out.graph.node:
        assert all(a.name != "noop_with_empty_axes" for a in node.attribute)
    x = np.random.default_rng(1).standard_normal((3, 4, 8)).astype(np.float32) * 3
    want = _run_ort(src, {"x": x})
    got = _run_ort(out, {"x": x})
    for a, b in zip(got, want):
        assert np.max(np.abs(a - b)) / np.max(np.abs(b)) < 1e-5


def test_squeeze_unsqueeze_split_become_ops_onnx_tf_can_lower():
    """onnx-tf 1.10 has no opset-13 Squeeze/Unsqueeze and turns Split into FlexSplitV: edgeport rewrites them
    (static shapes) into Reshape and Slices, and the numbers stay identical."""
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from edgeport.convert.onnx_downgrade import make_compatible

    inits = [numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array([3, 5], np.int64), "sizes")]
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax1"], ["u"]),          # 2x8 -> 2x1x8
        helper.make_node("Squeeze", ["u", "ax1"], ["sq"]),           # -> 2x8
        helper.make_node("Split", ["sq", "sizes"], ["a", "b"], axis=1),  # -> 2x3, 2x5
        helper.make_node("Split", ["x"], ["c", "d"], axis=1, num_outputs=2),  # equal halves, opset-18 form
        helper.make_node("Squeeze", ["u"], ["all"]),                 # no axes: every size-1 dim
    ]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b", "c", "d", "all")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])], outs, inits)
    src = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    src.ir_version = 10
    out, notes, _ = make_compatible(src)
    ops = [n.op_type for n in out.graph.node]
    assert not {"Squeeze", "Unsqueeze", "Split"} & set(ops), ops
    assert any("Reshape" in n for n in notes) and any("Slices" in n for n in notes)
    x = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    for a, b in zip(_run_ort(out, {"x": x}), _run_ort(src, {"x": x})):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_exact_erf_kept_when_asked():
    pytest.importorskip("onnx")
    from edgeport.convert.onnx_downgrade import make_compatible

    out, _, _ = make_compatible(_ln_gelu_model(), approximate_erf=False)
    assert "Erf" in {n.op_type for n in out.graph.node}


def test_needs_legacy_onnx_reasons(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edgeport.convert.onnx_downgrade import needs_legacy_onnx

    ok = tmp_path / "ok.onnx"
    onnx.save(_ln_gelu_model(), str(ok))
    assert needs_legacy_onnx(ok) is None
    graph = helper.make_graph([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    custom = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]),
              str(custom))
    assert "com.microsoft::Gelu" in needs_legacy_onnx(custom)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert needs_legacy_onnx(bad).startswith("cannot read")


def test_gru_linear_before_reset_is_rejected_early():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edgeport.convert.onnx_tf_backend import unsupported_reason

    node = helper.make_node("GRU", ["x", "w", "r"], ["y"], hidden_size=4, linear_before_reset=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert "linear_before_reset" in unsupported_reason(helper.make_model(graph))


def test_run_without_backend_is_a_one_line_error(home):
    from edgeport.convert import onnx_tf_backend

    with pytest.raises(ConversionError) as info:
        onnx_tf_backend.run(staging="/nonexistent", out_dir="/nonexistent", model={}, io={}, dims={}, reference="")
    assert info.value.one_line() == "the onnx-tf backend is not installed (run: edgeport backends install onnx-tf)"
