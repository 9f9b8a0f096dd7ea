"""TFLite variants of a SavedModel: float16, dynamic-range int8, full int8, int16x8, int8 with float layers.

    run_in_worker("edgeport.quantize.tflite_variants:convert_job", {"saved_model": ..., "io": ..., "mode": "int8",
                  "calibration": "calib.npz", "out": "model.int8.tflite", "io_dtype": "float"})

=================  =========================================================================================
mode               TFLiteConverter settings
=================  =========================================================================================
``fp32``           none (the baseline when the manifest has no .tflite made from this SavedModel)
``fp16``           ``optimizations=[DEFAULT]``, ``target_spec.supported_types=[float16]``
``dynamic-int8``   ``optimizations=[DEFAULT]`` (int8 weights, float activations, no calibration)
``int8``           ``[DEFAULT]`` + ``representative_dataset`` + ``supported_ops=[TFLITE_BUILTINS_INT8]``;
                   ``inference_input_type/output_type`` float32, int8 or uint8 (``io_dtype``)
``int16x8``        ``[DEFAULT]`` + ``representative_dataset`` +
                   ``supported_ops=[EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]``; when some op
                   has no 16x8 kernel it is retried with ``TFLITE_BUILTINS`` added (those ops stay float; noted)
``int8-keepfloat`` the int8 model with the layers in ``keep_float`` (output tensor names) left in float, through
                   ``tf.lite.experimental.QuantizationDebugger``'s ``denylisted_nodes``
``int8-float-ops`` the int8 model with every op of the types in ``float_ops`` (``HARD_SWISH``) left in float,
                   through the debugger's ``denylisted_ops`` (what the delegate has no int8 kernel for)
``int8-io``        ``int8`` with int8 inputs and outputs (no QUANTIZE/DEQUANTIZE at the edges)
``int8-rewrite``   ``int8``, from a SavedModel converted from the rewritten ONNX model (the sweep makes it)
=================  =========================================================================================

Calibration samples arrive as an .npz in the reference layout (:func:`edgeport.data.samples.save_samples`)
and are put into the SavedModel's layout with its IOSpec (``perm``) before calibrating. TensorFlow is
imported only inside the worker functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from edgeport.errors import ConversionError, InputError
from edgeport.exc_text import first_line
from edgeport.spec import IOSpec, TensorSpec
from edgeport.tflite_fb import schema_module

if TYPE_CHECKING:
    import numpy as np

MODES = ("fp32", "fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat", "int8-float-ops", "int8-io", "int8-rewrite")
_LIKE_INT8 = ("int8", "int8-io", "int8-rewrite")
IO_DTYPES = ("float", "int8", "uint8")


def import_tensorflow() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def make_converter(saved_model: str, mode: str, io: IOSpec, calibration: str | None, io_dtype: str = "float") -> Any:
    """A configured ``tf.lite.TFLiteConverter`` for ``mode`` (the selective modes are configured like ``int8``)."""
    tf = import_tensorflow()
    if mode not in MODES:
        raise ConversionError(f"unknown TFLite quantization mode {mode!r}", f"use one of {', '.join(MODES)}")
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if mode == "fp32":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        return conv
    if mode == "dynamic-int8":
        return conv
    if not calibration:
        raise InputError(f"mode {mode} needs calibration samples", "pass --calibration DATA")
    from edgeport.quantize.calibration import representative_dataset
    from edgeport.data.samples import load_samples

    samples = load_samples(calibration)
    conv.representative_dataset = representative_dataset(samples, io)
    if mode == "int16x8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        return conv
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode in _LIKE_INT8:
        if mode == "int8-io":
            io_dtype = "int8"
        types = {"float": tf.float32, "int8": tf.int8, "uint8": tf.uint8}
        if io_dtype not in types:
            raise InputError(f"--io-dtype {io_dtype!r} is not one of {', '.join(IO_DTYPES)}", "use float, int8 or uint8")
        conv.inference_input_type = types[io_dtype]
        conv.inference_output_type = types[io_dtype]
    return conv


def convert_job(*, saved_model: str, io: dict[str, Any], mode: str, out: str, calibration: str | None = None,
                io_dtype: str = "float", keep_float: list[str] | None = None,
                float_ops: list[str] | None = None) -> dict[str, Any]:
    """Worker entry: write the ``mode`` variant of ``saved_model`` to ``out``; returns what happened."""
    tf = import_tensorflow()
    spec = IOSpec.from_json(io)
    notes: list[str] = []
    options: dict[str, Any] = {"mode": mode}
    t0 = time.perf_counter()
    if mode == "int8-keepfloat":
        data = _keep_float_model(saved_model, spec, calibration, io_dtype, keep_float or [], notes, options)
    elif mode == "int8-float-ops":
        data = _float_ops_model(saved_model, spec, calibration, io_dtype, float_ops or [], notes, options)
    else:
        conv = make_converter(saved_model, mode, spec, calibration, io_dtype)
        if mode in _LIKE_INT8:
            options["io_dtype"] = "int8" if mode == "int8-io" else io_dtype
        try:
            data = conv.convert()
        except Exception as exc:  # noqa: BLE001 - TF raises ConverterError, RuntimeError, ValueError ...
            if mode != "int16x8":
                raise ConversionError(f"TFLiteConverter ({mode}) failed: {first_line(exc)}", "see the worker log") from None
            conv = make_converter(saved_model, mode, spec, calibration, io_dtype)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]
            try:
                data = conv.convert()
            except Exception as exc2:  # noqa: BLE001
                raise ConversionError(f"TFLiteConverter (int16x8) failed: {first_line(exc2)}", "see the worker log") from None
            notes.append(f"some ops have no int16x8 kernel and stay float ({first_line(exc)[:160]})")
            options["float_fallback"] = True
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(data)
    return {"path": out, "size_bytes": len(data), "seconds": time.perf_counter() - t0, "notes": notes,
            "options": options, "converter": "tf.lite.TFLiteConverter", "tools": _tools()}


def _selective_debugger(saved_model: str, mode: str, io: IOSpec, calibration: str | None, io_dtype: str,
                        notes: list[str], **deny: list[str]) -> tuple[Any, Any, bool]:
    """(tf, a QuantizationDebugger over the int8 converter with ``deny`` options, fully int8 I/O or not)."""
    tf = import_tensorflow()
    conv = make_converter(saved_model, mode, io, calibration, io_dtype)
    fully = io_dtype == "int8"
    if io_dtype == "uint8":
        notes.append("uint8 model inputs/outputs are not available with float layers: inputs/outputs stay float")
    dbg_opts = tf.lite.experimental.QuantizationDebugOptions(fully_quantize=fully, **deny)
    # The debugger calibrates through the converter; it needs a debug dataset only to run, which we do not.
    try:
        debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=debug_dataset_fn([], io),
                                                             debug_options=dbg_opts)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"selective quantization failed: {first_line(exc)}", "see the worker log") from None
    return tf, debugger, fully


def _keep_float_model(saved_model: str, io: IOSpec, calibration: str | None, io_dtype: str, names: list[str],
                      notes: list[str], options: dict[str, Any]) -> bytes:
    if not names:
        raise InputError("no layers to keep in float", "pass --keep-float N or layer names")
    tf, debugger, fully = _selective_debugger(saved_model, "int8-keepfloat", io, calibration, io_dtype, notes,
                                              denylisted_nodes=list(names))
    try:
        known = calibrated_tensor_names(debugger.calibrated_model)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(f"{len(unknown)} layer(s) to keep in float are not in the model: {unknown[0]!r}",
                             "use names from the per-layer report (tensor column)")
        # A layer's error is mostly the rounding of its output tensor; that tensor stays float only when the ops
        # reading it are float too, so they join the denylist (a lone float op would be re-quantized right after).
        consumers = tflite_consumers(debugger.calibrated_model)
        deny = list(names)
        for n in names:
            deny.extend(c for c in consumers.get(n, []) if c in known and c not in deny)
        if len(deny) > len(names):
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny, fully_quantize=fully)
        data = debugger.get_nondebug_quantized_model()
        options["float_ops"] = deny
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"selective quantization failed: {first_line(exc)}", "see the worker log") from None
    options.update(keep_float=list(names), io_dtype="int8" if fully else "float")
    notes.append(f"{len(names)} layer(s) kept in float, with the {len(options['float_ops']) - len(names)} op(s) reading their outputs")
    return data


def _float_ops_model(saved_model: str, io: IOSpec, calibration: str | None, io_dtype: str, op_types: list[str],
                     notes: list[str], options: dict[str, Any]) -> bytes:
    """int8 with every op of ``op_types`` (TFLite names) left in float (the debugger's ``denylisted_ops``)."""
    if not op_types:
        raise InputError("no op types to keep in float", "name TFLite op types such as HARD_SWISH")
    _, debugger, fully = _selective_debugger(saved_model, "int8-float-ops", io, calibration, io_dtype, notes,
                                             denylisted_ops=list(op_types))
    try:
        data = debugger.get_nondebug_quantized_model()
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"selective quantization failed: {first_line(exc)}", "see the worker log") from None
    options.update(float_ops=list(op_types), io_dtype="int8" if fully else "float")
    notes.append(f"ops of type {', '.join(op_types)} kept in float")
    return data


