"""Remedies for a full-int8 .tflite that the delegate cuts into pieces, and the verdict on int8 speed.

    remedies = choose_remedies(int8_row.delegation, int8_row.ops, io_dtype="float", onnx_ops={"HardSwish": 17})
    verdict = int8_speed(report.rows)      # best int8 p50 / fp32 p50 against TARGET_RATIO, what was tried

A full-int8 model is only fast when the delegate (XNNPACK) runs all of it: every op it has no int8
kernel for stays on a builtin kernel, cuts the graph into one more partition on each side, and runs
slower than its float twin. The sweep reads the plain int8 variant's delegation report (the ops left on
builtin kernels) and makes, as extra variants measured like the others:

- ``int8-float-ops``: those op types kept in float (TFLiteConverter through the quantization debugger's
  ``denylisted_ops``); the delegate runs them in float between a DEQUANTIZE and a QUANTIZE it also runs;
- ``int8-rewrite``: the ONNX ops they came from rewritten into ops the delegate runs in int8 (see
  :mod:`edgeport.quantize.rewrite`), converted again by the converter that made the SavedModel, then
  quantized like ``int8``;
- ``int8-io``: int8 model inputs and outputs, so no QUANTIZE/DEQUANTIZE runs at the edges.

Pure functions over report data: nothing here imports numpy, TensorFlow or a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

FLOAT_OPS = "int8-float-ops"
REWRITE = "int8-rewrite"
INT8_IO = "int8-io"
VARIANTS = (FLOAT_OPS, REWRITE, INT8_IO)
EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")
TARGET_RATIO = 0.7  # int8 p50 / fp32 p50 that makes full int8 worth its accuracy cost
# TFLite op left on a builtin kernel in int8 -> the ONNX op types whose rewrite (edgeport.quantize.rewrite) removes it.
# onnx2tf lowers HardSigmoid to MINIMUM + RELU (or RELU_0_TO_1); TFLiteConverter fuses x*relu6(x+3)/6 back into HARD_SWISH.
REWRITABLE: dict[str, tuple[str, ...]] = {
    "HARD_SWISH": ("HardSwish",),
    "RELU_0_TO_1": ("HardSigmoid",),
    "MINIMUM": ("HardSigmoid",),
    "MAXIMUM": ("HardSigmoid",),
    "RELU": ("HardSigmoid",),
    "RELU6": ("HardSigmoid",),
}
# Variants whose activations are int8 (what the speed verdict compares with fp32).
INT8_VARIANTS = ("int8", "int8-keepfloat", *VARIANTS, "aeq-int8", "aeq-int8-selective")


@dataclass(frozen=True)
class Remedy:
    """One extra variant the sweep makes because of what the delegate left on builtin kernels."""

    variant: str  # FLOAT_OPS, REWRITE or INT8_IO
    ops: tuple[str, ...]  # the TFLite ops it addresses
    onnx_ops: tuple[str, ...] = ()  # REWRITE: the ONNX op types to rewrite
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "ops": list(self.ops), "onnx_ops": list(self.onnx_ops), "why": self.why}


def builtin_ops(delegation: dict[str, Any]) -> dict[str, int]:
    """The op types a delegation report leaves on builtin kernels, without the QUANTIZE/DEQUANTIZE between pieces."""
    return {k: int(v) for k, v in (delegation.get("builtin_ops") or {}).items() if k not in EDGE_OPS and int(v) > 0}


def _counts(ops: dict[str, int], names: Iterable[str]) -> str:
    return ", ".join(f"{n} x{ops[n]}" for n in names)


def choose_remedies(delegation: dict[str, Any], ops: dict[str, int], *, io_dtype: str = "float",
                    onnx_ops: dict[str, int] | None = None) -> list[Remedy]:
    """The remedies worth trying for an int8 .tflite the delegate cuts into pieces, from its delegation report and op counts.

    ``onnx_ops`` are the op counts of the ONNX model the SavedModel was converted from; None when the
    SavedModel did not come from an ONNX model edgeport can rewrite (then no ``int8-rewrite``).
    """
    out: list[Remedy] = []
    if delegation.get("error"):
        return out
    builtin = builtin_ops(delegation)
    parts = delegation.get("partitions")
    if not builtin and not (isinstance(parts, int) and parts > 1):
        return out  # one piece: the delegate runs the whole graph, nothing to remedy
    if builtin:
        names = sorted(builtin, key=lambda k: (-builtin[k], k))
        out.append(Remedy(FLOAT_OPS, tuple(names),
                          why=f"{_counts(builtin, names)} run on builtin kernels ({parts} delegate partitions); kept in float, "
                              "the delegate runs them"))
        if onnx_ops is not None:
            sources = sorted({t for n in names for t in REWRITABLE.get(n, ()) if onnx_ops.get(t)})
            fixed = tuple(n for n in names if any(t in sources for t in REWRITABLE.get(n, ())))
            if sources:
                out.append(Remedy(REWRITE, fixed, tuple(sources),
                                  why=f"{_counts(builtin, fixed)} come from ONNX {', '.join(sources)}; rewritten into "
                                      "ADD/RELU6/MUL, which the delegate runs in int8"))
    edges = tuple(n for n in EDGE_OPS if ops.get(n))
    if io_dtype == "float" and edges:
        out.append(Remedy(INT8_IO, edges, why=f"{_counts(ops, edges)} convert the float inputs/outputs; int8 I/O drops them"))
    return out


# ----------------------------------------------------------------------------------------------- the verdict


def _p50(row: Any) -> float | None:
    v = (row.latency or {}).get("p50")
    return float(v) if isinstance(v, (int, float)) and v > 0 else None


def int8_speed(rows: list[Any], target: float = TARGET_RATIO, measured: dict[str, float] | None = None) -> dict[str, Any]:
    """Is some int8 variant at most ``target`` x the fp32 .tflite's p50? Every int8 variant tried, with the numbers.

    The fp32 anchor is the .tflite the plain int8 variant was sized against (same SavedModel). ``measured``: p50s
    by row name from one interleaved run (``method`` says which numbers the ratios use). Empty when there is no
    measured int8 or fp32 .tflite.
    """
    int8 = next((r for r in rows if r.variant == "int8" and r.ok and _p50(r)), None)
    fp32 = next((r for r in rows if int8 is not None and r.name == int8.baseline and _p50(r)), None) or \
        next((r for r in rows if r.variant == "fp32" and r.format == "tflite" and r.ok and _p50(r)), None)
    tried = [r for r in rows if r.variant in INT8_VARIANTS and r.format == "tflite"]
    if fp32 is None or not any(r.ok and _p50(r) for r in tried):
        return {}
    use = measured if measured and fp32.name in measured else None

    def p50(r: Any) -> float | None:
        return (use.get(r.name) if use is not None else _p50(r)) if r.ok else None

    base = p50(fp32)
    assert base is not None
    items = []
    for r in tried:
        p = p50(r)
        items.append({"name": r.name, "variant": r.variant, "status": r.status, "reason": r.reason,
                      "latency_ms": p, "sweep_latency_ms": _p50(r) if r.ok else None, "ratio": round(p / base, 4) if p else None,
                      "partitions": (r.delegation or {}).get("partitions"), "builtin_ops": builtin_ops(r.delegation or {}),
                      "snr_db": r.summary.get("snr_db"), "accuracy": r.task.get("accuracy")})
    measured_items = [i for i in items if i["ratio"] is not None]
    if not measured_items:
        return {}
    best = min(measured_items, key=lambda i: i["ratio"])
    return {"target_ratio": target, "method": "interleaved" if use is not None else "sweep", "fp32": fp32.name,
            "fp32_ms": base, "best": best["name"], "best_ms": best["latency_ms"], "ratio": best["ratio"],
            "met": best["ratio"] <= target, "tried": items}


def op_comparison(fp32_profile: dict[str, Any], int8_profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Per op type, the time of the fp32 and the int8 model (from ``op_profile`` tables), largest int8 excess first."""
    def per_op(profile: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
        ms: dict[str, float] = {}
        where: dict[str, str] = {}
        for r in profile.get("ops", []):
            ms[r["op"]] = ms.get(r["op"], 0.0) + float(r.get("ms") or 0.0)
            if r.get("placement") == "builtin" or r["op"] not in where:
                where[r["op"]] = str(r.get("placement", ""))
        return ms, where

    a, _ = per_op(fp32_profile)
    b, where = per_op(int8_profile)
    out = [{"op": op, "fp32_ms": round(a.get(op, 0.0), 5), "int8_ms": round(b.get(op, 0.0), 5),
            "extra_ms": round(b.get(op, 0.0) - a.get(op, 0.0), 5), "int8_placement": where.get(op, "")}
           for op in sorted(set(a) | set(b))]
    return sorted(out, key=lambda d: -d["extra_ms"])


def speed_line(verdict: dict[str, Any]) -> str:
    """One line: the best int8 variant against fp32 and the target; when missed, the ops that cost the most."""
    if not verdict:
        return ""
    head = (f"int8 speed: best {verdict['best']} {verdict['best_ms']:.3f} ms = {verdict['ratio']:.2f}x fp32 "
            f"{verdict['fp32']} {verdict['fp32_ms']:.3f} ms ({'timed in turns; ' if verdict.get('method') == 'interleaved' else ''}"
            f"target <= {verdict['target_ratio']:g}x): ")
    if verdict["met"]:
        return head + "met"
    slower = [d for d in verdict.get("ops", []) if d["extra_ms"] > 0][:4]
    why = "; ".join(f"{d['op']} {d['int8_ms']:.3f} ms in int8 vs {d['fp32_ms']:.3f} ms in fp32"
                    + (" (builtin kernel)" if d["int8_placement"] == "builtin" else "") for d in slower)
    if verdict.get("ops_error"):
        why = f"no per-op table ({verdict['ops_error']})"
    return head + "NOT met" + (f"; slower in int8: {why}" if why else "")


def remedies_line(info: dict[str, Any], rows: list[Any]) -> str:
    """``int8 remedies (tflite-int8: 26 partitions; builtin: HARD_SWISH x17): int8-rewrite 1 partition 0.338 ms; ...``."""
    if not info.get("remedies"):
        return ""
    by = {r.variant: r for r in rows}
    bits = []
    for rem in info["remedies"]:
        r = by.get(rem["variant"])
        if r is None:
            continue
        if not r.ok:
            bits.append(f"{r.variant} {r.status} ({r.reason[:80]})")
            continue
        p = (r.delegation or {}).get("partitions")
        p50 = _p50(r)
        bits.append(f"{r.variant} {p} partition{'s' if p != 1 else ''}, "
                    + (f"{p50:.3f} ms" if p50 else "latency -"))
    src = info.get("delegation") or {}
    builtin = builtin_ops(src)
    return (f"int8 remedies ({info.get('source')}: {src.get('partitions')} partitions; builtin kernels: "
            f"{', '.join(f'{k} x{v}' for k, v in builtin.items()) or 'none'}): " + "; ".join(bits))
