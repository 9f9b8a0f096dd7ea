"""Metrics, tolerances and their configuration (numpy only, no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgeport.errors import UsageError
from edgeport.validate.config import KIND_DEFAULTS, ToleranceConfig, config_from_table, find_config, kind_of, load_config, parse_overrides
from edgeport.validate.metrics import (Tolerance, compare_output, compare_samples, error_metrics, is_classifier_like,
                                       normalize_statistic, topk_agreement)

REF = np.array([1.0, 2.0, 3.0, 4.0])
CAND = np.array([1.0, 2.0, 3.0, 4.1])


def test_known_values():
    m = error_metrics(REF, CAND)
    assert m["max_abs"] == pytest.approx(0.1)
    assert m["mean_abs"] == pytest.approx(0.025)
    assert m["rmse"] == pytest.approx(0.05)
    assert m["max_rel"] == pytest.approx(0.025)
    assert m["snr_db"] == pytest.approx(10 * math.log10(30.0 / 0.01))
    cos = float(REF @ CAND / (np.linalg.norm(REF) * np.linalg.norm(CAND)))
    assert m["cosine"] == pytest.approx(cos)
    assert m["nonfinite"] == 0


def test_identical_is_exact():
    m = error_metrics(REF, REF)
    assert m["max_abs"] == 0 and m["cosine"] == 1.0 and m["snr_db"] == math.inf
    assert compare_output("y", REF, REF, Tolerance(atol=0, rtol=0))


def test_relative_error_is_floored_at_zero_reference():
    m = error_metrics(np.array([0.0, 10.0]), np.array([1e-9, 10.0]))
    assert math.isfinite(m["max_rel"]) and m["max_rel"] > 0


@pytest.mark.parametrize("atol,rtol,ok", [(0.05, 0.0, False), (0.1 + 1e-12, 0.0, True), (0.0, 0.025 + 1e-12, True),
                                          (0.0, 0.02, False), (0.05, 0.0125 + 1e-12, True)])
def test_elementwise_is_allclose(atol, rtol, ok):
    c = compare_output("y", REF, CAND, Tolerance(atol=atol, rtol=rtol))
    assert bool(c) is ok
    assert bool(c) == bool(np.allclose(CAND, REF, atol=atol, rtol=rtol))
    if not ok:
        assert "1 of 4 values outside" in c.failures[0]


def test_statistics_differ_from_elementwise():
    tol = Tolerance(atol=0.03, rtol=0.0)
    assert not compare_output("y", REF, CAND, tol)  # max err 0.1 > 0.03
    assert compare_output("y", REF, CAND, tol.with_(statistic="mean"))  # mean 0.025 <= 0.03
    assert compare_output("y", REF, CAND, tol.with_(statistic="median"))  # median 0
    assert not compare_output("y", REF, CAND, tol.with_(statistic="max"))
    assert not compare_output("y", REF, CAND, tol.with_(statistic="p99"))
    assert compare_output("y", REF, CAND, tol.with_(statistic="p50"))
    # a statistic passes when either the absolute or the relative statistic is within bounds (Polygraphy's rule)
    assert compare_output("y", REF, CAND, Tolerance(atol=0.0, rtol=0.03, statistic="max"))


@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_nonfinite_fails_whatever_the_tolerance(bad, word):
    cand = REF.copy()
    cand[2] = bad
    c = compare_output("y", REF, cand, Tolerance(atol=1e9, rtol=1e9, statistic="mean"))
    assert not c
    assert c.metrics["nonfinite"] == 1
    assert any(word in f for f in c.failures)


def test_nonfinite_reference_fails():
    ref = REF.copy()
    ref[0] = np.nan
    c = compare_output("y", ref, REF, Tolerance(atol=1e9, rtol=1e9))
    assert not c and any("reference itself" in f for f in c.failures)


def test_shapes():
    assert not compare_output("y", np.zeros((2, 3)), np.zeros((3, 2)), Tolerance())
    c = compare_output("y", np.zeros((1, 10)), np.zeros((10,)), Tolerance())
    assert c and "size-1" in c.notes[0]


def test_topk_agreement():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 10))
    cand = ref.copy()
    row = cand[1]
    top, second = np.argsort(-row)[:2]
    row[top], row[second] = row[second], row[top]  # swap the two best classes of one row
    a = topk_agreement(ref, cand)
    assert a["top1"] == pytest.approx(0.75)
    assert a["top5"] == pytest.approx(1.0)  # same top-5 set
    cand[2] = -ref[2]  # reversed ranking: the top-5 sets are disjoint
    assert topk_agreement(ref, cand)["top5"] == pytest.approx(0.75)


def test_classifier_heuristics():
    assert is_classifier_like("logits", np.zeros((1, 10), np.float32))
    assert is_classifier_like("logits", np.zeros((1, 16, 32), np.float32))
    assert is_classifier_like("output", np.zeros((1, 10), np.float32))
    assert not is_classifier_like("embedding", np.zeros((1, 32), np.float32))
    assert not is_classifier_like("logits", np.zeros((1, 10), np.int64))
    assert not is_classifier_like("logits", np.zeros((10,), np.float32))
    c = compare_samples([{"logits": np.arange(10.0)[None]}], [{"logits": np.arange(10.0)[None]}], lambda n: Tolerance())
    assert c[0].metrics["top1"] == 1.0


def test_compare_samples_stacks_and_reports_missing():
    ref = [{"a": np.ones(3), "b": np.zeros(2)}, {"a": np.ones(3) * 2, "b": np.zeros(2)}]
    cand = [{"a": np.ones(3)}, {"a": np.ones(3) * 2 + 1e-3}]
    res = {c.name: c for c in compare_samples(ref, cand, lambda n: Tolerance(atol=1e-4, rtol=0))}
    assert res["a"].metrics["elements"] == 6 and res["a"].metrics["max_abs"] == pytest.approx(1e-3)
    assert not res["a"] and not res["b"] and "missing" in res["b"].failures[0]


def test_extra_floors():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(1000)
    cand = ref + rng.standard_normal(1000) * 0.1  # SNR ~ 20 dB
    loose = Tolerance(atol=10, rtol=10)
    assert compare_output("y", ref, cand, loose)
    assert not compare_output("y", ref, cand, loose.with_(min_snr_db=25))
    assert compare_output("y", ref, cand, loose.with_(min_snr_db=15))
    assert not compare_output("y", ref, cand, loose.with_(min_cosine=0.999))


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(-1e3, 1e3, width=32)),
       st.floats(-1.0, 1.0))
def test_metric_invariants(a, shift):
    assert compare_output("y", a, a.copy(), Tolerance(atol=0, rtol=0))
    b = a + np.float32(shift)
    m = error_metrics(a, b)
    assert m["max_abs"] >= m["rmse"] - 1e-9 >= m["mean_abs"] - 2e-9
    assert -1.0 <= m["cosine"] <= 1.0
    assert bool(compare_output("y", a, b, Tolerance(atol=abs(shift) + 1e-3, rtol=0)))


# ------------------------------------------------------------------------------------------ tolerances


def test_statistic_names():
    assert normalize_statistic("allclose") == "elementwise"
    assert normalize_statistic("P99") == "p99"
    assert normalize_statistic("percentile:99.9") == "p99.9"
    for bad in ("p0", "p101", "avg", ""):
        with pytest.raises(UsageError):
            normalize_statistic(bad)


def test_kinds():
    assert kind_of("fp32") == "fp32" and kind_of("") == "fp32"
    assert kind_of("fp16") == "fp16" and kind_of("float16") == "fp16"
    assert all(kind_of(v) == "quantized" for v in ("int8", "dynamic-int8", "int16x8", "uint8"))
    assert KIND_DEFAULTS["fp32"].atol < KIND_DEFAULTS["fp16"].atol < KIND_DEFAULTS["quantized"].atol


def test_parse_overrides():
    assert parse_overrides(["1e-4", "logits:1e-3"], "atol") == (1e-4, {"logits": 1e-3})
    assert parse_overrides("1e-4,embedding:0.5", "atol") == (1e-4, {"embedding": 0.5})
    for bad in (["abc"], ["-1"], [":1e-3"], ["logits:x"]):
        with pytest.raises(UsageError):
            parse_overrides(bad, "atol")


def test_layers_resolve_in_order():
    tc = config_from_table({"atol": 2e-4, "variants": {"fp16": {"atol": 0.05}}, "outputs": {"logits": {"rtol": 0.5}}}).tolerances
    assert tc.resolve("fp32", "y") == KIND_DEFAULTS["fp32"].with_(atol=2e-4)
    assert tc.resolve("fp16", "y").atol == 0.05  # variant table beats the config's global value
    assert tc.resolve("fp32", "logits").rtol == 0.5
    assert tc.resolve("int8", "y").statistic == "mean"  # quantized default
    tc.add_cli(["1e-3", "logits:1e-2"], None, "max")
    assert tc.resolve("fp16", "y").atol == 1e-3  # the command line beats the config file
    assert tc.resolve("fp32", "logits").atol == 1e-2 and tc.resolve("fp32", "logits").rtol == 0.5
    assert tc.resolve("fp32", "y").statistic == "max"
    assert ToleranceConfig().resolve("fp32", "y") == KIND_DEFAULTS["fp32"]


def test_config_files(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.edgeport.validate]\natol = ["1e-3", "logits:0.5"]\n'
                                             'samples = 2\n[tool.edgeport.validate.outputs.emb]\nstatistic = "p99"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert find_config() == tmp_path / "pyproject.toml"
    cfg = load_config()
    assert cfg.run == {"samples": 2}
    assert cfg.tolerances.resolve("fp32", "logits").atol == 0.5
    assert cfg.tolerances.resolve("fp32", "other").atol == 1e-3
    assert cfg.tolerances.resolve("fp32", "emb").statistic == "p99"
    (sub / "edgeport.toml").write_text("[validate]\nrtol = 0.1\n")
    assert load_config().tolerances.resolve("fp32", "x").rtol == 0.1  # the nearer file wins
    (sub / "edgeport.toml").write_text("[validate]\natoll = 0.1\n")
    with pytest.raises(UsageError, match="atoll"):
        load_config()
    for bad in ("samples = 0", "samples = \"4\"", "timeout = -1", "localize = 1", "runtimes = [1]"):
        (sub / "edgeport.toml").write_text(f"[validate]\n{bad}\n")
        with pytest.raises(UsageError, match="is not valid"):
            load_config()
    (sub / "edgeport.toml").write_text("[validate]\nruntimes = \"onnxruntime\"\njobs = 2\n")
    assert load_config().run == {"runtimes": ["onnxruntime"], "jobs": 2}
    (sub / "edgeport.toml").write_text("[validate\n")
    with pytest.raises(Exception, match="not valid TOML"):
        load_config()
