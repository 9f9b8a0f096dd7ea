"""Where int8 breaks: per-layer quantization error of the full-int8 model, ranked and named.

    run_in_worker("edgeport.quantize.debug:debug_job", {"saved_model": ..., "io": ..., "calibration": "calib.npz",
                  "holdout": "holdout.npz", "onnx": "model.onnx", "onnx_io": ...})

TensorFlow's ``tf.lite.experimental.QuantizationDebugger`` calibrates the SavedModel exactly as the int8
variant does and builds a model in which every quantized op is followed by a ``NumericVerify`` op that
runs the float op on the *same* (dequantized) inputs and reports the difference. The error of each
layer is therefore its own error, not the error accumulated from the layers before it. Per layer:

- ``rmse_scale``: RMS error / the output's quantization step. Rounding alone gives ~0.29 (1/sqrt(12));
  TensorFlow's guide flags layers above ~0.7 as badly quantized (ranges blown up by outliers);
- ``snr_db``: 10 log10(mean float^2 / mean error^2) of the layer's output: how much of the layer's signal
  the quantization noise drowns. Layers are ranked by it (lowest first): it is what propagates to the
  model's outputs, which is what leaving a layer in float (``--keep-float``) buys back;
- ``mean_abs``, ``max_abs``, ``mse``, ``scale``, ``zero_point``, the op and the output tensor name.

Names: TFLite tensor names come from the TF graph (``model/tf.nn.convolution_3/convolution``), which
onnx2tf builds op by op but names by TF op type, so the ONNX node is found *by value*: the float TFLite
model (the debugger's calibrated model) and the ONNX model run on the same held-out input with every
intermediate tensor kept, and each TFLite tensor is matched to the ONNX tensor holding the same values
(up to layout). Fused ops (conv + bias + activation) match the last ONNX node of the chain; the chain is
walked back to its compute node. ONNX nodes from torch.onnx's dynamo exporter carry the PyTorch module
path in ``pkg.torch.onnx.name_scopes``; legacy-exporter node names (``/features/features.0/Conv``) hold it too.
"""

from __future__ import annotations

import ast
import csv
import io as _io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeport.errors import ConversionError
from edgeport.exc_text import first_line
from edgeport.quantize.tflite_variants import (calibrated_tensor_names, debug_dataset_fn, import_tensorflow, make_converter,
                                             tensor_matches_name, tflite_consumers)
from edgeport.spec import IOSpec

RANK_KEYS = ("snr_db", "rmse_scale", "mse", "mean_abs", "max_abs")
# ONNX ops that only move or reshape data: a TFLite tensor equal to their output is better named by their input's producer.
_PASS_THROUGH = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Cast", "Pad", "Expand", "Dropout"}
# Single-input ops TFLite fuses into the compute op before them.
_FUSABLE = {"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh", "LeakyRelu", "Add", "BatchNormalization",
            "Mul", "Relu6", "Elu", "Selu", "PRelu"}
_COMPUTE = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


