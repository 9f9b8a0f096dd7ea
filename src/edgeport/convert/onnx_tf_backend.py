"""ONNX -> SavedModel / TFLite with the legacy onnx-tf converter, run in its isolated environment.

onnx-tf 1.10 needs TensorFlow 2.15 (Keras 2) and onnx 1.15, so it lives in its own venv (see
:mod:`edgeport.backends`) where edgeport is not installed. This module is the main-environment half:

1. It makes an ONNX model onnx-tf can read (IR <= 8, opset <= 15) with
   :func:`edgeport.convert.onnx_downgrade.make_compatible`, which also replaces exact GELU's ``Erf``
   (a Select TF op in TFLite) by a builtin-only polynomial unless ``approximate_erf`` is off. When the
   parent ONNX cannot be rewritten (custom domains, ops without an opset-15 form) and the job has a
   PyTorch model, it re-exports with the legacy (TorchScript-based) exporter at opset 15 instead.
   :func:`edgeport.convert.onnx_downgrade.needs_legacy_onnx` tells a planner ahead of time whether the
   parent ONNX is enough.
2. It refuses patterns onnx-tf is known to reject (:func:`unsupported_reason`) before the slow part.
3. It runs ``_onnx_tf_job.py`` with the venv's interpreter in a worker process (crash, timeout and
   network isolation as for every converter) and turns the result into manifest artifacts.

onnx-tf keeps PyTorch's NCHW layout (it inserts Transposes around convolutions instead), so every
tensor's ``perm`` is the identity. Tensors are named by the ``serving_default`` signature keys of the
SavedModel and the .tflite, which onnx-tf takes from the ONNX input/output names (made plain
identifiers by the rewrite first); ``ref_name`` maps each back to the PyTorch name.
"""

from __future__ import annotations

import contextlib
import io as _io
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeport.convert.onnx_downgrade import MAX_OPSET, LegacyOnnxNeeded, make_compatible
from edgeport.errors import ConversionError, UsageError
from edgeport.exc_text import first_line
from edgeport.manifest import Artifact
from edgeport.spec import Dim, IOSpec, TensorSpec

SCRIPT = Path(__file__).with_name("_onnx_tf_job.py")
SAVED_MODEL_REL = "saved_model_onnx_tf"
TFLITE_REL = "model_onnx_tf.tflite"
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class OnnxTfOptions:
    """Options of the onnx-tf step; unknown keys in the job's options (other converters') are ignored."""

    targets: tuple[str, ...] = ("saved_model", "tflite")
    allow_flex: bool = False  # let TFLiteConverter emit Select TF ops
    approximate_erf: bool = True  # replace Erf by a builtin-only polynomial (|error| <= 1.5e-7)
    onnx_opset: int = MAX_OPSET  # opset of the ONNX handed to onnx-tf
    legacy_export: bool = True  # re-export from PyTorch at onnx_opset when the parent ONNX cannot be downgraded
    timeout: float = 1500.0  # seconds for the isolated conversion

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "OnnxTfOptions":
        targets = tuple(d.get("targets") or ("saved_model", "tflite"))
        bad = [t for t in targets if t not in ("saved_model", "tflite")]
        if bad:
            raise UsageError(f"onnx-tf cannot make {', '.join(bad)}", "ask it for saved_model and/or tflite")
        opset = int(d.get("onnx_opset") or MAX_OPSET)
        if not 9 <= opset <= MAX_OPSET:
            raise UsageError(f"onnx-tf opset {opset} is out of range", f"use an opset between 9 and {MAX_OPSET}")
        return OnnxTfOptions(targets=targets, allow_flex=bool(d.get("allow_flex", False)),
                             approximate_erf=bool(d.get("approximate_erf", True)), onnx_opset=opset,
                             legacy_export=bool(d.get("legacy_export", True)), timeout=float(d.get("timeout") or 1500.0))


def unsupported_reason(model) -> str | None:
    """Patterns onnx-tf 1.10 is known to reject, found before paying for its ~3 s TensorFlow import."""
    from onnx import helper

    for node in model.graph.node:
        if node.op_type == "GRU":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if int(attrs.get("linear_before_reset", 0)) == 1:
                return ("onnx-tf does not support GRU with linear_before_reset=1, which is what every PyTorch nn.GRU "
                        "exports")
    return None


