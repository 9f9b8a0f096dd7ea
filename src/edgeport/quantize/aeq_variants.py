"""ai-edge-quantizer variants of any float .tflite, per-layer sensitivity, and the keep-float search.

    run_in_worker("edgeport.quantize.aeq_variants:convert_job", {"tflite": "model.tflite", "io": ..., "mode": "aeq-int8",
                  "out": "model.aeq-int8.tflite", "calibration": "calib.npz"})

ai-edge-quantizer (AEQ) rewrites a float .tflite flatbuffer directly, so it works on whatever float model
edgeport convert kept (onnx2tf or litert-torch output): no SavedModel, no reconversion. Its recipes are
per op, keyed by a regular expression on the op's *scope* (its output tensor names joined by ``;``), which is
what makes layer-wise experiments cheap and exact:

- :data:`MODES`: dynamic int8 (int8 weights, activations quantized at run time), weight-only int8 and
  int4 (weights dequantized before a float op), static int8 and int16 activations with int8 weights
  (calibrated on the calibration samples);
- :func:`sensitivity_job`: for every op of the static recipe, a model with *only that op* quantized and one
  with *every op but that one* quantized, each run on the held-out samples: the output SNR and the task
  accuracy of each isolate the op's own damage (only-this-op) and what leaving it in float buys back
  (all-but-this-op). Ops are ranked by the only-this-op SNR, lowest first, and named after ONNX nodes and
  PyTorch modules by value (:func:`edgeport.quantize.debug.name_layers`);
- :func:`search_job`: greedy from the most sensitive op, keep 0, 1, 2, ... ops in float until the variant
  meets the accuracy floor (``max_accuracy_drop`` against the reference accuracy) and/or the SNR floor; every
  step tried is reported with size, latency, SNR and accuracy.

All calibration happens once per job (AEQ's min/max statistics of every tensor), and every model made from
it is quantized from those statistics. Worker entries only: importing this module loads numpy alone.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeport.errors import ConversionError, InputError
from edgeport.spec import IOSpec
from edgeport.tflite_fb import layer_hint

# mode -> (kind, activation bits, weight bits); kind: dynamic, weight_only, static
MODES: dict[str, tuple[str, int, int]] = {
    "aeq-dynamic-int8": ("dynamic", 0, 8),
    "aeq-weight-int8": ("weight_only", 0, 8),
    "aeq-weight-int4": ("weight_only", 0, 4),
    "aeq-int8": ("static", 8, 8),
    "aeq-int16x8": ("static", 16, 8),
}
SELECTIVE = "aeq-int8-selective"  # aeq-int8 with the ops the search chose kept in float


@dataclass(frozen=True)
class Op:
    """One op of the float model's main subgraph, as AEQ addresses it."""

    index: int
    op: str  # TFLite op name (CONV_2D)
    scope: str  # AEQ's scope: the output tensor names, each followed by ';'
    tensor: str  # the first output tensor's name

    @property
    def regex(self) -> str:
        return "^" + re.escape(self.scope) + "$"


def _aeq() -> Any:
    try:
        import ai_edge_quantizer  # noqa: F401
    except ImportError:
        raise ConversionError("ai-edge-quantizer is not installed", "pip install ai-edge-quantizer (litert-torch pulls it in)") from None
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

    return algorithm_manager, qtyping, quantizer, recipe_manager


def base_mode(mode: str) -> str:
    return "aeq-int8" if mode == SELECTIVE else mode


