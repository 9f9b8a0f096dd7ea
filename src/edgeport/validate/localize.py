"""Divergence localization: the first intermediate tensor where two models stop agreeing.

Two pairs are supported, each run in a worker by :func:`localize_job`:

- ``pytorch-onnx``: PyTorch eager (forward hooks on every module) against ONNX Runtime with every ONNX
  node output exposed as a graph output. An ONNX tensor is matched to the outputs of the modules whose
  scope it closes (dynamo exports record ``pkg.torch.onnx.name_scopes`` on every node, the TorchScript
  exporter names nodes ``/features/features.0/Conv``), and to any same-shaped module output (so a
  Conv+BatchNorm folded by the exporter still matches the BatchNorm's output).
- ``onnx-tflite``: ONNX Runtime against the TFLite interpreter with ``experimental_preserve_all_tensors``.
  ONNX tensors are matched to TFLite tensors by shape, trying the NCHW -> NHWC transposes a converter
  applies, then by value.
- ``onnx-onnx`` and ``tflite-tflite`` (``edgeport validate a.onnx b.onnx --localize``): two graphs of the
  same model, every intermediate tensor of each (ONNX: every node output made a graph output; TFLite:
  ``experimental_preserve_all_tensors``) compared by tensor name; when fewer than half the names are
  shared (two different exports), by shape and graph position as above. Weights (ONNX initializers,
  TFLite constant tensors) that differ between the files are listed with the nodes that read them.

Each tensor of the reference graph is then *matched* (close to a counterpart), *diverged* (it has same-shaped
counterparts, none close) or *unobservable* (nothing to compare with, e.g. fused away). Walking back
from the diverging model outputs through diverged and unobservable tensors, the divergence starts at
the diverged tensor whose inputs all match: its producing node is named, with the PyTorch module
(from the node's scope) and the unobservable nodes just before it. "Close" is
``max|a - b| <= atol + rtol * max|a|``, scaled per tensor.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.runtimes.base import native_feed, native_tensor
from edgeport.spec import IOSpec, to_reference_layout

MATCHED, DIVERGED, UNOBSERVED = "matched", "diverged", "unobservable"
_ONNX_FLOAT = {1: np.float32, 10: np.float16, 11: np.float64, 16: np.float32}
_MAX_CANDIDATES = 64  # same-shaped tensors compared per tensor


@dataclass
class OnnxTensor:
    """A tensor computed by a graph node (an ONNX node output or a TFLite op output)."""

    name: str
    node: str
    op_type: str
    index: int  # topological position of the producing node
    inputs: list[str]  # activation inputs of the producing node
    scope: list[str] = field(default_factory=list)  # module paths, outermost first
    weights: list[str] = field(default_factory=list)  # initializers the producing node reads
    position: float = 0.0  # index / number of nodes: where in the graph it is computed
    value: np.ndarray | None = None
    status: str = UNOBSERVED
    detail: dict[str, Any] = field(default_factory=dict)


def node_scope(node: Any) -> list[str]:
    """Module paths a node belongs to, outermost first (dynamo metadata or TorchScript-exporter names)."""
    md = {p.key: p.value for p in getattr(node, "metadata_props", [])}
    raw = md.get("pkg.torch.onnx.name_scopes")
    if raw:
        try:
            items = [str(x) for x in ast.literal_eval(raw)]
            return [x for x in items[1:-1] if x]
        except (ValueError, SyntaxError):
            pass
    name = node.name or ""
    if name.startswith("/"):
        return [s for s in name.split("/")[1:-1] if s]
    return []


def close(a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> tuple[bool, float, float]:
    """(within tolerance, max abs error, allowed) with the tolerance scaled by ``max|a|``."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        same = bool(np.array_equal(np.isnan(a64), np.isnan(b64)))
        a64, b64 = np.nan_to_num(a64), np.nan_to_num(b64)
        if not same:
            return False, float("inf"), 0.0
    err = float(np.max(np.abs(a64 - b64))) if a64.size else 0.0
    allowed = atol + rtol * (float(np.max(np.abs(a64))) if a64.size else 0.0)
    return err <= allowed, err, allowed


def _nearest(cands: list[tuple[float, Any]], position: float) -> list[Any]:
    """The candidates computed nearest (relatively) to ``position`` in their graph, nearest first."""
    ranked = sorted(cands, key=lambda pc: abs(pc[0] - position))
    return [c for _, c in ranked[:_MAX_CANDIDATES]]