def _legacy_export(model_json: dict[str, Any], io: IOSpec, reference: str, dst: Path, opset: int) -> None:
    """Re-export the PyTorch model with the TorchScript-based exporter at ``opset``."""
    import torch

    from edgeport.models import load_for_export

    module, example, _, _ = load_for_export({**model_json, "extra": {**model_json.get("extra", {}), "reference": reference}})
    dynamic_axes: dict[str, dict[int, str]] = {}
    for s in list(io.inputs) + list(io.outputs):
        axes = {a: d for a, d in enumerate(s.shape) if isinstance(d, str)}
        if axes:
            dynamic_axes[s.name] = axes
    with warnings.catch_warnings(), contextlib.redirect_stdout(_io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(dst), dynamo=False, opset_version=opset,
                          input_names=[s.name for s in io.inputs], output_names=[s.name for s in io.outputs],
                          dynamic_axes=dynamic_axes or None, do_constant_folding=True)


# --------------------------------------------------------------------------------------- the step


def _graph_io(model) -> tuple[list[str], list[str]]:
    init = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init], [o.name for o in model.graph.output]


def _ref_names(graph_names: list[str], renamed: dict[str, str], parent_specs: list[TensorSpec] | None,
               ref_specs: list[TensorSpec]) -> dict[str, TensorSpec]:
    """Prepared-ONNX tensor name -> the reference TensorSpec it stands for."""
    back = {v: k for k, v in renamed.items()}
    by_ref = {s.name: s for s in ref_specs}
    by_parent = {s.name: s for s in parent_specs or []}
    out: dict[str, TensorSpec] = {}
    for i, name in enumerate(graph_names):
        orig = back.get(name, name)
        ref_name = None
        if orig in by_parent:
            ref_name = by_parent[orig].ref_name or orig
        elif orig in by_ref:
            ref_name = orig
        spec = by_ref.get(ref_name) if ref_name else None
        if spec is None and len(graph_names) == len(ref_specs):
            spec = ref_specs[i]
        if spec is None:
            raise ConversionError(f"cannot tell which model tensor the ONNX tensor {orig!r} is",
                                  "give the ONNX inputs and outputs the PyTorch names")
        out[name] = spec
    return out


def _merge_shape(ref: tuple[Dim, ...], actual: list[int]) -> tuple[Dim, ...]:
    """The artifact's shape: its own fixed sizes, the reference's names where it is dynamic (-1)."""
    if len(actual) != len(ref):
        return tuple(int(d) if d >= 0 else f"d{i}" for i, d in enumerate(actual))
    return tuple(r if (a is None or int(a) < 0) else int(a) for r, a in zip(ref, actual))


def _artifact_io(entries: list[dict[str, Any]], refs: dict[str, TensorSpec]) -> list[TensorSpec]:
    out = []
    for e in entries:
        ref = refs[e["onnx_name"]]
        shape = _merge_shape(ref.shape, e["shape"])
        out.append(TensorSpec(name=e["key"], shape=shape, dtype=e["dtype"], layout=ref.layout,
                              perm=tuple(range(len(shape))), ref_name=ref.name))
    return out


def _tflite_entries(path: Path, sm_entries: list[dict[str, Any]], kind: str) -> tuple[list[dict[str, Any]], dict]:
    """The .tflite's signature tensors, in the same order and with the same keys as the SavedModel's."""
    from edgeport.convert.tflite_inspect import inspect_tflite

    info = inspect_tflite(path)
    sig = info["signatures"].get(SIGNATURE) or next(iter(info["signatures"].values()), None)
    if sig is None:
        raise ConversionError(f"{path.name} has no signature", "re-run the conversion; onnx-tf models always carry one")
    tensors = {t["index"]: t for t in info[kind]}
    out = []
    for e in sm_entries:
        idx = sig[kind].get(e["key"])
        if idx is None:
            raise ConversionError(f"{path.name} has no {kind[:-1]} {e['key']!r} in its signature (has {sorted(sig[kind])})",
                                  "re-run the conversion")
        t = tensors.get(idx)
        shape = t["shape_signature"] if t else e["shape"]
        dtype = t["dtype"] if t else e["dtype"]
        out.append({**e, "shape": shape, "dtype": dtype})
    return out, info


