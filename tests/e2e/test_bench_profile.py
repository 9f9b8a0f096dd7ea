"""``edgeport bench --profile``: the per-op time table of a tiny .onnx (ONNX Runtime's profiler) and a tiny
.tflite (ops timed alone in cut-out models), on the console and in the JSON, plus the delegation report
every .tflite row carries. The .tflite files come from tests/unit/test_tflite_delegation.py's builder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.unit.test_tflite_delegation import build_models

FAST = ["--runs", "10", "--warmup", "2"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_models(tmp_path_factory)


def _tiny_onnx(path: Path) -> None:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm with random weights."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "fc"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fcb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _check_table(prof: dict, ops: set[str]) -> None:
    assert ops <= {o["op"] for o in prof["ops"]}, prof
    assert sum(o["share"] for o in prof["ops"]) == pytest.approx(1.0, abs=0.01)
    assert all(o["ms"] >= 0 and o["count"] >= 1 for o in prof["ops"])
    assert prof["total_ms"] > 0


def test_profile_onnx(tmp_path):
    model = tmp_path / "tiny.onnx"
    _tiny_onnx(model)
    r = run_cli("bench", str(model), *FAST, "--profile", "--json", str(tmp_path / "b.json"))
    assert r.code == 0, r.output
    (row,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert row["runtime"] == "onnxruntime" and "delegation" not in row
    prof = row["profile"]
    assert prof["method"] == "onnxruntime profiler" and prof["runs"] >= 10
    _check_table(prof, {"Conv", "Gemm"})  # ONNX Runtime's optimized graph: Relu fused into Conv, layout reorders added
    assert "per-op time: tiny/onnxruntime/1t (onnxruntime profiler)" in r.stdout


def test_profile_tflite_and_delegation_line(models, tmp_path):
    r = run_cli("bench", str(models / "split.tflite"), *FAST, "--profile", "--profile-top", "3", "--json", str(tmp_path / "b.json"))
    assert r.code == 0, r.output
    (row,) = json.loads((tmp_path / "b.json").read_text())["results"]
    d = row["delegation"]
    assert d["partitions"] == 2 and d["builtin_ops"] == {"CUMSUM": 1} and 0 < d["outside_share"] < 1
    prof = row["profile"]
    assert prof["method"] == "tflite cut-out op timing" and prof["op_types"] == 4 and len(prof["ops"]) == 3
    assert sum(o["share"] for o in prof["ops"]) <= 1.0
    assert "2 XNNPACK partitions; builtin kernels: CUMSUM x1" in r.stdout
    assert "3 of 4 op types" in r.stdout
    r = run_cli("bench", str(models / "split.tflite"), *FAST, "--profile", "--json", str(tmp_path / "all.json"), "-q")
    assert r.code == 0, r.output
    _check_table(json.loads((tmp_path / "all.json").read_text())["results"][0]["profile"],
                 {"CONV_2D", "CUMSUM", "MEAN", "FULLY_CONNECTED"})


def test_profile_top_must_be_positive(tmp_path):
    r = run_cli("bench", str(tmp_path / "missing.onnx"), "--profile", "--profile-top", "0")
    assert r.code == 2 and "--profile-top" in r.output