def _layouts(shape: tuple[int, ...]) -> list[tuple[int, ...] | None]:
    """Transposes a converter may have applied to a tensor of this rank (None = as is)."""
    r = len(shape)
    perms: list[tuple[int, ...] | None] = [None]
    if r >= 3:
        perms.append((0, *range(2, r), 1))  # channels last
    return perms


# ------------------------------------------------------------------------------------------ ONNX side


def onnx_intermediates(onnx_path: str, feed: dict[str, np.ndarray], threads: int = 1) -> list[OnnxTensor]:
    """Run ONNX Runtime (graph optimizations off) on ``feed`` (keyed by the model's own input names) with every
    node output exposed; the floating-point tensors computed from the inputs, in topological order."""
    import onnx

    from edgeport.runtimes.onnxruntime import open_session

    model = onnx.load(onnx_path)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    graph_inputs = [i.name for i in graph.input if i.name not in initializers]
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        vinfo = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    except Exception:  # noqa: BLE001 - shape inference is optional help
        vinfo = {}
    existing = {o.name for o in graph.output}
    dynamic = set(graph_inputs)
    tensors: list[OnnxTensor] = []
    for idx, node in enumerate(graph.node):
        acts = [i for i in node.input if i and i in dynamic]
        outs = [o for o in node.output if o]
        if not acts:  # constants and shape arithmetic on constants
            continue
        scope = node_scope(node)
        for o in outs:
            dynamic.add(o)
            elem = vinfo[o].type.tensor_type.elem_type if o in vinfo and vinfo[o].type.HasField("tensor_type") else 0
            if elem and elem not in _ONNX_FLOAT:
                continue
            weights = [i for i in node.input if i in initializers]
            tensors.append(OnnxTensor(o, node.name or f"{node.op_type}_{idx}", node.op_type, idx, acts, scope, weights))
            if o not in existing:
                graph.output.append(vinfo[o] if o in vinfo else onnx.ValueInfoProto(name=o))
                existing.add(o)
    if model.ByteSize() < (1 << 31) - (1 << 20):
        sess = open_session(model.SerializeToString(), threads, optimize=False, where=onnx_path)
    else:  # pragma: no cover - >2 GB models need external data
        import os
        import tempfile

        tmp = tempfile.mkdtemp(prefix="edgeport-localize-")
        p = os.path.join(tmp, "model.onnx")
        onnx.save(model, p, save_as_external_data=True)
        sess = open_session(p, threads, optimize=False, where=onnx_path)
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, feed)))
    for t in tensors:
        v = values.get(t.name)
        if v is not None and np.asarray(v).dtype.kind == "f":
            t.value = np.asarray(v)
    kept = [t for t in tensors if t.value is not None]
    n = max(1, len(graph.node))
    for t in kept:
        t.position = t.index / n
    return kept


# ------------------------------------------------------------------------------------------ the walk


def _origin(tensors: list[OnnxTensor], outputs: list[str]) -> tuple[OnnxTensor | None, list[OnnxTensor]]:
    """The diverged tensor where the divergence starts, and the unobservable tensors just before it."""
    by_name = {t.name: t for t in tensors}
    start = [by_name[o] for o in outputs if o in by_name and by_name[o].status == DIVERGED]
    seen: set[str] = set()
    region: list[OnnxTensor] = []
    stack = list(start)
    while stack:
        t = stack.pop()
        if t.name in seen:
            continue
        seen.add(t.name)
        region.append(t)
        for i in t.inputs:
            u = by_name.get(i)
            if u is not None and u.status != MATCHED and u.name not in seen:
                stack.append(u)
    # does a diverged tensor feed t through unobservable ones? (inputs come first in topological order)
    fed_by_diverged: dict[str, bool] = {}
    for t in sorted(region, key=lambda x: x.index):
        fed_by_diverged[t.name] = any(
            (u := by_name.get(i)) is not None and u.status != MATCHED and (u.status == DIVERGED or fed_by_diverged.get(u.name, False))
            for i in t.inputs)
    frontier = [t for t in region if t.status == DIVERGED and not fed_by_diverged[t.name]]
    if not frontier:
        return None, []
    origin = min(frontier, key=lambda t: t.index)
    before: dict[str, OnnxTensor] = {}
    stack = [by_name[i] for i in origin.inputs if i in by_name and by_name[i].status == UNOBSERVED]
    while stack:
        u = stack.pop()
        if u.name in before:
            continue
        before[u.name] = u
        stack.extend(by_name[i] for i in u.inputs if i in by_name and by_name[i].status == UNOBSERVED)
    return origin, sorted(before.values(), key=lambda t: t.index)


