"""Margins to tolerance, the worst output kept for the report page, and the page's cell colours."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from edgeport.report.page import margin_class
from edgeport.validate.metrics import Tolerance, compare_output
from edgeport.validate.worst import MAX_POINTS, tolerance_margin, worst_output


def _margin(ref, cand, tol):
    j = compare_output("y", np.asarray(ref), np.asarray(cand), tol).to_json()
    return tolerance_margin(j["metrics"], j["tolerance"]), j["passed"]


def test_margin_is_error_over_allowance_and_agrees_with_the_verdict():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1000)
    for scale, tol in ((1e-6, Tolerance(atol=1e-5, rtol=0.0)), (3e-5, Tolerance(atol=1e-5, rtol=0.0)),
                       (1e-3, Tolerance(atol=1e-5, rtol=1e-3, statistic="mean"))):
        m, passed = _margin(ref, ref + scale * rng.standard_normal(1000), tol)
        assert m is not None and m > 0 and passed == (m <= 1.0), (scale, tol, m, passed)
    m, passed = _margin(ref, ref + 2e-5, Tolerance(atol=1e-5, rtol=0.0, compare="elementwise"))
    assert not passed and abs(m - 2.0) < 1e-6  # every element 2e-5 off, 1e-5 allowed
    m, _ = _margin(ref, np.where(np.arange(1000) == 3, np.nan, ref), Tolerance())
    assert m == math.inf
    assert tolerance_margin({}, None) is None


def test_mean_statistic_margin_is_the_smaller_ratio():
    metrics = {"max_abs": 1.0, "mean_abs": 0.2, "mean_rel": 0.004}
    assert tolerance_margin(metrics, {"atol": 0.1, "rtol": 0.001, "statistic": "mean"}) == 2.0  # abs 2x
    metrics = {"max_abs": 1.0, "mean_abs": 0.5, "mean_rel": 0.003}
    assert abs(tolerance_margin(metrics, {"atol": 0.1, "rtol": 0.001, "statistic": "mean"}) - 3.0) < 1e-12  # rel 3x


def test_worst_output_is_the_largest_margin_with_its_worst_element_kept():
    rng = np.random.default_rng(1)
    n = 3 * MAX_POINTS
    ref = [{"y": rng.standard_normal(n).astype(np.float32)}]
    good = [{"y": ref[0]["y"] + np.float32(1e-7)}]
    bad_y = ref[0]["y"].copy()
    bad_y[12345] += 5.0
    bad = [{"y": bad_y}]
    tol = Tolerance(atol=1e-5, rtol=1e-3)
    rows = []
    for name, cand in (("good", good), ("bad", bad)):
        comp = [compare_output("y", ref[0]["y"], cand[0]["y"], tol)]
        rows.append(SimpleNamespace(role="candidate", key=f"{name}/rt", artifact=name, runtime="rt", outputs=comp))
    w = worst_output(rows, {"good/rt": good, "bad/rt": bad}, ref)
    assert w["artifact"] == "bad" and w["output"] == "y" and w["margin"] > 1000 and w["elements"] == n
    assert len(w["reference"]) == len(w["candidate"]) <= MAX_POINTS
    assert float(np.max(np.abs(w["candidate"] - w["reference"]))) > 4.9  # the worst element is among those kept
    assert worst_output(rows, {}, ref) is None and worst_output(rows, {"bad/rt": bad}, None) is None


def test_cell_colours_follow_the_margin():
    assert margin_class(0.001, "pass") == "c-far"
    assert margin_class(0.2, "pass") == "c-ok"
    assert margin_class(0.9, "pass") == "c-near"
    assert margin_class(3.0, "fail") == "c-fail" and margin_class(None, "fail") == "c-fail"
    assert margin_class(0.1, "fail") == "c-fail"  # failed on another check (cosine, top-1)
    assert margin_class(None, "crash") == "c-error" and margin_class(None, "skipped") == "c-skip"
