"""PyTorch -> ONNX with torch.onnx.export.

The dynamo exporter at opset >= 18 is the default; it is the maintained path and records module
names in node metadata. ``--legacy-exporter`` (TorchScript-based) is used for opset <= 17, for
ScriptModules, and as a recorded fallback when the dynamo exporter fails: with dynamo, opset 17
silently stays at 18 or writes an invalid Split, so lower opsets always go through the legacy one.
Dynamic dimensions (named in the IO spec) become dynamic axes with those names. A forward that takes
keyword inputs or returns a structure (dict, NamedTuple, dataclass, nesting) is exported through
:func:`edgeport.forward_io.flat_module`: graph inputs and outputs are then the manifest's, in its order.
"""

from __future__ import annotations

import io as _io
import contextlib
import errno
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeport.convert.base import tool_versions
from edgeport.errors import ConversionError, UsageError
from edgeport.manifest import Artifact
from edgeport.models import load_for_export
from edgeport.spec import IOSpec

DYNAMO_MIN_OPSET = 18


@dataclass(frozen=True)
class OnnxExportOptions:
    opset: int = 18
    legacy: bool = False  # use the TorchScript-based exporter
    fallback: bool = True  # when the dynamo exporter fails, retry with the legacy one (recorded)
    filename: str = "model.onnx"

    @staticmethod
    def from_dict(d: dict) -> "OnnxExportOptions":
        opset = int(d.get("opset") or 18)
        if not 9 <= opset <= 23:
            raise UsageError(f"--opset {opset} is out of range", "use an opset between 9 and 23 (18 is the default)")
        return OnnxExportOptions(opset=opset, legacy=bool(d.get("legacy", False)), fallback=bool(d.get("fallback", True)),
                                 filename=str(d.get("filename", "model.onnx")))


def _dynamic_spec(io: IOSpec):
    """{input index: {axis: name}} for dims given as names."""
    return {i: {a: d for a, d in enumerate(s.shape) if isinstance(d, str)} for i, s in enumerate(io.inputs)}


def _export_dynamo(module, example, path: Path, io: IOSpec, opset: int) -> None:
    import torch

    dyn = _dynamic_spec(io)
    dynamic_shapes = None
    if any(dyn.values()):
        dim_objs = {}
        shapes = []
        for i, s in enumerate(io.inputs):
            axes = {}
            for a, name in dyn[i].items():
                if name not in dim_objs:
                    dim_objs[name] = torch.export.Dim(name, min=1, max=1 << 16)
                axes[a] = dim_objs[name]
            shapes.append(axes or None)
        dynamic_shapes = tuple(shapes)
    with contextlib.redirect_stdout(_io.StringIO()):
        prog = torch.onnx.export(
            module, example, dynamo=True, opset_version=opset, dynamic_shapes=dynamic_shapes,
            input_names=[s.name for s in io.inputs], output_names=[s.name for s in io.outputs],
            optimize=True, verify=False, report=False,
        )
    if prog is None:
        raise RuntimeError("the dynamo exporter returned no program")
    prog.save(str(path), external_data=False)


def _export_legacy(module, example, path: Path, io: IOSpec, opset: int) -> None:
    import torch

    dynamic_axes = {}
    for s in list(io.inputs) + list(io.outputs):
        axes = {a: d for a, d in enumerate(s.shape) if isinstance(d, str)}
        if axes:
            dynamic_axes[s.name] = axes
    torch.onnx.export(
        module, example, str(path), dynamo=False, opset_version=min(opset, 17) if opset > 17 else opset,
        input_names=[s.name for s in io.inputs], output_names=[s.name for s in io.outputs],
        dynamic_axes=dynamic_axes or None, do_constant_folding=True,
    )


def _name_dynamic_dims(path: Path, io: IOSpec) -> None:
    """Give dynamic axes of graph inputs/outputs the names of the IO spec (dynamo writes s0, s1...)."""
    import onnx

    model = onnx.load(str(path))
    by_name = {s.name: s for s in list(io.inputs) + list(io.outputs)}
    rename: dict[str, str] = {}
    for vi in list(model.graph.input) + list(model.graph.output):
        spec = by_name.get(vi.name)
        if spec is None:
            continue
        for d, want in zip(vi.type.tensor_type.shape.dim, spec.shape):
            if isinstance(want, str) and d.dim_param and d.dim_param != want:
                rename.setdefault(d.dim_param, want)
    if not rename:
        return
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    onnx.save(model, str(path))