def _describe(t: OnnxTensor) -> dict[str, Any]:
    return {"node": t.node, "op_type": t.op_type, "tensor": t.name, "module": t.scope[-1] if t.scope else None,
            "weights": t.weights, "shape": list(t.value.shape) if t.value is not None else None}


def _result(mode: str, tensors: list[OnnxTensor], outputs: list[str], extra: dict[str, Any], graph: str = "ONNX node"
            ) -> dict[str, Any]:
    origin, before = _origin(tensors, outputs)
    counts = {s: sum(1 for t in tensors if t.status == s) for s in (MATCHED, DIVERGED, UNOBSERVED)}
    out: dict[str, Any] = {"mode": mode, "found": origin is not None, "tensors": counts, **extra}
    if origin is None:
        out["message"] = ("no intermediate tensor diverges beyond tolerance" if not any(
            t.status == DIVERGED for t in tensors if t.name in outputs) else "the outputs diverge but no single origin was found")
        return out
    out.update(_describe(origin))
    out["metrics"] = origin.detail
    out["unobservable_before"] = [_describe(t) for t in before]
    first_in_order = next((t for t in tensors if t.status == DIVERGED), None)
    if first_in_order is not None and first_in_order is not origin:
        out["first_diverged_in_order"] = _describe(first_in_order)
    where = f" (module {origin.scope[-1]})" if origin.scope else ""
    if origin.weights:
        where += f", weights {', '.join(origin.weights[:3])}"
    out["message"] = f"first divergence at {graph} {origin.node} [{origin.op_type}]{where}: " \
                     f"max abs error {origin.detail.get('max_abs', float('nan')):.3g} > allowed {origin.detail.get('allowed', float('nan')):.3g}"
    return out


# ------------------------------------------------------------------------------------------ pytorch vs onnx


def _torch_intermediates(model: dict[str, Any], ref_io: IOSpec, feed: dict[str, np.ndarray]
                         ) -> tuple[dict[str, list[np.ndarray]], list[tuple[float, np.ndarray]], dict[str, np.ndarray]]:
    """Every module's output (by module path, in call order), all of them with their relative call
    position, and the model outputs by reference name."""
    import torch

    from edgeport.models import load_for_export
    from edgeport.runtimes.torch_eager import flatten_outputs, set_torch_threads, to_numpy

    set_torch_threads(1)
    module, _ex, _in, _out = load_for_export(model)
    module.eval()
    recorded: dict[str, list[np.ndarray]] = {}
    calls: list[np.ndarray] = []
    hooks = []

    def make_hook(path: str):
        def hook(_mod: Any, _args: Any, output: Any) -> None:
            for k, t in enumerate(flatten_outputs(output)):
                if isinstance(t, torch.Tensor) and t.is_floating_point():
                    arr = to_numpy(t).copy()
                    recorded.setdefault(path if k == 0 else f"{path}#{k}", []).append(arr)
                    calls.append(arr)
        return hook

    for path, sub in module.named_modules():
        hooks.append(sub.register_forward_hook(make_hook(path)))
    try:
        args = [torch.from_numpy(np.ascontiguousarray(feed[s.name])) for s in ref_io.inputs]
        with torch.inference_mode():
            out = module(*args)
    finally:
        for h in hooks:
            h.remove()
    finals = {s.name: to_numpy(t) for s, t in zip(ref_io.outputs, flatten_outputs(out))}
    n = max(1, len(calls))
    return recorded, [(k / n, a) for k, a in enumerate(calls)], finals