def calibrated_tensor_names(model: bytes) -> set[str]:
    """Every tensor name in a .tflite flatbuffer (without TensorFlow)."""
    m = schema_module().Model.GetRootAs(model, 0)
    names: set[str] = set()
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            n = sg.Tensors(i).Name()
            if n:
                names.add(n.decode("utf-8", "replace"))
    return names


def tflite_consumers(model: bytes) -> dict[str, list[str]]:
    """Tensor name -> output tensor names of the ops consuming it (subgraph 0 of a .tflite flatbuffer)."""
    m = schema_module().Model.GetRootAs(model, 0)
    if not m.SubgraphsLength():
        return {}
    sg = m.Subgraphs(0)

    def name(i: int) -> str:
        return (sg.Tensors(int(i)).Name() or b"").decode("utf-8", "replace")

    consumers: dict[str, list[str]] = {}
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        outs = [name(i) for i in (op.OutputsAsNumpy() if op.OutputsLength() else []) if i >= 0]
        for i in (op.InputsAsNumpy() if op.InputsLength() else []):
            if i >= 0:
                consumers.setdefault(name(i), []).extend(o for o in outs if o not in consumers.get(name(i), []))
    return consumers


def debug_dataset_fn(samples: Sequence[dict[str, np.ndarray]], io: IOSpec,
                     order: list[str] | None = None) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The debugger wants lists of arrays in the interpreter's input order; ``order`` (filled later) gives it."""
    from edgeport.quantize.calibration import to_artifact

    feeds = [to_artifact(s, io) for s in samples]
    default = [s.name for s in io.inputs]

    def gen() -> Iterator[list[np.ndarray]]:
        names = order or default
        for f in feeds:
            yield [f[n] for n in names]

    return gen