def list_ops(model: bytes) -> list[Op]:
    """The ops of subgraph 0 that AEQ can address (known builtin ops), in execution order."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    m = fb.read_model(model)
    sg = m.subgraphs[0]
    ops = []
    for k, op in enumerate(sg.operators):
        code = m.operatorCodes[op.opcodeIndex].builtinCode
        name = fb.TFL_OP_CODE_TO_NAME.get(code)
        if name is None:
            continue
        outs = [i for i in op.outputs if i != -1]
        tensor = fb.get_tensor_name(sg.tensors[outs[0]]) if outs else ""
        ops.append(Op(k, str(getattr(name, "value", name)), fb.get_op_scope(op, sg.tensors), tensor))
    return ops


def make_recipe(mode: str, float_ops: Sequence[Op] = (), only: Sequence[Op] | None = None) -> list[dict[str, Any]]:
    """The AEQ recipe of ``mode`` over every op (or only the ops in ``only``), with ``float_ops`` left in float."""
    algorithm_manager, qtyping, _, recipe_manager = _aeq()
    kind, abits, wbits = MODES[base_mode(mode)]
    rm = recipe_manager.RecipeManager()
    every = qtyping.TFLOperationName.ALL_SUPPORTED
    for regex in ([".*"] if only is None else [o.regex for o in only]):
        if kind == "dynamic":
            rm.add_dynamic_config(regex, every, wbits)
        elif kind == "weight_only":
            rm.add_weight_only_config(regex, every, wbits)
        else:
            rm.add_static_config(regex, every, abits, wbits)
    for o in float_ops:  # later entries win in AEQ's recipe lookup
        rm.add_quantization_config(o.regex, every, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return rm.get_quantization_recipe()


def signature_feeds(samples: Sequence[dict[str, np.ndarray]], io: IOSpec, model_path: str) -> tuple[str, list[dict[str, np.ndarray]]]:
    """(signature key, feeds keyed by the signature's input names) for AEQ's calibrator."""
    from edgeport.quantize.calibration import to_artifact
    from edgeport.tflite_fb import inspect_tflite

    sigs = inspect_tflite(model_path).get("signatures") or {}
    if not sigs:
        raise ConversionError("the float .tflite has no signature, which ai-edge-quantizer calibrates through",
                              "re-convert it with edgeport convert (onnx2tf and litert-torch write one)")
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    names = list(sigs[key].get("inputs", {}))
    feeds = []
    for s in samples:
        art = to_artifact(s, io)
        if set(art) <= set(names):
            feeds.append(art)
        elif len(art) == 1 and len(names) == 1:
            feeds.append({names[0]: next(iter(art.values()))})
        else:
            raise ConversionError(f"cannot match the model's inputs {sorted(art)} to the .tflite signature {names}",
                                  "re-convert the model with edgeport convert")
    return key, feeds


class Quantizer:
    """A float .tflite, calibrated once (when a static recipe needs it), quantized many ways."""

    def __init__(self, tflite: str, io: IOSpec, mode: str, calibration: str | None) -> None:
        from edgeport.data.samples import load_samples

        self.path = tflite
        self.model = Path(tflite).read_bytes()
        self.io = io
        self.mode = base_mode(mode)
        self.ops = list_ops(self.model)
        self.qsvs: dict[str, Any] = {}
        if MODES[self.mode][0] == "static":
            if not calibration:
                raise InputError(f"{mode} needs calibration data", "pass --calibration DATA or --dataset NAME")
            key, feeds = signature_feeds(load_samples(calibration), io, tflite)
            _, _, quantizer, _ = _aeq()
            q = quantizer.Quantizer(bytearray(self.model), make_recipe(self.mode))
            self.qsvs = q.calibrate({key: feeds}, num_threads=1)

    def quantize(self, float_ops: Sequence[Op] = (), only: Sequence[Op] | None = None) -> bytes:
        _, _, quantizer, _ = _aeq()
        q = quantizer.Quantizer(bytearray(self.model), make_recipe(self.mode, float_ops, only))
        try:
            result = q.quantize(self.qsvs or None, enable_progress_report=False)
        except Exception as exc:  # noqa: BLE001 - AEQ raises ValueError, RuntimeError, KeyError ...
            raise ConversionError(f"ai-edge-quantizer ({self.mode}) failed: {type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:200]}", "see the worker log") from None
        return bytes(result.quantized_model)

    def resolve(self, names: Sequence[str]) -> list[Op]:
        """Ops named by tensor name or scope (what the sensitivity ranking reports)."""
        by = {o.tensor: o for o in self.ops} | {o.scope: o for o in self.ops}
        missing = [n for n in names if n not in by]
        if missing:
            raise InputError(f"the float .tflite has no op writing {missing[0]!r}", "use a tensor name from the sensitivity table")
        return [by[n] for n in names]


def _tools() -> dict[str, str]:
    from edgeport.convert.base import tool_versions

    return tool_versions("ai-edge-quantizer", "ai-edge-litert")


# ----------------------------------------------------------------------------------------------- evaluation


class Evaluator:
    """Runs quantized model bytes on the held-out samples and scores them against the reference outputs."""

    def __init__(self, io: IOSpec, holdout: str, reference: str, labels: Sequence[int] | None, workdir: str,
                 threads: int = 1) -> None:
        from edgeport.data.samples import load_samples

        self.io, self.threads, self.workdir = io, threads, Path(workdir)
        self.samples = load_samples(holdout)
        self.ref = load_samples(reference)
        self.labels = list(labels) if labels else None
        self.count = 0
        self.last_outputs: list[dict[str, np.ndarray]] = []

    def run(self, model: bytes, latency_runs: int = 0, seconds: float = 1.0) -> dict[str, Any]:
        from edgeport.quantize.compare import compare
        from edgeport.quantize.model import VariantRow
        from edgeport.quantize.tflite_variants import variant_io
        from edgeport.runtimes.job import load_session
        from edgeport.tflite_fb import inspect_tflite

        self.count += 1
        path = self.workdir / f"candidate-{self.count}.tflite"
        path.write_bytes(model)
        io, _ = variant_io(self.io, inspect_tflite(path))
        session = load_session("tflite", str(path), io, self.threads)
        outputs = [session.run(s) for s in self.samples]
        self.last_outputs = outputs
        row = VariantRow(name="candidate", variant="candidate", format="tflite", runtime="tflite")
        compare(row, self.ref, outputs, _LabelSplit(self.labels) if self.labels else None)
        out = {"snr_db": row.summary.get("snr_db"), "cosine": row.summary.get("cosine"), "top1": row.summary.get("top1"),
               "accuracy": row.task.get("accuracy"), "reference_accuracy": row.task.get("reference_accuracy"),
               "size_bytes": len(model), "flags": row.flags}
        if latency_runs:
            from edgeport.bench.latency import latency_stats, timed_for

            native = session.to_native(self.samples[0])
            for _ in range(3):
                session.run_native(native)
            ns = timed_for(session.run_native, native, seconds=seconds, max_runs=latency_runs, min_runs=min(10, latency_runs))
            out["latency_ms"] = latency_stats(ns)["p50"]
        path.unlink()
        return out


class _LabelSplit:
    """The part of :class:`edgeport.quantize.calibration.Split` that :func:`compare` reads: held-out labels."""

    def __init__(self, labels: Sequence[int]) -> None:
        from edgeport.quantize.calibration import Item

        self.holdout = [Item({}, str(k), int(v)) for k, v in enumerate(labels)]
        self.has_labels = True


# ----------------------------------------------------------------------------------------------- worker entries


def convert_job(*, tflite: str, io: dict[str, Any], mode: str, out: str, calibration: str | None = None,
                float_layers: list[str] | None = None) -> dict[str, Any]:
    """Worker entry: write the ``mode`` variant of the float ``tflite`` to ``out``; returns what happened."""
    if base_mode(mode) not in MODES:
        raise ConversionError(f"unknown ai-edge-quantizer mode {mode!r}", f"use one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    q = Quantizer(tflite, IOSpec.from_json(io), mode, calibration)
    float_ops = q.resolve(float_layers or [])
    data = q.quantize(float_ops)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(data)
    kind, abits, wbits = MODES[base_mode(mode)]
    options: dict[str, Any] = {"mode": mode, "recipe": kind, "weight_bits": wbits, "float_model": Path(tflite).name}
    if abits:
        options["activation_bits"] = abits
    notes = [f"ai-edge-quantizer {kind} recipe on {Path(tflite).name}"]
    if float_ops:
        options["float_layers"] = [o.tensor for o in float_ops]
        notes.append(f"{len(float_ops)} op(s) kept in float: {', '.join(o.op + ' ' + o.tensor for o in float_ops)}")
    return {"path": out, "size_bytes": len(data), "seconds": time.perf_counter() - t0, "notes": notes,
            "options": options, "converter": "ai-edge-quantizer", "tools": _tools()}


def sensitivity_job(*, tflite: str, io: dict[str, Any], calibration: str, holdout: str, reference: str,
                    labels: list[int] | None = None, mode: str = "aeq-int8", onnx: str | None = None,
                    onnx_io: dict[str, Any] | None = None, threads: int = 1) -> dict[str, Any]:
    """Worker entry: each op quantized alone and each op left alone in float; ranked by the only-this-op SNR."""
    t0 = time.perf_counter()
    spec = IOSpec.from_json(io)
    q = Quantizer(tflite, spec, mode, calibration)
    with tempfile.TemporaryDirectory(prefix="edgeport-aeq-") as work:
        ev = Evaluator(spec, holdout, reference, labels, work, threads)
        ev.run(q.model)
        float_outputs = ev.last_outputs
        full = ev.run(q.quantize())
        rows = []
        unchanged = []
        for op in q.ops:
            only = ev.run(q.quantize(only=[op]))
            if _same(ev.last_outputs, float_outputs):
                unchanged.append(op.op)  # the recipe leaves this op alone (or quantizing it is exact): not a candidate
                continue
            rows.append({"index": op.index, "op": op.op, "tensor": op.tensor, "scope": op.scope,
                         "only": _scores(only), "all_but": _scores(ev.run(q.quantize(float_ops=[op])))})
    rows.sort(key=lambda r: (_num(r["only"]["snr_db"]), -_num(r["all_but"]["snr_db"])))
    for k, r in enumerate(rows, 1):
        r["rank"] = k
    notes = _name_rows(rows, q, spec, holdout, onnx, onnx_io)
    if unchanged:
        notes.append(f"{len(unchanged)} op(s) that quantizing alone leaves the outputs bit-identical are not ranked: "
                     f"{', '.join(sorted(set(unchanged)))}")
    return {"mode": mode, "method": "isolated: only this op quantized (rank) / every op but this one quantized",
            "full": _scores(full), "layers": rows, "ops": len(q.ops), "notes": notes,
            "samples": len(ev.samples), "seconds": time.perf_counter() - t0}


def search_job(*, tflite: str, io: dict[str, Any], calibration: str, holdout: str, reference: str, order: list[str],
               labels: list[int] | None = None, mode: str = "aeq-int8", max_accuracy_drop: float | None = None,
               min_snr: float | None = None, max_float: int | None = None, threads: int = 1, latency_runs: int = 100,
               latency_seconds: float = 1.0) -> dict[str, Any]:
    """Worker entry: keep the first 0, 1, 2 ... ops of ``order`` in float until the floors are met."""
    if max_accuracy_drop is None and min_snr is None:
        raise InputError("the keep-float search needs a floor", "pass --max-accuracy-drop 0.5% or --min-snr DB")
    if max_accuracy_drop is not None and not labels:
        raise InputError("--max-accuracy-drop needs labelled held-out data", "pass --dataset NAME or --labels FILE")
    t0 = time.perf_counter()
    spec = IOSpec.from_json(io)
    q = Quantizer(tflite, spec, mode, calibration)
    ranked = q.resolve(order)
    limit = len(ranked) if max_float is None else min(len(ranked), int(max_float))
    steps: list[dict[str, Any]] = []
    chosen = None
    with tempfile.TemporaryDirectory(prefix="edgeport-aeq-") as work:
        ev = Evaluator(spec, holdout, reference, labels, work, threads)
        for k in range(limit + 1):
            s = ev.run(q.quantize(float_ops=ranked[:k]), latency_runs, latency_seconds)
            s.update(float_layers=[o.tensor for o in ranked[:k]], float_ops=k)
            s["meets"] = meets_floor(s, max_accuracy_drop, min_snr)
            steps.append(s)
            if s["meets"]:
                chosen = k
                break
    return {"mode": mode, "floor": {"max_accuracy_drop": max_accuracy_drop, "min_snr_db": min_snr}, "steps": steps,
            "chosen": chosen, "order": "sensitivity rank (only-this-op SNR, lowest first)", "seconds": time.perf_counter() - t0}


def meets_floor(scores: dict[str, Any], max_accuracy_drop: float | None, min_snr: float | None) -> bool:
    """True when ``scores`` (accuracy, reference_accuracy, snr_db) meet every floor given."""
    if max_accuracy_drop is not None:
        acc, ref = scores.get("accuracy"), scores.get("reference_accuracy")
        if acc is None or ref is None or acc < ref - max_accuracy_drop - 1e-9:
            return False
    if min_snr is not None:
        snr = scores.get("snr_db")
        if snr is None or not (snr >= min_snr):
            return False
    return True


def _same(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


def _scores(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s.get(k) for k in ("snr_db", "accuracy", "top1", "size_bytes")}


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not math.isnan(float(v)) else math.inf


def _name_rows(rows: list[dict[str, Any]], q: Quantizer, io: IOSpec, holdout: str, onnx: str | None,
               onnx_io: dict[str, Any] | None) -> list[str]:
    """Add ``onnx_nodes``/``module`` to each row by matching float .tflite tensors with ONNX tensors by value."""
    for r in rows:  # what the tensor name alone says; the ONNX match below replaces it where it finds one
        r["module"] = litert_module(r["tensor"])
        r["layer"] = r["module"] or layer_hint(r["tensor"])
    if not (onnx and onnx_io and Path(onnx).is_file()):
        return ["no ONNX model to match TFLite ops with ONNX nodes by value; layers are named from TFLite tensor names"]
    from edgeport.quantize.calibration import to_artifact
    from edgeport.quantize.debug import LayerError, float_tensor_values, name_layers, tflite_consumers
    from edgeport.data.samples import load_samples

    try:
        sample = load_samples(holdout)[0]
        feed = to_artifact(sample, io)
        layers = [LayerError(r["tensor"], r["op"], *([math.nan] * 6), 0, 0) for r in rows]
        values = float_tensor_values(_Lite(), q.model, feed, list(feed))
        name_layers(layers, values, onnx, to_artifact(sample, IOSpec.from_json(onnx_io)), tflite_consumers(q.model))
    except Exception as exc:  # noqa: BLE001 - naming is best effort; the scores stand without it
        return [f"could not map ops to ONNX nodes: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"]
    for r, layer in zip(rows, layers):
        if layer.onnx_nodes:
            r.update(onnx_nodes=layer.onnx_nodes, module=layer.module or r["module"], module_type=layer.module_type,
                     match=layer.match, layer=layer.module or r["module"] or layer.layer)
    return []


def litert_module(tensor: str) -> str:
    """The PyTorch module path in a litert-torch tensor name, else "".

    litert-torch names a tensor ``Root/pkg.Class_attr/pkg.Class_attr/...`` after the module call stack:
    ``.../torch.nn.modules.container.Sequential_features/torch.nn.modules.container.Sequential_4/...BatchNorm2d_1``
    is ``features.4.1``. The ``inner`` attribute of edgeport's own export wrapper is dropped.
    """
    parts = tensor.split(";")[0].split("/")
    if len(parts) < 2 or not all(re.fullmatch(r"[\w.<>]+_\w+", p) for p in parts[1:]):
        return ""
    attrs = [p.rsplit("_", 1)[1] if not p.endswith("_") else "" for p in parts[1:]]
    attrs = [a for a in attrs if a]
    if attrs and attrs[0] == "inner" and "NamedIO" in parts[0]:
        attrs = attrs[1:]
    return ".".join(attrs)


class _Lite:
    """``tf.lite`` as :func:`edgeport.quantize.debug.float_tensor_values` uses it, from ai-edge-litert (no TensorFlow)."""

    class lite:  # noqa: N801 - mirrors the tf.lite attribute path
        @staticmethod
        def Interpreter(**kwargs: Any) -> Any:  # noqa: N802
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter(**kwargs)