@dataclass(frozen=True)
class _Prepared:
    """The ONNX model handed to onnx-tf: its file, where it came from, and the reference tensor of each of its
    inputs and outputs (by the prepared model's names)."""

    path: Path
    source: str  # "parent" (the parent ONNX, rewritten) or "legacy-export" (re-exported from PyTorch)
    notes: tuple[str, ...]
    ref_in: dict[str, TensorSpec]
    ref_out: dict[str, TensorSpec]


def run(*, staging: str, out_dir: str, model: dict, io: dict, dims: dict, reference: str,
        parent_path: str | None = None, parent_io: dict | None = None, options: dict | None = None, **_: Any) -> dict:
    """Convert ``parent_path`` (or a legacy re-export of ``model``) with onnx-tf; see the module docstring."""
    from edgeport.backends import python_for

    opts = OnnxTfOptions.from_dict(options or {})
    python = python_for("onnx-tf")
    ref_io = IOSpec.from_json(io)
    with tempfile.TemporaryDirectory(prefix="edgeport-onnx-tf-") as work_s:
        work = Path(work_s)
        prep = _prepare(job_model=model, ref_io=ref_io, reference=reference, parent_path=parent_path,
                        parent_io=IOSpec.from_json(parent_io) if parent_io else None, opts=opts, work=work)
        value = _convert_isolated(prep.path, opts=opts, python=python, staging=Path(staging), work=work)
    artifacts = _artifacts(value, prep, opts, Path(staging))
    return {"artifacts": [a.to_json() for a in artifacts], "notes": list(prep.notes), "timings": value.get("timings", {})}


def _prepare(*, job_model: dict, ref_io: IOSpec, reference: str, parent_path: str | None, parent_io: IOSpec | None,
             opts: OnnxTfOptions, work: Path) -> _Prepared:
    """Write the onnx-tf compatible ONNX into ``work``: the parent rewritten, else a legacy re-export of the model."""
    import onnx

    result, reason = _compatible_parent(parent_path, opts)
    source, notes = "parent", []
    if result is None:
        result = _compatible_reexport(job_model, ref_io, reference, opts, work, reason)
        source = "legacy-export"
        notes.append(f"re-exported with the legacy exporter at opset {opts.onnx_opset} ({reason})")
        parent_io = None  # the legacy export uses the reference names
    compat, prep_notes, renamed = result
    unsupported = unsupported_reason(compat)
    if unsupported:
        raise ConversionError(unsupported, "use the onnx2tf or litert-torch converter for this model")
    notes += prep_notes
    path = work / "model.onnx"
    onnx.save(compat, str(path))
    g_in, g_out = _graph_io(compat)
    return _Prepared(path=path, source=source, notes=tuple(notes),
                     ref_in=_ref_names(g_in, renamed, parent_io.inputs if parent_io else None, ref_io.inputs),
                     ref_out=_ref_names(g_out, renamed, parent_io.outputs if parent_io else None, ref_io.outputs))


def _compatible_parent(parent_path: str | None, opts: OnnxTfOptions) -> tuple[Any, str]:
    """(make_compatible's result or None, why it is None) for the parent ONNX."""
    import onnx

    if not parent_path:
        return None, "no ONNX parent was given"
    try:
        parent = onnx.load(parent_path)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"cannot read the ONNX model {parent_path}: {first_line(exc)}", "re-export it") from None
    try:
        return make_compatible(parent, opset=opts.onnx_opset, approximate_erf=opts.approximate_erf), ""
    except LegacyOnnxNeeded as exc:
        return None, str(exc)


def _compatible_reexport(job_model: dict, ref_io: IOSpec, reference: str, opts: OnnxTfOptions, work: Path,
                         reason: str) -> Any:
    """make_compatible's result for a legacy-exporter ONNX of the PyTorch model; ConversionError when there is none."""
    import onnx

    if not (job_model and job_model.get("kind") not in (None, "onnx") and opts.legacy_export):
        raise ConversionError(f"onnx-tf cannot take this ONNX model: {reason}",
                              f"convert from the PyTorch model, export ONNX at opset <= {MAX_OPSET} with the legacy "
                              "exporter, or use onnx2tf")
    legacy = work / "legacy.onnx"
    try:
        _legacy_export(job_model, ref_io, reference, legacy, opts.onnx_opset)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"the legacy ONNX export at opset {opts.onnx_opset} for onnx-tf failed: {first_line(exc)}",
                              "use onnx2tf or litert-torch for this model") from None
    try:
        return make_compatible(onnx.load(str(legacy)), opset=opts.onnx_opset, approximate_erf=opts.approximate_erf)
    except LegacyOnnxNeeded as exc:
        raise ConversionError(f"onnx-tf cannot take even the legacy opset-{opts.onnx_opset} export: {exc}",
                              "use onnx2tf or litert-torch for this model") from None


