"""ONNX -> SavedModel / TFLite with the legacy onnx-tf converter, run in its isolated environment.

onnx-tf 1.10 needs TensorFlow 2.15 (Keras 2) and onnx 1.15, so it lives in its own venv (see
:mod:`edgeport.backends`) where edgeport is not installed. This module is the main-environment half:

1. It makes an ONNX model onnx-tf can read: IR version <= 8, default-domain opset <= 15. From the
   parent ONNX (usually a dynamo export: IR 10, opset 18) it rewrites what has no opset-15 form
   (LayerNormalization and Gelu are decomposed into elementwise ops), downgrades the opset with
   ``onnx.version_converter`` and repairs what that converter leaves behind (a ``noop_with_empty_axes``
   attribute on Reduce ops that opset 13 does not know). When that is impossible (custom domains, ops
   without an opset-15 form) and the job has a PyTorch model, it re-exports with the legacy
   (TorchScript-based) exporter at opset 15 instead. :func:`needs_legacy_onnx` tells a planner ahead
   of time whether the parent ONNX is enough.
2. Exact GELU's ``Erf`` becomes a TensorFlow ``Erf`` op, which TFLite has only as a Select TF (Flex)
   op that the LiteRT interpreters edgeport ships cannot run. Unless ``approximate_erf`` is off, each
   ``Erf`` is replaced by the Abramowitz-Stegun 7.1.26 polynomial (|error| <= 1.5e-7), which converts
   to builtin ops only.
3. It runs ``_onnx_tf_job.py`` with the venv's interpreter in a worker process (crash, timeout and
   network isolation as for every converter) and turns the result into manifest artifacts.

onnx-tf keeps PyTorch's NCHW layout (it inserts Transposes around convolutions instead), so every
tensor's ``perm`` is the identity. Tensors are named by the ``serving_default`` signature keys of the
SavedModel and the .tflite, which onnx-tf takes from the ONNX input/output names (made plain
identifiers here first); ``ref_name`` maps each back to the PyTorch name.
"""

from __future__ import annotations

import contextlib
import io as _io
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeport.errors import ConversionError, UsageError
from edgeport.manifest import Artifact
from edgeport.spec import Dim, IOSpec, TensorSpec

MAX_OPSET = 15  # onnx-tf 1.10 handles opsets up to 15
MAX_IR = 8  # the IR version that goes with opset 15 (onnx-tf's onnx 1.15 reads IR <= 9)
SCRIPT = Path(__file__).with_name("_onnx_tf_job.py")
SAVED_MODEL_REL = "saved_model_onnx_tf"
TFLITE_REL = "model_onnx_tf.tflite"
SIGNATURE = "serving_default"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REDUCE_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


@dataclass(frozen=True)
class OnnxTfOptions:
    """Options of the onnx-tf step; unknown keys in the job's options (other converters') are ignored."""

    targets: tuple[str, ...] = ("saved_model", "tflite")
    allow_flex: bool = False  # let TFLiteConverter emit Select TF ops
    approximate_erf: bool = True  # replace Erf by a builtin-only polynomial (|error| <= 1.5e-7)
    onnx_opset: int = MAX_OPSET  # opset of the ONNX handed to onnx-tf
    legacy_export: bool = True  # re-export from PyTorch at onnx_opset when the parent ONNX cannot be downgraded
    timeout: float = 1500.0  # seconds for the isolated conversion

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "OnnxTfOptions":
        targets = tuple(d.get("targets") or ("saved_model", "tflite"))
        bad = [t for t in targets if t not in ("saved_model", "tflite")]
        if bad:
            raise UsageError(f"onnx-tf cannot make {', '.join(bad)}", "ask it for saved_model and/or tflite")
        opset = int(d.get("onnx_opset") or MAX_OPSET)
        if not 9 <= opset <= MAX_OPSET:
            raise UsageError(f"onnx-tf opset {opset} is out of range", f"use an opset between 9 and {MAX_OPSET}")
        return OnnxTfOptions(targets=targets, allow_flex=bool(d.get("allow_flex", False)),
                             approximate_erf=bool(d.get("approximate_erf", True)), onnx_opset=opset,
                             legacy_export=bool(d.get("legacy_export", True)), timeout=float(d.get("timeout") or 1500.0))


