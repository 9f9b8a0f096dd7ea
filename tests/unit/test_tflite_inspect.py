"""tflite_inspect, the TFLite session and the IO mapping, on .tflite files built here.

One subprocess (TensorFlow's converter, ~10 s) builds five small models from tf.functions:
- ``builtin.tflite``: conv -> relu -> mean -> dense, builtin ops only, with a ``serving_default``
  signature, and a float reference for it; ``nosig.tflite``: the same without signature;
- ``flex.tflite``: tf.math.erf with SELECT_TF_OPS, which becomes the Select-TF op ``FlexErf``;
- ``custom.tflite``: the same erf with builtins only and ``allow_custom_ops``: a custom op ``Erf``;
- ``int8.tflite``: the builtin model fully quantized with int8 inputs and outputs.
Everything else (inspection, sessions, mapping) runs in this process with numpy + ai-edge-litert only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeport.convert import check, io_resolution
from edgeport.convert.tflite_inspect import describe_offenders, inspect_tflite
from edgeport.errors import InputError
from edgeport.spec import IOSpec, TensorSpec

_BUILD = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow as tf

    out = sys.argv[1]
    rng = np.random.default_rng(0)
    k = tf.constant(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
    b = tf.constant(rng.standard_normal(4).astype(np.float32))
    w = tf.constant(rng.standard_normal((4, 5)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32, name="image")])
    def net(image):
        h = tf.nn.relu(tf.nn.conv2d(image, k, 1, "SAME") + b)
        h = tf.reduce_mean(h, axis=[1, 2], name="pooled")
        return {"logits": tf.matmul(h, w, name="head")}

    @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.float32, name="x")])
    def erf(x):
        return {"y": tf.math.erf(x * 0.5, name="act") * x}

    module = tf.Module()
    module.net = net
    tf.saved_model.save(module, f"{out}/sm", signatures={"serving_default": net})

    def convert(fn, ops, custom=False, quant=False):
        if fn is None:  # from the SavedModel: keeps the serving_default signature
            c = tf.lite.TFLiteConverter.from_saved_model(f"{out}/sm")
        else:  # from a concrete function: no signature, tensors are addressed by name
            c = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        c.target_spec.supported_ops = ops
        c.allow_custom_ops = custom
        if quant:
            def rep():
                for _ in range(32):
                    yield [rng.standard_normal((1, 8, 8, 3)).astype(np.float32)]
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = rep
            c.inference_input_type = tf.int8
            c.inference_output_type = tf.int8
        return c.convert()

    B = tf.lite.OpsSet.TFLITE_BUILTINS
    files = {
        "builtin.tflite": convert(None, [B]),
        "nosig.tflite": convert(net, [B]),
        "flex.tflite": convert(erf, [B, tf.lite.OpsSet.SELECT_TF_OPS]),
        "custom.tflite": convert(erf, [B], custom=True),
        "int8.tflite": convert(None, [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], quant=True),
    }
    for name, data in files.items():
        open(f"{out}/{name}", "wb").write(data)
    arrays = {}
    for s in range(2):
        x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
        arrays[f"input:{s}:image"] = x.transpose(0, 3, 1, 2)  # the "PyTorch" reference layout is NCHW
        arrays[f"output:{s}:logits"] = net(tf.constant(x))["logits"].numpy()
    np.savez(f"{out}/reference.npz", **arrays)
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    pytest.importorskip("ai_edge_litert")
    try:
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            pytest.skip("tensorflow is needed to build the test models")
    except ValueError:
        pytest.skip("tensorflow is needed to build the test models")
    out = tmp_path_factory.mktemp("tflite")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _BUILD, str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _io(image_dtype: str = "float32", logits_dtype: str = "float32") -> IOSpec:
    return IOSpec(inputs=[TensorSpec("image", (1, 8, 8, 3), image_dtype, "NHWC", (0, 2, 3, 1), "image")],
                  outputs=[TensorSpec("logits", (1, 5), logits_dtype, None, (0, 1), "logits")])


def test_builtin_ops_io_and_signature(models):
    info = inspect_tflite(models / "builtin.tflite")
    assert info["ops"]["CONV_2D"] == 1 and info["ops"]["FULLY_CONNECTED"] + info["ops"].get("BATCH_MATMUL", 0) >= 1
    assert "MEAN" in info["ops"]
    assert info["flex_ops"] == [] and info["custom_ops"] == [] and info["offenders"] == []
    assert info["size_bytes"] == (models / "builtin.tflite").stat().st_size
    (inp,) = info["inputs"]
    assert inp["shape"] == [1, 8, 8, 3] and inp["dtype"] == "float32"
    sig = info["signatures"]["serving_default"]
    assert list(sig["inputs"]) == ["image"] and list(sig["outputs"]) == ["logits"]
    assert describe_offenders(info) == ""


def test_model_without_signature_runs_by_tensor_names(models):
    info = inspect_tflite(models / "nosig.tflite")
    assert info["signatures"] == {}
    nat_in, nat_out = io_resolution.tflite_natives(info)
    assert [n.name for n in nat_in] == ["image"] and len(nat_out) == 1
    io = IOSpec(inputs=[TensorSpec("image", (1, 8, 8, 3), "float32", "NHWC", (0, 2, 3, 1), "image")],
                outputs=[TensorSpec(nat_out[0].name, (1, 5), ref_name="logits")])
    res = check.run(str(models / "nosig.tflite"), "tflite", io.to_json(), str(models / "reference.npz"))
    assert res["passed"], res["reason"]


def test_flex_op_detected_with_its_layer(models):
    info = inspect_tflite(models / "flex.tflite")
    assert info["flex_ops"] == ["FlexErf"]
    assert info["ops"]["FlexErf"] == 1
    (off,) = info["offenders"]
    assert off["op"] == "FlexErf" and "act" in off["tensor"]
    text = describe_offenders(info)
    assert text.startswith("Flex ops FlexErf (from layer") and "act" in text


def test_custom_op_detected(models):
    info = inspect_tflite(models / "custom.tflite")
    assert info["flex_ops"] == []
    assert info["custom_ops"] == ["Erf"]
    assert describe_offenders(info).startswith("custom ops Erf")


def test_not_a_tflite(tmp_path, models):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(InputError):
        inspect_tflite(bad)
    cut = tmp_path / "cut.tflite"
    cut.write_bytes((models / "builtin.tflite").read_bytes()[:64])
    with pytest.raises(InputError):
        inspect_tflite(cut)
    with pytest.raises(InputError):
        inspect_tflite(tmp_path / "missing.tflite")


def test_check_passes_float_and_rejects_flex(models):
    res = check.run(str(models / "builtin.tflite"), "tflite", _io().to_json(), str(models / "reference.npz"))
    assert res["passed"], res["reason"]
    assert res["worst_rel"] < 1e-5 and res["samples"] == 2
    assert res["backend"].startswith("ai-edge-litert ")
    flex_io = IOSpec(inputs=[TensorSpec("x", (1, 6), ref_name="x")], outputs=[TensorSpec("y", (1, 6), ref_name="y")])
    np.savez(models / "erf_ref.npz", **{"input:0:x": np.zeros((1, 6), np.float32), "output:0:y": np.zeros((1, 6), np.float32)})
    res = check.run(str(models / "flex.tflite"), "tflite", flex_io.to_json(), str(models / "erf_ref.npz"))
    assert not res["passed"] and res["flex_ops"] == ["FlexErf"]
    assert "FlexErf" in res["reason"] and "--allow-flex" in res["reason"]


def test_int8_session_quantizes_feeds_and_dequantizes_outputs(models):
    from edgeport.runtimes.tflite import TFLiteSession

    io = _io("int8", "int8")
    sess = TFLiteSession.load(models / "int8.tflite", io)
    assert sess.input_details()["image"]["dtype"] == np.int8
    res = check.run(str(models / "int8.tflite"), "tflite", io.to_json(), str(models / "reference.npz"), rtol=0.1)
    assert res["passed"], res  # int8 is coarse, but dequantized outputs are on the float scale
    float_res = check.run(str(models / "builtin.tflite"), "tflite", _io().to_json(), str(models / "reference.npz"))
    assert res["worst_rel"] > float_res["worst_rel"]


def test_activation_ranges_from_the_one_flatbuffer_reader(models):
    """Each per-tensor int8 tensor's representable float range is (q_min - zero_point) * scale .. (q_max - zero_point) * scale."""
    from edgeport.quantize.debug import activation_ranges
    from edgeport.tflite_fb import main_tensors

    buf = (models / "int8.tflite").read_bytes()
    tensors = {t["name"]: t for t in main_tensors(buf)}
    ranges = activation_ranges(buf)
    per_tensor = [t for t in tensors.values() if t["dtype"] == "int8" and len(t.get("quantization", {}).get("scale", [])) == 1]
    assert per_tensor and set(ranges) == {t["name"] for t in per_tensor}
    for t in per_tensor:
        scale, zp = t["quantization"]["scale"][0], t["quantization"]["zero_point"][0]
        lo, hi = ranges[t["name"]]
        assert lo == (-128 - zp) * scale and hi == (127 - zp) * scale and lo < hi
    assert not activation_ranges((models / "builtin.tflite").read_bytes())  # a float model has none


