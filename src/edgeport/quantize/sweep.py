"""The quantization sweep: make every variant, run every variant, compare, rank, record.

    report = sweep("out/", QuantizeOptions(modes=("fp16", "int8"), calibration=CalibrationOptions(source="imgs/")))
    report.rows        # one row per variant (and per fp32 baseline): size, latency, accuracy, status
    report.to_json()

Runs in the CLI process and imports neither torch, TensorFlow nor ONNX Runtime: each conversion,
the per-layer analysis, the reference and each variant's evaluation run in their own worker process
(:mod:`edgeport.worker`), so a variant that aborts the interpreter (int16-activation kernels can) is a
row with status ``crash`` and the sweep goes on.

Steps: read the manifest; split the calibration data into calibration and held-out samples
(:mod:`edgeport.quantize.calibration`); compute reference outputs on the held-out samples with the
PyTorch model (or the fp32 ONNX model where torch is missing); convert each variant into a staging
folder; for full int8, rank the layers by quantization error (:mod:`edgeport.quantize.debug`) and, with
``keep_float``, make the selective variant; make the ai-edge-quantizer variants from the float .tflite
(:mod:`edgeport.quantize.aeq_steps`), measure each op's isolated sensitivity and, with an accuracy or
SNR floor, search for the fewest ops to keep in float; run every variant and both fp32 baselines (TFLite, ONNX) on
the held-out samples at 1 thread (latency p50 of ``Session.run_native`` on one sample, and XNNPACK's partitions);
when the delegate cuts the full-int8 model into pieces, make and run the remedies its delegation report calls
for and judge int8 speed against fp32 (:mod:`edgeport.quantize.remedy_steps`); compare with
:mod:`edgeport.quantize.compare`; move the files to ``OUT/quant/`` and record them in the manifest, which is
rewritten last. :func:`recommend` names the smallest and the fastest variants meeting the floor.

Options and their parsing live in :mod:`edgeport.quantize.options`, the report model in
:mod:`edgeport.quantize.model`, the evaluation workers in :mod:`edgeport.quantize.evaluate`; the names callers
used to import from here still import from here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from edgeport import outdir
from edgeport.data.samples import load_samples, save_samples
from edgeport.errors import ConversionError, EdgeportError, InputError, UsageError
from edgeport.fsutil import install_path, path_size, sha256_path, staging_dir
from edgeport.manifest import Artifact, Manifest
from edgeport.quantize import QUANT_DIR
from edgeport.quantize import calibration as cal
from edgeport.quantize.aeq_steps import AeqSteps
from edgeport.quantize.compare import compare, size_ratios
from edgeport.quantize.evaluate import EVAL_JOB
from edgeport.quantize.model import SweepReport, VariantRow, fail_reason, floor_text, recommend
from edgeport.quantize.options import (AEQ_MODES, CALIBRATED_MODES, MODE_VARIANTS, ORT_MODES, TFLITE_MODES, QuantizeOptions,
                                       parse_accuracy_drop, parse_keep_float, parse_modes)
from edgeport.quantize.remedy_steps import RemedySteps
from edgeport.quantize.sources import find_float_tflite, find_onnx, find_saved_model, find_tflite_fp32
from edgeport.refdata import Sample, load_reference
from edgeport.spec import IOSpec
from edgeport.validate.metrics import json_number
from edgeport.worker import WorkerResult, run_in_worker

# Names callers import from here (the CLI, the library API, tests); they live in the modules above.
__all__ = ["EVAL_JOB", "QuantizeOptions", "Sweep", "SweepReport", "VariantRow", "compare", "floor_text", "parse_accuracy_drop",
           "parse_keep_float", "parse_modes", "recommend", "sweep"]

TFLITE_JOB = "edgeport.quantize.tflite_variants:convert_job"
ORT_JOB = "edgeport.quantize.ort_variants:quantize_job"
DEBUG_JOB = "edgeport.quantize.debug:debug_job"
REF_JOB = "edgeport.runtimes.job:run_session_job"



def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


class _Progress:
    def __init__(self, fn: Callable[[str], None] | None) -> None:
        self.fn = fn or (lambda s: None)

    def __call__(self, text: str) -> None:
        self.fn(text)


class Sweep:
    def __init__(self, out: Path, opts: QuantizeOptions, progress: Callable[[str], None] | None = None) -> None:
        self.out = Path(out).expanduser().absolute()  # workers run in folders of their own: relative paths would miss
        self.opts = opts
        self.say = _Progress(progress)
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def _timed(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - t0)

    def _worker(self, target: str, kwargs: dict[str, Any], log: str) -> WorkerResult:
        logs = outdir.logs_dir(self.out)
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"quantize-{log}.log"
        if path.exists():
            path.unlink()
        return run_in_worker(target, kwargs, timeout=self.opts.timeout, log_path=path)

    # ------------------------------------------------------------------ plan
    def run(self) -> SweepReport:
        start = time.perf_counter()
        opts = self.opts
        m = Manifest.load(self.out)
        modes = parse_modes(list(opts.modes))
        tfl_modes = [x for x in modes if x in TFLITE_MODES]
        ort_modes = [x for x in modes if x in ORT_MODES]
        if opts.io_dtype not in ("float", "int8", "uint8"):
            raise UsageError(f"--io-dtype {opts.io_dtype!r} is not float, int8 or uint8", "use --io-dtype float, int8 or uint8")
        if opts.keep_float is not None and "int8" not in modes:
            raise UsageError("--keep-float makes a variant of the full-int8 model, but int8 is not in --modes", "add int8 to --modes")
        aeq_modes = [x for x in modes if x in AEQ_MODES]
        if (opts.max_accuracy_drop is not None or opts.min_snr is not None) and "aeq-int8" not in modes:
            raise UsageError("the keep-float search (--max-accuracy-drop / --min-snr) runs over aeq-int8, which is not in --modes",
                             "add aeq-int8 to --modes")
        sm = find_saved_model(m) if tfl_modes or (aeq_modes and find_float_tflite(m) is None) else None
        if aeq_modes and sm is None and find_float_tflite(m) is None:
            raise InputError(f"no float .tflite (and no SavedModel to make one) in {self.out} "
                             f"(modes {','.join(aeq_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to tflite -o {self.out} first")
        if tfl_modes and sm is None:
            raise InputError(f"no SavedModel in {self.out} (TFLite modes {','.join(tfl_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to saved_model -o {self.out} first")
        onnx_art = find_onnx(m)
        if ort_modes and onnx_art is None:
            raise InputError(f"no ONNX model in {self.out} (modes {','.join(ort_modes)} start from one)",
                             f"run edgeport convert {m.source or 'MODEL'} --to onnx -o {self.out} first")
        problems = m.verify([a.name for a in (sm, onnx_art, find_float_tflite(m) if aeq_modes else None) if a is not None])
        if problems:
            raise InputError(f"{self.out}: {problems[0]}", "re-run edgeport convert to re-create the files")
        int_ranges = self._int_ranges(m)
        t0 = time.perf_counter()
        split = cal.prepare(m.io, opts.calibration, need_calibration=any(x in CALIBRATED_MODES for x in modes),
                            dims=m.dims, int_ranges=int_ranges)
        self._timed("data", t0)
        if split.random:
            self.warnings.append("RANDOM calibration data: int8 ranges and every accuracy number here reflect random inputs, "
                                 "not the model's real inputs; pass --calibration DATA for results you can act on")
        self.notes.extend(split.notes)
        quant = self.out / QUANT_DIR
        with outdir.lock(self.out):
            for stale in self.out.glob(".staging-*"):  # left by an interrupted run; nobody else writes while we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            with staging_dir(self.out) as stage:
                report = self._run(m, sm, onnx_art, modes, split, stage)
                report.seconds = time.perf_counter() - start
                # Files first, then the manifest: a manifest never names a file that is not complete.
                self._install(report, stage, quant)
        return report

    def _int_ranges(self, m: Manifest) -> dict[str, tuple[int, int]]:
        try:
            inputs, _ = load_reference(m.reference_path)
        except EdgeportError:
            return {}
        from edgeport.data.feeds import int_ranges_from

        return int_ranges_from(inputs)

    def _run(self, m: Manifest, sm: Artifact | None, onnx_art: Artifact | None, modes: tuple[str, ...],
             split: cal.Split, stage: Path) -> SweepReport:
        opts = self.opts
        calib_path, hold_path = stage / "calibration.npz", stage / "holdout.npz"
        save_samples(calib_path, [i.feed for i in split.calibration])
        save_samples(hold_path, [i.feed for i in split.holdout])
        ref_outputs, ref_info = self._reference(m, onnx_art, hold_path, stage)
        report = SweepReport(root=str(self.out), source=m.source, data=split.to_json(), reference=ref_info,
                             warnings=self.warnings, notes=self.notes, timings=self.timings)
        rows: list[VariantRow] = []
        # ---- TFLite
        if sm is not None:
            base = self._tflite_baseline(m, sm, calib_path, stage)
            rows.append(base)
            for mode in (x for x in modes if x in TFLITE_MODES):
                rows.append(self._convert_tflite(sm, MODE_VARIANTS[mode], calib_path, stage))
            if "int8" in modes and (opts.layers or opts.keep_float is not None):
                self._layers(report, sm, onnx_art, calib_path, hold_path, stage)
            if opts.keep_float is not None:
                rows.append(self._keep_float(report, sm, calib_path, stage))
        report.floor = self._floor(split)
        # ---- ai-edge-quantizer, from the float .tflite
        if any(x in AEQ_MODES for x in modes):
            AeqSteps(self, stage).run(report, m, rows, modes, onnx_art, split)
        # ---- ONNX Runtime
        if onnx_art is not None and any(x in ORT_MODES for x in modes):
            rows.append(self._onnx_baseline(m, onnx_art))
            for mode in (x for x in modes if x in ORT_MODES):
                rows.append(self._convert_ort(onnx_art, MODE_VARIANTS[mode], calib_path, stage))
        # ---- run everything on the held-out samples
        for row in rows:
            if row.ok:
                self._evaluate(row, stage, hold_path, ref_outputs, split)
        remedies = RemedySteps(self, m, sm, onnx_art, stage) if sm is not None and "int8" in modes else None
        if remedies is not None:  # extra int8 variants, listed after the plain int8 one
            made = remedies.run(report, rows, hold_path, ref_outputs, split)
            at = next((i + 1 for i, r in enumerate(rows) if r.variant == "int8"), len(rows))
            rows[at:at] = made
        size_ratios(rows)
        report.rows = rows
        if remedies is not None:
            remedies.verdict(report, hold_path)
        return report

    # ------------------------------------------------------------------ the accuracy floor
    def _floor(self, split: cal.Split) -> dict[str, Any]:
        o = self.opts
        if o.max_accuracy_drop is not None and not split.has_labels:
            raise UsageError("--max-accuracy-drop needs labelled held-out data", "pass --dataset NAME, or --labels FILE with the data")
        if o.max_accuracy_drop is not None or o.min_snr is not None:
            return {"max_accuracy_drop": o.max_accuracy_drop, "min_snr_db": o.min_snr, "default": False}
        if split.has_labels:
            return {"max_accuracy_drop": 0.01, "min_snr_db": None, "default": True}
        return {"max_accuracy_drop": None, "min_snr_db": 20.0, "default": True}

    def _file(self, row: VariantRow, stage: Path) -> Path:
        return self.out / row.path if row.options.get("existing") else stage / Path(row.path).name

    # ------------------------------------------------------------------ reference
    def _reference(self, m: Manifest, onnx_art: Artifact | None, hold_path: Path, stage: Path) -> tuple[list[Sample], dict[str, Any]]:
        choice = self.opts.reference
        py = m.find("pytorch")
        use_torch = choice in ("auto", "torch") and py is not None and _torch_installed()
        if choice == "torch" and not use_torch:
            raise UsageError("--reference torch needs PyTorch and the model reference in the manifest",
                             "install torch, or use --reference onnx")
        out = stage / "reference-outputs.npz"
        t0 = time.perf_counter()
        if use_torch:
            assert py is not None
            self.say("reference: PyTorch eager on the held-out samples")
            kwargs = {"runtime": "torch_eager", "path": "", "io": py.io.to_json() if py.io.inputs else m.io.to_json(),
                      "feeds": str(hold_path), "out": str(out), "threads": 1, "options": dict(py.options)}
            info = {"runtime": "torch_eager", "artifact": "pytorch"}
        else:
            if onnx_art is None:
                raise InputError("no reference: PyTorch is not installed here and the folder has no ONNX model",
                                 "install torch, or convert --to onnx first")
            self.say("reference: fp32 ONNX model in ONNX Runtime on the held-out samples")
            kwargs = {"runtime": "onnxruntime", "path": str(self.out / onnx_art.path), "io": onnx_art.io.to_json(),
                      "feeds": str(hold_path), "out": str(out), "threads": 1}
            info = {"runtime": "onnxruntime", "artifact": onnx_art.name}
        res = self._worker(REF_JOB, kwargs, "reference")
        self._timed("reference", t0)
        if not res.ok:
            user = res.user_error()
            if user is not None and user.exit_code == 2:
                raise user
            raise ConversionError(f"the reference ({info['runtime']}) failed on the held-out samples: {res.reason()}",
                                  f"see {outdir.logs_dir(self.out) / 'quantize-reference.log'}")
        info["backend"] = (res.value or {}).get("backend", "")
        return load_samples(out), info

    # ------------------------------------------------------------------ conversions
    @staticmethod
    def _tflite_row(variant: str, sm: Artifact) -> VariantRow:
        return VariantRow(name=f"tflite-{variant}", variant=variant, format="tflite", runtime="tflite",
                          path=f"{QUANT_DIR}/model.{variant}.tflite", parent=sm.name)

    def _tflite_baseline(self, m: Manifest, sm: Artifact, calib: Path, stage: Path) -> VariantRow:
        existing = find_tflite_fp32(m, sm)
        if existing is not None and (self.out / existing.path).is_file():
            return VariantRow(name=existing.name, variant="fp32", format="tflite", runtime="tflite", path=existing.path,
                              parent=existing.parent, size_bytes=existing.size_bytes or path_size(self.out / existing.path),
                              io=existing.io, notes=["the fp32 .tflite from edgeport convert"], options={"existing": True},
                              converter=existing.converter)
        self.say("tflite fp32 baseline (from the SavedModel)")
        return self._convert_tflite(sm, "fp32", calib, stage)

    def _convert_tflite(self, sm: Artifact, variant: str, calib: Path, stage: Path, keep_float: list[str] | None = None,
                        *, float_ops: list[str] | None = None, saved_model: tuple[Path, IOSpec] | None = None) -> VariantRow:
        """The ``variant`` of ``sm`` (or of another SavedModel, ``saved_model=(path, io)``) by TFLiteConverter."""
        row = self._tflite_row(variant, sm)
        target = stage / Path(row.path).name
        self.say(f"convert {row.name}")
        t0 = time.perf_counter()
        sm_path, sm_io = saved_model if saved_model is not None else (self.out / sm.path, sm.io)
        kwargs: dict[str, Any] = {"saved_model": str(sm_path), "io": sm_io.to_json(), "mode": variant,
                                  "out": str(target), "calibration": str(calib), "io_dtype": self.opts.io_dtype}
        if keep_float is not None:
            kwargs["keep_float"] = keep_float
        if float_ops is not None:
            kwargs["float_ops"] = float_ops
        res = self._worker(TFLITE_JOB, kwargs, f"convert-{variant}")
        return self._tflite_variant_made(row, res, variant, t0, target, sm_io)

    def _tflite_variant_made(self, row: VariantRow, res: Any, variant: str, t0: float, target: Path,
                             float_io: IOSpec) -> VariantRow:
        """A .tflite variant's converter worker finished: its result, ops and IO (matched to the float model's)."""
        self._timed(f"convert {variant}", t0)
        row.convert_seconds = res.seconds
        if not res.ok:
            return self._failed(row, res, "convert")
        _take_convert_result(row, res.value)
        try:
            from edgeport.convert.tflite_inspect import inspect_tflite
            from edgeport.quantize.tflite_variants import variant_io

            info = inspect_tflite(target)
            row.ops = dict(info.get("ops", {}))
            row.io, io_notes = variant_io(float_io, info)
            row.notes.extend(io_notes)
        except EdgeportError as exc:
            row.status, row.stage, row.reason = "error", "convert", exc.one_line()
        return row

    def _convert_ort(self, onnx_art: Artifact, variant: str, calib: Path, stage: Path) -> VariantRow:
        row = VariantRow(name=f"onnx-{variant}", variant=variant, format="onnx", runtime="onnxruntime",
                         path=f"{QUANT_DIR}/model.{variant}.onnx", parent=onnx_art.name)
        target = stage / Path(row.path).name
        self.say(f"convert {row.name}")
        t0 = time.perf_counter()
        res = self._worker(ORT_JOB, {"onnx": str(self.out / onnx_art.path), "io": onnx_art.io.to_json(), "mode": variant,
                                     "out": str(target), "calibration": str(calib)}, f"convert-{variant}")
        self._timed(f"convert {variant}", t0)
        row.convert_seconds = res.seconds
        if not res.ok:
            return self._failed(row, res, "convert")
        v = _take_convert_result(row, res.value)
        row.ops = dict(v.get("ops", {}))
        row.io = IOSpec.from_json(v["io"])
        return row

    def _onnx_baseline(self, m: Manifest, onnx_art: Artifact) -> VariantRow:
        return VariantRow(name=onnx_art.name, variant="fp32", format="onnx", runtime="onnxruntime", path=onnx_art.path,
                          parent=onnx_art.parent, size_bytes=onnx_art.size_bytes or path_size(self.out / onnx_art.path),
                          io=onnx_art.io, options={"existing": True}, notes=["the fp32 ONNX model from edgeport convert"],
                          converter=onnx_art.converter)

    def _failed(self, row: VariantRow, res: WorkerResult, stage: str) -> VariantRow:
        user = res.user_error()
        if user is not None and user.exit_code == 2:
            raise user  # bad input (calibration shapes, names): the user must fix it, not a variant result
        row.status, row.reason = fail_reason(res)
        row.stage = stage
        row.log_tail = res.log_tail
        self.say(f"  {row.name}: {row.status} ({row.reason})")
        return row

    # ------------------------------------------------------------------ per-layer analysis
    def _layers(self, report: SweepReport, sm: Artifact, onnx_art: Artifact | None, calib: Path, hold: Path, stage: Path) -> None:
        self.say("per-layer int8 error (quantization debugger)")
        t0 = time.perf_counter()
        debug_set = stage / "debug-samples.npz"
        samples = load_samples(calib)[: max(1, self.opts.debug_samples)]
        save_samples(debug_set, samples)
        kwargs: dict[str, Any] = {"saved_model": str(self.out / sm.path), "io": sm.io.to_json(), "calibration": str(calib),
                                  "debug_samples": str(debug_set), "holdout": str(hold), "samples": len(samples),
                                  "rank_by": self.opts.rank_by}
        if onnx_art is not None:
            kwargs.update(onnx=str(self.out / onnx_art.path), onnx_io=onnx_art.io.to_json())
        res = self._worker(DEBUG_JOB, kwargs, "layers")
        self._timed("per-layer analysis", t0)
        if not res.ok:
            report.layer_info = {"status": fail_reason(res)[0], "reason": res.reason()}
            self.notes.append(f"per-layer analysis failed: {res.reason()}")
            return
        v = res.value
        report.layers = list(v.get("layers", []))
        report.layer_info = {"status": "ok", "rank_by": v.get("rank_by"), "samples": v.get("samples"),
                             "data": "calibration samples (the debugger compares each quantized op with its float op "
                                     "on the same inputs)",
                             "layers": len(report.layers), "named": v.get("named", 0), "notes": v.get("notes", []),
                             "overflow": v.get("overflow", {}), "seconds": round(float(v.get("seconds", 0.0)), 3)}

    def _keep_float(self, report: SweepReport, sm: Artifact, calib: Path, stage: Path) -> VariantRow:
        from edgeport.quantize.debug import LayerError, select_keep_float

        keep = self.opts.keep_float
        row = self._tflite_row("int8-keepfloat", sm)
        layers = [LayerError.from_json(d) for d in report.layers]
        if not layers:
            row.status, row.stage = "skipped", "convert"
            row.reason = "no per-layer ranking to choose layers from (the analysis failed)"
            return row
        assert keep is not None
        tensors, unmatched = select_keep_float(layers, keep)
        if unmatched:
            raise UsageError(f"--keep-float: no layer named {unmatched[0]!r}",
                             "use a tensor, ONNX node or PyTorch module name from the per-layer table")
        by_tensor = {layer.tensor: layer for layer in layers}
        report.keep_float = {"requested": keep if isinstance(keep, int) else list(keep), "tensors": tensors,
                             "layers": [by_tensor[t].layer for t in tensors]}
        return self._convert_tflite(sm, "int8-keepfloat", calib, stage, keep_float=tensors)

    # ------------------------------------------------------------------ install
    def _install(self, report: SweepReport, stage: Path, quant: Path) -> None:
        """Move finished variant files into OUT/quant/, write the reports, then rewrite the manifest."""
        from edgeport.quantize.report import write_reports

        quant.mkdir(parents=True, exist_ok=True)
        artifacts: list[Artifact] = []
        for row in report.rows:
            if row.options.get("existing"):
                continue
            src = stage / Path(row.path).name
            if not src.is_file():
                continue
            final = self.out / row.path
            install_path(src, final)
            art = Artifact(
                name=row.name, format=row.format, path=row.path, sha256=sha256_path(final), size_bytes=path_size(final),
                converter=row.converter or ("tf.lite.TFLiteConverter" if row.format == "tflite" else "onnxruntime.quantization"),
                options={**row.options, "calibration": {k: report.data.get(k) for k in ("source", "random", "calibration_samples")}},
                tools=row.tools, parent=row.parent, variant=row.variant, io=row.io or IOSpec(), ops=row.ops,
                notes=list(row.notes), seconds=row.convert_seconds,
                checks={"quantize": {"status": row.status, "stage": row.stage, "reason": row.reason,
                                     "summary": {k: json_number(v) for k, v in row.summary.items()}, "flags": row.flags,
                                     "latency_p50_ms": row.latency.get("p50")}},
            )
            artifacts.append(art)
        report.files = write_reports(report, quant, self.out)
        fresh = Manifest.load(self.out)  # re-read: nothing else may write while we hold the lock, but be exact
        for art in artifacts:
            fresh.put(art)
        fresh.tools.update({k: v for a in artifacts for k, v in a.tools.items()})
        fresh.extra["quantize"] = {"report": report.files.get("json", ""), "modes": [r.variant for r in report.rows]}
        fresh.save()

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, row: VariantRow, stage: Path, hold: Path, ref: list[Sample], split: cal.Split) -> None:
        assert row.io is not None
        path = stage / Path(row.path).name if not row.options.get("existing") else self.out / row.path
        out = stage / f"outputs-{row.name}.npz"
        self.say(f"run {row.name}")
        t0 = time.perf_counter()
        res = self._worker(EVAL_JOB, {"runtime": row.runtime, "path": str(path), "io": row.io.to_json(), "feeds": str(hold),
                                      "out": str(out), "threads": self.opts.threads, "runs": self.opts.latency_runs,
                                      "seconds": self.opts.latency_seconds}, f"run-{row.name}")
        self._timed("run variants", t0)
        if not res.ok:
            self._failed(row, res, "run")
            return
        v = res.value
        row.backend = str(v.get("backend", ""))
        row.latency = {k: float(x) for k, x in v.get("latency", {}).items()}
        row.notes.extend(v.get("notes", []))
        row.delegation = dict(v.get("delegation") or {})
        cand = load_samples(out)
        compare(row, ref, cand, split)


def sweep(out: str | os.PathLike, options: QuantizeOptions, progress: Callable[[str], None] | None = None) -> SweepReport:
    """Run the quantization sweep on the output folder ``out`` (see the module docstring)."""
    return Sweep(Path(out), options, progress).run()


def _take_convert_result(row: "VariantRow", v: dict[str, Any]) -> dict[str, Any]:
    """Copy what every variant converter returns (size, notes, options, tool versions) onto ``row``."""
    row.size_bytes = int(v["size_bytes"])
    row.notes.extend(v.get("notes", []))
    row.options = dict(v.get("options", {}))
    row.tools = dict(v.get("tools", {}))
    row.converter = str(v.get("converter", ""))
    return v