def _convert_isolated(onnx_path: Path, *, opts: OnnxTfOptions, python: str, staging: Path, work: Path) -> dict[str, Any]:
    """Run ``_onnx_tf_job.py`` on ``onnx_path`` with the venv's interpreter in a worker; returns its value."""
    from edgeport.worker import run_in_worker

    sm_dir = staging / SAVED_MODEL_REL if "saved_model" in opts.targets else work / "saved_model"
    tfl = staging / TFLITE_REL
    res = run_in_worker(
        "convert",
        {"onnx_path": str(onnx_path), "saved_model_dir": str(sm_dir),
         "tflite_path": str(tfl) if "tflite" in opts.targets else None, "allow_flex": opts.allow_flex},
        python=python, script=SCRIPT, timeout=opts.timeout, cwd=work,
        # The venv must see only its own site-packages, never the caller's PYTHONPATH or user site.
        env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"},
    )
    if not res.ok:
        err = res.error or {}
        if err.get("type") == "ConversionError":
            raise ConversionError(err.get("message", "onnx-tf failed"), err.get("hint", ""))
        raise ConversionError(f"onnx-tf {res.reason()}", "see the step log; use onnx2tf or litert-torch for this model")
    return res.value


def _tools(value: dict[str, Any]) -> dict[str, str]:
    """Tool versions: the venv's packages as the job reported them, and its Python."""
    from edgeport.backends import isolated_status

    venv_versions = value.get("versions", {})
    tools = {"onnx-tf": venv_versions.get("onnx-tf", "?")}
    tools.update({f"onnx-tf/{k}": v for k, v in venv_versions.items() if k != "onnx-tf"})
    status = isolated_status("onnx-tf")
    tools["onnx-tf/python"] = str(status.get("versions", {}).get("python", ""))
    return tools


def _artifacts(value: dict[str, Any], prep: _Prepared, opts: OnnxTfOptions, staging: Path) -> list[Artifact]:
    """The SavedModel and/or .tflite the job wrote into ``staging``, as manifest artifacts."""
    from edgeport.fsutil import path_size, sha256_path

    options_out = {**asdict(opts), "onnx_source": prep.source, "onnx_opset": value.get("opset"),
                   "ir_version": value.get("ir_version"), "signature": SIGNATURE}
    options_out["targets"] = list(opts.targets)
    common = {"converter": "onnx-tf", "options": options_out, "tools": _tools(value),
              "parent": "onnx" if prep.source == "parent" else "pytorch"}
    notes = list(prep.notes) + ["keeps the NCHW layout (onnx-tf inserts Transposes around convolutions)"]
    timings = value.get("timings", {})
    sm = value["saved_model"]
    artifacts: list[Artifact] = []
    if "saved_model" in opts.targets:
        artifacts.append(Artifact(
            name="saved_model", format="saved_model", path=SAVED_MODEL_REL, **common,
            io=IOSpec(_artifact_io(sm["inputs"], prep.ref_in), _artifact_io(sm["outputs"], prep.ref_out)),
            notes=list(notes), seconds=float(timings.get("saved_model", 0.0)),
        ))
    if "tflite" in opts.targets:
        tfl = staging / TFLITE_REL
        tin, info = _tflite_entries(tfl, sm["inputs"], "inputs")
        tout, _ = _tflite_entries(tfl, sm["outputs"], "outputs")
        flex = [f"needs Select TF ops: {', '.join(info['flex_ops'])}"] if info["flex_ops"] else []
        artifacts.append(Artifact(
            name="tflite", format="tflite", path=TFLITE_REL, **common,
            io=IOSpec(_artifact_io(tin, prep.ref_in), _artifact_io(tout, prep.ref_out)), ops=info["ops"],
            notes=notes + flex, seconds=float(timings.get("tflite", 0.0)),
        ))
    for a in artifacts:
        p = staging / a.path
        a.sha256, a.size_bytes = sha256_path(p), path_size(p)
    return artifacts