_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def _environment_error(exc: BaseException) -> OSError | None:
    """The OSError in ``exc``'s chain that says the machine, not the model, is the problem (disk full, ...)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _ENV_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def run(*, staging: str, out_dir: str, model: dict, io: dict, dims: dict, reference: str,
        parent_path: str | None = None, parent_io: dict | None = None, options: dict | None = None) -> dict:
    """Worker entry (see :class:`edgeport.convert.base.StepJob`): export the PyTorch model to ``staging``/model.onnx."""
    import onnx  # noqa: F401 - onnx and onnxruntime load before torch, the order this step was tested in
    import onnxruntime  # noqa: F401
    import torch

    opts = OnnxExportOptions.from_dict(options or {})
    spec = IOSpec.from_json(io)
    module, example, _, _ = load_for_export({**model, "extra": {**model.get("extra", {}), "reference": reference}})
    from edgeport.forward_io import flat_module

    is_script = isinstance(module, torch.jit.ScriptModule)
    module, notes = flat_module(module, [t.name for t in spec.inputs], example, output_names=[t.name for t in spec.outputs])
    path = Path(staging) / opts.filename
    use_legacy = opts.legacy or opts.opset < DYNAMO_MIN_OPSET or is_script
    if use_legacy and not opts.legacy:
        why = f"opset {opts.opset} < {DYNAMO_MIN_OPSET}" if opts.opset < DYNAMO_MIN_OPSET else "the source is a ScriptModule"
        notes.append(f"legacy exporter used: {why}")
    exporter = "legacy" if use_legacy else _try_dynamo(module, example, path, spec, opts, notes)
    if exporter == "legacy":
        try:
            _export_legacy(module, example, path, spec, opts.opset)
        except Exception as exc:  # noqa: BLE001
            raise ConversionError(f"ONNX export failed: {_reason(exc)}",
                                  "simplify the model's forward or try another --opset") from None
    _name_dynamic_dims(path, spec)
    _check_loadable(path)
    art = _artifact(path, spec, opts, exporter, notes)
    return {"artifacts": [art.to_json()], "notes": notes}


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _try_dynamo(module, example, path: Path, spec: IOSpec, opts: OnnxExportOptions, notes: list[str]) -> str:
    """Export with the dynamo exporter; returns "dynamo", or "legacy" when it failed and the fallback is on (noted)."""
    try:
        _export_dynamo(module, example, path, spec, opts.opset)
    except Exception as exc:  # noqa: BLE001 - recorded, then the legacy exporter tries
        reason = _reason(exc)
        env = _environment_error(exc)
        if env is not None:  # a full disk is not a reason to switch exporters (and cache the other one's file)
            raise ConversionError(f"ONNX export failed: cannot write {path.name}: {env.strerror or env}",
                                  "free space and run the same command again") from None
        if not opts.fallback:
            raise ConversionError(f"the dynamo ONNX exporter failed: {reason}", "try --legacy-exporter") from None
        notes.append(f"dynamo exporter failed, fell back to the legacy exporter: {reason}")
        path.unlink(missing_ok=True)
        return "legacy"
    return "dynamo"


def _check_loadable(path: Path) -> None:
    """The exported file passes onnx.checker (full check) and ONNX Runtime loads it; ConversionError otherwise."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"the exported ONNX fails onnx.checker: {str(exc).splitlines()[0][:200]}", "try --legacy-exporter or another --opset") from None
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"ONNX Runtime cannot load the exported model: {str(exc).splitlines()[0][:200]}", "try --legacy-exporter or another --opset") from None


def _artifact(path: Path, spec: IOSpec, opts: OnnxExportOptions, exporter: str, notes: list[str]) -> Artifact:
    """The manifest artifact of the exported file: its graph IO mapped to the spec, op counts, opset."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    ops = Counter(n.op_type for n in proto.graph.node)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    # graph names may differ from the spec when an exporter renamed them; map positionally
    g_in = [i.name for i in proto.graph.input if i.name not in {x.name for x in proto.graph.initializer}]
    g_out = [o.name for o in proto.graph.output]
    art_io = IOSpec(
        inputs=[s.with_(name=g, ref_name=s.name) for s, g in zip(spec.inputs, g_in)],
        outputs=[s.with_(name=g, ref_name=s.name) for s, g in zip(spec.outputs, g_out)],
    )
    opt = asdict(opts)
    opt["exporter"] = exporter
    return Artifact(
        name="onnx", format="onnx", path=opts.filename, converter=f"torch.onnx({exporter})", options=opt,
        tools=tool_versions("torch", "onnx", "onnxscript", "onnxruntime"), parent="pytorch", io=art_io,
        ops=dict(sorted(ops.items())), notes=notes + [f"opset {opset}, IR version {proto.ir_version}"],
    )
