"""One notion of "close enough": convert's gate, validate's defaults and the reference check agree.

Float32 rounding noise is produced for real: the same small network (live random weights, scaled to
outputs of magnitude 1e-6, 1 or 1e11) computed in float32 against the float64 result rounded to
float32. A real change is one element off by 1 % of the output's magnitude, or one weight changed.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.convert.check import parity_gate
from edgeport.errors import UsageError
from edgeport.tolerance import ELEMENTWISE, FP32_ATOL, FP32_RTOL, SCALE, closeness, normalize_compare, output_scale
from edgeport.validate.config import ELEMENTWISE_DEFAULTS, KIND_DEFAULTS, ToleranceConfig, config_from_table
from edgeport.validate.metrics import Tolerance, compare_output, compare_samples

MAGNITUDES = (1e-6, 1.0, 1e11)
CONVERT_RTOL = 1e-4  # convert's default --rtol


def _weights(magnitude: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 64))
    w1 = rng.standard_normal((64, 128)) / 8.0
    w2 = rng.standard_normal((128, 250)) / np.sqrt(128) * magnitude
    return x, w1, w2


def _forward(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, dtype: type) -> np.ndarray:
    x, w1, w2 = (np.asarray(a, dtype=dtype) for a in (x, w1, w2))
    h = np.maximum(np.sum(x[:, :, None] * w1[None], axis=1, dtype=dtype), 0)  # numpy's own summation, no BLAS
    return np.sum(h[:, :, None] * w2[None], axis=1, dtype=dtype)


def _noisy_pair(magnitude: float) -> tuple[np.ndarray, np.ndarray]:
    """(reference, candidate): float64 rounded to float32, and the float32 computation (4,000 elements)."""
    x, w1, w2 = _weights(magnitude)
    ref = _forward(x, w1, w2, np.float64).astype(np.float32)
    cand = _forward(x, w1, w2, np.float32)
    return ref, cand


def _gate_passes(ref: np.ndarray, cand: np.ndarray) -> bool:
    parity, reasons = parity_gate([{"y": ref}], [{"y": cand}], CONVERT_RTOL)
    return not reasons


def _validate_passes(ref: np.ndarray, cand: np.ndarray) -> bool:
    return bool(compare_output("y", ref, cand, ToleranceConfig().resolve("fp32", "y"), classifier=False))


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_fp32_noise_passes_at_every_magnitude(magnitude):
    ref, cand = _noisy_pair(magnitude)
    scale = output_scale(ref)
    assert magnitude / 10 < scale < magnitude * 100
    noise = float(np.max(np.abs(cand.astype(np.float64) - ref)))
    assert 0 < noise < 1e-5 * scale  # real rounding noise, far below the tolerance
    assert _gate_passes(ref, cand)
    assert _validate_passes(ref, cand)
    c = compare_output("y", ref, cand, KIND_DEFAULTS["fp32"], classifier=False)
    assert c and c.metrics["tolerance_ratio"] < 0.05 and c.metrics["max_rel_scale"] < 1e-5


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_one_element_off_by_one_percent_fails_at_every_magnitude(magnitude):
    ref, cand = _noisy_pair(magnitude)
    bad = cand.copy()
    k = int(np.argmin(np.abs(ref)))  # hide the change where the output is near zero
    bad.flat[k] += np.float32(0.01 * output_scale(ref))
    assert not _gate_passes(ref, bad)
    c = compare_output("y", ref, bad, KIND_DEFAULTS["fp32"], classifier=False)
    assert not c and c.metrics["mismatched"] == 1 and 9 < c.metrics["tolerance_ratio"] < 11
    assert "of the output's magnitude" in c.failures[0]


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_a_changed_weight_fails_at_every_magnitude(magnitude):
    ref, _ = _noisy_pair(magnitude)
    x, w1, w2 = _weights(magnitude)
    w1 = w1.copy()
    w1[5, 7] += 0.05  # one weight of the first layer (std 1/8): about 1 % of the output's magnitude
    cand = _forward(x, w1, w2, np.float32)
    assert not _gate_passes(ref, cand)
    assert not _validate_passes(ref, cand)


def test_elementwise_fails_on_noise_of_a_large_output():
    """Why scale is the default: allclose holds near-zero elements of a 1e11 output to 1e-4 absolute."""
    ref, cand = _noisy_pair(1e11)
    ew = KIND_DEFAULTS["fp32"].with_(compare="elementwise", atol=1e-4, rtol=1e-3)
    c = compare_output("y", ref, cand, ew, classifier=False)
    assert not c and c.metrics["mismatched"] >= 1 and "*|ref|" in c.failures[0]
    assert compare_output("y", ref, cand, ew.with_(compare="scale"), classifier=False)


def test_passing_convert_means_passing_validate():
    """Any candidate the gate keeps passes validate's fp32 default on the same data (the same rule, looser)."""
    rng = np.random.default_rng(3)
    for magnitude in MAGNITUDES:
        ref, cand = _noisy_pair(magnitude)
        for size in np.geomspace(1e-7, 1e-2, 30):
            k = int(rng.integers(ref.size))
            bad = cand.copy()
            bad.flat[k] += np.float32(size * output_scale(ref) * rng.choice([-1, 1]))
            if _gate_passes(ref, bad):
                assert _validate_passes(ref, bad), (magnitude, size)
        assert _validate_passes(ref, cand) and _gate_passes(ref, cand)


