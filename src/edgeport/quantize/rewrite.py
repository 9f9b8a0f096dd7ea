"""Delegate-friendly ONNX rewrites for full int8: hard-swish and hard-sigmoid as ADD / RELU6 / MUL.

    run_in_worker("edgeport.quantize.rewrite:rewrite_job", {"onnx": "model.onnx", "out": "stage/model.onnx",
                  "op_types": ["HardSwish", "HardSigmoid"]})

XNNPACK (LiteRT 2.3.0) has no int8 kernel for TFLite's HARD_SWISH, nor for the MINIMUM + RELU that
onnx2tf makes of a HardSigmoid, so in a full-int8 model each of them runs on a builtin kernel and cuts
the delegated graph. Written with ops it does run in int8 they stay inside one partition:

- ``HardSigmoid(x; alpha, beta)`` = ``Mul(Clip(Add(Mul(x, 6 alpha), 6 beta), 0, 6), 1/6)`` (the inner Mul is
  left out when 6 alpha = 1, as in PyTorch's hardsigmoid): an ADD with a fused RELU6, then a MUL;
- ``HardSwish(x)`` = ``Mul(Mul(x, 1/6), Clip(Add(x, 3), 0, 6))``. The 1/6 goes on ``x``, not on the clip:
  TFLiteConverter recognises ``x * relu6(x + 3) * (1/6)`` and fuses it back into HARD_SWISH.

Both are exact in float (up to rounding); the job checks the rewritten model against the original in
ONNX Runtime on seeded random inputs before writing it. Imports onnx only inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeport.errors import ConversionError, InputError

REWRITES = ("HardSwish", "HardSigmoid")
MAX_REL_ERROR = 1e-4  # the rewritten model against the original, relative to the output's magnitude


class _Consts:
    """float32 initializers, one per value, named uniquely."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.by_value: dict[float, str] = {}

    def __call__(self, value: float) -> str:
        import numpy as np
        from onnx import numpy_helper

        if value not in self.by_value:
            name = f"edgeport_hard_act_c{len(self.by_value)}"
            self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
            self.by_value[value] = name
        return self.by_value[value]


def _clip06(x: str, out: str, opset: int, c: _Consts) -> Any:
    from onnx import helper

    if opset >= 11:
        return helper.make_node("Clip", [x, c(0.0), c(6.0)], [out], name=out + "_clip")
    return helper.make_node("Clip", [x], [out], min=0.0, max=6.0, name=out + "_clip")


def _hard_sigmoid(node: Any, tag: str, opset: int, c: _Consts) -> list[Any]:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    x, nodes = node.input[0], []
    if abs(6.0 * alpha - 1.0) > 1e-7:
        nodes.append(helper.make_node("Mul", [x, c(6.0 * alpha)], [tag + "_scaled"], name=tag + "_scale"))
        x = tag + "_scaled"
    nodes.append(helper.make_node("Add", [x, c(6.0 * beta)], [tag + "_shift"], name=tag + "_add"))
    nodes.append(_clip06(tag + "_shift", tag + "_relu6", opset, c))
    nodes.append(helper.make_node("Mul", [tag + "_relu6", c(1.0 / 6.0)], [node.output[0]], name=tag + "_div6"))
    return nodes


def _hard_swish(node: Any, tag: str, opset: int, c: _Consts) -> list[Any]:
    from onnx import helper

    x = node.input[0]
    return [helper.make_node("Add", [x, c(3.0)], [tag + "_shift"], name=tag + "_add"),
            _clip06(tag + "_shift", tag + "_relu6", opset, c),
            helper.make_node("Mul", [x, c(1.0 / 6.0)], [tag + "_x6"], name=tag + "_div6"),
            helper.make_node("Mul", [tag + "_x6", tag + "_relu6"], [node.output[0]], name=tag + "_mul")]


def _float_inputs(model: Any) -> set[str]:
    """Names of the tensors shape inference knows to be float32 (other dtypes are not rewritten)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is only a filter; unknown types count as float below
        return set()
    g = inferred.graph
    return {v.name for v in list(g.value_info) + list(g.input) + list(g.output)
            if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}


def delegate_friendly(model: Any, op_types: tuple[str, ...] | list[str] = REWRITES) -> dict[str, int]:
    """Rewrite the ``op_types`` nodes of ``model`` (an onnx ModelProto, changed in place); returns counts per type."""
    unknown = [t for t in op_types if t not in REWRITES]
    if unknown:
        raise InputError(f"no delegate-friendly rewrite for ONNX {unknown[0]}", f"rewrite one of {', '.join(REWRITES)}")
    g = model.graph
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    floats = _float_inputs(model)
    c = _Consts(g)
    counts: dict[str, int] = {}
    nodes: list[Any] = []
    for k, node in enumerate(g.node):
        if node.op_type in op_types and node.domain in ("", "ai.onnx") and (not floats or node.input[0] in floats):
            tag = f"edgeport_{node.op_type.lower()}_{k}"
            nodes.extend((_hard_swish if node.op_type == "HardSwish" else _hard_sigmoid)(node, tag, opset, c))
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        else:
            nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    return counts


def _worst_rel(a_path: str, b_path: str) -> float:
    """Largest |a - b| / max|a| over the outputs of two ONNX models on one seeded random input (ONNX Runtime)."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    sa, sb = ort.InferenceSession(a_path), ort.InferenceSession(b_path)
    feed = {}
    for i in sa.get_inputs():
        if "float" not in i.type:
            raise InputError(f"input {i.name} is {i.type}", "the rewrite check feeds float inputs only")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feed[i.name] = (rng.standard_normal(shape) * 3.0).astype(np.float32)  # spans both kinks at -3 and +3
    worst = 0.0
    for x, y in zip(sa.run(None, feed), sb.run(None, feed)):
        scale = float(np.max(np.abs(x))) or 1.0
        worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) - y))) / scale)
    return worst


def rewrite_job(*, onnx: str, out: str, op_types: list[str]) -> dict[str, Any]:
    """Worker entry: write ``onnx`` with its ``op_types`` nodes rewritten to ``out``; returns counts and the check."""
    import onnx as onnx_lib

    try:
        model = onnx_lib.load(onnx)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, OSError ...
        raise InputError(f"cannot read the ONNX model {onnx}: {type(exc).__name__}", "re-export it with edgeport convert") from None
    counts = delegate_friendly(model, tuple(op_types))
    if not counts:
        return {"rewritten": {}, "path": None}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx_lib.save(model, out)
    rel = _worst_rel(onnx, out)
    if rel > MAX_REL_ERROR:
        raise ConversionError(f"the rewritten ONNX model differs from the original by {rel:.2e} of the output's magnitude",
                              "report this bug; the rewrite should be exact")
    return {"rewritten": counts, "path": out, "max_rel_error": rel}