def localize_pytorch_onnx(model: dict[str, Any], onnx_path: str, onnx_io: IOSpec, ref_io: IOSpec,
                          feed: dict[str, np.ndarray], atol: float, rtol: float) -> dict[str, Any]:
    recorded, ordered, finals = _torch_intermediates(model, ref_io, feed)
    tensors = onnx_intermediates(onnx_path, native_feed(feed, onnx_io.inputs, Path(onnx_path).name))
    # the tensor that closes each module scope is that module's output
    closes: dict[str, list[str]] = {}
    last_in_scope: dict[str, OnnxTensor] = {}
    for t in tensors:
        for p in t.scope:
            last_in_scope[p] = t
    for p, t in last_in_scope.items():
        closes.setdefault(t.name, []).append(p)
    by_shape: dict[tuple[int, ...], list[tuple[float, np.ndarray]]] = {}
    for pos, a in ordered:
        by_shape.setdefault(tuple(a.shape), []).append((pos, a))
    graph_out = {}
    for s in onnx_io.outputs:
        ref = s.ref_name or s.name
        if ref in finals:
            graph_out[s.name] = finals[ref]
    for t in tensors:
        val = t.value
        spec = next((s for s in onnx_io.outputs if s.name == t.name), None)
        if spec is not None and spec.name in graph_out:
            val = to_reference_layout(val, spec)
            own = [graph_out[spec.name]]
        else:
            own = [a for p in closes.get(t.name, []) for a in recorded.get(p, [])]
        own_same = [a for a in own if a.shape == val.shape]
        best: tuple[bool, float, float] | None = None
        for a in own_same + _nearest(by_shape.get(tuple(val.shape), []), t.position):
            c = close(a, val, atol, rtol)
            if best is None or c[1] < best[1]:
                best = c
            if c[0]:
                break
        if best is not None and best[0]:
            t.status = MATCHED
        elif own_same:
            t.status = DIVERGED
        else:
            t.status = UNOBSERVED
        if best is not None:
            t.detail = {"max_abs": best[1], "allowed": best[2]}
        if closes.get(t.name):
            t.detail["modules"] = closes[t.name]
    return _result("pytorch-onnx", tensors, [s.name for s in onnx_io.outputs], {"reference_model": "pytorch", "onnx": onnx_path})


# ------------------------------------------------------------------------------------------ onnx vs tflite


def _tflite_interpreter(path: str) -> tuple[Any, str]:
    errors = []
    for mod, label in (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"),
                       ("tensorflow.lite", "tf.lite")):
        try:
            m = __import__(mod, fromlist=["Interpreter"])
        except ImportError as exc:
            errors.append(f"{label}: {exc}")
            continue
        interp = m.Interpreter(model_path=path, num_threads=1, experimental_preserve_all_tensors=True)
        return interp, label
    raise ImportError("no TFLite interpreter: " + "; ".join(errors))


def _tflite_invoke(path: str, io: IOSpec, feed: dict[str, np.ndarray]) -> tuple[Any, str]:
    """An interpreter keeping every tensor, invoked once on ``feed`` (reference names and layout)."""
    interp, backend = _tflite_interpreter(path)
    interp.allocate_tensors()
    details = interp.get_input_details()
    by_name = {d["name"]: d for d in details}
    sig_inputs: dict[str, Any] = {}
    try:  # spec names are signature keys when the model has a serving signature
        sigs = interp.get_signature_list() or {}
        key = "serving_default" if "serving_default" in sigs else (next(iter(sigs)) if len(sigs) == 1 else None)
        if key is not None:
            sig_inputs = dict(interp.get_signature_runner(key).get_input_details())
    except (AttributeError, RuntimeError, ValueError, KeyError):
        sig_inputs = {}
    for pos, s in enumerate(io.inputs):
        d = (sig_inputs.get(s.name) or by_name.get(s.name) or next((x for x in details if s.name in x["name"]), None)
             or details[pos])
        a = native_tensor(feed[s.ref_name or s.name], s, d["dtype"])
        if tuple(d["shape"]) != tuple(a.shape):
            interp.resize_tensor_input(d["index"], list(a.shape))
            interp.allocate_tensors()
        interp.set_tensor(d["index"], a)
    interp.invoke()
    return interp, backend


def _tflite_value(interp: Any, d: dict[str, Any]) -> np.ndarray | None:
    """A tensor's value as float64 (quantized tensors dequantized), None when it is not a number tensor."""
    try:
        v = np.asarray(interp.get_tensor(d["index"]))
    except ValueError:
        return None
    q = d.get("quantization_parameters") or {}
    scales = np.asarray(q.get("scales", []))
    if v.dtype.kind in "iu" and scales.size == 1:
        return (v.astype(np.float64) - float(np.asarray(q.get("zero_points", [0]))[0])) * float(scales[0])
    return v.astype(np.float64) if v.dtype.kind == "f" else None


