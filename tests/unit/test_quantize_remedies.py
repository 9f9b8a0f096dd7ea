"""Int8 remedies: which extra variants the delegation report of the plain int8 model calls for, and the speed verdict."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.quantize.model import VariantRow
from edgeport.quantize.remedies import (FLOAT_OPS, INT8_IO, REWRITE, TARGET_RATIO, builtin_ops, choose_remedies, int8_speed,
                                        op_comparison, speed_line)

# What the full-int8 mobile_cnn sample's delegation report says (TFLiteConverter from an onnx2tf SavedModel).
MOBILE_CNN = {"partitions": 26, "builtin_ops": {"HARD_SWISH": 17, "MINIMUM": 8, "RELU": 8}, "builtin_op_count": 33}
MOBILE_CNN_OPS = {"CONV_2D": 37, "HARD_SWISH": 17, "MINIMUM": 8, "RELU": 8, "QUANTIZE": 1, "DEQUANTIZE": 1}
MOBILE_CNN_ONNX = {"Conv": 47, "HardSwish": 17, "HardSigmoid": 8, "Relu": 13}


def _by_variant(remedies):
    return {r.variant: r for r in remedies}


def test_a_graph_cut_by_hard_activations_gets_all_three_remedies():
    got = _by_variant(choose_remedies(MOBILE_CNN, MOBILE_CNN_OPS, io_dtype="float", onnx_ops=MOBILE_CNN_ONNX))
    assert list(got) == [FLOAT_OPS, REWRITE, INT8_IO]
    assert got[FLOAT_OPS].ops == ("HARD_SWISH", "MINIMUM", "RELU")  # most frequent first
    assert got[REWRITE].onnx_ops == ("HardSigmoid", "HardSwish") and set(got[REWRITE].ops) == {"HARD_SWISH", "MINIMUM", "RELU"}
    assert got[INT8_IO].ops == ("QUANTIZE", "DEQUANTIZE")
    assert "26 delegate partitions" in got[FLOAT_OPS].why and "HARD_SWISH x17" in got[FLOAT_OPS].why


def test_the_rewrite_needs_the_onnx_ops_it_rewrites():
    # A HARD_SWISH that did not come from an ONNX HardSwish (no ONNX model, or another op) is not rewritten.
    assert REWRITE not in _by_variant(choose_remedies(MOBILE_CNN, MOBILE_CNN_OPS, onnx_ops=None))
    only_swish = _by_variant(choose_remedies(MOBILE_CNN, MOBILE_CNN_OPS, onnx_ops={"HardSwish": 3, "Relu": 2}))
    assert only_swish[REWRITE].onnx_ops == ("HardSwish",) and only_swish[REWRITE].ops == ("HARD_SWISH",)
    assert REWRITE not in _by_variant(choose_remedies({"partitions": 3, "builtin_ops": {"MEAN": 2}}, {}, onnx_ops=MOBILE_CNN_ONNX))


def test_a_model_in_one_piece_gets_no_remedy_and_int8_io_only_with_float_io():
    whole = {"partitions": 1, "builtin_ops": {}}
    assert choose_remedies(whole, MOBILE_CNN_OPS, io_dtype="float", onnx_ops=MOBILE_CNN_ONNX) == []
    assert [r.variant for r in choose_remedies(MOBILE_CNN, MOBILE_CNN_OPS, io_dtype="int8", onnx_ops=MOBILE_CNN_ONNX)] == \
        [FLOAT_OPS, REWRITE]  # inputs and outputs are int8 already
    assert INT8_IO not in _by_variant(choose_remedies(MOBILE_CNN, {"CONV_2D": 3}, io_dtype="float"))  # no edge converts


def test_quantize_ops_between_pieces_are_not_kept_float_and_a_failed_report_gives_nothing():
    edges = {"partitions": 2, "builtin_ops": {"QUANTIZE": 1, "DEQUANTIZE": 1}}
    assert builtin_ops(edges) == {}
    assert [r.variant for r in choose_remedies(edges, {"QUANTIZE": 1})] == [INT8_IO]  # two pieces, no op to keep float
    assert choose_remedies({"error": "the TFLite interpreter cannot load the model"}, MOBILE_CNN_OPS) == []


def _row(name, variant, p50, *, baseline="", status="ok", partitions=None, builtin=None):
    r = VariantRow(name=name, variant=variant, format="tflite", runtime="tflite", status=status, baseline=baseline)
    if p50 is not None:
        r.latency = {"p50": p50}
    r.delegation = {"partitions": partitions, "builtin_ops": builtin or {}}
    r.summary = {"snr_db": 20.0}
    return r


def test_speed_verdict_against_the_fp32_the_int8_model_was_made_beside():
    rows = [_row("tflite", "fp32", 0.10), _row("tflite-fp32", "fp32", 0.30),
            _row("tflite-int8", "int8", 0.80, baseline="tflite-fp32", partitions=26, builtin={"HARD_SWISH": 17, "QUANTIZE": 1}),
            _row("tflite-int8-rewrite", REWRITE, 0.20, baseline="tflite-fp32", partitions=1),
            _row("tflite-int8-io", INT8_IO, None, status="error")]
    v = int8_speed(rows)
    assert v["fp32"] == "tflite-fp32" and v["best"] == "tflite-int8-rewrite"
    assert v["ratio"] == pytest.approx(0.2 / 0.3, abs=1e-4) and v["met"] and v["target_ratio"] == TARGET_RATIO
    tried = {t["name"]: t for t in v["tried"]}
    assert set(tried) == {"tflite-int8", "tflite-int8-rewrite", "tflite-int8-io"}
    assert tried["tflite-int8"]["builtin_ops"] == {"HARD_SWISH": 17} and tried["tflite-int8"]["partitions"] == 26
    assert tried["tflite-int8-io"]["ratio"] is None and tried["tflite-int8-io"]["status"] == "error"
    assert speed_line(v).endswith(": met")
    assert v["method"] == "sweep"
    # p50s of one interleaved run replace the sweep's (which were taken seconds apart), and the line says so
    turns = int8_speed(rows, measured={"tflite-fp32": 0.30, "tflite-int8": 0.9, "tflite-int8-rewrite": 0.25})
    assert turns["method"] == "interleaved" and turns["ratio"] == pytest.approx(0.25 / 0.30, abs=1e-4) and not turns["met"]
    assert {t["name"]: t["sweep_latency_ms"] for t in turns["tried"]}["tflite-int8-rewrite"] == 0.20
    assert "timed in turns" in speed_line(turns) and "NOT met" in speed_line(turns)
    assert int8_speed(rows, measured={"tflite-int8": 0.1})["method"] == "sweep"  # no fp32 anchor in the run: not used
    rows[3].latency = {"p50": 0.25}  # 0.83x: above the target
    assert not int8_speed(rows)["met"]
    assert int8_speed([_row("tflite-int8", "int8", 0.8)]) == {}  # no fp32 .tflite to compare with


def test_op_comparison_names_what_int8_makes_slower():
    fp32 = {"ops": [{"op": "CONV_2D", "placement": "delegate", "ms": 0.11}, {"op": "PAD", "placement": "delegate", "ms": 0.11}]}
    int8 = {"ops": [{"op": "CONV_2D", "placement": "delegate", "ms": 0.16}, {"op": "HARD_SWISH", "placement": "builtin", "ms": 0.05},
                    {"op": "HARD_SWISH", "placement": "delegate", "ms": 0.01}, {"op": "PAD", "placement": "delegate", "ms": 0.10}]}
    table = op_comparison(fp32, int8)
    assert [d["op"] for d in table] == ["HARD_SWISH", "CONV_2D", "PAD"]
    assert table[0]["int8_ms"] == pytest.approx(0.06) and table[0]["int8_placement"] == "builtin"
    assert table[1]["extra_ms"] == pytest.approx(0.05) and table[2]["extra_ms"] == pytest.approx(-0.01)
    v = {"best": "tflite-int8-rewrite", "best_ms": 0.33, "ratio": 1.1, "fp32": "tflite-fp32", "fp32_ms": 0.3,
         "target_ratio": 0.7, "met": False, "ops": table}
    line = speed_line(v)
    assert "NOT met" in line and "HARD_SWISH 0.060 ms in int8 vs 0.000 ms in fp32 (builtin kernel)" in line
    assert "PAD" not in line  # faster in int8: not a reason


def test_delegate_friendly_rewrite_is_exact_and_leaves_no_hard_activation():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from edgeport.quantize.rewrite import delegate_friendly

    nodes = [helper.make_node("HardSwish", ["x"], ["a"]), helper.make_node("HardSigmoid", ["a"], ["b"], alpha=0.2, beta=0.5),
             helper.make_node("HardSigmoid", ["b"], ["y"], alpha=1.0 / 6.0, beta=0.5)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before = model.SerializeToString()
    x = np.linspace(-8, 8, 128, dtype=np.float32).reshape(2, 64)
    want = ort.InferenceSession(before).run(None, {"x": x})[0]
    counts = delegate_friendly(model)
    assert counts == {"HardSwish": 1, "HardSigmoid": 2}
    onnx.checker.check_model(model)
    types = [n.op_type for n in model.graph.node]
    assert "HardSwish" not in types and "HardSigmoid" not in types and types.count("Clip") == 3
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert not np.allclose(want, want[0, 0])  # the input spans both kinks: a wrong rewrite would show
