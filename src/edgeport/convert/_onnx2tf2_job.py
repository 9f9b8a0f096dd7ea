"""ONNX -> .tflite (and SavedModel) with onnx2tf 2.x, run by its managed environment's interpreter.

A standalone script (see :mod:`_job_protocol`): the onnx2tf 2.x venv (Python >= 3.12, numpy 2.2, onnx
1.20, TensorFlow only for SavedModels) has no edgeport in it. Target ``convert`` kwargs:

- ``onnx_path``: a private copy (onnx2tf rewrites the file it converts), in ``work_dir``;
- ``work_dir``: the folder onnx2tf writes into (``out/``) and runs in (it reads its sample-image file
  from the current directory before it would download one; edgeport places a seeded file there);
- ``saved_model``: also write a SavedModel from the same graph (``flatbuffer_direct_output_saved_model``);
- ``keep_shape_names`` / ``keep_nchw_names`` / ``overwrite_input_shape``: onnx2tf's layout and shape options.

The .tflite comes from the ``flatbuffer_direct`` backend (straight from the ONNX graph, no TF graph).
Its SavedModel exporter runs the same graph through TensorFlow kernels it registers per TFLite op type;
a few builtin op types that have exact TensorFlow equivalents are missing there (HARD_SWISH, RSQRT,
SQUARE, SQUARED_DIFFERENCE, GELU), so they are registered before converting. When the SavedModel exporter
still refuses the graph, the .tflite is converted again without it and the result says why the
SavedModel is missing (upstream falls back to nothing: it raises for the whole conversion).
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

from _job_protocol import JobError, main  # beside this script; see its docstring

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for n in ("onnx2tf", "onnx", "onnxsim", "onnxruntime", "numpy", "tensorflow-cpu", "ai-edge-litert"):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def _extend_saved_model_kernels() -> list[str]:
    """Register TensorFlow kernels for TFLite builtins the SavedModel exporter lacks; returns their names."""
    try:
        import tensorflow as tf
        from onnx2tf.tflite_builder import saved_model_exporter as sme
    except ImportError:
        return []
    unary = {
        "HARD_SWISH": lambda x: x * tf.nn.relu6(x + 3.0) / 6.0,
        "RSQRT": tf.math.rsqrt,
        "SQUARE": tf.math.square,
    }
    binary = {"SQUARED_DIFFERENCE": tf.math.squared_difference}
    added = []
    # Upstream's DEPTHWISE_CONV_2D kernel reshapes its filter with a dynamic shape, which leaves the rank
    # unknown and makes tf.nn.depthwise_conv2d refuse every depthwise convolution; use static shapes.
    sme._REGISTERED_KERNELS["DEPTHWISE_CONV_2D"] = _depthwise_kernel(tf, sme)
    added.append("DEPTHWISE_CONV_2D (static filter shape)")
    if "GELU" not in sme._REGISTERED_KERNELS:  # edgeport fuses exact GELUs into one GELU op before converting
        sme._REGISTERED_KERNELS["GELU"] = _gelu_kernel(tf)
        sme.SUPPORTED_KERNEL_OP_TYPES.add("GELU")
        added.append("GELU")
    for table, kernel, extra in ((sme._UNARY_KERNELS, sme._kernel_unary, unary),
                                 (sme._BINARY_KERNELS, sme._kernel_binary, binary)):
        for name, fn in extra.items():
            if name not in sme._REGISTERED_KERNELS:
                table[name] = fn
                sme._REGISTERED_KERNELS[name] = kernel
                sme.SUPPORTED_KERNEL_OP_TYPES.add(name)
                added.append(name)
    return added


def _gelu_kernel(tf: Any) -> Any:
    def kernel(executor: Any, op: Any, env: dict) -> None:
        x = executor._resolve_tensor(op.inputs[0], env)
        approximate = bool((op.options or {}).get("approximate", False))
        executor._assign_outputs(op, [tf.nn.gelu(x, approximate=approximate)], env)

    return kernel


def _depthwise_kernel(tf: Any, sme: Any) -> Any:
    def kernel(executor: Any, op: Any, env: dict) -> None:
        x = executor._resolve_tensor(op.inputs[0], env)
        w = executor._resolve_tensor(op.inputs[1], env)
        b = executor._resolve_optional_tensor(op.inputs[2], env) if len(op.inputs) >= 3 else None
        _, kh, kw, cm = (int(d) for d in w.shape)  # TFLite filter: [1, H, W, C * multiplier]
        cin = int(x.shape[-1])
        w_tf = tf.reshape(w[0], [kh, kw, cin, cm // cin])  # TF filter: [H, W, C, multiplier]
        strides = [1, int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1)), 1]
        dilations = [int(op.options.get("dilationHFactor", 1)), int(op.options.get("dilationWFactor", 1))]
        y = tf.nn.depthwise_conv2d(x, w_tf, strides=strides, dilations=dilations,
                                   padding=str(op.options.get("padding", "SAME")).upper())
        if b is not None:
            y = tf.nn.bias_add(y, b)
        y = sme._apply_fused_activation(y, str(op.options.get("fusedActivationFunction", "NONE")))
        executor._assign_outputs(op, [y], env)

    return kernel


def _root_cause(exc: BaseException) -> str:
    """The innermost message of an exception chain, on one line."""
    seen = exc
    while seen.__cause__ is not None or (seen.__context__ is not None and not seen.__suppress_context__):
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    lines = [ln.strip() for ln in _ANSI.sub("", str(seen)).splitlines() if ln.strip()]
    # tf.function wraps kernel errors in an "in user code:" trace whose last line is the message
    text = lines[-1] if len(lines) > 1 and "in user code" in lines[0] else " ".join(lines)
    return f"{type(seen).__name__}: {text}"[:400]


def _run_onnx2tf(kw: dict[str, Any]) -> None:
    import onnx2tf

    try:
        onnx2tf.convert(**kw)
    except SystemExit as exc:  # onnx2tf calls sys.exit(1) on many errors, after logging them
        raise JobError(f"onnx2tf exited with code {exc.code} (its log above says why)", "see the step log") from None
    except Exception as exc:  # noqa: BLE001 - onnx2tf raises bare RuntimeError/ValueError/...
        raise JobError(f"onnx2tf failed: {_root_cause(exc)}", "see the step log") from exc


def convert(onnx_path: str, work_dir: str, saved_model: bool = False, keep_shape_names: list[str] | None = None,
            keep_nchw_names: list[str] | None = None, overwrite_input_shape: list[str] | None = None,
            simplify: bool = True, rtol: float = 1e-4) -> dict[str, Any]:
    os.chdir(work_dir)
    out = os.path.join(work_dir, "out")
    kw: dict[str, Any] = {
        "input_onnx_file_path": onnx_path,
        "output_folder_path": out,
        "tflite_backend": "flatbuffer_direct",
        "not_use_onnxsim": not simplify,
        "non_verbose": False,
        "verbosity": "info",
    }
    if keep_shape_names:
        kw["keep_shape_absolutely_input_names"] = list(keep_shape_names)
    if keep_nchw_names:
        kw["keep_ncw_or_nchw_or_ncdhw_input_names"] = list(keep_nchw_names)
    if overwrite_input_shape:
        kw["overwrite_input_shape"] = list(overwrite_input_shape)
    timings: dict[str, float] = {}
    notes: list[str] = []
    saved_model_error = ""
    t = time.perf_counter()
    if saved_model:
        added = _extend_saved_model_kernels()
        if added:
            notes.append(f"SavedModel kernels registered for {', '.join(added)} (missing in onnx2tf's exporter)")
        try:
            _run_onnx2tf({**kw, "flatbuffer_direct_output_saved_model": True})
        except JobError as exc:
            saved_model_error = exc.message
            sys.stdout.write(f"\nSavedModel export failed ({saved_model_error}); converting the .tflite alone\n")
            import shutil

            shutil.rmtree(out, ignore_errors=True)
    if not saved_model or saved_model_error:
        _run_onnx2tf(kw)
    timings["convert"] = round(time.perf_counter() - t, 3)
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    tflite = os.path.join(out, f"{stem}_float32.tflite")
    if not os.path.isfile(tflite):
        raise JobError("onnx2tf wrote no float32 .tflite", "see the step log")
    has_sm = os.path.isfile(os.path.join(out, "saved_model.pb"))
    if saved_model and not has_sm and not saved_model_error:
        saved_model_error = "onnx2tf wrote no saved_model.pb"
    return {"versions": _versions(), "tflite": tflite, "saved_model": out if has_sm else None,
            "saved_model_error": saved_model_error, "timings": timings, "notes": notes}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], {"convert": convert}, "_onnx2tf2_job.py"))
