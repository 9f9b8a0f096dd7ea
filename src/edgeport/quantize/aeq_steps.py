"""The sweep's ai-edge-quantizer steps: AEQ variants of the float .tflite, per-op sensitivity, the keep-float search.

    AeqSteps(sweep, stage).run(report, manifest, rows, modes, onnx_artifact, split)

ai-edge-quantizer starts from the float .tflite edgeport convert kept (else the fp32 baseline the sweep made
from the SavedModel). Every conversion, the sensitivity measurement and the search run in worker processes
(:mod:`edgeport.quantize.aeq_variants`) through the sweep's ``_worker``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.fsutil import path_size
from edgeport.manifest import Artifact, Manifest
from edgeport.quantize import QUANT_DIR
from edgeport.quantize.model import SweepReport, VariantRow, fail_reason, floor_text
from edgeport.quantize.options import AEQ_MODES, MODE_VARIANTS
from edgeport.quantize.sources import find_float_tflite

if TYPE_CHECKING:
    from edgeport.quantize import calibration as cal
    from edgeport.quantize.sweep import Sweep

AEQ_JOB = "edgeport.quantize.aeq_variants:convert_job"
SENSITIVITY_JOB = "edgeport.quantize.aeq_variants:sensitivity_job"
SEARCH_JOB = "edgeport.quantize.aeq_variants:search_job"


class AeqSteps:
    def __init__(self, sweep: "Sweep", stage: Path) -> None:
        self.sweep, self.stage = sweep, stage

    def run(self, report: SweepReport, m: Manifest, rows: list[VariantRow], modes: tuple[str, ...],
            onnx_art: Artifact | None, split: "cal.Split") -> None:
        """Append the AEQ variants of ``modes`` to ``rows``; with aeq-int8, the per-op sensitivity and the search."""
        stage = self.stage
        src = self._aeq_source(m, rows, stage)
        calib = stage / "calibration.npz"
        for mode in (x for x in modes if x in AEQ_MODES):
            rows.append(self._convert_aeq(src, MODE_VARIANTS[mode], calib, stage))
        searching = self.sweep.opts.max_accuracy_drop is not None or self.sweep.opts.min_snr is not None
        if "aeq-int8" not in modes or src is None or not (self.sweep.opts.layers or searching):
            return
        self._sensitivity(report, src, onnx_art, split, stage)
        if searching:
            row = self._search(report, src, split, stage)
            if row is not None:
                rows.append(row)

    def _aeq_source(self, m: Manifest, rows: list[VariantRow], stage: Path) -> VariantRow | None:
        """The float .tflite AEQ starts from: the one edgeport convert kept, else the baseline made from the SavedModel."""
        art = find_float_tflite(m)
        if art is not None:
            row = next((r for r in rows if r.variant == "fp32" and r.format == "tflite" and r.path == art.path), None)
            if row is None:
                row = VariantRow(name=art.name, variant="fp32", format="tflite", runtime="tflite", path=art.path,
                                 parent=art.parent, size_bytes=art.size_bytes or path_size(self.sweep.out / art.path), io=art.io,
                                 converter=art.converter, notes=[f"the fp32 .tflite from edgeport convert ({art.converter})"],
                                 options={"existing": True})
                rows.append(row)
            return row
        return next((r for r in rows if r.variant == "fp32" and r.format == "tflite" and r.ok), None)

    def _convert_aeq(self, src: VariantRow | None, variant: str, calib: Path, stage: Path,
                     float_layers: list[str] | None = None) -> VariantRow:
        row = VariantRow(name=f"tflite-{variant}", variant=variant, format="tflite", runtime="tflite",
                         path=f"{QUANT_DIR}/model.{variant}.tflite", parent=src.name if src else None)
        if src is None or src.io is None:
            row.status, row.stage, row.reason = "skipped", "convert", "no float .tflite to start from (its conversion failed)"
            return row
        target = stage / Path(row.path).name
        self.sweep.say(f"convert {row.name} (ai-edge-quantizer)")
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"tflite": str(self.sweep._file(src, stage)), "io": src.io.to_json(), "mode": variant,
                                  "out": str(target), "calibration": str(calib)}
        if float_layers:
            kwargs["float_layers"] = float_layers
        res = self.sweep._worker(AEQ_JOB, kwargs, f"convert-{variant}")
        return self.sweep._tflite_variant_made(row, res, variant, t0, target, src.io)

    def _aeq_data(self, src: VariantRow, split: "cal.Split", stage: Path) -> dict[str, Any]:
        assert src.io is not None
        return {"tflite": str(self.sweep._file(src, stage)), "io": src.io.to_json(), "calibration": str(stage / "calibration.npz"),
                "holdout": str(stage / "holdout.npz"), "reference": str(stage / "reference-outputs.npz"),
                "labels": [int(i.label) for i in split.holdout] if split.has_labels else None, "threads": self.sweep.opts.threads}

    def _sensitivity(self, report: SweepReport, src: VariantRow, onnx_art: Artifact | None, split: "cal.Split", stage: Path) -> None:
        from edgeport.tflite_fb import inspect_tflite

        n_ops = sum(inspect_tflite(self.sweep._file(src, stage)).get("ops", {}).values())
        searching = self.sweep.opts.max_accuracy_drop is not None or self.sweep.opts.min_snr is not None
        if n_ops > self.sweep.opts.sensitivity_max_ops and not searching:
            report.sensitivity = {"status": "skipped", "reason": f"{n_ops} ops (more than {self.sweep.opts.sensitivity_max_ops})"}
            self.sweep.notes.append(f"isolated per-op sensitivity skipped: the float .tflite has {n_ops} ops (2 quantized models "
                              "each); pass --max-accuracy-drop or --min-snr to run it with the keep-float search")
            return
        self.sweep.say(f"per-op sensitivity: each of {n_ops} ops quantized alone, and left alone in float (ai-edge-quantizer)")
        t0 = time.perf_counter()
        kwargs = self._aeq_data(src, split, stage)
        if onnx_art is not None:
            kwargs.update(onnx=str(self.sweep.out / onnx_art.path), onnx_io=onnx_art.io.to_json())
        res = self.sweep._worker(SENSITIVITY_JOB, kwargs, "sensitivity")
        self.sweep._timed("sensitivity", t0)
        if not res.ok:
            report.sensitivity = {"status": fail_reason(res)[0], "reason": res.reason()}
            self.sweep.notes.append(f"per-op sensitivity failed: {res.reason()}")
            return
        report.sensitivity = {"status": "ok", "source": src.name, **res.value}
        report.sensitivity["debugger_agreement"] = agreement(report.layers, report.sensitivity["layers"])

    def _search(self, report: SweepReport, src: VariantRow, split: "cal.Split", stage: Path) -> VariantRow | None:
        sens = report.sensitivity
        if sens.get("status") != "ok":
            report.search = {"status": "skipped", "reason": "no per-op sensitivity ranking to search along"}
            return None
        order = [r["tensor"] for r in sens["layers"]]
        self.sweep.say(f"keep-float search over aeq-int8 ({floor_text(report.floor)})")
        t0 = time.perf_counter()
        kwargs = {**self._aeq_data(src, split, stage), "order": order, "max_accuracy_drop": self.sweep.opts.max_accuracy_drop,
                  "min_snr": self.sweep.opts.min_snr, "max_float": self.sweep.opts.max_float,
                  "latency_runs": self.sweep.opts.latency_runs, "latency_seconds": min(1.0, self.sweep.opts.latency_seconds)}
        res = self.sweep._worker(SEARCH_JOB, kwargs, "search")
        self.sweep._timed("search", t0)
        if not res.ok:
            user = res.user_error()
            if user is not None and user.exit_code == 2:
                raise user
            report.search = {"status": fail_reason(res)[0], "reason": res.reason()}
            self.sweep.notes.append(f"keep-float search failed: {res.reason()}")
            return None
        report.search = {"status": "ok", **res.value}
        chosen = res.value.get("chosen")
        if chosen is None:
            self.sweep.notes.append(f"keep-float search: no step up to {self.sweep.opts.max_float} op(s) in float meets {floor_text(report.floor)}")
            return None
        if chosen == 0:
            self.sweep.notes.append("keep-float search: full aeq-int8 already meets the floor; no op needs float")
            return None
        return self._convert_aeq(src, "aeq-int8-selective", stage / "calibration.npz", stage,
                                 float_layers=res.value["steps"][chosen]["float_layers"])


def agreement(debug_layers: list[dict[str, Any]], isolated: list[dict[str, Any]], top: int = 3) -> dict[str, Any]:
    """How far the debugger's ranking (TFLiteConverter int8) agrees with the isolated one, by PyTorch module / ONNX node."""
    def key(d: dict[str, Any]) -> str:
        return str(d.get("module") or (d.get("onnx_nodes") or [""])[0] or "")

    a = [key(d) for d in debug_layers if key(d)]
    b = [key(d) for d in isolated if key(d)]
    if not a or not b:
        return {"compared": False, "reason": "no debugger ranking" if not a else "isolated layers are not named"}
    ta, tb = list(dict.fromkeys(a))[:top], list(dict.fromkeys(b))[:top]
    return {"compared": True, "top": top, "debugger_top": ta, "isolated_top": tb, "shared": [x for x in tb if x in ta]}