def test_zero_output_uses_the_absolute_floor():
    zero = np.zeros((2, 5), np.float32)
    assert closeness(zero, zero, FP32_ATOL, FP32_RTOL)
    assert not closeness(zero, zero + 1e-6, FP32_ATOL, FP32_RTOL)
    assert closeness(zero, zero + 1e-6, 1e-5, FP32_RTOL)
    v = closeness(zero, zero + 1e-6, FP32_ATOL, FP32_RTOL)
    assert v.scale == 0.0 and v.allowed == FP32_ATOL and v.mismatched == 10
    parity, reasons = parity_gate([{"y": zero}], [{"y": zero + 1e-6}], CONVERT_RTOL)
    assert reasons and parity["y"]["max_abs"] == pytest.approx(1e-6)


def test_scale_rule_numbers():
    ref = np.array([0.0, -1.0, 10.0])
    cand = np.array([0.009, -1.0, 10.0])
    assert closeness(ref, cand, 0.0, 1e-3, SCALE)  # 0.009 <= 1e-3 * 10
    assert not closeness(ref, cand, 0.0, 1e-3, ELEMENTWISE)  # element 0 has |ref| = 0
    v = closeness(ref, cand + [0.002, 0, 0], 0.0, 1e-3, SCALE)
    assert not v and v.error == pytest.approx(0.011) and v.allowed == pytest.approx(0.01) and v.ratio == pytest.approx(1.1)
    assert closeness(ref, cand + [0.002, 0, 0], 0.0, 1e-3, SCALE, statistic="mean")  # mean 0.0037 <= 0.01
    with pytest.raises(ValueError):
        closeness(ref, cand[:2], 0.0, 1e-3)


def test_nonfinite_and_shapes_fail_the_gate():
    ref = np.ones((2, 3), np.float32)
    nan = ref.copy()
    nan[0, 1] = np.nan
    parity, reasons = parity_gate([{"y": ref}], [{"y": nan}], CONVERT_RTOL)
    assert parity["y"]["rel"] == float("inf") and "NaN/Inf" in reasons[0]
    parity, reasons = parity_gate([{"y": ref}], [{"y": ref.T}], CONVERT_RTOL)
    assert "has shape [3, 2]" in reasons[0]
    assert not compare_output("y", ref, nan, KIND_DEFAULTS["fp32"])