class LegacyOnnxNeeded(Exception):
    """The ONNX cannot be turned into one onnx-tf reads; ``str(exc)`` says why (one line)."""


# --------------------------------------------------------------------------------------- ONNX rewriting


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
    """Return ``(model, notes, renamed)``: a copy onnx-tf can read. Raises :class:`LegacyOnnxNeeded`."""
    import onnx
    from onnx import version_converter

    model = onnx.ModelProto.FromString(model.SerializeToString())
    notes: list[str] = []
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
            notes.append("inlined local functions")
        except Exception as exc:  # noqa: BLE001
            raise LegacyOnnxNeeded(f"local functions could not be inlined: {_first_line(exc)}") from None
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise LegacyOnnxNeeded(f"ops from custom domains: {', '.join(custom[:5])}")
    src_opset = _opset(model)
    namer = _Namer(model)
    ranks = _ranks(model) if any(n.op_type == "LayerNormalization" for n in model.graph.node) else {}
    if src_opset > opset:
        k = _rewrite_nodes(model, lambda n: _decompose_layernorm(model, n, namer, ranks) if n.op_type == "LayerNormalization" else None)
        if k:
            notes.append(f"decomposed {k} LayerNormalization into elementwise ops")
        k = _rewrite_nodes(model, lambda n: _decompose_gelu(model, n, namer) if n.op_type == "Gelu" else None)
        if k:
            notes.append(f"decomposed {k} Gelu into elementwise ops")
    if approximate_erf and any(n.op_type == "Erf" for n in model.graph.node):
        types = _elem_types(model)
        float_t = onnx.TensorProto.FLOAT
        k = _rewrite_nodes(model, lambda n: _approximate_erf(model, n, namer)
                           if n.op_type == "Erf" and types.get(n.input[0], float_t) == float_t else None)
        if k:
            notes.append(f"replaced {k} Erf by a builtin-op polynomial (|error| <= 1.5e-7) to avoid a Flex op")
    # Before the opset change: the version converter has no adapter for Split-18 (num_outputs).
    if min(src_opset, opset) >= 13 and any(n.op_type in ("Squeeze", "Unsqueeze") for n in model.graph.node):
        shapes = _static_shapes(model)
        k = _rewrite_nodes(model, lambda n: _squeeze_to_reshape(model, n, namer, shapes))
        if k:
            notes.append(f"rewrote {k} Squeeze/Unsqueeze as Reshape (onnx-tf has no opset-13 form of them)")
    if any(n.op_type == "Split" for n in model.graph.node):
        shapes = _static_shapes(model)
        k = _rewrite_nodes(model, lambda n: _split_to_slices(model, n, namer, shapes))
        if k:
            notes.append(f"rewrote {k} Split as Slices (tf.split becomes the Flex op FlexSplitV in TFLite)")
    too_new = []
    for op in sorted({n.op_type for n in model.graph.node}):
        try:
            onnx.defs.get_schema(op, opset, "")
        except onnx.defs.SchemaError:
            too_new.append(op)
    if too_new:
        raise LegacyOnnxNeeded(f"{', '.join(too_new)} has no opset-{opset} form")
    if src_opset > opset:
        try:
            model = version_converter.convert_version(model, opset)
        except Exception as exc:  # noqa: BLE001 - the C++ converter raises RuntimeError/assertions
            raise LegacyOnnxNeeded(f"onnx.version_converter cannot take opset {src_opset} to {opset}: {_first_line(exc)}") from None
        for node in model.graph.node:  # the 18 -> 17 Reduce adapters keep an attribute opset 13 lacks
            if node.op_type in _REDUCE_OPS and opset < 18:
                keep = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
                if len(keep) != len(node.attribute):
                    noop = next(a for a in node.attribute if a.name == "noop_with_empty_axes")
                    if noop.i:
                        raise LegacyOnnxNeeded(f"{node.op_type} with noop_with_empty_axes=1 has no opset-{opset} form")
                    del node.attribute[:]
                    node.attribute.extend(keep)
        notes.append(f"opset {src_opset} -> {opset} (onnx.version_converter)")
    elif src_opset < 9:
        raise LegacyOnnxNeeded(f"opset {src_opset} is older than onnx-tf supports")
    renamed = _rename_io(model)
    if model.ir_version > MAX_IR:
        notes.append(f"IR version {model.ir_version} -> {MAX_IR}")
        model.ir_version = MAX_IR
    # Only the default domain is left; drop imports of domains no node uses (dynamo adds some).
    used = {n.domain for n in model.graph.node} | {""}
    keep_imports = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep_imports)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise LegacyOnnxNeeded(f"the downgraded model fails onnx.checker: {_first_line(exc)}") from None
    return model, notes, renamed


