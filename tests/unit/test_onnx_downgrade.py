"""The ONNX rewriter that makes a model onnx-tf 1.10 reads (opset <= 15, IR <= 8): the steps around the
version converter. The decompositions (LayerNormalization, Gelu, Erf, Squeeze, Split) are tested in
test_backends.py with the numbers they give."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from edgeport.convert.onnx_downgrade import MAX_IR, LegacyOnnxNeeded, make_compatible  # noqa: E402


def _model(node, opset: int, *, out_shape=None, extra_imports=()):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_imports])
    model.ir_version = 10
    return model


def _run(model, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_an_op_without_an_opset_15_form_needs_the_legacy_exporter():
    with pytest.raises(LegacyOnnxNeeded, match="^Mish has no opset-15 form$"):
        make_compatible(_model(helper.make_node("Mish", ["x"], ["y"]), 18, out_shape=[2, 3]))


def test_reduce_leftover_attribute_is_dropped_and_the_numbers_stay():
    """onnx.version_converter's 18 -> 17 Reduce adapter keeps noop_with_empty_axes, which opset 13 lacks."""
    src = _model(helper.make_node("ReduceMax", ["x"], ["y"], keepdims=1, noop_with_empty_axes=0), 18)
    out, notes, renamed = make_compatible(src)
    (node,) = out.graph.node
    assert [a.name for a in node.attribute] == ["keepdims"]
    assert notes == ["opset 18 -> 15 (onnx.version_converter)", f"IR version 10 -> {MAX_IR}"]
    assert renamed == {}
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    assert np.array_equal(_run(out, x), _run(src, x))


def test_reduce_with_noop_on_empty_axes_has_no_opset_15_form():
    src = _model(helper.make_node("ReduceSum", ["x"], ["y"], keepdims=1, noop_with_empty_axes=1), 18)
    with pytest.raises(LegacyOnnxNeeded, match="ReduceSum with noop_with_empty_axes=1 has no opset-15 form"):
        make_compatible(src)


def test_already_opset_15_only_lowers_ir_and_drops_unused_domains_on_a_copy():
    src = _model(helper.make_node("Relu", ["x"], ["y"]), 15, out_shape=[2, 3],
                 extra_imports=[helper.make_opsetid("pkg.onnxscript.torch_lib", 1)])
    out, notes, _ = make_compatible(src)
    assert notes == [f"IR version 10 -> {MAX_IR}"]
    assert [(o.domain, o.version) for o in out.opset_import] == [("", 15)]
    assert out.ir_version == MAX_IR
    assert src.ir_version == 10 and len(src.opset_import) == 2  # the caller's model is left as it was


def test_an_opset_below_9_is_refused():
    with pytest.raises(LegacyOnnxNeeded, match="opset 8 is older than onnx-tf supports"):
        make_compatible(_model(helper.make_node("Relu", ["x"], ["y"]), 8, out_shape=[2, 3]))