def _tflite_all_tensors(path: str, io: IOSpec, feed: dict[str, np.ndarray]) -> tuple[list[dict[str, Any]], str]:
    interp, backend = _tflite_invoke(path, io, feed)
    produced: set[int] = set()
    op_of: dict[int, str] = {}
    position: dict[int, float] = {}
    try:
        # DELEGATE entries repeat (at the end) the ops they took over: they would shift every position
        ops = [op for op in interp._get_ops_details() if op.get("op_name") != "DELEGATE"]  # noqa: SLF001 - no public op list
        for k, op in enumerate(ops):
            for o in op.get("outputs", []):
                produced.add(int(o))
                op_of[int(o)] = str(op.get("op_name", ""))
                position[int(o)] = k / max(1, len(ops))
    except Exception:  # noqa: BLE001 - without the op list every tensor is a candidate
        produced = set()
    tensors = []
    for d in interp.get_tensor_details():
        idx = d["index"]
        if produced and idx not in produced:
            continue
        v = _tflite_value(interp, d)
        if v is None:
            continue
        tensors.append({"index": idx, "name": d["name"], "op": op_of.get(idx, ""), "position": position.get(idx, 0.0),
                        "value": v})
    return tensors, backend


def localize_onnx_tflite(onnx_path: str, onnx_io: IOSpec, tflite_path: str, tflite_io: IOSpec,
                         feed: dict[str, np.ndarray], atol: float, rtol: float) -> dict[str, Any]:
    tensors = onnx_intermediates(onnx_path, native_feed(feed, onnx_io.inputs, Path(onnx_path).name))
    tfl, backend = _tflite_all_tensors(tflite_path, tflite_io, feed)
    by_shape: dict[tuple[int, ...], list[tuple[float, dict[str, Any]]]] = {}
    for d in tfl:
        by_shape.setdefault(tuple(d["value"].shape), []).append((d["position"], d))
    for t in tensors:
        v = t.value
        best: tuple[bool, float, float] | None = None
        best_name = ""
        cands = 0
        for perm in _layouts(tuple(v.shape)):
            vv = v if perm is None else v.transpose(perm)
            for d in _nearest(by_shape.get(tuple(vv.shape), []), t.position):
                cands += 1
                c = close(vv, d["value"], atol, rtol)
                if best is None or c[1] < best[1]:
                    best, best_name = c, d["name"]
                if c[0]:
                    break
            if best is not None and best[0]:
                break
        if best is None:
            t.status = UNOBSERVED
            continue
        t.status = MATCHED if best[0] else DIVERGED
        t.detail = {"max_abs": best[1], "allowed": best[2], "tflite_tensor": best_name}
    extra = {"reference_model": "onnx", "onnx": onnx_path, "tflite": tflite_path, "tflite_backend": backend}
    res = _result("onnx-tflite", tensors, [s.name for s in onnx_io.outputs], extra)
    if res.get("found"):
        names = {t.name: t for t in tensors}
        origin = names[res["tensor"]]
        res["last_matching_tflite_tensors"] = [names[i].detail["tflite_tensor"] for i in origin.inputs
                                               if i in names and names[i].status == MATCHED and names[i].detail.get("tflite_tensor")]
    return res


# ------------------------------------------------------------------------------------------ two graphs, one format


def short_tensor_name(name: str, limit: int = 80) -> str:
    """A readable form of a converter's long TFLite tensor name: the last path part of each fused name
    (``a/b/torch.nn.modules.conv.Conv2d_3;;a/b/...ReLU_5`` -> ``Conv2d_3+ReLU_5``)."""
    parts = [p.rsplit("/", 1)[-1] for p in name.split(";") if p and not p.isdigit()]
    parts = [p.rsplit(".", 1)[-1] if "/" in name else p for p in parts]
    out = "+".join(dict.fromkeys(p for p in parts if p)) or name
    return out if len(out) <= limit else out[: limit - 1] + "…"