def _tools() -> dict[str, str]:
    from edgeport.convert.base import tool_versions

    return tool_versions("tensorflow", "tensorflow-cpu")


# ----------------------------------------------------------------------------------------------- IO mapping


def variant_io(parent: IOSpec, info: dict[str, Any]) -> tuple[IOSpec, list[str]]:
    """The IOSpec of a converted variant, from its parent's IOSpec and :func:`inspect_tflite` ``info``.

    The converter may rename and reorder inputs and outputs (``serving_default_x:0``, ``StatefulPartitionedCall:1``)
    and change their dtype (int8 inputs). Each parent tensor is found in the variant by signature key, then by
    tensor name, then by a unique shape; the result keeps the parent's ``perm``/``ref_name`` so sessions map
    everything back to the reference. Returns (spec, notes); raises ConversionError when a tensor cannot be found.
    """
    notes: list[str] = []
    sigs = info.get("signatures") or {}
    sig = sigs.get("serving_default") or (next(iter(sigs.values())) if len(sigs) == 1 else None)
    by_index = {t["index"]: t for t in list(info.get("inputs", [])) + list(info.get("outputs", []))}
    # Sessions use the signature runner only when every name is a signature key; otherwise tensor names.
    use_sig = sig is not None and all(s.name in sig.get("inputs", {}) for s in parent.inputs) \
        and all(s.name in sig.get("outputs", {}) for s in parent.outputs)

    def resolve(specs: list[TensorSpec], kind: str) -> list[TensorSpec]:
        tensors = list(info.get(kind, []))
        sig_map: dict[str, int] = dict((sig or {}).get(kind, {}))
        used: set[int] = set()
        out: list[TensorSpec] = []
        for pos, spec in enumerate(specs):
            t = by_index.get(sig_map[spec.name]) if spec.name in sig_map else None
            if t is None:
                t = next((x for x in tensors if x["index"] not in used and tensor_matches_name(x["name"], spec.name)), None)
            if t is None:
                same = [x for x in tensors if x["index"] not in used and _shape_fits(x, spec)]
                if len(same) == 1:
                    t = same[0]
                    notes.append(f"{kind[:-1]} {spec.name!r} matched by shape to tensor {t['name']!r}")
                elif len(same) > 1 and len(tensors) == len(specs):
                    t = same[0]
                    notes.append(f"{kind[:-1]} {spec.name!r} matched by position among same-shaped tensors; "
                                 "the sweep checks the order by value")
            if t is None:
                raise ConversionError(f"the converted model has no {kind[:-1]} matching {spec.name!r}",
                                      "re-create the SavedModel with edgeport convert")
            used.add(t["index"])
            order = [x["index"] for x in tensors]
            if not use_sig and t["index"] in order and order.index(t["index"]) != pos:
                notes.append(f"the converter moved {kind[:-1]} {spec.name!r} from position {pos} to "
                             f"{order.index(t['index'])}; mapped back by name")
            dims = list(t.get("shape_signature") or t.get("shape") or [])
            shape = tuple(int(d) if int(d) >= 0 else s for d, s in zip(dims, spec.shape)) if len(dims) == spec.rank else spec.shape
            out.append(spec.with_(name=spec.name if use_sig else t["name"], dtype=str(t["dtype"]), shape=shape))
        return out

    return IOSpec(inputs=resolve(list(parent.inputs), "inputs"), outputs=resolve(list(parent.outputs), "outputs")), notes


def tensor_matches_name(tensor_name: str, name: str) -> bool:
    base = tensor_name.split(":")[0]
    return base in (name, f"serving_default_{name}") or base.endswith(f"/{name}")


def _shape_fits(tensor: dict[str, Any], spec: TensorSpec) -> bool:
    shape = tensor.get("shape_signature") or tensor.get("shape") or []
    if len(shape) != spec.rank:
        return False
    return all(not isinstance(d, int) or int(t) in (d, -1) for t, d in zip(shape, spec.shape))
