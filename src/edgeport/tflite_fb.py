"""The one reader of .tflite flatbuffers, without TensorFlow: operators, tensors, IO, signatures.

The flatbuffer schema bindings come from ``ai_edge_litert.schema_py_generated`` (shipped with the
LiteRT interpreter, needs only the pure-Python ``flatbuffers`` package), so this works in the device
profile (numpy + ai-edge-litert). TensorFlow's copy of the same generated module is used only when
ai-edge-litert is missing.

Operator names follow TFLite's own spelling (``CONV_2D``, ``FULLY_CONNECTED``). A custom operator
is named by its custom code; TensorFlow "Select TF ops" are custom operators whose code starts with
``Flex`` (``FlexErf``). Each custom operator is reported with the names of the tensors it produces:
converters name tensors after the layers that made them (``.../blocks.0/mlp/act/Erf``).

:func:`inspect_tflite` describes a file; :func:`read_model` / :func:`opcode_names` give the parsed
model to code that walks the graph itself (the delegation report).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

from edgeport.errors import InputError

FLEX_PREFIX = "Flex"

# TFLite TensorType enum value -> numpy dtype name (only the ones numpy can hold).
_TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource", 14: "variant",
    15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16", 19: "int2",
}


def schema_module() -> Any:
    """The generated TFLite schema module, from the lightest package that ships it."""
    try:
        from ai_edge_litert import schema_py_generated as schema  # type: ignore[import-not-found]

        return schema
    except ImportError:
        pass
    try:
        from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[import-not-found]

        return schema
    except ImportError:
        raise InputError(
            "cannot read .tflite files: neither ai-edge-litert nor tensorflow is installed",
            "pip install ai-edge-litert",
        ) from None


def _builtin_names(schema: Any) -> dict[int, str]:
    ops = schema.BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


def _decode(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b else ""


def layer_hint(tensor_name: str) -> str:
    """A readable layer name from a converter's tensor name.

    litert-torch names tensors after the PyTorch module path (``blocks.0.mlp.act``, possibly with
    ``;``-joined fused names); onnx2tf after the ONNX node (``model/tf.math.erf/Erf`` or
    ``node_Erf_12``). Keep the first fused name and drop TF's trailing op suffixes and ``:0``.
    """
    name = tensor_name.split(";")[0].strip()
    name = re.sub(r":\d+$", "", name)
    name = re.sub(r"^(StatefulPartitionedCall|PartitionedCall|serving_default_)[:/]?", "", name)
    name = re.sub(r"^model(_\d+)?/", "", name)  # the Keras model scope onnx2tf adds
    return name or tensor_name


def _tensor_info(schema: Any, sg: Any, index: int) -> dict[str, Any]:
    t = sg.Tensors(index)
    shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
    sig = [int(d) for d in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else list(shape)
    info: dict[str, Any] = {
        "index": int(index),
        "name": _decode(t.Name()),
        "shape": shape,
        "shape_signature": sig,
        "dtype": _TENSOR_TYPES.get(t.Type(), f"type{t.Type()}"),
    }
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        info["quantization"] = {
            "scale": [float(s) for s in q.ScaleAsNumpy()],
            "zero_point": [int(z) for z in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [0] * q.ScaleLength(),
            "axis": int(q.QuantizedDimension()),
        }
    return info


def main_tensors(buf: bytes) -> list[dict[str, Any]]:
    """Every tensor of the main subgraph of the flatbuffer ``buf``: name, shape, dtype, quantization."""
    schema = schema_module()
    model = schema.Model.GetRootAs(buf, 0)
    if not model.SubgraphsLength():
        return []
    sg = model.Subgraphs(0)
    return [_tensor_info(schema, sg, i) for i in range(sg.TensorsLength())]


def read_model(path: str | os.PathLike) -> tuple[bytes, Any, Any]:
    """(file bytes, schema module, root ``Model`` table) of a .tflite file; InputError when it is not one."""
    p = Path(path)
    try:
        buf = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}", "check the path") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise InputError(f"{p} is not a TFLite flatbuffer (no TFL3 identifier)", "pass a .tflite file")
    schema = schema_module()
    try:
        return buf, schema, schema.Model.GetRootAs(buf, 0)
    except (IndexError, ValueError, TypeError, AttributeError, struct.error) as exc:
        raise InputError(f"{p} is not a readable TFLite model ({type(exc).__name__}: {exc})", "re-convert it") from None


def opcode_names(schema: Any, model: Any) -> tuple[list[str], list[bool]]:
    """Per operator-code index: the op's name (builtin spelling or custom code) and whether it is custom."""
    names = _builtin_names(schema)
    custom_code = int(getattr(schema.BuiltinOperator, "CUSTOM", 32))
    opcodes: list[str] = []
    is_custom: list[bool] = []
    for j in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(j)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == custom_code:
            opcodes.append(_decode(oc.CustomCode()) or "CUSTOM")
            is_custom.append(True)
        else:
            opcodes.append(names.get(code, f"BUILTIN_{code}"))
            is_custom.append(False)
    return opcodes, is_custom