def test_gate_stacks_samples_like_validate():
    """Several samples: the gate and validate judge the output over all of them, the same way."""
    ref, cand = _noisy_pair(1.0)
    refs = [{"y": ref[:8]}, {"y": ref[8:] * 1e-3}]
    gots = [{"y": cand[:8]}, {"y": cand[8:] * 1e-3 + np.float32(5e-4 * output_scale(ref))}]
    parity, reasons = parity_gate(refs, gots, CONVERT_RTOL)
    [c] = compare_samples(refs, gots, lambda n: KIND_DEFAULTS["fp32"])
    assert parity["y"]["max_abs"] == pytest.approx(c.metrics["max_abs"])
    assert parity["y"]["rel"] == pytest.approx(c.metrics["max_rel_scale"])
    assert reasons and c  # 5e-4 of the magnitude: over the gate's 1e-4, within validate's 1e-3


# ------------------------------------------------------------------------------------------ settings


def test_defaults_and_describe():
    fp32 = KIND_DEFAULTS["fp32"]
    assert fp32.compare == SCALE and fp32.statistic == "elementwise" and fp32.rtol == FP32_RTOL
    assert KIND_DEFAULTS["fp16"].compare == SCALE and KIND_DEFAULTS["quantized"].compare == ELEMENTWISE
    assert fp32.to_json()["compare"] == "scale" and "compare" not in Tolerance().to_json()
    assert fp32.describe() == f"atol={FP32_ATOL:g} + rtol={FP32_RTOL:g}*scale"
    assert Tolerance().describe() == "atol=0.0001 rtol=0.001 elementwise"


def test_compare_option_and_config_key():
    assert normalize_compare("allclose") == ELEMENTWISE and normalize_compare(" Scale ") == SCALE
    with pytest.raises(UsageError, match="unknown comparison"):
        normalize_compare("relative")
    tc = config_from_table({"compare": "elementwise", "outputs": {"emb": {"compare": "scale"}}}).tolerances
    assert tc.resolve("fp32", "y").compare == ELEMENTWISE and tc.resolve("fp32", "emb").compare == SCALE
    with pytest.raises(UsageError, match="unknown comparison"):
        config_from_table({"compare": "loose"})
    tc = ToleranceConfig()
    tc.add_cli(["1e-4", "logits:1e-3"], None, None, compare=["elementwise", "emb:scale"])
    assert tc.resolve("fp32", "y") == Tolerance(atol=1e-4, rtol=1e-3, statistic="elementwise", compare=ELEMENTWISE)
    assert tc.resolve("fp32", "emb").compare == SCALE and tc.resolve("fp32", "logits").atol == 1e-3
    with pytest.raises(UsageError, match="names no output"):
        ToleranceConfig().add_cli(compare=[":scale"])
    ew = ToleranceConfig()
    ew.add_cli(compare="elementwise")  # alone: allclose at the elementwise defaults of the kind
    assert ew.resolve("fp32", "y") == ELEMENTWISE_DEFAULTS["fp32"] and ew.resolve("fp32", "y").atol == 1e-4
    assert ew.resolve("fp16", "y") == ELEMENTWISE_DEFAULTS["fp16"]
    assert ew.resolve("int8", "y") == KIND_DEFAULTS["quantized"]


def test_reference_check_never_tighter_than_the_default():
    tc = ToleranceConfig()
    tc.add_cli(["0"], ["1e-9"], None, compare=["elementwise"])
    strict = tc.resolve("fp32", "y")
    assert strict.compare == ELEMENTWISE and strict.rtol == 1e-9
    ref_tol = tc.for_reference_check("fp32")("y")
    assert ref_tol.compare == SCALE and ref_tol.rtol == FP32_RTOL and ref_tol.atol == FP32_ATOL
    ref, cand = _noisy_pair(1e11)  # the reference re-run in another process: noise only
    assert not compare_output("y", ref, cand, strict, classifier=False)
    assert compare_output("y", ref, cand, ref_tol, classifier=False)
    loose = ToleranceConfig()
    loose.add_cli(None, ["y:0.5"])
    assert loose.for_reference_check("fp32")("y").rtol == 0.5  # settings may loosen it
