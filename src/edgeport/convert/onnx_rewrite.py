"""ONNX graph rewrites applied before onnx2tf 2.x, for recurrent layers.

onnx2tf 2.x lowers an ONNX ``LSTM`` (constant weights, zero initial state) to TFLite's fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` / ``BIDIRECTIONAL_SEQUENCE_LSTM``, and gives them the zero state as a
producer-less TFLite *variable* tensor. The kernel overwrites that tensor with the final state, so as
converted every ``invoke`` after the first starts from the previous call's state and returns other
numbers for the same input (unless the caller runs ``reset_all_variables()`` before each call).

:func:`prepare_for_onnx2tf2` rewrites LSTMs first (``lstm=``):

- ``"fused"`` (default): the LSTM stays one node, but its zero initial state is computed from the
  input at run time (``Cast(x > x)``, exactly 0 for every value, inf and NaN included, tiled to
  [D, B, H]). onnx2tf feeds a non-constant state to the fused kernel through ops that rewrite the state
  tensor on every call, so the .tflite is stateless. onnx2tf unrolls a *forward* LSTM with a
  non-constant state into per-step ops, so a forward LSTM becomes a reverse LSTM over the
  time-reversed sequence, its output reversed back (two cheap REVERSE_V2 around the fused op).
  Works with a dynamic sequence length.
- ``"unroll"``: each LSTM whose sequence length is static becomes plain ONNX ops, one time step after
  the other: one MatMul for the input projection of all steps, then per step a MatMul with the
  recurrent weights and the gate arithmetic (Slice, never Split: onnx2tf turns Split into SLICE ops
  with size -1 that XNNPACK refuses). Stateless and run by XNNPACK, but slower than the fused kernel.
- ``"split"``: each bidirectional LSTM becomes a forward and a reverse LSTM (two
  UNIDIRECTIONAL_SEQUENCE_LSTM instead of one BIDIRECTIONAL_SEQUENCE_LSTM: same speed, and stateful).
- ``"keep"``: nothing changes.

LSTMs a mode does not cover (``sequence_lens``, peepholes, clip, ``input_forget``, other activations,
non-constant weights; ``layout=1`` for ``fused``; a dynamic sequence length for ``unroll``) are left as
they are and a note says why. GRUs are not rewritten: onnx2tf 2.x already unrolls them into ops that
XNNPACK runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LSTM_MODES = ("fused", "unroll", "split", "keep")
INT64_MIN = -(2**63)
MAX_UNROLL_STEPS = 1024  # beyond this the unrolled graph gets too large to be worth it
MIN_OPSET = 13  # Split/Squeeze/Unsqueeze take their sizes/axes as inputs from opset 13 on


@dataclass(frozen=True)
class _Lstm:
    """What the unrolling needs to know about one ONNX LSTM node."""

    node: Any
    steps: int
    hidden: int
    directions: int
    layout: int
    w: np.ndarray  # [D, 4H, F], gates i, o, f, c
    r: np.ndarray  # [D, 4H, H]
    b: np.ndarray  # [D, 8H]


class _Builder:
    """Collects the nodes and initializers that replace one LSTM node; names are unique per node."""

    def __init__(self, prefix: str, taken: set[str]) -> None:
        self.prefix = prefix
        self.taken = taken
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._ints: dict[tuple[int, ...], str] = {}

    def name(self, tag: str) -> str:
        base = f"{self.prefix}/{tag}"
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, tag: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(tag)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def ints(self, *values: int) -> str:
        """A shared int64 vector constant."""
        if values not in self._ints:
            self._ints[values] = self.const("i64_" + "_".join(map(str, values)).replace("-", "m"),
                                            np.array(values, np.int64))
        return self._ints[values]

    def slice(self, x: str, start: int, end: int, axis: int, tag: str) -> str:
        """``x[start:end]`` along ``axis`` (a Slice, not a Split: onnx2tf turns Split into SLICE ops with
        size -1, which XNNPACK does not take, and Slice into ones with explicit sizes, which it does)."""
        return self.op1("Slice", [x, self.ints(start), self.ints(end), self.ints(axis)], tag)

    def op(self, op_type: str, inputs: list[str], tag: str, n_out: int = 1, outputs: list[str] | None = None,
           **attrs: Any) -> list[str]:
        from onnx import helper

        outs = outputs if outputs is not None else [self.name(f"{tag}_out{i}") for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(tag), **attrs))
        return outs

    def op1(self, op_type: str, inputs: list[str], tag: str, output: str | None = None, **attrs: Any) -> str:
        return self.op(op_type, inputs, tag, outputs=[output] if output else None, **attrs)[0]


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values of ``graph`` by tensor name."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and len(n.output) == 1:
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


class _Folder:
    """Values of tensors computed from constants only (exporters slice and re-concatenate LSTM weights)."""

    MAX_DEPTH = 16

    def __init__(self, graph: Any, consts: dict[str, np.ndarray], dims: dict[str, list[int | None]]) -> None:
        self.consts = consts
        self.dims = dims  # a Shape of a tensor with static dims is a constant too
        self.producer = {o: n for n in graph.node for o in n.output}

    def value(self, name: str, depth: int = 0) -> np.ndarray | None:
        if not name or name in self.consts:
            return self.consts.get(name)
        node = self.producer.get(name)
        if node is None or depth > self.MAX_DEPTH or any(a.HasField("g") or a.graphs for a in node.attribute):
            return None
        shape = self.dims.get(node.input[0]) if node.op_type == "Shape" and not node.attribute else None
        if shape is not None and all(d is not None for d in shape):
            self.consts[name] = np.array(shape, np.int64)
            return self.consts[name]
        args = [self.value(i, depth + 1) if i else None for i in node.input]
        if any(a is None for a, i in zip(args, node.input) if i):
            return None
        from onnx.reference import ReferenceEvaluator

        try:
            feeds = {i: a for i, a in zip(node.input, args) if i}
            results = ReferenceEvaluator(node).run(None, feeds)
        except Exception:  # noqa: BLE001 - an op the reference evaluator lacks: not a constant for us
            return None
        for o, r in zip(node.output, results):
            self.consts[o] = np.asarray(r)
        return self.consts.get(name)


def _static_dims(model: Any) -> dict[str, list[int | None]]:
    """Shapes of every tensor shape inference can tell, None for a dimension it cannot."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    out: dict[str, list[int | None]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return out


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _inp(node: Any, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _check_lstm(node: Any, folder: _Folder, dims: dict[str, list[int | None]], need_steps: bool) -> _Lstm | str:
    """The node's parameters when it can be rewritten, else the reason it cannot (one phrase).
    ``need_steps``: the sequence length must be static (to unroll); otherwise ``steps`` is 0 when unknown."""
    direction = str(_attr(node, "direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        return f"direction {direction!r}"
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in _attr(node, "activations", [])]
    if acts and [a.lower() for a in acts] != ["sigmoid", "tanh", "tanh"] * (2 if direction == "bidirectional" else 1):
        return f"activations {acts}"
    if _attr(node, "clip", None) is not None:
        return "a cell clip"
    if int(_attr(node, "input_forget", 0)):
        return "input_forget=1"
    if _inp(node, 4):
        return "a sequence_lens input"
    if _inp(node, 7):
        return "peephole weights"
    w, r, bias = (folder.value(_inp(node, i)) for i in (1, 2, 3))
    if w is None or r is None or (_inp(node, 3) and bias is None):
        return "weights that are not constants"
    layout = int(_attr(node, "layout", 0))
    shape = dims.get(node.input[0])
    if shape is None or len(shape) != 3:
        return "an input of unknown rank"
    steps = shape[1] if layout else shape[0]
    if steps is None and not need_steps:
        steps = 0
    elif steps is None:
        return "a dynamic sequence length (give the input a fixed length to unroll it)"
    elif need_steps and (steps < 1 or steps > MAX_UNROLL_STEPS):
        return f"{steps} time steps (unrolled up to {MAX_UNROLL_STEPS})"
    d = 2 if direction == "bidirectional" else 1
    hidden = int(_attr(node, "hidden_size", 0)) or int(w.shape[1]) // 4
    b = bias if bias is not None else np.zeros((d, 8 * hidden), np.float32)
    if w.dtype != np.float32 or w.shape[:2] != (d, 4 * hidden) or r.shape != (d, 4 * hidden, hidden) \
            or b.shape != (d, 8 * hidden):
        return "weights of an unexpected shape or type"
    return _Lstm(node, int(steps), hidden, d, layout, w, r, b)


def _zero_state(name: str, folder: _Folder) -> bool:
    value = folder.value(name) if name else None
    return not name or (value is not None and not np.any(value))


def _unroll_lstm(lstm: _Lstm, folder: _Folder, b: _Builder) -> None:
    """Append to ``b`` the nodes computing the LSTM's outputs (same names) one time step at a time."""
    node, T, H = lstm.node, lstm.steps, lstm.hidden
    x = node.input[0]
    if lstm.layout:  # [B, T, F] -> [T, B, F]
        x = b.op1("Transpose", [x], "x_time_major", perm=[1, 0, 2])
    reverse_only = str(_attr(node, "direction", "forward")) == "reverse"
    h0_name, c0_name = _inp(node, 5), _inp(node, 6)
    h0s = _state_per_direction(h0_name, folder, lstm, b, "h0")
    c0s = _state_per_direction(c0_name, folder, lstm, b, "c0")
    ys, hs, cs = [], [], []
    for d in range(lstm.directions):
        backwards = reverse_only or d == 1
        y, h, c = _unroll_direction(lstm, d, backwards, x, h0s[d], c0s[d], b)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    outs = list(node.output) + [""] * (3 - len(node.output))
    y_name, yh_name, yc_name = outs[:3]
    if y_name:
        parts = [b.op1("Unsqueeze", [y, b.ints(1)], f"y{d}") for d, y in enumerate(ys)]
        y_tm = parts[0] if len(parts) == 1 else b.op1("Concat", parts, "y", axis=1)  # [T, D, B, H]
        if lstm.layout:  # layout 1: Y is [B, T, D, H]
            b.op1("Transpose", [y_tm], "y_batch_major", output=y_name, perm=[2, 0, 1, 3])
        else:
            b.op1("Identity", [y_tm], "y_out", output=y_name)
    for name, parts, tag in ((yh_name, hs, "y_h"), (yc_name, cs, "y_c")):
        if not name:
            continue
        state = parts[0] if len(parts) == 1 else b.op1("Concat", parts, tag, axis=0)  # [D, B, H]
        if lstm.layout:  # layout 1: states are [B, D, H]
            b.op1("Transpose", [state], f"{tag}_batch_major", output=name, perm=[1, 0, 2])
        else:
            b.op1("Identity", [state], f"{tag}_out", output=name)


def _state_per_direction(name: str, folder: _Folder, lstm: _Lstm, b: _Builder, tag: str) -> list[str | None]:
    """Initial state per direction as [1, B, H] tensors; None for a zero state."""
    if _zero_state(name, folder):
        return [None] * lstm.directions
    if lstm.layout:  # layout 1: states are [B, D, H]
        name = b.op1("Transpose", [name], f"{tag}_time_major", perm=[1, 0, 2])
    if lstm.directions == 1:
        return [name]
    return [b.slice(name, d, d + 1, 0, f"{tag}_d{d}") for d in range(lstm.directions)]


def _unroll_direction(lstm: _Lstm, d: int, backwards: bool, x: str, h0: str | None, c0: str | None,
                      b: _Builder) -> tuple[str, str, str]:
    """One direction: returns (Y [T, B, H], last h [1, B, H], last c [1, B, H])."""
    T, H = lstm.steps, lstm.hidden
    tag = f"d{d}"
    w_t = b.const(f"{tag}_W_t", lstm.w[d].T)  # [F, 4H]
    r_t = b.const(f"{tag}_R_t", lstm.r[d].T)  # [H, 4H]
    bias = b.const(f"{tag}_bias", lstm.b[d, : 4 * H] + lstm.b[d, 4 * H:])
    proj = b.op1("Add", [b.op1("MatMul", [x, w_t], f"{tag}_x_proj"), bias], f"{tag}_x_proj_bias")  # [T, B, 4H]
    h, c = h0, c0
    out: list[str] = [""] * T
    for k in range(T):
        t = T - 1 - k if backwards else k
        s = f"{tag}_t{t}"
        gates = b.slice(proj, t, t + 1, 0, f"{s}_x")  # [1, B, 4H], gates i, o, f, c
        if h is not None:
            gates = b.op1("Add", [gates, b.op1("MatMul", [h, r_t], f"{s}_rec")], f"{s}_gates")
        sig = b.op1("Sigmoid", [b.slice(gates, 0, 3 * H, 2, f"{s}_iof_in")], f"{s}_iof")
        i, o, f = (b.slice(sig, j * H, (j + 1) * H, 2, f"{s}_{g}") for j, g in enumerate("iof"))
        ig = b.op1("Mul", [i, b.op1("Tanh", [b.slice(gates, 3 * H, 4 * H, 2, f"{s}_c_in")], f"{s}_cand")], f"{s}_ig")
        c = ig if c is None else b.op1("Add", [b.op1("Mul", [f, c], f"{s}_fc"), ig], f"{s}_c")
        h = b.op1("Mul", [o, b.op1("Tanh", [c], f"{s}_tanh_c")], f"{s}_h")
        out[t] = h
    assert h is not None and c is not None
    y = out[0] if T == 1 else b.op1("Concat", out, f"{tag}_y", axis=0)  # [T, B, H]
    return y, h, c


def _split_bidirectional(lstm: _Lstm, folder: _Folder, b: _Builder) -> None:
    """A bidirectional LSTM as a forward and a reverse LSTM (onnx2tf: two UNIDIRECTIONAL_SEQUENCE_LSTM)."""
    from onnx import helper

    node, layout = lstm.node, lstm.layout
    dir_axis = 1 if layout else 0  # of initial/final states; Y's direction axis is 2 with layout 1, else 1
    outs = list(node.output) + [""] * (3 - len(node.output))
    per_dir: list[list[str]] = []
    for d, direction in enumerate(("forward", "reverse")):
        ins = [node.input[0], b.const(f"d{d}_W", lstm.w[d:d + 1]), b.const(f"d{d}_R", lstm.r[d:d + 1]),
               b.const(f"d{d}_B", lstm.b[d:d + 1]), ""]
        for k, tag in ((5, "h0"), (6, "c0")):
            name = _inp(node, k)
            ins.append("" if _zero_state(name, folder) else b.slice(name, d, d + 1, dir_axis, f"{tag}_d{d}"))
        while ins and not ins[-1]:
            ins.pop()
        o = [b.name(f"d{d}_{t}") if outs[i] else "" for i, t in enumerate(("y", "y_h", "y_c"))]
        while o and not o[-1]:
            o.pop()
        b.nodes.append(helper.make_node("LSTM", ins, o, name=b.name(f"{direction}"), direction=direction,
                                        hidden_size=lstm.hidden, layout=layout))
        per_dir.append(o + [""] * (3 - len(o)))
    for i, axis in enumerate((2 if layout else 1, dir_axis, dir_axis)):
        if outs[i]:
            b.op1("Concat", [per_dir[0][i], per_dir[1][i]], f"concat{i}", output=outs[i], axis=axis)


def _runtime_zeros(x: str, dirs: int, hidden: int, b: _Builder) -> str:
    """A [D, B, H] zero tensor computed from ``x`` [T, B, F] at run time (exactly 0 for any x, inf and
    NaN included: ``x > x`` is false). onnx2tf feeds a non-constant initial state to the fused LSTM
    through ops that rewrite the state tensor on every call, which is what makes the kernel stateless."""
    first = b.op1("Slice", [x, b.ints(0, 0), b.ints(1, 1), b.ints(0, 2)], "state_src")  # [1, B, 1]
    zero = b.op1("Cast", [b.op1("Greater", [first, first], "state_false")], "state_zero", to=1)
    return b.op1("Tile", [zero, b.ints(dirs, 1, hidden)], "zero_state")


def _stateless_fused(lstm: _Lstm, folder: _Folder, b: _Builder) -> None:
    """The same LSTM with run-time zero initial states, and a forward one as a reverse LSTM over the
    time-reversed sequence (onnx2tf unrolls a forward LSTM whose initial state is not a constant)."""
    from onnx import helper

    node = lstm.node
    ins = list(node.input) + [""] * (8 - len(node.input))
    zeros = None
    for k in (5, 6):
        if _zero_state(ins[k], folder):
            zeros = zeros or _runtime_zeros(node.input[0], lstm.directions, lstm.hidden, b)
            ins[k] = zeros
    forward = str(_attr(node, "direction", "forward")) == "forward"
    outs = list(node.output)
    if forward:
        ins[0] = _reverse_time(node.input[0], b, "x_reversed")
        if outs and outs[0]:
            outs[0] = b.name("y_reversed")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs["direction"] = "reverse" if forward else attrs.get("direction", "forward")
    while ins and not ins[-1]:
        ins.pop()
    b.nodes.append(helper.make_node("LSTM", ins, outs, name=b.name("lstm"), **attrs))
    if forward and outs and outs[0]:
        b.nodes.append(helper.make_node("Slice", [outs[0], b.ints(-1), b.ints(INT64_MIN), b.ints(0), b.ints(-1)],
                                        [node.output[0]], name=b.name("y")))


def _reverse_time(x: str, b: _Builder, tag: str) -> str:
    return b.op1("Slice", [x, b.ints(-1), b.ints(INT64_MIN), b.ints(0), b.ints(-1)], tag)


def _rewrite(found: _Lstm, mode: str, folder: _Folder, b: _Builder) -> str:
    """Append to ``b`` the replacement of one LSTM; returns the note saying what it became."""
    kind = "bidirectional" if found.directions == 2 else str(_attr(found.node, "direction", "forward"))
    label = f"LSTM {found.node.name or found.node.output[0]!r} ({kind}, hidden {found.hidden})"
    if mode == "fused":
        _stateless_fused(found, folder, b)
        how = ", forward run as reverse over the reversed sequence" if kind == "forward" else ""
        return f"{label}: fused LSTM made stateless (initial state computed at run time{how})"
    if mode == "split":
        _split_bidirectional(found, folder, b)
        return f"{label} split into a forward and a reverse LSTM"
    _unroll_lstm(found, folder, b)
    return (f"{label} unrolled over its {found.steps} time steps into MatMul and element-wise ops "
            "(stateless, runs in XNNPACK)")


def _opset(model: Any) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def prepare_for_onnx2tf2(model: Any, *, lstm: str = "fused") -> tuple[Any, list[str]]:
    """The model with its recurrent layers rewritten for onnx2tf 2.x, and notes saying what was rewritten.

    ``model`` (an ``onnx.ModelProto``) is not modified; a rewritten copy is returned (the same object
    when nothing applies). ``lstm``: ``"unroll"`` (see the module doc), ``"split"`` (each bidirectional
    LSTM becomes a forward and a reverse LSTM, which onnx2tf lowers to two fused
    UNIDIRECTIONAL_SEQUENCE_LSTM ops instead of one BIDIRECTIONAL_SEQUENCE_LSTM; still stateful) or
    ``"keep"``.
    """
    import onnx

    if lstm not in LSTM_MODES:
        raise ValueError(f"lstm must be one of {', '.join(LSTM_MODES)}, not {lstm!r}")
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    if lstm == "keep" or not lstms:
        return model, []
    if _opset(model) < MIN_OPSET:
        return model, [f"{len(lstms)} LSTM kept for onnx2tf's fused lowering: opset {_opset(model)} < {MIN_OPSET}"]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    consts = _constants(graph)
    dims = _static_dims(out)
    folder = _Folder(graph, consts, dims)
    taken = {n.name for n in graph.node} | {o for n in graph.node for o in n.output} | set(consts) | \
        {i.name for i in graph.input} | {i.name for i in graph.initializer}
    new_nodes: list[Any] = []
    notes: list[str] = []
    rewritten = 0
    for node in graph.node:
        found = _check_lstm(node, folder, dims, lstm == "unroll") if node.op_type == "LSTM" else None
        if isinstance(found, _Lstm) and lstm == "fused" and found.layout:
            found = "layout=1 (batch-major), which onnx2tf's fused lowering does not take (lstm='unroll' does)"
        if isinstance(found, str):
            notes.append(f"LSTM {node.name or node.output[0]!r} left as it is (onnx2tf's fused lowering is "
                         f"stateful between calls): it has {found}")
        if not isinstance(found, _Lstm) or (lstm == "split" and found.directions == 1):
            new_nodes.append(node)
            continue
        b = _Builder(node.name or f"lstm_{len(new_nodes)}", taken)
        notes.append(_rewrite(found, lstm, folder, b))
        new_nodes.extend(b.nodes)
        graph.initializer.extend(b.inits)
        rewritten += 1
    if not rewritten:
        return model, notes
    del graph.node[:]
    graph.node.extend(_live_nodes(graph, new_nodes))
    _drop_unused_initializers(graph)
    return out, notes


def _live_nodes(graph: Any, nodes: list[Any]) -> list[Any]:
    """``nodes`` without those whose outputs nothing reads (the weight slicing that fed a replaced LSTM)."""
    while True:
        used = {o.name for o in graph.output}
        for n in nodes:
            used.update(n.input)
            for a in n.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    used |= _used_names(g)
        kept = [n for n in nodes if any(o in used for o in n.output)]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


def _used_names(graph: Any) -> set[str]:
    """Tensor names read by ``graph``'s nodes, including nodes of its subgraphs (If/Loop/Scan bodies)."""
    used = {o.name for o in graph.output}
    for n in graph.node:
        used.update(n.input)
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                used |= _used_names(g)
    return used


def _drop_unused_initializers(graph: Any) -> None:
    used = _used_names(graph)
    keep = [i for i in graph.initializer if i.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)