def inspect_tflite(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a .tflite file.

    Returns ``{"ops": {name: count}, "flex_ops": [names], "custom_ops": [names], "offenders":
    [{"op", "tensor", "layer", "subgraph"}], "size_bytes", "inputs": [...], "outputs": [...],
    "signatures": {key: {"inputs": {name: tensor index}, "outputs": {...}, "subgraph": int}},
    "subgraphs": int}``. ``inputs``/``outputs`` are subgraph 0's tensors: name, shape, shape_signature
    (-1 marks a dynamic dim), dtype and, for quantized tensors, scale/zero_point. Ops are counted over
    all subgraphs (control flow bodies included).
    """
    p = Path(path)
    buf, schema, model = read_model(p)
    try:
        opcodes, is_custom = opcode_names(schema, model)
        ops: dict[str, int] = {}
        offenders: list[dict[str, Any]] = []
        for s in range(model.SubgraphsLength()):
            sg = model.Subgraphs(s)
            for k in range(sg.OperatorsLength()):
                op = sg.Operators(k)
                idx = op.OpcodeIndex()
                name = opcodes[idx] if idx < len(opcodes) else f"OPCODE_{idx}"
                ops[name] = ops.get(name, 0) + 1
                if idx < len(is_custom) and is_custom[idx]:
                    outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
                    tname = _decode(sg.Tensors(outs[0]).Name()) if outs and outs[0] >= 0 else ""
                    offenders.append({"op": name, "tensor": tname, "layer": layer_hint(tname), "subgraph": s})
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        if model.SubgraphsLength():
            sg0 = model.Subgraphs(0)
            inputs = [_tensor_info(schema, sg0, int(i)) for i in (sg0.InputsAsNumpy() if sg0.InputsLength() else [])]
            outputs = [_tensor_info(schema, sg0, int(i)) for i in (sg0.OutputsAsNumpy() if sg0.OutputsLength() else [])]
        signatures: dict[str, Any] = {}
        for j in range(model.SignatureDefsLength()):
            sd = model.SignatureDefs(j)
            signatures[_decode(sd.SignatureKey())] = {
                "inputs": {_decode(sd.Inputs(i).Name()): int(sd.Inputs(i).TensorIndex()) for i in range(sd.InputsLength())},
                "outputs": {_decode(sd.Outputs(i).Name()): int(sd.Outputs(i).TensorIndex()) for i in range(sd.OutputsLength())},
                "subgraph": int(sd.SubgraphIndex()),
            }
    except (IndexError, ValueError, TypeError, AttributeError, struct.error) as exc:  # a truncated or corrupt buffer
        raise InputError(f"{p} is not a readable TFLite model ({type(exc).__name__}: {exc})", "re-convert it") from None
    flex = sorted({o["op"] for o in offenders if o["op"].startswith(FLEX_PREFIX)})
    custom = sorted({o["op"] for o in offenders if not o["op"].startswith(FLEX_PREFIX)})
    return {
        "ops": dict(sorted(ops.items())),
        "flex_ops": flex,
        "custom_ops": custom,
        "offenders": offenders,
        "size_bytes": len(buf),
        "inputs": inputs,
        "outputs": outputs,
        "signatures": signatures,
        "subgraphs": int(model.SubgraphsLength()),
    }