def unsupported_reason(model) -> str | None:
    """Patterns onnx-tf 1.10 is known to reject, found before paying for its ~3 s TensorFlow import."""
    from onnx import helper

    for node in model.graph.node:
        if node.op_type == "GRU":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if int(attrs.get("linear_before_reset", 0)) == 1:
                return ("onnx-tf does not support GRU with linear_before_reset=1, which is what every PyTorch nn.GRU "
                        "exports")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    line = re.sub(r"^/\S+:\d+: \w+: ", "", line)  # C++ file:line prefixes from onnx asserts
    return line[:240]


def needs_legacy_onnx(onnx_path: str | Path, *, opset: int = MAX_OPSET) -> str | None:
    """Why ``onnx_path`` cannot be made onnx-tf compatible by rewriting (None when it can).

    A planner calls this to decide whether onnx-tf needs a legacy-exporter ONNX (opset 15) from the
    PyTorch model. Unreadable files are reported as a reason too.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # noqa: BLE001
        return f"cannot read {onnx_path}: {_first_line(exc)}"
    try:
        make_compatible(model, opset=opset)
    except LegacyOnnxNeeded as exc:
        return str(exc)
    return None


def _legacy_export(model_json: dict[str, Any], io: IOSpec, reference: str, dst: Path, opset: int) -> None:
    """Re-export the PyTorch model with the TorchScript-based exporter at ``opset``."""
    import torch

    from edgeport.models import load_for_export

    module, example, _, _ = load_for_export({**model_json, "extra": {**model_json.get("extra", {}), "reference": reference}})
    dynamic_axes: dict[str, dict[int, str]] = {}
    for s in list(io.inputs) + list(io.outputs):
        axes = {a: d for a, d in enumerate(s.shape) if isinstance(d, str)}
        if axes:
            dynamic_axes[s.name] = axes
    with warnings.catch_warnings(), contextlib.redirect_stdout(_io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(dst), dynamo=False, opset_version=opset,
                          input_names=[s.name for s in io.inputs], output_names=[s.name for s in io.outputs],
                          dynamic_axes=dynamic_axes or None, do_constant_folding=True)


# --------------------------------------------------------------------------------------- the step


def _graph_io(model) -> tuple[list[str], list[str]]:
    init = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init], [o.name for o in model.graph.output]


def _ref_names(graph_names: list[str], renamed: dict[str, str], parent_specs: list[TensorSpec] | None,
               ref_specs: list[TensorSpec]) -> dict[str, TensorSpec]:
    """Prepared-ONNX tensor name -> the reference TensorSpec it stands for."""
    back = {v: k for k, v in renamed.items()}
    by_ref = {s.name: s for s in ref_specs}
    by_parent = {s.name: s for s in parent_specs or []}
    out: dict[str, TensorSpec] = {}
    for i, name in enumerate(graph_names):
        orig = back.get(name, name)
        ref_name = None
        if orig in by_parent:
            ref_name = by_parent[orig].ref_name or orig
        elif orig in by_ref:
            ref_name = orig
        spec = by_ref.get(ref_name) if ref_name else None
        if spec is None and len(graph_names) == len(ref_specs):
            spec = ref_specs[i]
        if spec is None:
            raise ConversionError(f"cannot tell which model tensor the ONNX tensor {orig!r} is",
                                  "give the ONNX inputs and outputs the PyTorch names")
        out[name] = spec
    return out


def _merge_shape(ref: tuple[Dim, ...], actual: list[int]) -> tuple[Dim, ...]:
    """The artifact's shape: its own fixed sizes, the reference's names where it is dynamic (-1)."""
    if len(actual) != len(ref):
        return tuple(int(d) if d >= 0 else f"d{i}" for i, d in enumerate(actual))
    return tuple(r if (a is None or int(a) < 0) else int(a) for r, a in zip(ref, actual))


def _artifact_io(entries: list[dict[str, Any]], refs: dict[str, TensorSpec]) -> list[TensorSpec]:
    out = []
    for e in entries:
        ref = refs[e["onnx_name"]]
        shape = _merge_shape(ref.shape, e["shape"])
        out.append(TensorSpec(name=e["key"], shape=shape, dtype=e["dtype"], layout=ref.layout,
                              perm=tuple(range(len(shape))), ref_name=ref.name))
    return out


def _tflite_entries(path: Path, sm_entries: list[dict[str, Any]], kind: str) -> tuple[list[dict[str, Any]], dict]:
    """The .tflite's signature tensors, in the same order and with the same keys as the SavedModel's."""
    from edgeport.convert.tflite_inspect import inspect_tflite

    info = inspect_tflite(path)
    sig = info["signatures"].get(SIGNATURE) or next(iter(info["signatures"].values()), None)
    if sig is None:
        raise ConversionError(f"{path.name} has no signature", "re-run the conversion; onnx-tf models always carry one")
    tensors = {t["index"]: t for t in info[kind]}
    out = []
    for e in sm_entries:
        idx = sig[kind].get(e["key"])
        if idx is None:
            raise ConversionError(f"{path.name} has no {kind[:-1]} {e['key']!r} in its signature (has {sorted(sig[kind])})",
                                  "re-run the conversion")
        t = tensors.get(idx)
        shape = t["shape_signature"] if t else e["shape"]
        dtype = t["dtype"] if t else e["dtype"]
        out.append({**e, "shape": shape, "dtype": dtype})
    return out, info


def run(*, staging: str, out_dir: str, model: dict, io: dict, dims: dict, reference: str,
        parent_path: str | None = None, parent_io: dict | None = None, options: dict | None = None, **_: Any) -> dict:
    """Convert ``parent_path`` (or a legacy re-export of ``model``) with onnx-tf; see the module docstring."""
    import onnx

    from edgeport.backends import isolated_status, python_for
    from edgeport.worker import run_in_worker

    opts = OnnxTfOptions.from_dict(options or {})
    python = python_for("onnx-tf")
    ref_io = IOSpec.from_json(io)
    p_io = IOSpec.from_json(parent_io) if parent_io else None
    notes: list[str] = []
    source = "parent"
    with tempfile.TemporaryDirectory(prefix="edgeport-onnx-tf-") as work_s:
        work = Path(work_s)
        prepared = work / "model.onnx"
        reason = "no ONNX parent was given"
        result = None
        if parent_path:
            try:
                parent = onnx.load(parent_path)
            except Exception as exc:  # noqa: BLE001
                raise ConversionError(f"cannot read the ONNX model {parent_path}: {_first_line(exc)}", "re-export it") from None
            try:
                result = make_compatible(parent, opset=opts.onnx_opset, approximate_erf=opts.approximate_erf)
                reason = ""
            except LegacyOnnxNeeded as exc:
                reason = str(exc)
        can_reexport = bool(model) and model.get("kind") not in (None, "onnx") and opts.legacy_export
        if result is None:
            if not can_reexport:
                raise ConversionError(f"onnx-tf cannot take this ONNX model: {reason}",
                                      f"convert from the PyTorch model, export ONNX at opset <= {MAX_OPSET} with the legacy "
                                      "exporter, or use onnx2tf")
            legacy = work / "legacy.onnx"
            try:
                _legacy_export(model, ref_io, reference, legacy, opts.onnx_opset)
            except Exception as exc:  # noqa: BLE001
                raise ConversionError(f"the legacy ONNX export at opset {opts.onnx_opset} for onnx-tf failed: {_first_line(exc)}",
                                      "use onnx2tf or litert-torch for this model") from None
            try:
                result = make_compatible(onnx.load(str(legacy)), opset=opts.onnx_opset, approximate_erf=opts.approximate_erf)
            except LegacyOnnxNeeded as exc:
                raise ConversionError(f"onnx-tf cannot take even the legacy opset-{opts.onnx_opset} export: {exc}",
                                      "use onnx2tf or litert-torch for this model") from None
            source = "legacy-export"
            notes.append(f"re-exported with the legacy exporter at opset {opts.onnx_opset} ({reason})")
            p_io = None  # the legacy export uses the reference names
        compat, prep_notes, renamed = result
        unsupported = unsupported_reason(compat)
        if unsupported:
            raise ConversionError(unsupported, "use the onnx2tf or litert-torch converter for this model")
        notes += prep_notes
        onnx.save(compat, str(prepared))
        g_in, g_out = _graph_io(compat)
        ref_in = _ref_names(g_in, renamed, p_io.inputs if p_io else None, ref_io.inputs)
        ref_out = _ref_names(g_out, renamed, p_io.outputs if p_io else None, ref_io.outputs)

        want_tflite = "tflite" in opts.targets
        stage = Path(staging)
        sm_dir = stage / SAVED_MODEL_REL if "saved_model" in opts.targets else work / "saved_model"
        tfl = stage / TFLITE_REL
        res = run_in_worker(
            "convert",
            {"onnx_path": str(prepared), "saved_model_dir": str(sm_dir), "tflite_path": str(tfl) if want_tflite else None,
             "allow_flex": opts.allow_flex},
            python=python, script=SCRIPT, timeout=opts.timeout, cwd=work,
            # The venv must see only its own site-packages, never the caller's PYTHONPATH or user site.
            env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"},
        )
        if not res.ok:
            err = res.error or {}
            if err.get("type") == "ConversionError":
                raise ConversionError(err.get("message", "onnx-tf failed"), err.get("hint", ""))
            raise ConversionError(f"onnx-tf {res.reason()}", "see the step log; use onnx2tf or litert-torch for this model")
        value = res.value
    venv_versions = value.get("versions", {})
    tools = {"onnx-tf": venv_versions.get("onnx-tf", "?")}
    tools.update({f"onnx-tf/{k}": v for k, v in venv_versions.items() if k != "onnx-tf"})
    status = isolated_status("onnx-tf")
    tools["onnx-tf/python"] = str(status.get("versions", {}).get("python", ""))
    options_out = {**asdict(opts), "onnx_source": source, "onnx_opset": value.get("opset"), "ir_version": value.get("ir_version"),
                   "signature": SIGNATURE}
    options_out["targets"] = list(opts.targets)
    parent_name = "onnx" if source == "parent" else "pytorch"
    timings = value.get("timings", {})
    artifacts: list[Artifact] = []
    sm = value["saved_model"]
    if "saved_model" in opts.targets:
        artifacts.append(Artifact(
            name="saved_model", format="saved_model", path=SAVED_MODEL_REL, converter="onnx-tf", options=options_out,
            tools=tools, parent=parent_name, io=IOSpec(_artifact_io(sm["inputs"], ref_in), _artifact_io(sm["outputs"], ref_out)),
            notes=notes + ["keeps the NCHW layout (onnx-tf inserts Transposes around convolutions)"],
            seconds=float(timings.get("saved_model", 0.0)),
        ))
    if want_tflite:
        tin, info = _tflite_entries(tfl, sm["inputs"], "inputs")
        tout, _ = _tflite_entries(tfl, sm["outputs"], "outputs")
        tnotes = list(notes) + ["keeps the NCHW layout (onnx-tf inserts Transposes around convolutions)"]
        if info["flex_ops"]:
            tnotes.append(f"needs Select TF ops: {', '.join(info['flex_ops'])}")
        artifacts.append(Artifact(
            name="tflite", format="tflite", path=TFLITE_REL, converter="onnx-tf", options=options_out, tools=tools,
            parent=parent_name, io=IOSpec(_artifact_io(tin, ref_in), _artifact_io(tout, ref_out)), ops=info["ops"],
            notes=tnotes, seconds=float(timings.get("tflite", 0.0)),
        ))
    from edgeport.fsutil import path_size, sha256_path

    for a in artifacts:
        p = stage / a.path
        a.sha256, a.size_bytes = sha256_path(p), path_size(p)
    return {"artifacts": [a.to_json() for a in artifacts], "notes": notes, "timings": timings}
