"""prepare_for_onnx2tf2: LSTM rewrites keep what ONNX Runtime computes and have the expected structure."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgeport.convert.onnx_rewrite import prepare_for_onnx2tf2  # noqa: E402

STEPS, FEATURES, HIDDEN = 7, 5, 6


class _Net(torch.nn.Module):
    def __init__(self, layers: int, bidirectional: bool, batch_first: bool, with_state: bool) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(FEATURES, HIDDEN, num_layers=layers, bidirectional=bidirectional,
                                  batch_first=batch_first)
        self.with_state = with_state

    def forward(self, x, h0=None, c0=None):  # noqa: ANN001, ANN201
        y, (h, c) = self.lstm(x, (h0, c0)) if self.with_state else self.lstm(x)
        return y, h, c


def _export(layers: int = 1, bidirectional: bool = False, batch_first: bool = True, with_state: bool = False,
            batch: int = 2, seed: int = 0, dynamic_steps: bool = False):
    torch.manual_seed(seed)
    net = _Net(layers, bidirectional, batch_first, with_state).eval()
    with torch.no_grad():  # live weights with a visible bias, not the init's near-zero one
        for p in net.parameters():
            p.uniform_(-0.6, 0.6)
    x = torch.randn(batch, STEPS, FEATURES) if batch_first else torch.randn(STEPS, batch, FEATURES)
    args: tuple = (x,)
    names = ["x"]
    if with_state:
        d = layers * (2 if bidirectional else 1)
        args = (x, torch.randn(d, batch, HIDDEN), torch.randn(d, batch, HIDDEN))
        names = ["x", "h0", "c0"]
    buf = io.BytesIO()
    axes = {"x": {1 if batch_first else 0: "T"}} if dynamic_steps else None
    torch.onnx.export(net, args, buf, input_names=names, output_names=["y", "h", "c"], opset_version=17,
                      dynamo=False, dynamic_axes=axes)
    return onnx.load_from_string(buf.getvalue()), {n: a.numpy() for n, a in zip(names, args)}


def _run(model, feeds):  # noqa: ANN001, ANN202
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _assert_same(before, after, feeds) -> None:  # noqa: ANN001
    onnx.checker.check_model(after)
    for a, b in zip(_run(before, feeds), _run(after, feeds)):
        assert a.shape == b.shape
        assert np.abs(a).max() > 0.05  # the outputs carry signal
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(a).max()))


def _ops(model) -> Counter:  # noqa: ANN001
    return Counter(n.op_type for n in model.graph.node)


@pytest.mark.parametrize("kw", [
    {},  # one layer, batch_first
    {"batch_first": False},
    {"layers": 2},  # stacked
    {"bidirectional": True},
    {"layers": 2, "bidirectional": True, "with_state": True},  # given initial states
])
def test_unroll_keeps_outputs_and_removes_lstm(kw) -> None:  # noqa: ANN001
    model, feeds = _export(**kw)
    snapshot = model.SerializeToString()
    out, notes = prepare_for_onnx2tf2(model, lstm="unroll")
    assert model.SerializeToString() == snapshot  # the input model is not modified
    lstms = _ops(model)["LSTM"]
    assert lstms == kw.get("layers", 1)
    assert _ops(out)["LSTM"] == 0
    assert len([n for n in notes if "unrolled over its 7 time steps" in n]) == lstms
    # one input projection per direction and layer, one recurrent MatMul per step after the first (zero state)
    dirs = 2 if kw.get("bidirectional") else 1
    rec_per_dir = STEPS if kw.get("with_state") else STEPS - 1
    assert _ops(out)["MatMul"] == lstms * dirs * (1 + rec_per_dir)
    assert "Split" not in _ops(out)  # Slice only: onnx2tf's Split lowering is not delegated to XNNPACK
    _assert_same(model, out, feeds)


def test_unroll_bidirectional_batch_one() -> None:
    model, _ = _export(bidirectional=True, batch=1)
    out, _ = prepare_for_onnx2tf2(model, lstm="unroll")
    _, feeds = _export(bidirectional=True, batch=1, seed=3)
    _assert_same(model, out, feeds)


@pytest.mark.parametrize("kw", [{"bidirectional": True}, {"layers": 2, "bidirectional": True, "with_state": True}])
def test_split_bidirectional(kw) -> None:  # noqa: ANN001
    model, feeds = _export(**kw)
    out, notes = prepare_for_onnx2tf2(model, lstm="split")
    layers = kw.get("layers", 1)
    directions = Counter(next(a.s.decode() for a in n.attribute if a.name == "direction")
                         for n in out.graph.node if n.op_type == "LSTM")
    assert directions == {"forward": layers, "reverse": layers}
    assert len([n for n in notes if "split into a forward and a reverse LSTM" in n]) == layers
    _assert_same(model, out, feeds)


def test_split_leaves_unidirectional_alone_and_keep_is_identity() -> None:
    model, _ = _export()
    assert prepare_for_onnx2tf2(model, lstm="split") == (model, [])
    assert prepare_for_onnx2tf2(model, lstm="keep") == (model, [])
    with pytest.raises(ValueError, match="lstm must be one of"):
        prepare_for_onnx2tf2(model, lstm="fast")


def test_unroll_keeps_a_dynamic_sequence_length_with_a_reason() -> None:
    model, _ = _export(dynamic_steps=True)
    out, notes = prepare_for_onnx2tf2(model, lstm="unroll")
    assert out is model
    assert len(notes) == 1 and "dynamic sequence length" in notes[0]


def _lstm_nodes(model):  # noqa: ANN001, ANN202
    return [n for n in model.graph.node if n.op_type == "LSTM"]


def _direction(node) -> str:  # noqa: ANN001
    return next((a.s.decode() for a in node.attribute if a.name == "direction"), "forward")


@pytest.mark.parametrize("kw", [
    {},
    {"batch_first": False, "layers": 2},
    {"layers": 2, "bidirectional": True},
    {"bidirectional": True, "with_state": True},  # given states are passed through as they are
    {"with_state": True},
])
def test_fused_gives_every_lstm_a_run_time_state(kw) -> None:  # noqa: ANN001
    model, feeds = _export(**kw)
    out, notes = prepare_for_onnx2tf2(model)  # the default mode
    before, after = _lstm_nodes(model), _lstm_nodes(out)
    assert len(after) == len(before) == kw.get("layers", 1)
    assert len([n for n in notes if "made stateless" in n]) == len(before)
    produced = {o for n in out.graph.node for o in n.output}
    for node in after:
        assert len(node.input) >= 7 and node.input[5] and node.input[6]
        assert node.input[5] in produced | {i.name for i in out.graph.input}  # computed, not an initializer
        # a forward LSTM runs as a reverse one over the reversed sequence; bidirectional stays bidirectional
        assert _direction(node) == ("bidirectional" if kw.get("bidirectional") else "reverse")
    if not kw.get("with_state"):
        assert _ops(out)["Tile"] == len(before) and _ops(out)["Greater"] == len(before)
    _assert_same(model, out, feeds)


def test_fused_works_with_a_dynamic_sequence_length() -> None:
    model, _ = _export(layers=2, dynamic_steps=True)
    out, notes = prepare_for_onnx2tf2(model)
    assert len(notes) == 2
    for steps in (STEPS, 3):
        x = np.random.default_rng(steps).standard_normal((2, steps, FEATURES)).astype(np.float32)
        _assert_same(model, out, {"x": x})


def test_unroll_batch_major_layout_with_given_states() -> None:
    """layout=1 (which PyTorch does not emit and ONNX Runtime does not run): checked on onnx's reference."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    d, h, f, t, b = 2, 4, 3, 5, 2
    inits = [numpy_helper.from_array(rng.uniform(-0.5, 0.5, s).astype(np.float32), n)
             for n, s in (("W", (d, 4 * h, f)), ("R", (d, 4 * h, h)), ("B", (d, 8 * h)))]
    node = helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "yh", "yc"], hidden_size=h,
                            direction="bidirectional", layout=1)
    shapes = {"x": [b, t, f], "h0": [b, d, h], "c0": [b, d, h]}
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                            for n, s in shapes.items()],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "yh", "yc")],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    out, notes = prepare_for_onnx2tf2(model, lstm="unroll")
    assert "LSTM" not in _ops(out) and "unrolled over its 5 time steps" in notes[0]
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    for a, c in zip(ReferenceEvaluator(model).run(None, feeds), ReferenceEvaluator(out).run(None, feeds)):
        assert a.shape == c.shape and np.abs(a - c).max() <= 1e-5
    kept, notes = prepare_for_onnx2tf2(model)  # fused: onnx2tf does not take layout=1
    assert kept is model and "layout=1" in notes[0]