@dataclass
class LayerError:
    """The quantization error of one quantized layer (the op writing ``tensor``)."""

    tensor: str
    op: str
    snr_db: float
    rmse_scale: float
    mse: float
    mean_abs: float
    max_abs: float
    scale: float
    zero_point: int
    elements: int
    rank: int = 0
    onnx_nodes: list[str] = field(default_factory=list)  # producing ONNX node(s), compute node first
    onnx_ops: list[str] = field(default_factory=list)
    module: str = ""  # PyTorch module path, when the ONNX model records it
    module_type: str = ""
    match: str = ""  # how the name was found: "value", "value (layout NHWC)", "" (not found)
    overflow: float | None = None  # share of held-out values outside the layer's calibrated int8 range
    overflow_max: float | None = None  # largest overshoot on held-out inputs, as a multiple of the range

    @property
    def layer(self) -> str:
        """The most readable name available: the PyTorch module, else the ONNX node, else the tensor."""
        return self.module or (self.onnx_nodes[0] if self.onnx_nodes else _short(self.tensor))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["layer"] = self.layer
        for k in ("snr_db", "rmse_scale", "mse", "mean_abs", "max_abs", "scale", "overflow", "overflow_max"):
            v = d[k]
            d[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else (
                ("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else round(float(v), 6 if k != "mse" else 10))
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> "LayerError":
        def f(v: Any) -> float:
            if v is None:
                return math.nan
            return float(v) if not isinstance(v, str) else (math.inf if v == "inf" else -math.inf if v == "-inf" else math.nan)

        return LayerError(
            tensor=str(d["tensor"]), op=str(d.get("op", "")), snr_db=f(d.get("snr_db")), rmse_scale=f(d.get("rmse_scale")),
            mse=f(d.get("mse")), mean_abs=f(d.get("mean_abs")), max_abs=f(d.get("max_abs")), scale=f(d.get("scale")),
            zero_point=int(d.get("zero_point") or 0), elements=int(d.get("elements") or 0), rank=int(d.get("rank") or 0),
            onnx_nodes=list(d.get("onnx_nodes") or []), onnx_ops=list(d.get("onnx_ops") or []),
            module=str(d.get("module") or ""), module_type=str(d.get("module_type") or ""), match=str(d.get("match") or ""),
            overflow=None if d.get("overflow") is None else f(d.get("overflow")),
            overflow_max=None if d.get("overflow_max") is None else f(d.get("overflow_max")))


def _short(tensor: str) -> str:
    from edgeport.convert.tflite_inspect import layer_hint

    return layer_hint(tensor)


def rank_layers(layers: list[LayerError], key: str = "snr_db") -> list[LayerError]:
    """Worst first: lowest SNR, or highest value of the other keys. NaN values go last."""
    if key not in RANK_KEYS:
        raise ValueError(f"unknown rank key {key!r}")

    def sort_key(layer: LayerError) -> tuple[int, float]:
        v = getattr(layer, key)
        if v is None or math.isnan(v):
            return (1, 0.0)
        return (0, v if key == "snr_db" else -v)

    ranked = sorted(layers, key=sort_key)
    for i, layer in enumerate(ranked, 1):
        layer.rank = i
    return ranked


# ----------------------------------------------------------------------------------------------- TF side


def _input_order(tf: Any, model: bytes, io: IOSpec) -> list[str]:
    """Spec input names in the order the model's interpreter lists its inputs."""
    interp = tf.lite.Interpreter(model_content=model)
    details = interp.get_input_details()
    sig_inputs: dict[str, int] = {}
    try:
        sigs = interp.get_signature_list()
        key = "serving_default" if "serving_default" in sigs else next(iter(sigs), None)
        if key is not None:
            runner = interp.get_signature_runner(key)
            sig_inputs = {k: v["index"] for k, v in runner.get_input_details().items()}
    except (ValueError, RuntimeError, AttributeError, StopIteration):
        sig_inputs = {}
    order = []
    for d in details:
        name = next((k for k, idx in sig_inputs.items() if idx == d["index"]), None)
        if name is None:
            name = next((s.name for s in io.inputs if tensor_matches_name(d["name"], s.name)), None)
        if name is None:
            raise ConversionError(f"cannot tell which input the debug model's {d['name']!r} is", "re-create the SavedModel")
        order.append(name)
    return order


@dataclass
class DebugRun:
    layers: list[LayerError]
    calibrated: bytes  # the float model with calibration statistics (tensor names as in the denylist)
    quantized: bytes  # the plain full-int8 model (no NumericVerify ops)
    order: list[str]  # spec input names in the interpreter's input order


def layer_errors(saved_model: str, io: IOSpec, calibration: str, samples: Sequence[dict[str, np.ndarray]]) -> DebugRun:
    """Per-layer errors of the full-int8 quantization of ``saved_model`` on ``samples`` (reference layout)."""
    tf = import_tensorflow()
    conv = make_converter(saved_model, "int8", io, calibration, "float")
    order: list[str] = []
    gen = debug_dataset_fn(samples, io, order)
    try:
        builder = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=gen)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"the quantization debugger failed to build the int8 model: {first_line(exc)}", "see the worker log") from None
    order[:] = _input_order(tf, builder.quant_model, io)

    def ms(f: np.ndarray, q: np.ndarray, scale: float, zp: int) -> float:
        return float(np.mean(np.square(np.asarray(f, dtype=np.float64))))

    opts = tf.lite.experimental.QuantizationDebugOptions(
        layer_debug_metrics={"mean_abs_error": lambda diffs: float(np.mean(np.abs(diffs)))},
        layer_direct_compare_metrics={"float_ms": ms})
    # From content (not the converter), the debugger keeps every tensor, so the float values it compares are real.
    debugger = tf.lite.experimental.QuantizationDebugger(quant_debug_model_content=builder.quant_model, debug_dataset=gen,
                                                         debug_options=opts)
    debugger.run()
    buf = _io.StringIO()
    debugger.layer_statistics_dump(buf)
    known = calibrated_tensor_names(builder.calibrated_model)
    layers = []
    for row in csv.DictReader(_io.StringIO(buf.getvalue())):
        def num(key: str) -> float:
            try:
                return float(row.get(key) or "nan")
            except ValueError:
                return math.nan

        name = row.get("tensor_name") or ""
        if name not in known and name + "1" in known:
            name = name + "1"
        mse, scale, float_ms = num("mean_squared_error"), num("scale"), num("float_ms")
        snr = 10 * math.log10(float_ms / mse) if mse > 0 and float_ms > 0 else (math.inf if mse == 0 else math.nan)
        layers.append(LayerError(
            tensor=name, op=row.get("op_name") or "", snr_db=snr,
            rmse_scale=math.sqrt(mse) / scale if scale > 0 and mse >= 0 else math.nan, mse=mse,
            mean_abs=num("mean_abs_error"), max_abs=num("max_abs_error"), scale=scale,
            zero_point=int(float(row.get("zero_point") or 0)),
            elements=0 if math.isnan(num("num_elements")) else int(num("num_elements"))))
    return DebugRun(layers, builder.calibrated_model, builder.get_nondebug_quantized_model(), list(order))


def float_tensor_values(tf: Any, model: bytes, feed: dict[str, np.ndarray], order: list[str]) -> dict[str, np.ndarray]:
    """Every tensor of the float ``model`` after one run on ``feed`` (artifact names and layout)."""
    interp = tf.lite.Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    for d, name in zip(interp.get_input_details(), order):
        interp.set_tensor(d["index"], feed[name])
    interp.invoke()
    values = {}
    for d in interp.get_tensor_details():
        try:
            v = interp.get_tensor(d["index"])
        except ValueError:
            continue
        if v is not None and v.dtype.kind == "f" and v.size:
            values[d["name"]] = np.array(v)
    return values


def activation_ranges(model: bytes) -> dict[str, tuple[float, float]]:
    """Tensor name -> the float range [lo, hi] its per-tensor int8/int16 quantization can represent."""
    from edgeport.tflite_fb import main_tensors

    out: dict[str, tuple[float, float]] = {}
    for t in main_tensors(model):
        q = t.get("quantization")
        if t["dtype"] not in ("int8", "uint8", "int16") or not q or len(q["scale"]) != 1:
            continue
        scale, zp = float(q["scale"][0]), int(q["zero_point"][0])
        lo, hi = int(np.iinfo(t["dtype"]).min), int(np.iinfo(t["dtype"]).max)
        out[t["name"]] = ((lo - zp) * scale, (hi - zp) * scale)
    return out


def range_overflow(tf: Any, run: DebugRun, io: IOSpec, samples: Sequence[dict[str, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Per layer tensor: (share of values outside its int8 range, largest overshoot / range) on ``samples``.

    Calibration sets each range to what the calibration inputs reached; inputs unlike them push activations
    past it and int8 saturates. That is the usual way a model that calibrates fine breaks on new data.
    """
    from edgeport.quantize.calibration import to_artifact

    ranges = activation_ranges(run.quantized)
    wanted: dict[str, tuple[float, float]] = {}
    for layer in run.layers:
        r = ranges.get(layer.tensor) or ranges.get(layer.tensor + "1")
        if r is not None and r[1] > r[0]:
            wanted[layer.tensor] = r
    interp = tf.lite.Interpreter(model_content=run.calibrated, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details() if d["name"] in wanted}
    inputs = interp.get_input_details()
    outside = {t: 0 for t in index}
    total = {t: 0 for t in index}
    worst = {t: 0.0 for t in index}
    for s in samples:
        feed = to_artifact(s, io)
        for d, name in zip(inputs, run.order):
            interp.set_tensor(d["index"], feed[name])
        interp.invoke()
        for t, idx in index.items():
            try:
                v = interp.get_tensor(idx)
            except ValueError:
                continue
            lo, hi = wanted[t]
            over = np.maximum(v - hi, lo - v)
            outside[t] += int(np.count_nonzero(over > 0))
            total[t] += int(v.size)
            worst[t] = max(worst[t], float(over.max()) / (hi - lo))
    return {t: (outside[t] / total[t], max(0.0, worst[t])) for t in index if total[t]}


# ----------------------------------------------------------------------------------------------- ONNX side


@dataclass
class OnnxNode:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    module: str = ""
    module_type: str = ""


def onnx_graph(path: str) -> tuple[Any, dict[str, OnnxNode]]:
    """The ONNX model and, per tensor name, the node producing it (with its PyTorch module, when recorded)."""
    import onnx

    model = onnx.load(path)
    producers: dict[str, OnnxNode] = {}
    for n in model.graph.node:
        meta = {p.key: p.value for p in n.metadata_props}
        module, mtype = module_of(n.name, meta)
        node = OnnxNode(n.name, n.op_type, list(n.input), list(n.output), module, mtype)
        for o in n.output:
            producers[o] = node
    return model, producers


def module_of(node_name: str, meta: dict[str, str]) -> tuple[str, str]:
    """(PyTorch module path, module class) of an ONNX node, from dynamo metadata or a legacy scoped name."""
    scopes_text = meta.get("pkg.torch.onnx.name_scopes")
    if scopes_text:
        try:
            scopes = [s for s in ast.literal_eval(scopes_text) if isinstance(s, str)]
        except (ValueError, SyntaxError):
            scopes = []
        classes: list[str] = []
        try:
            classes = [c for c in ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]")) if isinstance(c, str)]
        except (ValueError, SyntaxError):
            classes = []
        # name_scopes and class_hierarchy run in parallel: root ('' / the model class) ... module, then the FX node/aten op.
        if len(scopes) >= 2 and scopes[-2]:
            k = len(scopes) - 2
            module = scopes[k]
            mtype = classes[k] if len(classes) == len(scopes) else ""
            rules = meta.get("pkg.onnxscript.rewriter.rule_name", "")
            if "BatchNorm" in rules and "batchnorm" in mtype.lower() and k >= 2 and scopes[k - 1]:
                # conv + BN folded into one Conv: the Conv belongs to the block holding both
                module = scopes[k - 1]
                mtype = classes[k - 1] if len(classes) == len(scopes) else ""
            return module, mtype.rsplit(".", 1)[-1]
    if node_name.startswith("/"):
        parts = [p for p in node_name.strip("/").split("/") if p]
        if len(parts) >= 2:
            return parts[-2], ""
    return "", ""


def onnx_tensor_values(model: Any, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every float intermediate tensor of ``model`` after one run (graph optimisations off, so all exist)."""
    import onnx

    from edgeport.runtimes.onnxruntime import open_session

    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for n in m.graph.node:
        for o in n.output:
            if o and o not in existing:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
                existing.add(o)
    sess = open_session(m.SerializeToString(), threads=1, optimize=False, where="the ONNX model")
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, feed)
    return {n: np.asarray(v) for n, v in zip(names, values) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size}


def _candidates(v: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Ways an ONNX tensor may appear in TFLite: as is, or channels-last."""
    out = [(v, "")]
    if v.ndim == 4:
        out.append((v.transpose(0, 2, 3, 1), " (layout NHWC)"))
    elif v.ndim == 3:
        out.append((v.transpose(0, 2, 1), " (layout NLC)"))
    elif v.ndim == 5:
        out.append((v.transpose(0, 2, 3, 4, 1), " (layout NDHWC)"))
    return out


def match_tensors(tfl: dict[str, np.ndarray], onnx_vals: dict[str, np.ndarray], wanted: Sequence[str],
                  rtol: float = 1e-3) -> dict[str, tuple[str, str]]:
    """TFLite tensor name -> (ONNX tensor name, how) for tensors holding the same values."""
    by_size: dict[int, list[str]] = {}
    for name, v in onnx_vals.items():
        by_size.setdefault(v.size, []).append(name)
    result: dict[str, tuple[str, str]] = {}
    for t in wanted:
        v = tfl.get(t)
        if v is None:
            continue
        v64 = v.astype(np.float64)
        scale = float(np.max(np.abs(v64))) or 1.0
        best: tuple[float, str, str] | None = None
        for name in by_size.get(v.size, []):
            for cand, how in _candidates(onnx_vals[name]):
                if cand.shape != v.shape and [d for d in cand.shape if d != 1] != [d for d in v.shape if d != 1]:
                    continue
                err = float(np.max(np.abs(cand.reshape(v.shape).astype(np.float64) - v64))) / scale
                if err <= rtol and (best is None or err < best[0] * 0.5):
                    best = (err, name, how)
        if best is not None:
            result[t] = (best[1], best[2])
            continue
        # Second chance: the converter folded a scale and shift into the op (onnx2tf's HardSigmoid = conv * a + b).
        flat = v64.reshape(-1)
        if flat.size < 4 or float(np.std(flat)) == 0.0:
            continue
        for name in by_size.get(v.size, []):
            for cand, how in _candidates(onnx_vals[name]):
                if cand.shape != v.shape and [d for d in cand.shape if d != 1] != [d for d in v.shape if d != 1]:
                    continue
                c = cand.reshape(-1).astype(np.float64)
                if float(np.std(c)) == 0.0:
                    continue
                a, b = np.polyfit(c, flat, 1)
                resid = float(np.max(np.abs(a * c + b - flat))) / scale
                if abs(a) > 1e-6 and resid <= rtol and (best is None or resid < best[0]):
                    best = (resid, name, f"{how} (scaled)")
        if best is not None:
            result[t] = (best[1], best[2])
    return result


def name_layers(layers: list[LayerError], tfl_values: dict[str, np.ndarray], onnx_path: str,
                onnx_feed: dict[str, np.ndarray], consumers: dict[str, list[str]] | None = None) -> None:
    """Fill ``onnx_nodes``/``module`` of each layer by matching values with the ONNX model.

    A layer with no ONNX counterpart (a PAD onnx2tf split out of a Conv) is named after the op consuming it.
    """
    model, producers = onnx_graph(onnx_path)
    onnx_vals = onnx_tensor_values(model, onnx_feed)
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    consumers = consumers or {}
    wanted = [layer.tensor for layer in layers]
    wanted += [c for t in wanted for c in consumers.get(t, []) if c not in wanted]
    matches = match_tensors(tfl_values, onnx_vals, wanted)
    named: dict[str, tuple[list[OnnxNode], str]] = {}
    for t, (tensor, how) in matches.items():
        chain = _chain(producers.get(tensor), producers, uses)
        if chain:
            named[t] = (chain, f"value{how}")
    for layer in layers:
        hit = named.get(layer.tensor)
        if hit is None:
            via = next((c for c in consumers.get(layer.tensor, []) if c in named), None)
            if via is None:
                continue
            chain, how = named[via]
            hit = (chain, f"feeds {chain[0].name}")
        chain, how = hit
        layer.onnx_nodes = [c.name for c in chain]
        layer.onnx_ops = [c.op for c in chain]
        mods = [c.module for c in chain if c.module]
        layer.module = _common_module(mods) or (mods[0] if mods else "")
        main = next((c for c in chain if c.module == layer.module), chain[0])
        layer.module_type = main.module_type
        layer.match = how


def _chain(node: OnnxNode | None, producers: dict[str, OnnxNode], uses: dict[str, int]) -> list[OnnxNode]:
    """The ONNX nodes behind one TFLite op whose output equals ``node``'s: compute node first."""
    # Values equal to a pure data-movement op's output: name the producer of its input instead.
    while node is not None and node.op in _PASS_THROUGH and node.inputs and node.inputs[0] in producers:
        node = producers[node.inputs[0]]
    if node is None:
        return []
    chain = [node]
    # Walk back through activations/bias adds TFLite fused into the compute op (single consumer only).
    while chain[0].op in _FUSABLE and len(chain) <= 4:
        prev = next((producers[i] for i in chain[0].inputs if i in producers and uses.get(i, 0) == 1
                     and producers[i].op in _COMPUTE | _FUSABLE), None)
        if prev is None:
            break
        chain.insert(0, prev)
    if not any(c.op in _COMPUTE for c in chain):
        chain = [node]
    return chain


def _common_module(mods: list[str]) -> str:
    if not mods:
        return ""
    parts = [m.split(".") for m in mods]
    common = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return ".".join(common)


# ----------------------------------------------------------------------------------------------- worker entry


def debug_job(*, saved_model: str, io: dict[str, Any], calibration: str, debug_samples: str, holdout: str | None = None,
              onnx: str | None = None, onnx_io: dict[str, Any] | None = None, samples: int = 32,
              rank_by: str = "snr_db") -> dict[str, Any]:
    """Worker entry: per-layer errors of the full-int8 model, ranked worst first, named where possible.

    ``debug_samples`` (calibration samples) drive the debugger and so the ranking; ``holdout`` (samples never
    used to calibrate) only measures how far activations overflow the calibrated ranges on new inputs.
    """
    from edgeport.quantize.calibration import to_artifact
    from edgeport.data.samples import load_samples

    t0 = time.perf_counter()
    tf = import_tensorflow()
    spec = IOSpec.from_json(io)
    dbg = load_samples(debug_samples)[: max(1, int(samples))]
    run = layer_errors(saved_model, spec, calibration, dbg)
    notes: list[str] = []
    if onnx and onnx_io and Path(onnx).is_file():
        try:
            tfl_values = float_tensor_values(tf, run.calibrated, to_artifact(dbg[0], spec), run.order)
            name_layers(run.layers, tfl_values, onnx, to_artifact(dbg[0], IOSpec.from_json(onnx_io)), tflite_consumers(run.calibrated))
        except Exception as exc:  # noqa: BLE001 - naming is best effort; the errors themselves stand
            notes.append(f"could not map layers to ONNX nodes: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    else:
        notes.append("no ONNX model to map TFLite layers to ONNX nodes / PyTorch modules")
    held_count = 0
    if holdout:
        try:
            held = load_samples(holdout)
            held_count = len(held)
            over = range_overflow(tf, run, spec, held)
            for layer in run.layers:
                if layer.tensor in over:
                    layer.overflow, layer.overflow_max = over[layer.tensor]
        except Exception as exc:  # noqa: BLE001 - a diagnostic; the ranking stands without it
            notes.append(f"could not measure range overflow on held-out inputs: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    ranked = rank_layers(run.layers, rank_by)
    named = sum(1 for layer in ranked if layer.onnx_nodes)
    overflowing = [layer for layer in ranked if layer.overflow]
    return {"layers": [layer.to_json() for layer in ranked], "rank_by": rank_by, "samples": len(dbg),
            "named": named, "notes": notes, "seconds": time.perf_counter() - t0,
            "overflow": {"holdout_samples": held_count, "layers": len(overflowing),
                         "worst": sorted(((layer.overflow_max or 0.0, layer.layer) for layer in overflowing), reverse=True)[:5]}}


def select_keep_float(layers: Sequence[LayerError], keep: int | Sequence[str]) -> tuple[list[str], list[str]]:
    """The TFLite tensor names to leave in float: the ``keep`` worst layers, or layers named by tensor, ONNX node,
    or PyTorch module (a module selects every layer inside it). Returns (tensor names, unmatched requests)."""
    if isinstance(keep, int):
        eligible = [layer for layer in layers if layer.op not in ("QUANTIZE", "DEQUANTIZE")]
        return [layer.tensor for layer in eligible[: max(0, keep)]], []
    chosen: list[str] = []
    unmatched: list[str] = []
    for want in keep:
        w = want.strip()
        hits = [layer.tensor for layer in layers
                if w == layer.tensor or w in layer.onnx_nodes or w == layer.module
                or (layer.module and layer.module.startswith(w + ".")) or w == _short(layer.tensor)]
        if not hits:
            unmatched.append(w)
        chosen.extend(h for h in hits if h not in chosen)
    return chosen, unmatched

