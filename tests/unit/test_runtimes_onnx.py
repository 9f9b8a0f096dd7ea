"""ONNX Runtime sessions and the runtime worker job (no torch: models are built with onnx.helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeport.errors import RuntimeFailure, UsageError
from edgeport.runtimes import RUNTIMES
from edgeport.runtimes.job import probe_io_job, run_session_job
from edgeport.runtimes.onnxruntime import OnnxRuntimeSession
from edgeport.spec import IOSpec, TensorSpec
from edgeport.data.samples import load_samples, save_samples
from edgeport.worker import run_in_worker

REPO = Path(__file__).resolve().parents[2]
W = np.array([0.5, -2.0, 1.5], np.float32)
B = np.array([0.1, 0.2, -0.3], np.float32)

# The artifact is channels-last; the reference (PyTorch) tensors are NCHW.
ARTIFACT_IO = IOSpec(
    inputs=[TensorSpec("x_nhwc", (1, 4, 5, 3), perm=(0, 2, 3, 1), ref_name="x")],
    outputs=[TensorSpec("y_nhwc", (1, 4, 5, 3), perm=(0, 2, 3, 1), ref_name="y"), TensorSpec("s", (1, 1), ref_name="total")],
)


def expected(x_nchw: np.ndarray) -> dict[str, np.ndarray]:
    y = np.maximum(x_nchw * W[None, :, None, None] + B[None, :, None, None], 0)
    return {"y": y, "total": y.sum().reshape(1, 1)}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    x = helper.make_tensor_value_info("x_nhwc", TensorProto.FLOAT, [1, 4, 5, 3])
    y = helper.make_tensor_value_info("y_nhwc", TensorProto.FLOAT, [1, 4, 5, 3])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1])
    nodes = [helper.make_node("Mul", ["x_nhwc", "w"], ["m"], name="mul"), helper.make_node("Add", ["m", "b"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["y_nhwc"], name="relu"),
             helper.make_node("ReduceSum", ["y_nhwc", "axes"], ["s0"], keepdims=0, name="sum"),
             helper.make_node("Reshape", ["s0", "shape"], ["s"], name="reshape")]
    inits = [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b"),
             numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "axes"), numpy_helper.from_array(np.array([1, 1], np.int64), "shape")]
    graph = helper.make_graph(nodes, "g", [x], [y, s], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(model, path)
    return path


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 4, 5)).astype(np.float32)


def test_session_maps_names_and_layouts(model_path):
    s = OnnxRuntimeSession.load(model_path, ARTIFACT_IO, threads=1)
    x = _x()
    out = s.run({"x": x})
    assert set(out) == {"y", "total"}
    exp = expected(x)
    assert out["y"].shape == (1, 3, 4, 5)
    np.testing.assert_allclose(out["y"], exp["y"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["total"], exp["total"], rtol=1e-5)
    native = s.run_native({"x_nhwc": x.transpose(0, 2, 3, 1).copy()})
    np.testing.assert_allclose(native["y_nhwc"], exp["y"].transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    assert s.backend.startswith("onnxruntime ")
    _, seconds = s.timed_run({"x": x})
    assert 0 < seconds < 5


def test_threads_and_sequential_execution(model_path):
    import onnxruntime as ort

    s = OnnxRuntimeSession.load(model_path, ARTIFACT_IO, threads=2)
    so = s.sess.get_session_options()
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert s.sess.get_providers() == ["CPUExecutionProvider"]
    assert "2 threads" in s.backend


def test_bad_feeds_and_files(model_path, tmp_path):
    s = OnnxRuntimeSession.load(model_path, ARTIFACT_IO)
    with pytest.raises(UsageError, match="missing input 'x'"):
        s.run({"image": _x()})
    with pytest.raises(UsageError, match="rank"):
        s.run({"x": np.zeros((3, 4, 5), np.float32)})
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(RuntimeFailure, match="ONNX Runtime cannot load corrupt.onnx"):
        OnnxRuntimeSession.load(bad, ARTIFACT_IO)
    wrong = IOSpec(inputs=[TensorSpec("nope", (1, 4, 5, 3))], outputs=ARTIFACT_IO.outputs)
    with pytest.raises(RuntimeFailure, match="no input"):
        OnnxRuntimeSession.load(model_path, wrong)


def test_job_in_process(model_path, tmp_path):
    feeds = [{"x": _x(i)} for i in range(3)]
    save_samples(tmp_path / "f.npz", feeds)
    res = run_session_job(runtime="onnxruntime", path=str(model_path), io=ARTIFACT_IO.to_json(), feeds=str(tmp_path / "f.npz"),
                          out=str(tmp_path / "o.npz"))
    assert res["samples"] == 3 and len(res["run_seconds"]) == 3 and res["backend"].startswith("onnxruntime")
    outs = load_samples(tmp_path / "o.npz")
    for f, o in zip(feeds, outs):
        np.testing.assert_allclose(o["y"], expected(f["x"])["y"], rtol=1e-6, atol=1e-6)


def _job(model_path: Path, tmp_path: Path, **kw) -> object:
    save_samples(tmp_path / "f.npz", [{"x": _x()}])
    args = {"runtime": "onnxruntime", "path": str(model_path), "io": ARTIFACT_IO.to_json(), "feeds": str(tmp_path / "f.npz"),
            "out": str(tmp_path / "o.npz")}
    args.update(kw.pop("args", {}))
    return run_in_worker("edgeport.runtimes.job:run_session_job", args, env={"PYTHONPATH": str(REPO)}, **kw)


def test_job_in_worker_ok_and_error(model_path, tmp_path):
    res = _job(model_path, tmp_path, timeout=120)
    assert res.ok, res.reason()
    np.testing.assert_allclose(load_samples(res.value["outputs"])[0]["y"], expected(_x())["y"], rtol=1e-6, atol=1e-6)
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"not a model")
    res = _job(bad, tmp_path, timeout=120, args={"path": str(bad)})
    assert res.status == "error" and "cannot load corrupt.onnx" in res.reason()


def test_job_crash_and_hang_are_results(model_path, tmp_path):
    res = _job(model_path, tmp_path, timeout=120, args={"cls": "tests.unit.runtime_targets:AbortSession"})
    assert res.status == "crash" and res.signal == "SIGABRT", res.reason()
    res = _job(model_path, tmp_path, timeout=3, args={"cls": "tests.unit.runtime_targets:HangSession"})
    assert res.status == "timeout" and 3 <= res.seconds < 30


def test_probe_onnx(model_path, tmp_path):
    io = IOSpec.from_json(probe_io_job(format="onnx", path=str(model_path)))
    assert [(t.name, t.shape, t.dtype) for t in io.inputs] == [("x_nhwc", (1, 4, 5, 3), "float32")]
    assert [t.name for t in io.outputs] == ["y_nhwc", "s"]
    assert probe_io_job(format="torchscript", path="x.pt") is None


def test_every_registered_runtime_is_known_to_validate():
    """Optimum's habit: a registered runtime without requirements would be silently unchecked."""
    import importlib

    from edgeport.formats import FORMATS
    from edgeport.runtimes.base import Session

    for name, entry in RUNTIMES.items():
        assert entry.name == name and entry.modules and set(entry.formats) <= set(FORMATS), entry
        module, _, cls = entry.cls.partition(":")
        klass = getattr(importlib.import_module(module), cls)
        assert issubclass(klass, Session) and klass.name == name
