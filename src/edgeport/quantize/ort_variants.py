"""ONNX Runtime variants of an ONNX model: dynamic int8 and static QDQ int8.

    run_in_worker("edgeport.quantize.ort_variants:quantize_job", {"onnx": "model.onnx", "io": ..., "mode": "ort-qdq-int8",
                  "calibration": "calib.npz", "out": "model.ort-qdq-int8.onnx"})

- ``ort-dynamic-int8``: ``quantize_dynamic`` (int8 weights; activations quantized on the fly per call);
- ``ort-qdq-int8``: ``quantize_static`` in QDQ format, per-channel int8 weights, uint8 activations (the
  U8S8 pairing ONNX Runtime recommends on x86), MinMax calibration with the same calibration samples as
  the TFLite int8 variant, read through an ONNX-Runtime ``CalibrationDataReader``
  (:class:`edgeport.quantize.calibration.FeedReader`).

Both first run ``quant_pre_process`` (symbolic shape inference and ORT's graph optimisations, e.g. folding
BatchNormalization into Conv), which ONNX Runtime's documentation recommends before quantizing; when
pre-processing fails the original model is quantized and a note says so. Input and output names are
kept by the quantizer; the job checks that and returns the variant's IOSpec.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeport.errors import ConversionError, InputError
from edgeport.exc_text import first_line
from edgeport.spec import IOSpec

MODES = ("ort-dynamic-int8", "ort-qdq-int8")


def _preprocess(src: str, tmp: Path, notes: list[str]) -> str:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = tmp / "preprocessed.onnx"
    try:
        quant_pre_process(src, str(out), skip_symbolic_shape=False)
        return str(out)
    except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation; quantize the original instead
        try:
            quant_pre_process(src, str(out), skip_symbolic_shape=True)
            notes.append(f"symbolic shape inference failed ({first_line(exc)[:120]}); pre-processed without it")
            return str(out)
        except Exception as exc2:  # noqa: BLE001
            notes.append(f"quant_pre_process failed ({first_line(exc2)[:120]}); quantized the model as exported")
            return src


def quantize_job(*, onnx: str, io: dict[str, Any], mode: str, out: str, calibration: str | None = None,
                 per_channel: bool = True, preprocess: bool = True) -> dict[str, Any]:
    """Worker entry: write the ``mode`` variant of ``onnx`` to ``out``; returns what happened."""
    import onnx as onnx_lib
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode not in MODES:
        raise ConversionError(f"unknown ONNX Runtime quantization mode {mode!r}", f"use one of {', '.join(MODES)}")
    spec = IOSpec.from_json(io)
    notes: list[str] = []
    options: dict[str, Any] = {"mode": mode, "per_channel": per_channel}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeport-ortq-") as tmp_name:
        tmp = Path(tmp_name)
        src = str(tmp / "model.onnx")
        shutil.copyfile(onnx, src)  # quantizers write beside their input; never touch the user's file
        model_in = _preprocess(src, tmp, notes) if preprocess else src
        options["preprocessed"] = model_in != src
        target = tmp / "quantized.onnx"
        try:
            if mode == "ort-dynamic-int8":
                quantize_dynamic(model_in, str(target), weight_type=QuantType.QInt8, per_channel=per_channel)
                options.update(weight_type="QInt8")
            else:
                if not calibration:
                    raise InputError("static quantization needs calibration samples", "pass --calibration DATA")
                from edgeport.quantize.calibration import FeedReader
                from edgeport.data.samples import load_samples

                reader = FeedReader(load_samples(calibration), spec)
                quantize_static(model_in, str(target), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax)
                options.update(format="QDQ", activation_type="QUInt8", weight_type="QInt8", calibrate_method="MinMax",
                               calibration_samples=len(reader))
        except (InputError, ConversionError):
            raise
        except Exception as exc:  # noqa: BLE001 - the quantizer raises many types
            raise ConversionError(f"onnxruntime.quantization ({mode}) failed: {first_line(exc)}", "see the worker log") from None
        model = onnx_lib.load(str(target))
        names_in = [i.name for i in model.graph.input]
        names_out = [o.name for o in model.graph.output]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, out)
    io_out, io_notes = variant_io(spec, names_in, names_out)
    notes.extend(io_notes)
    ops: dict[str, int] = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"path": out, "size_bytes": Path(out).stat().st_size, "seconds": time.perf_counter() - t0, "notes": notes,
            "options": options, "converter": "onnxruntime.quantization", "tools": _tools(), "io": io_out.to_json(),
            "ops": dict(sorted(ops.items()))}


def variant_io(parent: IOSpec, inputs: list[str], outputs: list[str]) -> tuple[IOSpec, list[str]]:
    """The quantized model's IOSpec: the parent's, by name; by position when the quantizer renamed tensors."""
    notes: list[str] = []

    def resolve(specs: list, names: list[str], kind: str) -> list:
        out = []
        for pos, s in enumerate(specs):
            if s.name in names:
                out.append(s)
            elif len(names) == len(specs):
                out.append(s.with_(name=names[pos]))
                notes.append(f"{kind} {s.name!r} is named {names[pos]!r} in the quantized model; mapped by position")
            else:
                raise ConversionError(f"the quantized model has no {kind} {s.name!r} (it has {names})", "see the worker log")
        return out

    return IOSpec(inputs=resolve(list(parent.inputs), inputs, "input"), outputs=resolve(list(parent.outputs), outputs, "output")), notes


def _tools() -> dict[str, str]:
    from edgeport.convert.base import tool_versions

    return tool_versions("onnxruntime", "onnx")
