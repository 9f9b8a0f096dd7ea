"""Options of the quantization sweep: the --modes vocabulary, the parsers of the CLI's strings, QuantizeOptions.

    parse_modes("fp16,int8")        # ("fp16", "int8"): canonical names, in sweep order
    QuantizeOptions(modes=("int8",), calibration=CalibrationOptions(source="imgs/"), max_accuracy_drop=0.005)

Plain data and string parsing; bad input raises :class:`edgeport.errors.UsageError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgeport.errors import UsageError
from edgeport.quantize import calibration as cal

# --modes names -> manifest variant names
MODE_VARIANTS: dict[str, str] = {
    "fp16": "fp16",
    "dynamic": "dynamic-int8",
    "int8": "int8",
    "int16x8": "int16x8",
    "aeq-dynamic": "aeq-dynamic-int8",
    "aeq-weight-int8": "aeq-weight-int8",
    "aeq-weight-int4": "aeq-weight-int4",
    "aeq-int8": "aeq-int8",
    "aeq-int16x8": "aeq-int16x8",
    "ort-dynamic": "ort-dynamic-int8",
    "ort-qdq": "ort-qdq-int8",
}


ALIASES: dict[str, str] = {
    "float16": "fp16", "half": "fp16", "dynamic-int8": "dynamic", "dynamic-range": "dynamic", "drq": "dynamic",
    "full-int8": "int8", "int8-full": "int8", "16x8": "int16x8", "int16": "int16x8", "a16w8": "int16x8",
    "ort-dynamic-int8": "ort-dynamic", "ort-qdq-int8": "ort-qdq", "ort-static": "ort-qdq", "qdq": "ort-qdq",
    "aeq-dynamic-int8": "aeq-dynamic", "aeq-w8": "aeq-weight-int8", "aeq-w4": "aeq-weight-int4", "aeq-static": "aeq-int8",
    "aeq-a16w8": "aeq-int16x8", "aeq-16x8": "aeq-int16x8",
}
TFLITE_MODES = ("fp16", "dynamic", "int8", "int16x8")
AEQ_MODES = ("aeq-dynamic", "aeq-weight-int8", "aeq-weight-int4", "aeq-int8", "aeq-int16x8")  # ai-edge-quantizer, any float .tflite
ORT_MODES = ("ort-dynamic", "ort-qdq")
CALIBRATED_MODES = ("int8", "int16x8", "aeq-int8", "aeq-int16x8", "ort-qdq")
DEFAULT_MODES = TFLITE_MODES + AEQ_MODES + ORT_MODES


def parse_modes(values: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """``fp16,int8`` / ``all`` / ``tflite`` / ``ort`` -> canonical mode names, in sweep order."""
    if values is None:
        return DEFAULT_MODES
    items = [values] if isinstance(values, str) else list(values)
    wanted: list[str] = []
    for raw in items:
        for m in str(raw).split(","):
            m = m.strip().lower()
            if not m:
                continue
            if m == "all":
                wanted.extend(DEFAULT_MODES)
            elif m == "tflite":
                wanted.extend(TFLITE_MODES)
            elif m in ("ort", "onnxruntime"):
                wanted.extend(ORT_MODES)
            elif m in ("aeq", "ai-edge-quantizer"):
                wanted.extend(AEQ_MODES)
            else:
                m = ALIASES.get(m, m)
                if m not in MODE_VARIANTS:
                    raise UsageError(f"unknown quantization mode {m!r}",
                                     f"use a comma list of: {', '.join(MODE_VARIANTS)} (or all, tflite, aeq, ort)")
                wanted.append(m)
    if not wanted:
        raise UsageError("--modes names no mode", f"use e.g. --modes {','.join(DEFAULT_MODES)}")
    return tuple(m for m in DEFAULT_MODES if m in wanted)


def parse_keep_float(text: str | None) -> int | tuple[str, ...] | None:
    """``3`` -> 3 (the worst three layers); ``features.3,node_Conv_12`` -> names; empty -> None."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    if t.isdigit():
        n = int(t)
        if n < 1:
            raise UsageError("--keep-float 0 keeps no layer in float", "give a positive count or layer names")
        return n
    names = tuple(x.strip() for x in t.split(",") if x.strip())
    if not names:
        raise UsageError(f"--keep-float {text!r} names no layer", "give a count (3) or layer names (features.3,features.7)")
    return names


def parse_accuracy_drop(text: str | float | None) -> float | None:
    """``0.5%`` -> 0.005 (percentage points); ``0.005`` -> 0.005 (a fraction below 1); empty -> None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    t = str(text).strip()
    pct = t.endswith("%")
    try:
        v = float(t.rstrip("%").strip())
    except ValueError:
        raise UsageError(f"--max-accuracy-drop {text!r} is not a number", "write --max-accuracy-drop 0.5% (or 0.005)") from None
    if pct:
        v /= 100.0
    elif v >= 1.0:
        raise UsageError(f"--max-accuracy-drop {text!r} is ambiguous (a fraction must be below 1)",
                         f"write --max-accuracy-drop {t}% for {t} percentage points, or a fraction such as 0.005")
    if not (0.0 <= v < 1.0) or math.isnan(v):
        raise UsageError(f"--max-accuracy-drop {text!r} is out of range", "give 0% to 99%, e.g. 0.5%")
    return v


@dataclass(frozen=True)
class QuantizeOptions:
    modes: tuple[str, ...] = DEFAULT_MODES
    calibration: cal.CalibrationOptions = field(default_factory=cal.CalibrationOptions)
    io_dtype: str = "float"  # full-int8 model inputs/outputs: float, int8 or uint8
    keep_float: int | tuple[str, ...] | None = None
    layers: bool = True  # per-layer error analysis when int8 is in the sweep
    rank_by: str = "snr_db"
    debug_samples: int = 32
    latency_runs: int = 200
    latency_seconds: float = 3.0
    threads: int = 1
    timeout: float = 900.0
    reference: str = "auto"  # auto (PyTorch when torch is installed, else the fp32 ONNX model), torch, onnx
    # The accuracy floor: a task-accuracy drop (fraction, 0.005 = 0.5 point) and/or an output SNR floor (dB). Given,
    # the keep-float search runs over aeq-int8 and the report recommends the variants meeting it.
    max_accuracy_drop: float | None = None
    min_snr: float | None = None
    max_float: int = 10  # the search keeps at most this many ops in float
    sensitivity_max_ops: int = 64  # without a floor, isolated per-op sensitivity is skipped (with a note) on larger graphs
