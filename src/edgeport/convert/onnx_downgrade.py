"""Rewrite an ONNX model into one the legacy onnx-tf converter (1.10) reads: IR <= 8, opset <= 15.

    model, notes, renamed = make_compatible(onnx.load("model.onnx"), opset=15)
    needs_legacy_onnx("model.onnx")   # None, or why rewriting cannot do it (a planner asks this up front)

onnx-tf 1.10 lives with onnx 1.15 in its own environment and knows opsets up to 15, while the ONNX edgeport
exports is usually a dynamo export (IR 10, opset 18). :func:`make_compatible` works on a copy and rewrites:

- ops with no opset-15 form: LayerNormalization (17) and Gelu (20) are decomposed into elementwise ops;
- exact GELU's ``Erf`` (unless ``approximate_erf`` is off): onnx-tf makes it a TensorFlow ``Erf``, which
  TFLite keeps only as a Select TF (Flex) op that the LiteRT interpreters edgeport ships cannot run; it is
  replaced by the Abramowitz-Stegun 7.1.26 polynomial (|error| <= 1.5e-7), which converts to builtin ops;
- Squeeze/Unsqueeze of static shapes at opset >= 13 become Reshape (onnx-tf implements only their
  opset-1/11 forms), and Split with known sizes becomes one Slice per output (tf.split turns into the Flex
  op FlexSplitV);
- the default-domain opset is taken down with ``onnx.version_converter``, and what that converter leaves
  behind is repaired (a ``noop_with_empty_axes`` attribute on Reduce ops that opset 13 does not know);
- graph inputs and outputs get plain identifier names (onnx-tf makes them TF signature keys), the IR
  version is lowered and unused domain imports are dropped; the result must pass ``onnx.checker``.

What cannot be rewritten (custom domains, local functions that do not inline, ops without an opset-15 form)
raises :class:`LegacyOnnxNeeded` with a one-line reason: the onnx-tf step then re-exports from PyTorch with the
legacy exporter instead. Every rewrite is recorded in the returned notes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from edgeport.exc_text import first_line

MAX_OPSET = 15  # onnx-tf 1.10 handles opsets up to 15
MAX_IR = 8  # the IR version that goes with opset 15 (onnx-tf's onnx 1.15 reads IR <= 9)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REDUCE_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


class LegacyOnnxNeeded(Exception):
    """The ONNX cannot be turned into one onnx-tf reads; ``str(exc)`` says why (one line)."""


def _opset(model) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


class _Namer:
    def __init__(self, model) -> None:
        used = {n.name for n in model.graph.node}
        for n in model.graph.node:
            used.update(n.input)
            used.update(n.output)
        used.update(i.name for i in model.graph.initializer)
        used.update(i.name for i in model.graph.input)
        self.used = used
        self.count = 0

    def __call__(self, hint: str) -> str:
        while True:
            self.count += 1
            name = f"edgeport_otf_{hint}_{self.count}"
            if name not in self.used:
                self.used.add(name)
                return name


def _elem_types(model) -> dict[str, int]:
    """Tensor name -> ONNX element type, from shape inference (best effort)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is only a hint here
        inferred = model
    g = inferred.graph
    out = {i.name: i.data_type for i in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            out[vi.name] = vi.type.tensor_type.elem_type
    return out


def _ranks(model) -> dict[str, int]:
    import onnx

    try:
        g = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001
        g = model.graph
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            out[vi.name] = len(tt.shape.dim)
    return out


def _scalar(model, namer: _Namer, value: float, hint: str) -> str:
    import numpy as np
    from onnx import numpy_helper

    name = namer(hint)
    model.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
    return name


def _reduce_mean(model, namer: _Namer, x: str, axes: list[int], out: str):
    """A keepdims ReduceMean node in the form of the model's current opset (axes input from 18 on)."""
    import numpy as np
    from onnx import helper, numpy_helper

    if _opset(model) >= 18:
        axes_name = namer("axes")
        model.graph.initializer.append(numpy_helper.from_array(np.array(axes, dtype=np.int64), axes_name))
        return helper.make_node("ReduceMean", [x, axes_name], [out], keepdims=1, name=namer("ln_mean"))
    return helper.make_node("ReduceMean", [x], [out], axes=axes, keepdims=1, name=namer("ln_mean"))


def _decompose_layernorm(model, node, namer: _Namer, ranks: dict[str, int]) -> list:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis = int(attrs.get("axis", -1))
    eps = float(attrs.get("epsilon", 1e-5))
    if len([o for o in node.output if o]) > 1:
        raise LegacyOnnxNeeded("LayerNormalization with Mean/InvStdDev outputs has no opset-15 form")
    x = node.input[0]
    if axis < 0:
        axes = list(range(axis, 0))
    elif x in ranks:
        axes = list(range(axis, ranks[x]))
    else:
        raise LegacyOnnxNeeded("LayerNormalization over a tensor of unknown rank has no opset-15 form")
    mean, d, d2, var, var_eps, std, norm = (namer(h) for h in ("mean", "centered", "sq", "var", "var_eps", "std", "norm"))
    nodes = [
        _reduce_mean(model, namer, x, axes, mean),
        helper.make_node("Sub", [x, mean], [d], name=namer("ln_sub")),
        helper.make_node("Mul", [d, d], [d2], name=namer("ln_sq")),
        _reduce_mean(model, namer, d2, axes, var),
        helper.make_node("Add", [var, _scalar(model, namer, eps, "eps")], [var_eps], name=namer("ln_eps")),
        helper.make_node("Sqrt", [var_eps], [std], name=namer("ln_sqrt")),
    ]
    scale = node.input[1] if len(node.input) > 1 and node.input[1] else ""
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    final = node.output[0]
    if not scale and not bias:
        nodes.append(helper.make_node("Div", [d, std], [final], name=namer("ln_div")))
        return nodes
    nodes.append(helper.make_node("Div", [d, std], [norm], name=namer("ln_div")))
    if scale and bias:
        scaled = namer("scaled")
        nodes.append(helper.make_node("Mul", [norm, scale], [scaled], name=namer("ln_scale")))
        nodes.append(helper.make_node("Add", [scaled, bias], [final], name=namer("ln_bias")))
    elif scale:
        nodes.append(helper.make_node("Mul", [norm, scale], [final], name=namer("ln_scale")))
    else:
        nodes.append(helper.make_node("Add", [norm, bias], [final], name=namer("ln_bias")))
    return nodes


def _decompose_gelu(model, node, namer: _Namer) -> list:
    """Gelu (opset 20) -> 0.5 * x * (1 + erf(x / sqrt(2))) or its tanh form."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    approx = attrs.get("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else str(approx)
    x, y = node.input[0], node.output[0]
    half_x, inner, act, one_plus = namer("half_x"), namer("inner"), namer("act"), namer("one_plus")
    nodes = [helper.make_node("Mul", [x, _scalar(model, namer, 0.5, "half")], [half_x], name=namer("gelu_half"))]
    if approx == "tanh":
        x2, x3, cubic, poly = namer("x2"), namer("x3"), namer("cubic"), namer("poly")
        nodes += [
            helper.make_node("Mul", [x, x], [x2], name=namer("gelu_x2")),
            helper.make_node("Mul", [x2, x], [x3], name=namer("gelu_x3")),
            helper.make_node("Mul", [x3, _scalar(model, namer, 0.044715, "c")], [cubic], name=namer("gelu_c")),
            helper.make_node("Add", [x, cubic], [poly], name=namer("gelu_poly")),
            helper.make_node("Mul", [poly, _scalar(model, namer, 0.7978845608028654, "s2pi")], [inner], name=namer("gelu_in")),
            helper.make_node("Tanh", [inner], [act], name=namer("gelu_tanh")),
        ]
    else:
        nodes += [
            helper.make_node("Mul", [x, _scalar(model, namer, 0.7071067811865476, "rsqrt2")], [inner], name=namer("gelu_in")),
            helper.make_node("Erf", [inner], [act], name=namer("gelu_erf")),
        ]
    nodes += [
        helper.make_node("Add", [act, _scalar(model, namer, 1.0, "one")], [one_plus], name=namer("gelu_one")),
        helper.make_node("Mul", [half_x, one_plus], [y], name=namer("gelu_out")),
    ]
    return nodes


# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t*(a1 + t*(a2 + t*(a3 + t*(a4 + t*a5)))) * exp(-x^2),
# t = 1 / (1 + p*x) for x >= 0, odd extension; |error| <= 1.5e-7.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _approximate_erf(model, node, namer: _Namer) -> list:
    from onnx import helper

    x, y = node.input[0], node.output[0]
    n = [namer(h) for h in ("sign", "abs", "px", "den", "t", "sq", "negsq", "exp")]
    sign, ax, px, den, t, sq, negsq, ex = n
    nodes = [
        helper.make_node("Sign", [x], [sign], name=namer("erf_sign")),
        helper.make_node("Abs", [x], [ax], name=namer("erf_abs")),
        helper.make_node("Mul", [ax, _scalar(model, namer, _AS_P, "p")], [px], name=namer("erf_px")),
        helper.make_node("Add", [px, _scalar(model, namer, 1.0, "one")], [den], name=namer("erf_den")),
        helper.make_node("Div", [_scalar(model, namer, 1.0, "one"), den], [t], name=namer("erf_t")),
    ]
    acc = _scalar(model, namer, _AS_A[4], "a5")
    for a in reversed(_AS_A[:4]):  # Horner: ((a5*t + a4)*t + a3)*t ... + a1
        m, s = namer("h_mul"), namer("h_add")
        nodes.append(helper.make_node("Mul", [acc, t], [m], name=namer("erf_hm")))
        nodes.append(helper.make_node("Add", [m, _scalar(model, namer, a, "a")], [s], name=namer("erf_ha")))
        acc = s
    poly, prod, one_minus = namer("poly"), namer("prod"), namer("one_minus")
    nodes += [
        helper.make_node("Mul", [acc, t], [poly], name=namer("erf_poly")),
        helper.make_node("Mul", [ax, ax], [sq], name=namer("erf_sq")),
        helper.make_node("Neg", [sq], [negsq], name=namer("erf_neg")),
        helper.make_node("Exp", [negsq], [ex], name=namer("erf_exp")),
        helper.make_node("Mul", [poly, ex], [prod], name=namer("erf_prod")),
        helper.make_node("Sub", [_scalar(model, namer, 1.0, "one"), prod], [one_minus], name=namer("erf_1m")),
        helper.make_node("Mul", [sign, one_minus], [y], name=namer("erf_out")),
    ]
    return nodes


def _static_shapes(model) -> dict[str, list[int]]:
    """Tensor name -> fully static shape, from shape inference (best effort; dynamic ones left out)."""
    import onnx

    try:
        g = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - inference is only a hint here
        g = model.graph
    out: dict[str, list[int]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            if all(d > 0 for d in dims) or dims == []:
                out[vi.name] = dims
    return out


def _const_ints(model, name: str) -> list[int] | None:
    """The values of an int initializer or Constant node output ``name`` (None when not constant)."""
    from onnx import numpy_helper

    for t in model.graph.initializer:
        if t.name == name:
            return [int(v) for v in numpy_helper.to_array(t).reshape(-1)]
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return [int(v) for v in numpy_helper.to_array(a.t).reshape(-1)]
    return None


def _squeeze_to_reshape(model, node, namer: _Namer, shapes: dict[str, list[int]]) -> list | None:
    """Squeeze/Unsqueeze (opset >= 13: axes as an input) of a static shape -> Reshape to that shape.

    onnx-tf 1.10 implements Squeeze/Unsqueeze only in their opset-1/11 forms (axes an attribute), so at
    opset 13-15 every such node fails ("Squeeze version 13 is not implemented"). Reshape has a handler.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    if node.op_type not in ("Squeeze", "Unsqueeze"):
        return None
    out_shape = shapes.get(node.output[0])
    has_axes = len(node.input) > 1 and bool(node.input[1])
    if out_shape is None or (has_axes and _const_ints(model, node.input[1]) is None):
        return None
    shape_name = namer("shape")
    model.graph.initializer.append(numpy_helper.from_array(np.array(out_shape, dtype=np.int64), shape_name))
    return [helper.make_node("Reshape", [node.input[0], shape_name], list(node.output), name=namer(node.op_type.lower()))]


def _split_to_slices(model, node, namer: _Namer, shapes: dict[str, list[int]]) -> list | None:
    """Split with known sizes -> one Slice per output.

    onnx-tf lowers Split to tf.split, which the TFLite converter only keeps as the Select-TF op
    FlexSplitV (seen for torch.split, GRUCell and LSTMCell); Slice maps to a builtin STRIDED_SLICE.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    if node.op_type != "Split":
        return None
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    in_shape = shapes.get(node.input[0])
    sizes = _const_ints(model, node.input[1]) if len(node.input) > 1 and node.input[1] else None
    if sizes is None:
        if in_shape is None or len(node.input) > 1 and node.input[1]:
            return None
        dim, n = in_shape[axis], len(node.output)
        chunk = -(-dim // n)  # ONNX: equal parts, the last one smaller when dim is not divisible
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
        if sizes[-1] <= 0:
            return None
    if len(sizes) != len(node.output):
        return None

    def const(values: list[int], hint: str) -> str:
        name = namer(hint)
        model.graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    axes, nodes, start = const([axis], "axes"), [], 0
    for out, size in zip(node.output, sizes):
        if out:
            nodes.append(helper.make_node("Slice", [node.input[0], const([start], "starts"), const([start + size], "ends"), axes],
                                          [out], name=namer("split_slice")))
        start += size
    return nodes


def _rewrite_nodes(model, fn) -> int:
    """Replace nodes for which ``fn(node)`` returns a list; returns how many were replaced."""
    new, count = [], 0
    for node in model.graph.node:
        repl = fn(node)
        if repl is None:
            new.append(node)
        else:
            new.extend(repl)
            count += 1
    del model.graph.node[:]
    model.graph.node.extend(new)
    return count


def _rename_io(model) -> dict[str, str]:
    """Give graph inputs/outputs plain identifier names (they become TF signature keys)."""
    init = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in init] + [o.name for o in model.graph.output]
    taken = set(names)
    rename: dict[str, str] = {}
    for n in names:
        if _IDENT.match(n):
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", n)
        base = base if _IDENT.match(base) else f"t_{base}"
        cand, k = base, 1
        while cand in taken:
            k += 1
            cand = f"{base}_{k}"
        taken.add(cand)
        rename[n] = cand
    if not rename:
        return rename
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        if vi.name in rename:
            vi.name = rename[vi.name]
    for node in model.graph.node:
        for i, n in enumerate(node.input):
            if n in rename:
                node.input[i] = rename[n]
        for i, n in enumerate(node.output):
            if n in rename:
                node.output[i] = rename[n]
    return rename


def make_compatible(model, *, opset: int = MAX_OPSET, approximate_erf: bool = True):
    """Return ``(model, notes, renamed)``: a copy onnx-tf can read. Raises :class:`LegacyOnnxNeeded`.

    ``renamed`` maps the graph input/output names that were not plain identifiers to their new names.
    """
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    notes: list[str] = []
    model = _inline_functions(model, notes)
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise LegacyOnnxNeeded(f"ops from custom domains: {', '.join(custom[:5])}")
    src_opset = _opset(model)
    namer = _Namer(model)
    if src_opset > opset:
        _decompose_new_ops(model, namer, notes)
    if approximate_erf:
        _replace_erf(model, namer, notes)
    # Before the opset change: the version converter has no adapter for Split-18 (num_outputs).
    _rewrite_shape_ops(model, namer, min(src_opset, opset), notes)
    _check_schemas(model, opset)
    if src_opset > opset:
        model = _convert_opset(model, src_opset, opset, notes)
    elif src_opset < 9:
        raise LegacyOnnxNeeded(f"opset {src_opset} is older than onnx-tf supports")
    renamed = _rename_io(model)
    _lower_ir_and_imports(model, notes)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise LegacyOnnxNeeded(f"the downgraded model fails onnx.checker: {first_line(exc)}") from None
    return model, notes, renamed


def _has(model, *op_types: str) -> bool:
    return any(n.op_type in op_types for n in model.graph.node)


def _rewrite_noted(model, fn: Callable, note: str, notes: list[str]) -> None:
    """:func:`_rewrite_nodes`, adding ``note`` (with ``{k}``, how many nodes) when any node was replaced."""
    k = _rewrite_nodes(model, fn)
    if k:
        notes.append(note.format(k=k))


def _inline_functions(model, notes: list[str]):
    """Local functions inlined (onnx-tf knows none); the model itself when it has none."""
    if not model.functions:
        return model
    try:
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    except Exception as exc:  # noqa: BLE001
        raise LegacyOnnxNeeded(f"local functions could not be inlined: {first_line(exc)}") from None
    notes.append("inlined local functions")
    return model


def _decompose_new_ops(model, namer: _Namer, notes: list[str]) -> None:
    """LayerNormalization (opset 17) and Gelu (opset 20) as elementwise ops."""
    ranks = _ranks(model) if _has(model, "LayerNormalization") else {}
    _rewrite_noted(model, lambda n: _decompose_layernorm(model, n, namer, ranks) if n.op_type == "LayerNormalization" else None,
                   "decomposed {k} LayerNormalization into elementwise ops", notes)
    _rewrite_noted(model, lambda n: _decompose_gelu(model, n, namer) if n.op_type == "Gelu" else None,
                   "decomposed {k} Gelu into elementwise ops", notes)


def _replace_erf(model, namer: _Namer, notes: list[str]) -> None:
    """Every float32 Erf as the builtin-op polynomial of :func:`_approximate_erf`."""
    import onnx

    if not _has(model, "Erf"):
        return
    types = _elem_types(model)
    float_t = onnx.TensorProto.FLOAT
    _rewrite_noted(model, lambda n: _approximate_erf(model, n, namer)
                   if n.op_type == "Erf" and types.get(n.input[0], float_t) == float_t else None,
                   "replaced {k} Erf by a builtin-op polynomial (|error| <= 1.5e-7) to avoid a Flex op", notes)


def _rewrite_shape_ops(model, namer: _Namer, lowest_opset: int, notes: list[str]) -> None:
    """Squeeze/Unsqueeze as Reshape (when both opsets are >= 13) and Split as Slices, where shapes allow."""
    if lowest_opset >= 13 and _has(model, "Squeeze", "Unsqueeze"):
        shapes = _static_shapes(model)
        _rewrite_noted(model, lambda n: _squeeze_to_reshape(model, n, namer, shapes),
                       "rewrote {k} Squeeze/Unsqueeze as Reshape (onnx-tf has no opset-13 form of them)", notes)
    if _has(model, "Split"):
        shapes = _static_shapes(model)
        _rewrite_noted(model, lambda n: _split_to_slices(model, n, namer, shapes),
                       "rewrote {k} Split as Slices (tf.split becomes the Flex op FlexSplitV in TFLite)", notes)


def _check_schemas(model, opset: int) -> None:
    """Raise when an op left in the graph has no form at ``opset``."""
    import onnx

    too_new = []
    for op in sorted({n.op_type for n in model.graph.node}):
        try:
            onnx.defs.get_schema(op, opset, "")
        except onnx.defs.SchemaError:
            too_new.append(op)
    if too_new:
        raise LegacyOnnxNeeded(f"{', '.join(too_new)} has no opset-{opset} form")


def _convert_opset(model, src_opset: int, opset: int, notes: list[str]):
    """``onnx.version_converter`` from ``src_opset`` down to ``opset``, with its Reduce leftovers repaired."""
    from onnx import version_converter

    try:
        model = version_converter.convert_version(model, opset)
    except Exception as exc:  # noqa: BLE001 - the C++ converter raises RuntimeError/assertions
        raise LegacyOnnxNeeded(f"onnx.version_converter cannot take opset {src_opset} to {opset}: {first_line(exc)}") from None
    if opset < 18:
        _drop_noop_with_empty_axes(model, opset)
    notes.append(f"opset {src_opset} -> {opset} (onnx.version_converter)")
    return model


def _drop_noop_with_empty_axes(model, opset: int) -> None:
    """The 18 -> 17 Reduce adapters keep a ``noop_with_empty_axes`` attribute that opset 13 lacks."""
    for node in model.graph.node:
        if node.op_type not in _REDUCE_OPS:
            continue
        keep = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
        if len(keep) == len(node.attribute):
            continue
        noop = next(a for a in node.attribute if a.name == "noop_with_empty_axes")
        if noop.i:
            raise LegacyOnnxNeeded(f"{node.op_type} with noop_with_empty_axes=1 has no opset-{opset} form")
        del node.attribute[:]
        node.attribute.extend(keep)


def _lower_ir_and_imports(model, notes: list[str]) -> None:
    """IR version down to MAX_IR; only the default domain is left, so imports of domains no node uses go
    (dynamo adds some)."""
    if model.ir_version > MAX_IR:
        notes.append(f"IR version {model.ir_version} -> {MAX_IR}")
        model.ir_version = MAX_IR
    used = {n.domain for n in model.graph.node} | {""}
    keep_imports = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep_imports)


def needs_legacy_onnx(onnx_path: str | Path, *, opset: int = MAX_OPSET) -> str | None:
    """Why ``onnx_path`` cannot be made onnx-tf compatible by rewriting (None when it can).

    A planner calls this to decide whether onnx-tf needs a legacy-exporter ONNX (opset 15) from the
    PyTorch model. Unreadable files are reported as a reason too.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # noqa: BLE001
        return f"cannot read {onnx_path}: {first_line(exc)}"
    try:
        make_compatible(model, opset=opset)
    except LegacyOnnxNeeded as exc:
        return str(exc)
    return None