def tflite_intermediates(path: str, io: IOSpec, feed: dict[str, np.ndarray]
                         ) -> tuple[list[OnnxTensor], list[str], str, dict[str, tuple[np.ndarray, list[str]]]]:
    """Every floating-point op output of a .tflite file (graph order) with its op, activation inputs and
    constant inputs; the names of the model's output tensors; the interpreter used; each constant
    input's value and the ops that read it."""
    interp, backend = _tflite_invoke(path, io, feed)
    details = {int(d["index"]): d for d in interp.get_tensor_details()}
    counts: dict[str, int] = {}
    for d in details.values():
        counts[d["name"]] = counts.get(d["name"], 0) + 1

    def key(i: int) -> str:
        name = str(details[i]["name"]) if i in details else ""
        return name if name and counts.get(name) == 1 else f"{name or 'tensor'}#{i}"

    # a DELEGATE entry repeats the ops it took over (with preserve_all_tensors: one op each), whose outputs it fills
    ops = [op for op in interp._get_ops_details() if op.get("op_name") != "DELEGATE"]  # noqa: SLF001 - no public op list
    produced = {int(o) for op in ops for o in op.get("outputs", [])}
    dynamic = {int(d["index"]) for d in interp.get_input_details()}
    tensors: list[OnnxTensor] = []
    constants: dict[str, tuple[np.ndarray, list[str]]] = {}
    for k, op in enumerate(ops):
        ins = [int(i) for i in op.get("inputs", []) if int(i) >= 0]
        acts = [i for i in ins if i in dynamic]
        if not acts:
            continue
        const_ids = [i for i in ins if i not in dynamic and i not in produced and i in details]
        consts = [short_tensor_name(key(i)) for i in const_ids]
        op_name = str(op.get("op_name", ""))
        for i in const_ids:
            v = _tflite_value(interp, details[i])
            if v is not None:
                constants.setdefault(key(i), (v, []))[1].append(f"#{k} {op_name}")
        for o in (int(x) for x in op.get("outputs", [])):
            dynamic.add(o)
            v = _tflite_value(interp, details[o]) if o in details else None
            if v is None:
                continue
            tensors.append(OnnxTensor(key(o), f"#{k} {short_tensor_name(key(o))}", op_name, k, [key(i) for i in acts], [],
                                      consts, k / max(1, len(ops)), v))
    outputs = [key(int(d["index"])) for d in interp.get_output_details()]
    return tensors, outputs, backend, constants


def _compare_graphs(ref: list[OnnxTensor], cand: list[OnnxTensor], atol: float, rtol: float) -> str:
    """Set each reference tensor's status from its counterpart in ``cand``: the tensor of the same name,
    or (when fewer than half the names are shared) the same-shaped tensors nearest in graph position.
    Returns how tensors were paired ("name" or "shape")."""
    by_name = {t.name: t for t in cand}
    how = "name" if 2 * sum(1 for t in ref if t.name in by_name) >= len(ref) else "shape"
    by_shape: dict[tuple[int, ...], list[tuple[float, OnnxTensor]]] = {}
    for c in cand:
        by_shape.setdefault(tuple(c.value.shape), []).append((c.position, c))  # type: ignore[union-attr]
    for t in ref:
        shape = tuple(t.value.shape)  # type: ignore[union-attr]
        if how == "name":
            c = by_name.get(t.name)
            cands = [c] if c is not None and tuple(c.value.shape) == shape else []  # type: ignore[union-attr]
        else:
            cands = _nearest(by_shape.get(shape, []), t.position)
        best: tuple[bool, float, float] | None = None
        best_name = ""
        for c in cands:
            r = close(t.value, c.value, atol, rtol)  # type: ignore[arg-type]
            if best is None or r[1] < best[1]:
                best, best_name = r, c.name
            if r[0]:
                break
        if best is None:
            t.status = UNOBSERVED
            continue
        t.status = MATCHED if best[0] else DIVERGED
        t.detail = {"max_abs": best[1], "allowed": best[2], "candidate_tensor": best_name}
    return how


def onnx_weights(path: str) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Every initializer of an ONNX file with the nodes that read it."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    readers: dict[str, list[str]] = {}
    for idx, n in enumerate(model.graph.node):
        for i in n.input:
            readers.setdefault(i, []).append(n.name or f"{n.op_type}_{idx}")
    return {i.name: (numpy_helper.to_array(i), readers.get(i.name, [])) for i in model.graph.initializer}


def changed_weights(ref: dict[str, tuple[np.ndarray, list[str]]], cand: dict[str, tuple[np.ndarray, list[str]]],
                    limit: int = 20) -> list[dict[str, Any]]:
    """Weights of the same name whose values differ between two graphs, with the nodes of the reference
    graph that read them (at most ``limit``, largest change first)."""
    out: list[dict[str, Any]] = []
    for name, (a, readers) in ref.items():
        if name not in cand:
            continue
        b = cand[name][0]
        same_shape = a.shape == b.shape
        if same_shape and np.array_equal(a, b):
            continue
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if same_shape and a.size else None
        out.append({"name": name, "shape": list(a.shape), "max_abs": diff,
                    "elements_changed": int(np.count_nonzero(a != b)) if same_shape else None, "read_by": readers})
    out.sort(key=lambda d: -(d["max_abs"] if d["max_abs"] is not None else float("inf")))
    return out[:limit]


