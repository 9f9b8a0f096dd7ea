"""prepare_for_xnnpack: convolution and GELU rewrites keep what ONNX Runtime computes and have the expected form."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeport.convert.xnnpack_rewrite import (  # noqa: E402
    MAX_DEPTHWISE_TAPS,
    live_taps,
    prepare_for_xnnpack,
    row_bands,
)

RNG = np.random.default_rng(0)


def _conv_model(cin: int, cout: int, size: tuple[int, int], kernel: tuple[int, int], *, group: int = 1,
                pads: tuple[int, int, int, int] = (0, 0, 0, 0), strides: tuple[int, int] = (1, 1),
                dilations: tuple[int, int] = (1, 1), bias: bool = True, opset: int = 18):
    w = RNG.standard_normal((cout, cin // group, *kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    if bias:
        inits.append(numpy_helper.from_array(RNG.uniform(-1, 1, cout).astype(np.float32), "b"))
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv", group=group,
                            kernel_shape=list(kernel), pads=list(pads), strides=list(strides), dilations=list(dilations))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, *size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model, x):  # noqa: ANN001, ANN202
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _assert_same(before, after) -> None:  # noqa: ANN001
    onnx.checker.check_model(after)
    shape = [d.dim_value for d in before.graph.input[0].type.tensor_type.shape.dim]
    x = RNG.standard_normal(shape).astype(np.float32)
    a, b = _run(before, x), _run(after, x)
    assert a.shape == b.shape
    assert np.abs(a).max() > 0.5  # the output carries signal
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def _convs(model) -> list:  # noqa: ANN001
    return [n for n in model.graph.node if n.op_type == "Conv"]


def _kernel(model, node) -> tuple[int, ...]:  # noqa: ANN001
    inits = {i.name: i for i in model.graph.initializer}
    return tuple(inits[node.input[1]].dims[2:])


def test_live_taps_and_row_bands() -> None:
    assert live_taps(14, 3, 1, 24, 24, 24) == (1, 1)  # only the centre tap reaches the 14 inputs
    assert live_taps(14, 3, 1, 12, 12, 12) == (0, 2)  # the outer taps reach 2 rows each
    assert live_taps(5, 3, 1, 1, 1, 1) == (0, 2)
    assert row_bands(7, 7) == [(0, 3), (3, 6), (6, 7)]
    assert row_bands(5, 5) == [(0, 5)]
    assert row_bands(3, 30) == [(0, 3)]  # a single row with more taps than the limit: nothing to split into
    assert all((r1 - r0) * 7 <= MAX_DEPTHWISE_TAPS for r0, r1 in row_bands(7, 7))


@pytest.mark.parametrize("rate", [24, 36])
def test_padding_only_taps_are_dropped(rate: int) -> None:
    model = _conv_model(8, 6, (14, 14), (3, 3), pads=(rate,) * 4, dilations=(rate, rate))
    snapshot = model.SerializeToString()
    out, notes = prepare_for_xnnpack(model)
    assert model.SerializeToString() == snapshot  # the input model is not modified
    (conv,) = _convs(out)
    assert _kernel(out, conv) == (1, 1)
    assert [a.ints for a in conv.attribute if a.name == "pads"] == [[0, 0, 0, 0]]
    assert len(notes) == 1 and "3x3 -> 1x1" in notes[0]
    _assert_same(model, out)


def test_asymmetric_dead_taps_are_trimmed_on_one_side() -> None:
    # dilation 4, 6 rows of padding above and 2 below a 4-row input: only the first row of taps reads padding alone
    model = _conv_model(4, 5, (4, 9), (3, 3), pads=(6, 1, 2, 1), dilations=(4, 1))
    out, notes = prepare_for_xnnpack(model)
    (conv,) = _convs(out)
    assert _kernel(out, conv) == (2, 3)
    assert [a.ints for a in conv.attribute if a.name == "pads"] == [[2, 1, 2, 1]]
    _assert_same(model, out)


@pytest.mark.parametrize("size, rate, bias, share", [
    (14, 12, True, "43%"), (14, 12, False, "43%"),  # DeepLabV3's rate 12 at a 224x224 input
    (33, 24, True, "52%"),  # rate 24 at torchvision's 520x520
])
def test_sparse_dilated_conv_is_split_by_output_region(size: int, rate: int, bias: bool, share: str) -> None:
    model = _conv_model(8, 6, (size, size), (3, 3), pads=(rate,) * 4, dilations=(rate, rate), bias=bias)
    out, notes = prepare_for_xnnpack(model)
    convs = _convs(out)
    assert len(convs) == 9 and all(_kernel(out, c) == (1, 1) for c in convs)  # one 1x1 conv per tap
    assert sum(len(c.input) == 3 for c in convs) == int(bias)  # the bias is added once
    assert f"{share} of the products" in notes[0]
    _assert_same(model, out)


def test_mostly_live_dilated_conv_is_left_alone() -> None:
    model = _conv_model(8, 6, (33, 33), (3, 3), pads=(12,) * 4, dilations=(12, 12))  # 76% of the products are real
    assert prepare_for_xnnpack(model) == (model, [])


def test_a_wide_depthwise_kernel_is_trimmed_but_not_banded() -> None:
    # 3x27 depthwise, dilation 9 on the rows of a 5-row input: the outer rows read only padding; 27 taps per row
    model = _conv_model(4, 4, (5, 30), (3, 27), group=4, pads=(9, 13, 9, 13), dilations=(9, 1))
    out, notes = prepare_for_xnnpack(model)
    assert [_kernel(out, c) for c in _convs(out)] == [(1, 27)] and "row bands" not in notes[0]
    _assert_same(model, out)


def test_dense_convolutions_are_left_alone() -> None:
    model = _conv_model(4, 4, (14, 14), (3, 3), pads=(1,) * 4)  # an ordinary 3x3: every tap is needed
    assert prepare_for_xnnpack(model) == (model, [])
    dw = _conv_model(8, 8, (10, 10), (5, 5), group=8, pads=(2,) * 4)  # 25 taps: fast as it is
    assert prepare_for_xnnpack(dw) == (dw, [])


@pytest.mark.parametrize("kw", [
    {},
    {"strides": (2, 2)},
    {"dilations": (2, 2), "pads": (6, 6, 6, 6)},
    {"pads": (1, 3, 5, 2), "bias": False},
    {"cout": 16},  # channel multiplier 2
])
def test_large_depthwise_kernel_becomes_row_bands(kw) -> None:  # noqa: ANN001
    args = {"pads": (3, 3, 3, 3), "cout": 8, **kw}
    cout = args.pop("cout")
    model = _conv_model(8, cout, (17, 15), (7, 7), group=8, **args)
    out, notes = prepare_for_xnnpack(model)
    convs = _convs(out)
    assert [_kernel(out, c) for c in convs] == [(3, 7), (3, 7), (1, 7)]
    assert all(h * w <= MAX_DEPTHWISE_TAPS for h, w in (_kernel(out, c) for c in convs))
    assert Counter(n.op_type for n in out.graph.node)["Add"] == 2
    assert "split into 3 row bands of 3+3+1 rows" in notes[0]
    _assert_same(model, out)


def _gelu_model(pattern: str, opset: int = 18):
    """x -> MatMul -> exact GELU in one of the exporters' spellings -> y."""
    c = {"sqrt2": np.array(np.sqrt(2.0), np.float32), "inv_sqrt2": np.array(1 / np.sqrt(2.0), np.float32),
         "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32),
         "w": RNG.standard_normal((6, 5)).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    if pattern == "dynamo":  # h * ((erf(h / sqrt2) + 1) * 0.5)
        nodes += [helper.make_node("Div", ["h", "sqrt2"], ["t1"]), helper.make_node("Erf", ["t1"], ["t2"]),
                  helper.make_node("Add", ["t2", "one"], ["t3"]), helper.make_node("Mul", ["t3", "half"], ["t4"]),
                  helper.make_node("Mul", ["h", "t4"], ["y"])]
    elif pattern == "legacy":  # (h * (erf(h / sqrt2) + 1)) * 0.5
        nodes += [helper.make_node("Div", ["h", "sqrt2"], ["t1"]), helper.make_node("Erf", ["t1"], ["t2"]),
                  helper.make_node("Add", ["t2", "one"], ["t3"]), helper.make_node("Mul", ["h", "t3"], ["t4"]),
                  helper.make_node("Mul", ["t4", "half"], ["y"])]
    elif pattern == "half_inside":  # h * (0.5 * erf(h / sqrt2) + 1): not a GELU
        nodes += [helper.make_node("Div", ["h", "sqrt2"], ["t1"]), helper.make_node("Erf", ["t1"], ["t2"]),
                  helper.make_node("Mul", ["t2", "half"], ["t3"]), helper.make_node("Add", ["t3", "one"], ["t4"]),
                  helper.make_node("Mul", ["h", "t4"], ["y"])]
    else:  # (h * 0.5) * (1 + erf(h * (1 / sqrt2)))
        nodes += [helper.make_node("Mul", ["inv_sqrt2", "h"], ["t1"]), helper.make_node("Erf", ["t1"], ["t2"]),
                  helper.make_node("Add", ["one", "t2"], ["t3"]), helper.make_node("Mul", ["h", "half"], ["hh"]),
                  helper.make_node("Mul", ["hh", "t3"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
                              [numpy_helper.from_array(v, k) for k, v in c.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("pattern", ["dynamo", "legacy", "half_first"])
def test_exact_gelu_becomes_one_gelu_node(pattern: str) -> None:
    model = _gelu_model(pattern)
    out, notes = prepare_for_xnnpack(model)
    ops = Counter(n.op_type for n in out.graph.node)
    assert ops == Counter({"MatMul": 1, "Gelu": 1}), ops
    assert next(o.version for o in out.opset_import if o.domain == "") == 20
    assert "1 exact GELU" in notes[0] and "opset raised from 18 to 20" in notes[0]
    assert {i.name for i in out.graph.initializer} == {"w"}  # the pattern's constants are gone
    x = RNG.standard_normal((3, 6)).astype(np.float32) * 2
    a, b = _run(model, x), _run(out, x)
    assert np.abs(a).max() > 0.5 and np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_gelu_lookalikes_are_left_alone() -> None:
    model = _gelu_model("dynamo")
    next(i for i in model.graph.initializer if i.name == "half").CopyFrom(
        numpy_helper.from_array(np.array(0.4, np.float32), "half"))  # not a GELU any more
    assert prepare_for_xnnpack(model) == (model, [])
    inside = _gelu_model("half_inside")
    assert prepare_for_xnnpack(inside) == (inside, [])
    shared = _gelu_model("dynamo")  # an intermediate read elsewhere too: fusing would lose it
    shared.graph.output.append(helper.make_tensor_value_info("t3", TensorProto.FLOAT, [None, None]))
    assert prepare_for_xnnpack(shared) == (shared, [])


def test_onnx2tf2_retries_without_the_rewrites_first() -> None:
    from edgeport.convert.onnx2tf2_backend import _next_try, _Try
    from edgeport.convert.onnx2tf_backend import Onnx2TfOptions

    opts, _ = Onnx2TfOptions.from_dict({})
    dynamic = {"x": ["N", 3, 14, 14]}
    failed = _Try(static=False, reason="Input tensor 33 lacks data")
    retry = _next_try(failed, opts, dynamic, [failed], rewritten=True)
    assert retry is not None and not retry.xnnpack and not retry.static and "lacks data" in retry.why
    retry.reason = "still failing"
    then = _next_try(retry, opts, dynamic, [failed, retry], rewritten=True)  # on to the next remedy, still plain
    assert then is not None and then.static and not then.xnnpack
    plain = _next_try(failed, opts, dynamic, [failed], rewritten=False)  # nothing was rewritten: no such retry
    assert plain is not None and plain.static and plain.xnnpack
