"""ONNX -> .tflite (+ SavedModel) with onnx2tf 2.x, in its managed environment (Python >= 3.12).

onnx2tf 2.x writes the .tflite straight from the ONNX graph (its ``flatbuffer_direct`` backend: no
TensorFlow graph, no TFLiteConverter), in seconds where 1.29 takes minutes, and keeps dynamic batch and
sequence dimensions. It needs Python >= 3.12 and pins numpy/onnx/protobuf versions that conflict with
edgeport's own environment, so it runs in a venv edgeport builds (:mod:`edgeport.backends`, ``onnx2tf``)
through the standalone script ``_onnx2tf2_job.py``; this module is the worker side in edgeport's own
environment that prepares the job and checks what came back:

- the user's .onnx is never handed over: a private copy is (onnx2tf rewrites its input), with LSTMs
  prepared by :func:`edgeport.convert.onnx_rewrite.prepare_for_onnx2tf2` (else TFLite's fused LSTM keeps
  its state between calls and the second inference is wrong) and convolutions / exact GELUs by
  :func:`edgeport.convert.xnnpack_rewrite.prepare_for_xnnpack` (forms XNNPACK runs fast);
- inputs: 4-D/5-D become channels-last (onnx2tf's layout), 3-D keep their PyTorch shape, ``keep_layout``
  keeps every input as it is; the layout of every output is measured against the reference
  (:func:`edgeport.convert.io_resolution.resolve_io`), never assumed;
- dynamic dims are kept first; when that conversion fails or computes the wrong thing (worse than
  ``rtol`` of the output's magnitude) it is retried with the reference's sizes and the notes say so;
  a wrong result with onnx-simplifier is retried without it;
- a SavedModel, when asked for, comes from the same run (``flatbuffer_direct_output_saved_model``); if
  onnx2tf's SavedModel exporter refuses the graph the .tflite is still returned and the plan takes the
  SavedModel from the next converter.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.convert.onnx2tf_backend import (
    Onnx2TfOptions,
    _aliases,
    _onnx_io,
    _onnx_shape,
    _with_torch_layers,
    _write_calibration_file,
    expected_input_perm,
    load_parent,
)
from edgeport.convert.onnx_rewrite import prepare_for_onnx2tf2
from edgeport.convert.xnnpack_rewrite import prepare_for_xnnpack
from edgeport.errors import ConversionError, EdgeportError
from edgeport.fsutil import sha256_file
from edgeport.manifest import Artifact
from edgeport.refdata import load_reference
from edgeport.spec import IOSpec

BACKEND = "onnx2tf"  # the managed environment's name in edgeport.backends
SCRIPT = Path(__file__).with_name("_onnx2tf2_job.py")
SAVED_MODEL_ITEMS = ("saved_model.pb", "variables", "assets", "fingerprint.pb")
MAX_ATTEMPTS = 4


@dataclass
class _Try:
    static: bool
    simplify: bool = True
    xnnpack: bool = True  # with prepare_for_xnnpack's rewrites (when any applies)
    why: str = "first try"
    folder: Path = Path()
    reason: str = ""
    seconds: float = 0.0
    value: dict[str, Any] | None = None  # the job's result
    info: dict[str, Any] | None = None  # inspect_tflite of its .tflite
    resolved: dict[str, Any] = field(default_factory=dict)  # target -> io_resolution.IOResolution

    @property
    def worst_rel(self) -> float | None:
        r = self.resolved.get("tflite")
        return r.worst_rel if r is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"static_shapes": self.static, "simplified": self.simplify, "xnnpack_rewrites": self.xnnpack,
                "why": self.why, "reason": self.reason,
                "seconds": round(self.seconds, 3), "worst_rel": self.worst_rel}


def _job_kwargs(t: _Try, opts: Onnx2TfOptions, onnx_inputs: list[Any], fixed: dict[str, list[int]]) -> dict[str, Any]:
    names = [i.name for i in onnx_inputs]
    ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in onnx_inputs}
    kw: dict[str, Any] = {"onnx_path": str(t.folder / "model.onnx"), "work_dir": str(t.folder),
                          "saved_model": "saved_model" in opts.targets, "simplify": opts.simplify and t.simplify,
                          "rtol": opts.rtol}
    if opts.keep_layout:
        kw["keep_nchw_names"] = [n for n in names if ranks[n] in (3, 4, 5)]
    elif not opts.channels_last_3d:
        kw["keep_shape_names"] = [n for n in names if ranks[n] == 3] or None
    if t.static and fixed:
        kw["overwrite_input_shape"] = [f"{n}:{','.join(str(d) for d in s)}" for n, s in fixed.items()]
    return kw


def _convert(model: Any, t: _Try, opts: Onnx2TfOptions, onnx_inputs: list[Any], fixed: dict[str, list[int]]) -> None:
    """One onnx2tf 2.x run in the managed environment; fills ``t.value`` or raises ConversionError."""
    import onnx

    from edgeport.backends import python_for, venv_bin
    from edgeport.worker import report_stage, run_in_worker

    python = python_for(BACKEND)
    t.folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(t.folder / "model.onnx"))  # a private copy, external data folded in
    _write_calibration_file(t.folder)
    path = os.pathsep.join([str(venv_bin(python)), os.environ.get("PATH", "")])  # onnx2tf runs `onnxsim` by name
    report_stage(f"onnx2tf 2.x, {'static' if t.static else 'dynamic'} shapes: {t.why}")
    # no log of its own: the job's output (onnx2tf's log, cleaned) goes into this step's log
    res = run_in_worker("convert", _job_kwargs(t, opts, onnx_inputs, fixed), python=python, script=SCRIPT,
                        timeout=opts.timeout, cwd=t.folder, env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1", "PATH": path})
    t.seconds = res.seconds
    if not res.ok:
        err = res.error or {}
        t.reason = err.get("message") or res.reason()
        raise ConversionError(f"onnx2tf 2.x failed: {t.reason}", "see the step log; try --converter litert-torch")
    t.value = res.value


def _evaluate(t: _Try, opts: Onnx2TfOptions, ref_io: IOSpec, reference: str, aliases: dict[str, list[str]]) -> None:
    from edgeport.convert import io_resolution
    from edgeport.convert.tflite_inspect import inspect_tflite

    assert t.value is not None
    perm_in = expected_input_perm(opts)
    tfl = Path(t.value["tflite"])
    from edgeport.worker import report_stage

    report_stage("checking the .tflite against the reference")
    t.info = inspect_tflite(tfl)
    nat_in, nat_out = io_resolution.tflite_natives(t.info)
    runner = lambda specs, feeds: io_resolution.probe_in_worker(tfl, "tflite", specs, feeds)  # noqa: E731
    t.resolved["tflite"] = io_resolution.resolve_io(nat_in, nat_out, ref_io, reference, runner, perm_in, aliases=aliases)
    if "saved_model" in opts.targets and t.value.get("saved_model"):
        # Both files come from the same ModelIR: the SavedModel's serving signature has the .tflite's tensor
        # names, shapes and layouts. The plan's check step runs the SavedModel against the reference (that is
        # the proof); loading TensorFlow here as well only to read the signature would cost seconds.
        tfl_res = t.resolved["tflite"]
        t.resolved["saved_model"] = io_resolution.IOResolution(
            tfl_res.io, tfl_res.notes + ["IO taken from the .tflite made from the same graph"], tfl_res.worst_rel)


def _next_try(t: _Try, opts: Onnx2TfOptions, dynamic: dict[str, Any], tried: list[_Try], rewritten: bool) -> _Try | None:
    """What to try after ``t`` failed or came out wrong (None: nothing left). ``rewritten``: the XNNPACK rewrites
    changed the graph (onnx2tf has mis-converted graphs they make: a retry goes without them)."""
    if rewritten and t.xnnpack and all(x.xnnpack for x in tried):
        return _Try(static=t.static, simplify=t.simplify, xnnpack=False,
                    why=f"without the XNNPACK rewrites, because {t.reason}")
    if dynamic and not t.static and opts.static_shapes == "auto":
        return _Try(static=True, simplify=t.simplify, xnnpack=t.xnnpack, why=f"with dynamic dims kept, {t.reason}")
    if opts.simplify and t.simplify and t.value is not None and not any(not x.simplify for x in tried):
        return _Try(static=t.static, simplify=False, xnnpack=t.xnnpack, why=f"without onnx-simplifier, because {t.reason}")
    return None


def _attempts(tried: list[_Try], models: dict[bool, Any], opts: Onnx2TfOptions, ref_io: IOSpec, reference: str,
              aliases: dict[str, list[str]], onnx_inputs: list[Any], fixed: dict[str, list[int]],
              dynamic: dict[str, list[Any]], work: Path) -> None:
    """Convert and check attempt after attempt (see :func:`_next_try`) until one passes parity; into ``tried``."""
    queue = [_Try(static=bool(dynamic) and opts.static_shapes == "always")]
    while queue and len(tried) < MAX_ATTEMPTS:
        t = queue.pop(0)
        t.folder = work / f"attempt{len(tried)}"
        tried.append(t)
        try:
            _convert(models[t.xnnpack], t, opts, onnx_inputs, fixed)
            _evaluate(t, opts, ref_io, reference, aliases)
        except EdgeportError as exc:
            t.reason = t.reason or exc.message
            t.value = None if not t.resolved else t.value
        else:
            if t.worst_rel is not None and t.worst_rel <= opts.rtol:
                return
            t.reason = (f"its outputs differ from the reference by {t.worst_rel:.2e} of their magnitude"
                        if t.worst_rel is not None else "its outputs could not be verified")
        nxt = _next_try(t, opts, dynamic, tried, models[True] is not models[False])
        if nxt is not None:
            queue.append(nxt)


def _choose(tried: list[_Try], xnnpack_notes: list[str], notes: list[str], dynamic: dict[str, list[Any]],
            fixed: dict[str, list[int]]) -> _Try:
    """The closest attempt that made a .tflite (earlier wins a tie); its rewrites and the history go into ``notes``."""
    done = [x for x in tried if x.value is not None and x.resolved.get("tflite") is not None]
    if not done:
        raise ConversionError("onnx2tf 2.x failed: " + "; ".join(f"{'static' if x.static else 'dynamic'} shapes: "
                                                                 f"{x.reason}" for x in tried),
                              "see the step log; auto moves on to the next converter")
    chosen = min(done, key=lambda x: (x.worst_rel if x.worst_rel is not None else float("inf"), tried.index(x)))
    if chosen.xnnpack or not xnnpack_notes:
        notes.extend(xnnpack_notes)
    else:
        notes.append(f"converted {chosen.why} ({len(xnnpack_notes)} rewrite(s) left out)")
    notes.extend(_history(tried, chosen, dynamic, fixed))
    return chosen


def run(staging: str, out_dir: str, model: dict[str, Any], io: dict[str, Any], dims: dict[str, int], reference: str,
        parent_path: str | None = None, parent_io: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
        **extra: Any) -> dict[str, Any]:
    """Worker entry (see :class:`edgeport.convert.base.StepJob`): ONNX -> .tflite and/or SavedModel."""
    t_start = time.perf_counter()
    opts, ignored = Onnx2TfOptions.from_dict(options)
    notes: list[str] = [f"options not used by onnx2tf: {', '.join(ignored)}"] if ignored else []
    ref_io = IOSpec.from_json(io)
    src, sha_before, onnx_model = load_parent(parent_path, ref_io, "onnx2tf 2.x")
    # LSTMs: a zero initial state computed from the input, so TFLite's fused LSTM keeps no state between calls
    onnx_model, rewrite_notes = prepare_for_onnx2tf2(onnx_model)
    notes.extend(rewrite_notes)
    # big depthwise kernels, padding-only taps of dilated convs, exact GELU: forms XNNPACK runs fast
    fast_model, xnnpack_notes = prepare_for_xnnpack(onnx_model)
    models = {True: fast_model, False: onnx_model}  # by _Try.xnnpack
    onnx_inputs, onnx_outputs = _onnx_io(onnx_model)
    aliases = _aliases(ref_io, parent_io, onnx_inputs, onnx_outputs)
    onnx_to_ref = {a: r for r, names in aliases.items() for a in names}
    dynamic = {i.name: _onnx_shape(i) for i in onnx_inputs if any(not isinstance(d, int) for d in _onnx_shape(i))}
    ref_inputs, _ = load_reference(reference)
    fixed = {i.name: [int(d) for d in np.asarray(ref_inputs[0][onnx_to_ref.get(i.name, i.name)]).shape]
             for i in onnx_inputs if onnx_to_ref.get(i.name, i.name) in ref_inputs[0]}
    staging_p = Path(staging)
    work = staging_p / ".onnx2tf2-work"
    tried: list[_Try] = []
    try:
        _attempts(tried, models, opts, ref_io, reference, aliases, onnx_inputs, fixed, dynamic, work)
        chosen = _choose(tried, xnnpack_notes, notes, dynamic, fixed)
        onnx_model = models[chosen.xnnpack]
        sm_try = _static_saved_model(chosen, opts, dynamic, onnx_model, onnx_inputs, fixed, ref_io, reference, aliases,
                                     work / "saved-model-static")
        if sm_try is not None:
            tried.append(sm_try)
            if sm_try.value is None or not sm_try.value.get("saved_model"):
                chosen.value["saved_model_error"] = (f"{chosen.value.get('saved_model_error')}; with the dims fixed: "
                                                     f"{sm_try.reason}")
                sm_try = None
        if sha256_file(src) != sha_before:  # never expected: onnx2tf only ever saw a copy
            raise ConversionError(f"{src.name} changed during conversion", "report this bug")
        artifacts = _collect(staging_p, chosen, sm_try or chosen, opts, notes, onnx_model, time.perf_counter() - t_start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifacts": artifacts, "notes": notes, "attempts": [x.to_json() for x in tried]}


def _static_saved_model(chosen: _Try, opts: Onnx2TfOptions, dynamic: dict[str, Any], model: Any, onnx_inputs: list[Any],
                        fixed: dict[str, list[int]], ref_io: IOSpec, reference: str, aliases: dict[str, list[str]],
                        folder: Path) -> _Try | None:
    """onnx2tf's SavedModel exporter refuses some graphs with dynamic dims: one more run with them fixed."""
    assert chosen.value is not None
    if "saved_model" not in opts.targets or chosen.value.get("saved_model") or not dynamic or chosen.static:
        return None
    why = chosen.value.get("saved_model_error") or "no SavedModel"
    t = _Try(static=True, simplify=chosen.simplify, xnnpack=chosen.xnnpack,
             why=f"SavedModel with the dynamic dims fixed ({why})", folder=folder)
    try:
        _convert(model, t, opts, onnx_inputs, fixed)
        _evaluate(t, opts, ref_io, reference, aliases)
    except EdgeportError as exc:
        t.reason = t.reason or exc.message
        return t
    if not t.value or not t.value.get("saved_model"):
        t.reason = (t.value or {}).get("saved_model_error") or "no SavedModel written"
    return t


