"""The sweep's int8 remedy step: make and measure the remedies the plain int8 variant's delegation calls for.

    steps = RemedySteps(sweep, manifest, saved_model, onnx_artifact, stage)
    rows += steps.run(report, rows, holdout, reference_outputs, split)   # int8-float-ops, int8-rewrite, int8-io
    steps.verdict(report)                                                # report.int8_speed, with a per-op table

Which remedies, and why, is decided in :mod:`edgeport.quantize.remedies` from the measured delegation
report of the ``int8`` row; this module runs them through the sweep's workers (every conversion and
every run in a worker process) and, when no int8 variant reaches the speed target, times each op type
of the fp32 .tflite and of the fastest int8 one (``op_profile``) so the report names what stays slower.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.manifest import Artifact, Manifest
from edgeport.quantize.evaluate import INTERLEAVED_JOB, OP_PROFILE_JOB
from edgeport.quantize.model import SweepReport, VariantRow
from edgeport.quantize.remedies import FLOAT_OPS, INT8_IO, REWRITE, Remedy, choose_remedies, int8_speed, op_comparison
from edgeport.spec import IOSpec

if TYPE_CHECKING:
    from edgeport.quantize import calibration as cal
    from edgeport.quantize.sweep import Sweep
    from edgeport.refdata import Sample

REWRITE_JOB = "edgeport.quantize.rewrite:rewrite_job"


class RemedySteps:
    def __init__(self, sweep: "Sweep", m: Manifest, sm: Artifact, onnx_art: Artifact | None, stage: Path) -> None:
        self.sweep, self.m, self.sm, self.onnx_art, self.stage = sweep, m, sm, onnx_art, stage

    def _onnx_ops(self) -> dict[str, int] | None:
        """The ONNX model's op counts when the SavedModel was converted from it by a converter edgeport can re-run."""
        from edgeport.convert import CONVERTERS

        conv = CONVERTERS.get(self.sm.converter)
        if self.onnx_art is None or conv is None or conv.source != "onnx":
            return None
        return dict(self.onnx_art.ops or {})

    def run(self, report: SweepReport, rows: list[VariantRow], hold: Path, ref: list["Sample"],
            split: "cal.Split") -> list[VariantRow]:
        int8 = next((r for r in rows if r.variant == "int8" and r.ok and r.delegation), None)
        if int8 is None:
            return []
        remedies = choose_remedies(int8.delegation, int8.ops, io_dtype=self.sweep.opts.io_dtype, onnx_ops=self._onnx_ops())
        report.remedies = {"source": int8.name, "delegation": dict(int8.delegation),
                           "remedies": [r.to_json() for r in remedies]}
        made = []
        calib = self.stage / "calibration.npz"
        for rem in remedies:
            self.sweep.say(f"int8 remedy {rem.variant}: {rem.why}")
            row = self._make(rem, calib)
            row.notes.insert(0, f"remedy for {int8.name}: {rem.why}")
            if row.ok:
                self.sweep._evaluate(row, self.stage, hold, ref, split)
            made.append(row)
        return made

    def _make(self, rem: Remedy, calib: Path) -> VariantRow:
        if rem.variant == FLOAT_OPS:
            return self.sweep._convert_tflite(self.sm, FLOAT_OPS, calib, self.stage, float_ops=list(rem.ops))
        if rem.variant == INT8_IO:
            return self.sweep._convert_tflite(self.sm, INT8_IO, calib, self.stage)
        assert rem.variant == REWRITE
        return self._rewrite(rem, calib)

    def _rewrite(self, rem: Remedy, calib: Path) -> VariantRow:
        """Rewrite the ONNX ops, convert the result again like the SavedModel was, then quantize it like int8."""
        assert self.onnx_art is not None
        sw = self.sweep
        row = sw._tflite_row(REWRITE, self.sm)
        t0 = time.perf_counter()
        folder = self.stage / "rewrite"
        res = sw._worker(REWRITE_JOB, {"onnx": str(sw.out / self.onnx_art.path), "out": str(folder / "model.onnx"),
                                       "op_types": list(rem.onnx_ops)}, "rewrite-onnx")
        if not res.ok:
            return sw._failed(row, res, "convert")
        counts = dict(res.value.get("rewritten") or {})
        if not counts:
            row.status, row.stage = "skipped", "convert"
            row.reason = f"the ONNX model has no {', '.join(rem.onnx_ops)} node to rewrite"
            return row
        made = self._saved_model(folder / "model.onnx", folder / "staging", row)
        sw._timed("rewrite", t0)
        if made is None:
            return row
        out = sw._convert_tflite(self.sm, REWRITE, calib, self.stage, saved_model=made)
        out.options.update(rewritten=counts, saved_model_converter=self.sm.converter)
        out.notes.append(f"ONNX {', '.join(f'{k} x{v}' for k, v in counts.items())} rewritten into ADD/RELU6/MUL "
                         f"(max relative change {float(res.value.get('max_rel_error', 0.0)):.1e}), converted again by "
                         f"{self.sm.converter}, then quantized like int8")
        return out

    def _saved_model(self, onnx_path: Path, staging: Path, row: VariantRow) -> tuple[Path, IOSpec] | None:
        """The SavedModel the converter that made ``self.sm`` makes of ``onnx_path`` (None: ``row`` says why)."""
        from edgeport.convert import CONVERTERS
        from edgeport.convert.base import StepJob

        sw = self.sweep
        assert self.onnx_art is not None
        staging.mkdir(parents=True, exist_ok=True)
        py = self.m.find("pytorch")
        job = StepJob(staging=str(staging), out_dir=str(sw.out), model=dict((py.options if py else {}).get("model") or {}),
                      io=self.m.io.to_json(), dims=dict(self.m.dims), reference=str(self.m.reference_path),
                      parent_path=str(onnx_path), parent_io=self.onnx_art.io.to_json(), options=dict(self.sm.options))
        sw.say(f"convert the rewritten ONNX model with {self.sm.converter}")
        res = sw._worker(CONVERTERS[self.sm.converter].entry, job.to_kwargs(), "rewrite-saved-model")
        if not res.ok:
            sw._failed(row, res, "convert")
            return None
        arts = [Artifact.from_json(a) for a in res.value.get("artifacts", [])]
        sm = next((a for a in arts if a.format == "saved_model"), None)
        if sm is None:
            row.status, row.stage = "error", "convert"
            row.reason = f"{self.sm.converter} made no SavedModel of the rewritten ONNX model"
            return None
        return staging / sm.path, sm.io

    # ------------------------------------------------------------------ verdict
    def verdict(self, report: SweepReport, hold: Path) -> None:
        """report.int8_speed, from the fp32 and int8 .tflite files timed in turns in one worker (the sweep times each
        variant once, seconds apart, while other processes come and go); when no int8 variant meets the target,
        each op type's time in fp32 and in the fastest int8."""
        v = int8_speed(report.rows)
        if v:
            measured = self._interleaved(report, [v["fp32"]] + [t["name"] for t in v["tried"] if t["latency_ms"]], hold)
            v = int8_speed(report.rows, measured=measured) or v
        if v and not v["met"]:
            by = {r.name: r for r in report.rows}
            profiles = [self._profile(by[v["fp32"]]), self._profile(by[v["best"]])]
            errors = [p["error"] for p in profiles if "error" in p]
            if errors:
                v["ops_error"] = errors[0]
            else:
                v["ops"] = op_comparison(*profiles)
                v["profile_note"] = profiles[1].get("note", "")
        report.int8_speed = v

    def _interleaved(self, report: SweepReport, names: list[str], hold: Path) -> dict[str, float]:
        sw = self.sweep
        by = {r.name: r for r in report.rows}
        models = [{"name": n, "runtime": by[n].runtime, "path": str(sw._file(by[n], self.stage)), "io": by[n].io.to_json()}
                  for n in names if by[n].io is not None]
        sw.say(f"int8 against fp32: {len(models)} .tflite files timed in turns")
        t0 = time.perf_counter()
        res = sw._worker(INTERLEAVED_JOB, {"models": models, "feeds": str(hold), "threads": sw.opts.threads}, "int8-speed")
        sw._timed("int8 speed", t0)
        if not res.ok:
            sw.notes.append(f"int8 speed: the interleaved timing failed ({res.reason()}); the ratios use the sweep's p50s")
            return {}
        return {k: float(v) for k, v in (res.value.get("p50_ms") or {}).items()}

    def _profile(self, row: VariantRow) -> dict[str, Any]:
        sw = self.sweep
        sw.say(f"per-op time of {row.name}")
        t0 = time.perf_counter()
        res = sw._worker(OP_PROFILE_JOB, {"path": str(sw._file(row, self.stage)), "threads": sw.opts.threads},
                         f"profile-{row.name}")
        sw._timed("op profiles", t0)
        if not res.ok:
            return {"error": res.reason()}
        return dict(res.value)