def localize_same_format(fmt: str, ref_path: str, ref_io: IOSpec, cand_path: str, cand_io: IOSpec,
                         feed: dict[str, np.ndarray], atol: float, rtol: float) -> dict[str, Any]:
    """Two ONNX (or two TFLite) graphs of one model: the first tensor of ``cand_path`` that diverges from
    the same tensor of ``ref_path``."""
    extra: dict[str, Any] = {"reference_model": ref_path, "candidate_model": cand_path}
    if fmt == "onnx":
        ref = onnx_intermediates(ref_path, native_feed(feed, ref_io.inputs, Path(ref_path).name))
        cand = onnx_intermediates(cand_path, native_feed(feed, cand_io.inputs, Path(cand_path).name))
        outputs, graph = [s.name for s in ref_io.outputs], "ONNX node"
        extra["changed_weights"] = changed_weights(onnx_weights(ref_path), onnx_weights(cand_path))
    elif fmt == "tflite":
        ref, outputs, backend, ref_consts = tflite_intermediates(ref_path, ref_io, feed)
        cand, _, _, cand_consts = tflite_intermediates(cand_path, cand_io, feed)
        graph = "TFLite op"
        extra["tflite_backend"] = backend
        extra["changed_weights"] = changed_weights(ref_consts, cand_consts)
    else:
        raise ValueError(f"no same-format localization for {fmt}")
    extra["paired_by"] = _compare_graphs(ref, cand, atol, rtol)
    res = _result(f"{fmt}-{fmt}", ref, outputs, extra, graph)
    changed = extra.get("changed_weights") or []
    if changed:
        w = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        res["message"] += (f"; weights that differ between the files: {short_tensor_name(w['name'])}{more}, read by "
                           f"{', '.join(w['read_by']) or 'no node'}")
    return res


# ------------------------------------------------------------------------------------------ worker entry


def localize_job(*, mode: str, feed: str, atol: float, rtol: float, onnx: str | None = None,
                 onnx_io: dict[str, Any] | None = None, ref_io: dict[str, Any] | None = None,
                 model: dict[str, Any] | None = None, tflite: str | None = None, tflite_io: dict[str, Any] | None = None,
                 reference: str | None = None, reference_io: dict[str, Any] | None = None,
                 candidate: str | None = None, candidate_io: dict[str, Any] | None = None) -> dict[str, Any]:
    """Worker entry: localize on the first sample of ``feed`` (an .npz written by save_samples).

    ``pytorch-onnx`` and ``onnx-tflite`` take ``onnx``/``tflite`` (with their IOSpecs) and ``ref_io``;
    ``onnx-onnx`` and ``tflite-tflite`` take ``reference`` and ``candidate`` (with theirs)."""
    from edgeport.data.samples import load_samples

    sample = load_samples(feed)[0]
    if mode in ("onnx-onnx", "tflite-tflite"):
        if not (reference and candidate and reference_io and candidate_io):
            raise ValueError(f"{mode} localization needs the reference and candidate models")
        return localize_same_format(mode.split("-")[0], reference, IOSpec.from_json(reference_io), candidate,
                                    IOSpec.from_json(candidate_io), sample, atol, rtol)
    if onnx is None or onnx_io is None or ref_io is None:
        raise ValueError(f"{mode} localization needs the ONNX model")
    rio = IOSpec.from_json(ref_io)
    oio = IOSpec.from_json(onnx_io)
    if mode == "pytorch-onnx":
        if model is None:
            raise ValueError("pytorch-onnx localization needs the model reference")
        return localize_pytorch_onnx(model, onnx, oio, rio, sample, atol, rtol)
    if mode == "onnx-tflite":
        if tflite is None or tflite_io is None:
            raise ValueError("onnx-tflite localization needs the TFLite model")
        return localize_onnx_tflite(onnx, oio, tflite, IOSpec.from_json(tflite_io), sample, atol, rtol)
    raise ValueError(f"unknown localization mode {mode!r}")