def _history(tried: list[_Try], chosen: _Try, dynamic: dict[str, Any], fixed: dict[str, list[int]]) -> list[str]:
    out = []
    if dynamic and chosen.static:
        sizes = ", ".join(f"{n}={'x'.join(map(str, fixed[n]))}" for n in dynamic if n in fixed)
        out.append(f"dynamic dims fixed to the reference sizes {sizes}: {chosen.why}")
    elif dynamic:
        out.append(f"dynamic dims kept dynamic: {', '.join(dynamic)}")
    for x in tried:
        if x is not chosen and x.reason:
            out.append(f"onnx2tf 2.x attempt ({'static' if x.static else 'dynamic'} shapes"
                       f"{'' if x.simplify else ', unsimplified'}{'' if x.xnnpack else ', no XNNPACK rewrites'}) "
                       f"not kept: {x.reason}")
    return out


def _tools(value: dict[str, Any]) -> dict[str, str]:
    versions = dict(value.get("versions", {}))
    tools = {"onnx2tf": versions.pop("onnx2tf", "?")}
    tools.update({f"onnx2tf/{k}": v for k, v in versions.items()})
    return tools


def _collect(staging: Path, t: _Try, sm_t: _Try, opts: Onnx2TfOptions, notes: list[str], onnx_model: Any,
             seconds: float) -> list[dict[str, Any]]:
    """Move the chosen attempts' results (``t`` for the .tflite, ``sm_t`` for the SavedModel) into staging."""
    assert t.value is not None and sm_t.value is not None
    tools = _tools(t.value)
    options = {**asdict(opts), "backend": "flatbuffer_direct"}
    notes = notes + list(t.value.get("notes", []))
    artifacts: list[dict[str, Any]] = []
    if "tflite" in opts.targets:
        res = t.resolved["tflite"]
        dest = staging / "model.tflite"
        shutil.move(t.value["tflite"], dest)
        tnotes = list(notes) + res.notes
        if t.info and (t.info["flex_ops"] or t.info["custom_ops"]):
            tnotes.append(f"the .tflite holds {_with_torch_layers(t.info, onnx_model)}")
        artifacts.append(Artifact(name="tflite", format="tflite", path=dest.name, converter="onnx2tf", options=options,
                                  tools=tools, variant="fp32", io=res.io, ops=dict((t.info or {}).get("ops", {})),
                                  notes=tnotes, seconds=seconds, size_bytes=dest.stat().st_size).to_json())
    if "saved_model" in opts.targets:
        sm = sm_t.value.get("saved_model")
        if sm_t is not t and sm:
            notes.append(f"the SavedModel has the dynamic dims fixed to the reference sizes: {sm_t.why}")
        if not sm or "saved_model" not in sm_t.resolved:
            err = sm_t.reason or sm_t.value.get("saved_model_error") or t.value.get("saved_model_error") or "none written"
            notes.append(f"onnx2tf 2.x made no SavedModel: {err}")
            for a in artifacts:
                a["notes"].append(notes[-1])
        else:
            dest = staging / "saved_model"
            dest.mkdir()
            for item in SAVED_MODEL_ITEMS:
                if (Path(sm) / item).exists():
                    shutil.move(str(Path(sm) / item), dest / item)
            res = sm_t.resolved["saved_model"]
            artifacts.append(Artifact(name="saved_model", format="saved_model", path=dest.name, converter="onnx2tf",
                                      options=options, tools=tools, variant="fp32", io=res.io,
                                      notes=list(notes) + res.notes, seconds=seconds).to_json())
    if not artifacts:
        raise ConversionError("onnx2tf 2.x produced none of " + ", ".join(opts.targets), "see the step log")
    return artifacts
