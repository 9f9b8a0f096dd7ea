"""ONNX -> TF SavedModel -> .tflite with onnx-tf, run by the isolated backend's own interpreter.

This file is a standalone script: the onnx-tf venv (TensorFlow 2.15, onnx 1.15, numpy 1.26) has no
edgeport in it, so it imports only the standard library, numpy, onnx, onnx_tf and tensorflow. It
speaks the child side of :mod:`edgeport.worker`'s protocol:

    python _onnx_tf_job.py JOB.json RESULT.json
    JOB.json    {"target": "convert", "kwargs": {...}}
    RESULT.json {"ok": true, "value": {...}}  or  {"ok": false, "error": {"type", "message", "hint"}}

written atomically, and it refuses non-local network connections like edgeport's own workers.

kwargs: ``onnx_path`` (an IR <= 9, opset <= 15 model prepared by edgeport.convert.onnx_tf_backend),
``saved_model_dir`` and ``tflite_path`` (absolute; ``tflite_path`` may be null for SavedModel only),
``allow_flex`` (let TFLiteConverter emit Select TF ops).
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

from _job_protocol import JobError, main  # beside this script; see its docstring


# ---------------------------------------------------------------------------------------- conversion


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for n in ("onnx-tf", "tensorflow-cpu", "tensorflow", "tensorflow-addons", "onnx", "numpy"):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def _sanitized(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _match_keys(onnx_names: list[str], keys: list[str], what: str) -> list[str]:
    """Signature key for each ONNX tensor name (onnx-tf keys them by name, sometimes rewritten)."""
    out = []
    for n in onnx_names:
        if n in keys:
            out.append(n)
            continue
        cands = [k for k in keys if _sanitized(k) == _sanitized(n) or k.startswith(_sanitized(n) + "_")]
        if len(cands) != 1:
            raise JobError(f"cannot find the {what} {n!r} among the converted model's signature keys {sorted(keys)}",
                           "give the ONNX inputs and outputs plain names ([A-Za-z_][A-Za-z0-9_]*)")
        out.append(cands[0])
    return out


def _root_message(exc: BaseException) -> str:
    """The line that says what went wrong: tf.function wraps handler errors in an "in user code" trace."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and "in user code" in lines[0]:
        return lines[-1][:300]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}" if lines else type(exc).__name__


def _flex_reason(text: str) -> str:
    ops = sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9]+)", text)))
    return ", ".join(ops) if ops else ""


def convert(onnx_path: str, saved_model_dir: str, tflite_path: str | None = None, allow_flex: bool = False,
            strict: bool = True) -> dict[str, Any]:
    import onnx

    t0 = time.perf_counter()
    import tensorflow as tf  # noqa: F401 - both imports timed here: they are most of a small model's conversion
    from onnx_tf.backend import prepare

    timings: dict[str, float] = {"import": round(time.perf_counter() - t0, 3)}
    model = onnx.load(onnx_path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    t = time.perf_counter()
    _export_saved_model(prepare, model, saved_model_dir, opset, strict)
    timings["saved_model"] = round(time.perf_counter() - t, 3)
    result: dict[str, Any] = {
        "versions": _versions(),
        "opset": opset,
        "ir_version": int(model.ir_version),
        "saved_model": _saved_model_io(model, saved_model_dir),
        "tflite": None,
        "timings": timings,
    }
    if not tflite_path:
        return result
    t = time.perf_counter()
    content = _tflite_bytes(saved_model_dir, allow_flex)
    timings["tflite"] = round(time.perf_counter() - t, 3)
    _write_atomic(tflite_path, content)
    result["tflite"] = {"size_bytes": len(content), "signature": "serving_default"}
    return result


def _export_saved_model(prepare: Any, model: Any, saved_model_dir: str, opset: int | None, strict: bool) -> None:
    """onnx-tf's ``prepare(model).export_graph``; a JobError saying what it could not convert."""
    try:
        rep = prepare(model, strict=strict, logging_level="WARNING")
        rep.export_graph(saved_model_dir)
    except Exception as exc:  # noqa: BLE001 - onnx-tf raises bare exceptions for unsupported ops
        raise JobError(f"onnx-tf could not convert the ONNX graph (IR {model.ir_version}, opset {opset}): {_root_message(exc)}",
                       "use the onnx2tf or litert-torch converter for this model") from None


def _saved_model_io(model: Any, saved_model_dir: str) -> dict[str, Any]:
    """The serving signature's tensors, each with the ONNX name it stands for (in the ONNX graph's order)."""
    import tensorflow as tf

    initializers = {i.name for i in model.graph.initializer}
    in_names = [i.name for i in model.graph.input if i.name not in initializers]
    out_names = [o.name for o in model.graph.output]
    fn = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    sm_inputs = {k: {"shape": [d if d is not None else -1 for d in v.shape.as_list()], "dtype": v.dtype.name}
                 for k, v in fn.structured_input_signature[1].items()}
    sm_outputs = {k: {"shape": [d if d is not None else -1 for d in v.shape.as_list()], "dtype": v.dtype.name}
                  for k, v in fn.structured_outputs.items()}
    sm_in_keys = _match_keys(in_names, list(sm_inputs), "input")
    sm_out_keys = _match_keys(out_names, list(sm_outputs), "output")
    return {
        "inputs": [{"onnx_name": n, "key": k, **sm_inputs[k]} for n, k in zip(in_names, sm_in_keys)],
        "outputs": [{"onnx_name": n, "key": k, **sm_outputs[k]} for n, k in zip(out_names, sm_out_keys)],
        "signature": "serving_default",
    }


def _tflite_bytes(saved_model_dir: str, allow_flex: bool) -> bytes:
    """TFLiteConverter on the SavedModel: builtin ops only unless ``allow_flex``."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        return converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError with a long log
        text = str(exc)
        flex = _flex_reason(text)
        if flex and not allow_flex:
            raise JobError(f"TFLiteConverter needs Select TF (Flex) ops for {flex}, which plain LiteRT interpreters cannot run",
                           "allow Flex ops (allow_flex) or use the onnx2tf / litert-torch converter") from None
        last = next((ln.strip() for ln in text.splitlines() if "error:" in ln), text.strip().splitlines()[-1] if text.strip() else "")
        raise JobError(f"TFLiteConverter failed on the onnx-tf SavedModel: {' '.join(last.split())[:300]}",
                       "use the onnx2tf or litert-torch converter for this model") from None


def _write_atomic(path: str, content: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], {"convert": convert}, "_onnx_tf_job.py"))
