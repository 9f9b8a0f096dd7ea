"""The sweep's report model: one VariantRow per model file, the SweepReport around them, and the recommendation.

    report.rows                     # VariantRow: size, latency, delegation, accuracy, status
    recommend(report)               # the smallest and the fastest variants meeting report.floor
    report.to_json()                # the edgeport.quantize/1 document (OUT/quant/report.json)

Plain data: nothing here imports numpy, TensorFlow or a runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgeport.spec import IOSpec
from edgeport.worker import CRASH, TIMEOUT, WorkerResult
from edgeport.validate.metrics import json_number

SCHEMA = "edgeport.quantize/1"


@dataclass
class VariantRow:
    """One model file on one runtime: how big, how fast, how close to the reference."""

    name: str  # manifest artifact name
    variant: str  # fp32 or one of edgeport.quantize.VARIANTS
    format: str  # tflite or onnx
    runtime: str  # tflite or onnxruntime
    path: str = ""  # relative to the output folder
    parent: str | None = None
    status: str = "ok"  # ok, error, crash, timeout, skipped
    stage: str = ""  # where it failed: convert or run
    reason: str = ""
    size_bytes: int = 0
    size_ratio: float | None = None  # to the fp32 file of the same format
    baseline: str = ""
    convert_seconds: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)  # p50, p90, mean, min (ms), runs
    backend: str = ""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # per output
    summary: dict[str, Any] = field(default_factory=dict)  # worst over outputs: cosine, snr_db, max_abs, top1, top5
    task: dict[str, Any] = field(default_factory=dict)  # accuracy against --labels
    flags: list[str] = field(default_factory=list)  # nan/inf outputs, constant outputs
    notes: list[str] = field(default_factory=list)
    io: IOSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    log_tail: str = ""
    converter: str = ""  # what made the file (tf.lite.TFLiteConverter, ai-edge-quantizer, onnxruntime.quantization)
    delegation: dict[str, Any] = field(default_factory=dict)  # .tflite: XNNPACK partitions and builtin-kernel op counts

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def latency_ms(self) -> float | None:
        return self.latency.get("p50")

    def to_json(self) -> dict[str, Any]:
        d = {
            "name": self.name, "variant": self.variant, "format": self.format, "runtime": self.runtime,
            "path": self.path, "parent": self.parent, "status": self.status, "stage": self.stage, "reason": self.reason,
            "size_bytes": self.size_bytes, "size_ratio": _round(self.size_ratio, 4), "baseline": self.baseline,
            "convert_seconds": round(self.convert_seconds, 3),
            "latency_ms": {k: _round(v, 5) for k, v in self.latency.items()},
            "backend": self.backend,
            "summary": {k: json_number(_round(v, 6)) for k, v in self.summary.items()},
            "task": {k: json_number(v) for k, v in self.task.items()},
            "metrics": {o: {k: json_number(v) for k, v in m.items()} for o, m in self.metrics.items()},
            "flags": self.flags, "notes": self.notes, "options": self.options, "ops": self.ops,
            "converter": self.converter, "delegation": self.delegation,
        }
        if self.status != "ok" and self.log_tail:
            d["log_tail"] = self.log_tail[-2000:]
        return d


def _round(v: Any, nd: int) -> Any:
    if isinstance(v, float) and math.isfinite(v):
        return round(v, nd)
    return v


@dataclass
class SweepReport:
    root: str
    source: str
    data: dict[str, Any]
    reference: dict[str, Any]
    rows: list[VariantRow] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    layer_info: dict[str, Any] = field(default_factory=dict)
    keep_float: dict[str, Any] = field(default_factory=dict)
    sensitivity: dict[str, Any] = field(default_factory=dict)  # isolated per-op sensitivity (ai-edge-quantizer)
    search: dict[str, Any] = field(default_factory=dict)  # the keep-float search: floor, every step tried, the choice
    floor: dict[str, Any] = field(default_factory=dict)  # the accuracy floor the recommendation applies
    remedies: dict[str, Any] = field(default_factory=dict)  # int8 remedies chosen from the int8 variant's delegation
    int8_speed: dict[str, Any] = field(default_factory=dict)  # best int8 p50 / fp32 p50, what was tried, slower ops
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)  # report files, relative to the output folder

    def row(self, variant: str) -> VariantRow | None:
        return next((r for r in self.rows if r.variant == variant), None)

    @property
    def exit_code(self) -> int:
        """0 when at least one quantized variant was made and measured; 3 when none was."""
        made = [r for r in self.rows if r.variant != "fp32" and r.ok]
        return 0 if made else 3

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "root": self.root,
            "source": self.source,
            "data": self.data,
            "reference": self.reference,
            "rows": [r.to_json() for r in self.rows],
            "layers": self.layers,
            "layer_analysis": self.layer_info,
            "keep_float": self.keep_float,
            "sensitivity": self.sensitivity,
            "search": self.search,
            "floor": self.floor,
            "remedies": self.remedies,
            "int8_speed": self.int8_speed,
            "recommendation": recommend(self),
            "warnings": self.warnings,
            "notes": self.notes,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
            "files": self.files,
            "exit_code": self.exit_code,
        }


def row_scores(row: "VariantRow") -> dict[str, Any]:
    return {"accuracy": row.task.get("accuracy"), "reference_accuracy": row.task.get("reference_accuracy"),
            "snr_db": row.summary.get("snr_db")}


def recommend(report: "SweepReport") -> dict[str, Any]:
    """The smallest and the fastest quantized variants that meet ``report.floor`` (ok, unflagged rows only)."""
    from edgeport.quantize.aeq_variants import meets_floor

    floor = report.floor or {}
    if not floor:
        return {}
    drop, snr = floor.get("max_accuracy_drop"), floor.get("min_snr_db")
    ok = [r for r in report.rows if r.ok and not r.flags and r.variant != "fp32" and meets_floor(row_scores(r), drop, snr)]
    out: dict[str, Any] = {"floor": floor, "meeting": [r.name for r in ok]}
    if not ok:
        out["line"] = f"No quantized variant meets the floor ({floor_text(floor)}); ship fp32 or relax the floor."
        return out

    def brief(r: VariantRow) -> dict[str, Any]:
        return {"name": r.name, "variant": r.variant, "size_bytes": r.size_bytes, "latency_ms": r.latency.get("p50"),
                "accuracy": r.task.get("accuracy"), "snr_db": r.summary.get("snr_db")}

    smallest = min(ok, key=lambda r: (r.size_bytes or math.inf, r.latency.get("p50") or math.inf))
    fastest = min(ok, key=lambda r: (r.latency.get("p50") or math.inf, r.size_bytes or math.inf))
    out.update(smallest=brief(smallest), fastest=brief(fastest))
    which = (f"smallest and fastest {_brief_text(smallest)}" if smallest is fastest
             else f"smallest {_brief_text(smallest)}; fastest {_brief_text(fastest)}")
    out["line"] = (f"Recommended ({floor_text(floor)}): {which}"
                   f" ({len(ok)} of {sum(1 for r in report.rows if r.variant != 'fp32')} quantized variants meet the floor).")
    return out


def floor_text(floor: dict[str, Any]) -> str:
    parts = []
    if floor.get("max_accuracy_drop") is not None:
        parts.append(f"accuracy within {floor['max_accuracy_drop'] * 100:.2g} point(s) of the reference")
    if floor.get("min_snr_db") is not None:
        parts.append(f"output SNR >= {floor['min_snr_db']:g} dB")
    return " and ".join(parts) + (" (default floor)" if floor.get("default") else "")


def _brief_text(r: "VariantRow") -> str:
    from edgeport.fsutil import human_size

    acc = r.task.get("accuracy")
    bits = [human_size(r.size_bytes), f"{r.latency['p50']:.3f} ms" if r.latency.get("p50") is not None else "latency -"]
    bits.append(f"accuracy {acc:.4f}" if isinstance(acc, (int, float)) else f"SNR {r.summary.get('snr_db', float('nan')):.1f} dB")
    return f"{r.name} ({', '.join(bits)})"


def fail_reason(res: WorkerResult) -> tuple[str, str]:
    """(status word of a row, reason) for a worker that did not finish cleanly."""
    status = {CRASH: "crash", TIMEOUT: "timeout"}.get(res.status, "error")
    return status, res.reason()

