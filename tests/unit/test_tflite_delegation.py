"""The delegation report and the per-op table of .tflite files built here.

One subprocess (TensorFlow's converter, ~10 s) builds three small models with random weights:
- ``split.tflite``: conv -> relu -> cumsum -> conv -> mean -> dense. XNNPACK has no CUMSUM kernel, so
  the graph runs in two delegate partitions with CUMSUM on its builtin kernel between them;
- ``hswish_fp32.tflite``: conv -> hard-swish -> mean -> dense, one partition, nothing left out;
- ``hswish_int8.tflite``: the same fully int8-quantized (float I/O): XNNPACK takes no int8 HARD_SWISH,
  which cuts the graph in two with HARD_SWISH on its builtin kernel.
Everything else runs in this process with numpy + ai-edge-litert only (the device profile).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeport.errors import InputError

BUILD = textwrap.dedent('''
    import sys
    import numpy as np
    import tensorflow as tf

    out = sys.argv[1]
    rng = np.random.default_rng(1)
    k1 = tf.constant(rng.standard_normal((3, 3, 3, 8)).astype(np.float32) * 0.3)
    b1 = tf.constant(rng.standard_normal(8).astype(np.float32) * 0.1)
    k2 = tf.constant(rng.standard_normal((1, 1, 8, 8)).astype(np.float32) * 0.3)
    w = tf.constant(rng.standard_normal((8, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="image")])
    def split(image):
        h = tf.nn.relu(tf.nn.conv2d(image, k1, 1, "SAME") + b1)
        h = tf.math.cumsum(h, axis=2)
        h = tf.nn.conv2d(h, k2, 1, "SAME")
        return {"logits": tf.matmul(tf.reduce_mean(h, axis=[1, 2]), w)}

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="image")])
    def hswish(image):
        h = tf.nn.conv2d(image, k1, 1, "SAME") + b1
        h = h * tf.nn.relu6(h + 3.0) / 6.0
        return {"logits": tf.matmul(tf.reduce_mean(h, axis=[1, 2]), w)}

    def convert(fn, quant=False):
        c = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        if quant:
            def rep():
                for _ in range(16):
                    yield [rng.standard_normal((1, 16, 16, 3)).astype(np.float32)]
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = rep
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return c.convert()

    open(f"{out}/split.tflite", "wb").write(convert(split))
    open(f"{out}/hswish_fp32.tflite", "wb").write(convert(hswish))
    open(f"{out}/hswish_int8.tflite", "wb").write(convert(hswish, quant=True))
''')


MODELS = ("split.tflite", "hswish_fp32.tflite", "hswish_int8.tflite")


def build_models(tmp_path_factory) -> Path:
    """The three models, built once per test session (skips when TensorFlow or LiteRT is missing)."""
    pytest.importorskip("ai_edge_litert")
    out = tmp_path_factory.getbasetemp() / "tflite-delegation-models"
    if all((out / name).is_file() for name in MODELS):
        return out
    out.mkdir(exist_ok=True)
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is needed to build the test models")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_models(tmp_path_factory)


def test_split_model_has_two_partitions_around_cumsum(models):
    from edgeport.runtimes.tflite_delegation import delegation_report, summary_line

    r = delegation_report(models / "split.tflite")
    assert r["partitions"] == 2 and sorted(r["partition_sizes"]) == [1, 3]
    assert r["builtin_ops"] == {"CUMSUM": 1}
    assert r["delegated_ops"] == {"CONV_2D": 2, "FULLY_CONNECTED": 1, "MEAN": 1}
    assert r["other_subgraph_ops"] == {}
    assert 0.0 < r["outside_share"] < 1.0 and r["outside_ms"] > 0 and r["inside_ms"] > 0
    assert r["outside_share"] == pytest.approx(r["outside_ms"] / (r["outside_ms"] + r["inside_ms"]), rel=0.02)
    assert 0.3 < r["coverage"] < 3.0  # the parts, timed alone, add up to about the whole
    assert "no op profiler" in r["note"]
    assert summary_line(r).startswith("2 XNNPACK partitions; builtin kernels: CUMSUM x1; ")


def test_fp32_hard_swish_is_delegated_whole_and_int8_is_cut(models):
    from edgeport.runtimes.tflite_delegation import delegation_report

    fp32 = delegation_report(models / "hswish_fp32.tflite", timing=False)
    assert fp32["partitions"] == 1 and fp32["builtin_ops"] == {}
    assert fp32["delegated_ops"] == {"CONV_2D": 1, "FULLY_CONNECTED": 1, "HARD_SWISH": 1, "MEAN": 1}
    assert fp32["outside_share"] is None and "not measured" in fp32["note"]
    int8 = delegation_report(models / "hswish_int8.tflite")
    assert int8["partitions"] == 2 and int8["builtin_ops"] == {"HARD_SWISH": 1}
    assert int8["delegated_ops"] == {"CONV_2D": 1, "DEQUANTIZE": 1, "FULLY_CONNECTED": 1, "MEAN": 1, "QUANTIZE": 1}
    assert int8["outside_share"] > 0.05  # an int8 HARD_SWISH on the reference kernel is not free


def test_cut_out_op_computes_what_it_computes_in_the_whole_model(models):
    from edgeport.runtimes.tflite_delegation import _Cutter, _graph, _interpreter

    buf, ops, _ = _graph(models / "split.tflite")
    cutter = _Cutter(buf, ops, 1)
    (node,) = [i for i, op in enumerate(ops) if op["name"] == "CUMSUM"]
    content, inputs = cutter.cut([node])
    interp = _interpreter(1, model_content=content)
    for t in inputs:
        interp.set_tensor(t, cutter.values[t])
    interp.invoke()
    out = ops[node]["outputs"][0]
    got = interp.get_tensor(out)
    assert np.abs(cutter.values[out]).max() > 0
    np.testing.assert_allclose(got, cutter.values[out], rtol=1e-6, atol=1e-6)


def test_op_profile_shares_sum_to_one(models):
    from edgeport.runtimes.tflite_delegation import op_profile

    prof = op_profile(models / "split.tflite")
    rows = {(o["op"], o["placement"]): o for o in prof["ops"]}
    assert set(rows) == {("CONV_2D", "delegate"), ("CUMSUM", "builtin"), ("MEAN", "delegate"), ("FULLY_CONNECTED", "delegate")}
    assert rows[("CONV_2D", "delegate")]["count"] == 2
    assert sum(o["share"] for o in prof["ops"]) == pytest.approx(1.0, abs=0.01)
    assert [o["ms"] for o in prof["ops"]] == sorted((o["ms"] for o in prof["ops"]), reverse=True)
    assert prof["total_ms"] > 0 and prof["full_ms"] > 0
    assert len(op_profile(models / "split.tflite", top=2)["ops"]) == 2


def test_not_a_tflite_file_is_bad_input(tmp_path):
    from edgeport.runtimes.tflite_delegation import delegation_or_reason, delegation_report

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="not a TFLite flatbuffer"):
        delegation_report(bad)
    assert "not a TFLite flatbuffer" in delegation_or_reason(bad)["error"]


def test_inspect_reexport_is_the_one_reader():
    from edgeport import tflite_fb
    from edgeport.convert import tflite_inspect

    assert tflite_inspect.inspect_tflite is tflite_fb.inspect_tflite
    assert tflite_inspect.layer_hint is tflite_fb.layer_hint
