"""The decision layer of the quantization sweep: accuracy floors, the recommendation, AEQ recipes (plain data)."""

from __future__ import annotations

import math

import pytest

from edgeport.errors import UsageError
from edgeport.quantize.aeq_variants import MODES, Op, make_recipe, meets_floor
from edgeport.quantize.model import SweepReport, VariantRow, recommend
from edgeport.quantize.options import parse_accuracy_drop


def test_accuracy_drop_parsing():
    assert parse_accuracy_drop("0.5%") == pytest.approx(0.005)
    assert parse_accuracy_drop("1 %") == pytest.approx(0.01)
    assert parse_accuracy_drop("0.005") == pytest.approx(0.005)
    assert parse_accuracy_drop(None) is None and parse_accuracy_drop(" ") is None
    for bad in ("0.5 points", "2", "150%", "-1%", "nan%"):
        with pytest.raises(UsageError):
            parse_accuracy_drop(bad)


def test_meets_floor():
    s = {"accuracy": 0.975, "reference_accuracy": 0.98, "snr_db": 18.0}
    assert meets_floor(s, 0.005, None) and not meets_floor(s, 0.004, None)
    assert meets_floor(s, None, 18.0) and not meets_floor(s, None, 18.5)
    assert not meets_floor(s, 0.01, 30.0)  # every floor given must hold
    assert not meets_floor({"accuracy": None, "reference_accuracy": 0.9, "snr_db": 40.0}, 0.01, None)
    assert not meets_floor({"snr_db": math.nan}, None, 10.0)


def _row(name: str, variant: str, size: int, p50: float, acc: float, snr: float = 30.0, **kw) -> VariantRow:
    return VariantRow(name=name, variant=variant, format="tflite", runtime="tflite", size_bytes=size, latency={"p50": p50},
                      summary={"snr_db": snr}, task={"accuracy": acc, "reference_accuracy": 0.98}, **kw)


def test_recommendation_picks_smallest_and_fastest_meeting_the_floor():
    rows = [_row("fp32", "fp32", 60_000, 0.006, 0.98),  # never recommended: not quantized
            _row("a", "aeq-weight-int4", 20_000, 0.017, 0.976),
            _row("b", "fp16", 35_000, 0.0064, 0.979),
            _row("c", "int8", 15_000, 0.002, 0.90),  # smallest and fastest, but below the floor
            _row("d", "int16x8", 10_000, 0.001, 0.99, status="crash"),
            _row("e", "aeq-int8", 12_000, 0.003, 0.99, flags=["logits: constant output"])]
    report = SweepReport(root="/x", source="s", data={}, reference={}, rows=rows,
                         floor={"max_accuracy_drop": 0.005, "min_snr_db": None, "default": False})
    rec = recommend(report)
    assert rec["meeting"] == ["a", "b"]
    assert rec["smallest"]["name"] == "a" and rec["fastest"]["name"] == "b"
    assert rec["line"].startswith("Recommended (accuracy within 0.5 point(s) of the reference): smallest a (")
    report.floor = {"max_accuracy_drop": 0.0001, "min_snr_db": None}
    assert "No quantized variant meets" in recommend(report)["line"]
    report.floor = {}
    assert recommend(report) == {}


def test_aeq_recipes_address_single_ops():
    pytest.importorskip("ai_edge_quantizer")
    conv = Op(0, "CONV_2D", "model/conv/Relu;model/conv/add;", "model/conv/Relu")
    fc = Op(5, "FULLY_CONNECTED", "PartitionedCall:0;", "PartitionedCall:0")
    assert conv.regex == r"^model/conv/Relu;model/conv/add;$"
    for mode in MODES:
        assert make_recipe(mode)[0]["regex"] == ".*"
    full = make_recipe("aeq-int8", float_ops=[fc])
    assert [r["regex"] for r in full] == [".*", fc.regex] and full[-1]["algorithm_key"] == "no_quantize"
    assert full[0]["op_config"]["activation_tensor_config"]["num_bits"] == 8
    a16 = make_recipe("aeq-int16x8")[0]["op_config"]
    assert a16["activation_tensor_config"]["num_bits"] == 16 and a16["weight_tensor_config"]["num_bits"] == 8
    only = make_recipe("aeq-int8", only=[conv])
    assert [r["regex"] for r in only] == [conv.regex]
    w4 = make_recipe("aeq-weight-int4")[0]["op_config"]
    assert w4["weight_tensor_config"]["num_bits"] == 4 and w4.get("explicit_dequantize") is True