def test_resolve_io_maps_by_values_not_names(models):
    """Outputs named the wrong way round and transposed are still mapped to the right reference."""
    ref_io = IOSpec(inputs=[TensorSpec("a", (1, 4))],
                    outputs=[TensorSpec("p", (1, 3, 2), layout="NCL"), TensorSpec("q", (1, 3, 2))])
    rng = np.random.default_rng(1)
    ref_in = [{"a": rng.standard_normal((1, 4)).astype(np.float32)} for _ in range(2)]
    ref_out = [{"p": rng.standard_normal((1, 3, 2)), "q": rng.standard_normal((1, 3, 2))} for _ in range(2)]
    path = models / "synthetic.npz"
    np.savez(path, **{f"{kind}:{k}:{n}": v for k, (i, o) in enumerate(zip(ref_in, ref_out))
                      for kind, d in (("input", i), ("output", o)) for n, v in d.items()})
    by_feed = {ref_in[k]["a"].tobytes(): k for k in range(2)}

    def runner(specs, feeds):  # "q" comes out under the name "p", and "p" transposed under "q"
        outs = []
        for f in feeds:
            k = by_feed[f["serving_default_a:0"].tobytes()]
            outs.append({"p": ref_out[k]["q"].astype(np.float32), "q": ref_out[k]["p"].transpose(0, 2, 1).astype(np.float32)})
        return outs

    natives_in = [io_resolution.NativeTensor("serving_default_a:0", (1, 4), "float32")]
    natives_out = [io_resolution.NativeTensor("p", (1, 3, 2), "float32"), io_resolution.NativeTensor("q", (1, 2, 3), "float32")]
    res = io_resolution.resolve_io(natives_in, natives_out, ref_io, path, runner, lambda t: io_resolution.identity(t.rank))
    outs = {t.ref_name: t for t in res.io.outputs}
    assert outs["q"].name == "p" and outs["q"].perm == (0, 1, 2)
    assert outs["p"].name == "q" and outs["p"].perm == (0, 2, 1) and outs["p"].layout == "NLC"
    assert res.io.inputs[0].name == "serving_default_a:0" and res.io.inputs[0].ref_name == "a"
    assert res.verified and res.worst_rel < 1e-6
    assert any("matched to" in n for n in res.notes), res.notes
    json.dumps(res.io.to_json())


def test_resolve_io_unverified_when_the_model_cannot_run(models):
    from edgeport.errors import RuntimeFailure

    ref_io = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), layout="NCHW")], outputs=[TensorSpec("logits", (1, 5))])

    def runner(specs, feeds):
        raise RuntimeFailure("boom")

    res = io_resolution.resolve_io([io_resolution.NativeTensor("image", (1, 8, 8, 3), "float32")],
                           [io_resolution.NativeTensor("logits", (1, 5), "float32")], ref_io, models / "reference.npz",
                           runner, lambda t: io_resolution.channels_last_perm(t.rank))
    assert res.worst_rel is None and not res.verified
    assert res.io.inputs[0].perm == (0, 2, 3, 1) and res.io.inputs[0].layout == "NHWC"
    assert any("NOT verified" in n for n in res.notes)
