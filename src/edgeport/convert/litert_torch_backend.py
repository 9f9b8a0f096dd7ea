"""PyTorch -> .tflite directly with litert-torch (``litert_torch.convert(module, ...).export(path)``).

Runs inside a worker (:func:`run`). Choices and why:

- Names: litert-torch names signature inputs ``args_0, args_1, ...`` and outputs ``output_0, ...``
  by position. The module is wrapped so that it takes keyword arguments named after the reference
  inputs and returns a dict keyed by the reference output names; litert-torch then uses those names
  in the ``serving_default`` signature, and the mapping is still verified numerically afterwards.
- Layout: litert-torch keeps the PyTorch layout (NCHW stays NCHW), so ``keep_layout`` needs nothing
  and every perm is the identity. ``channels_last=True`` (opt-in) feeds 3-D..5-D float inputs
  channels-last by transposing inside the wrapper (what ``litert_torch.to_channel_last_io`` does).
- Dynamic dims: litert-torch 0.10 fails with ``dynamic_shapes`` on every model tried (DEPENDENCIES.md),
  so the model is converted at the reference's concrete sizes (reference.npz sample 0). The notes and
  the artifact's IO shapes say so; validation feeds exactly those sizes.
- 64-bit IO: litert-torch downcasts int64/float64 inputs and outputs to 32 bits (``enable_x64=False``,
  as most on-device runtimes want). The artifact IO records the real dtype (int32 token ids); the
  session casts the reference's int64 feed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.convert.base import tool_versions
from edgeport.errors import ConversionError, EdgeportError, ModelError, UsageError
from edgeport.manifest import Artifact
from edgeport.refdata import load_reference
from edgeport.spec import IOSpec, TensorSpec

TARGETS = ("tflite",)


@dataclass(frozen=True)
class LiteRtTorchOptions:
    """Options of the litert-torch converter (built from ``job["options"]``).

    - ``targets``: must contain "tflite" (the only format litert-torch writes).
    - ``keep_layout``: accepted for symmetry with onnx2tf; litert-torch always keeps the PyTorch layout.
    - ``allow_flex``: Flex ops are acceptable (litert-torch does not emit them in practice).
    - ``channels_last``: take 3-D..5-D float inputs channels-last (N, ..., C) instead of (N, C, ...).
    - ``named_io``: name the signature inputs/outputs after the reference tensors.
    - ``verify_io``: run the .tflite on the reference samples to verify the output mapping.
    """

    targets: tuple[str, ...] = TARGETS
    keep_layout: bool = True
    allow_flex: bool = False
    channels_last: bool = False
    named_io: bool = True
    verify_io: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> tuple["LiteRtTorchOptions", list[str]]:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        ignored = sorted(k for k in data if k not in known)
        kw = {k: v for k, v in data.items() if k in known}
        if "targets" in kw:
            val = kw["targets"]
            kw["targets"] = tuple(str(v).strip().lower() for v in ([val] if isinstance(val, str) else val))
        opts = cls(**kw)
        bad = [t for t in opts.targets if t not in TARGETS]
        if bad or not opts.targets:
            raise UsageError(f"litert-torch cannot make {bad or 'nothing'}", "it makes tflite only")
        return opts, ignored


def _wrapper(module: Any, input_names: list[str], output_names: list[str], channels_last: list[bool]) -> Any:
    """nn.Module taking keyword inputs (reference names made identifiers, see
    :func:`edgeport.forward_io.identifier_names`) and returning {reference output name: tensor}.

    The model's own forward gets its inputs as :func:`edgeport.forward_io.call_forward` binds them, and
    its result (any structure of tensors) is flattened in the order that names the reference outputs."""
    import torch

    from edgeport.forward_io import bind, call_forward, flatten_outputs, identifier_names

    binding = bind(module, input_names)
    keys = identifier_names(input_names)

    class NamedIO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, **inputs: Any) -> dict[str, Any]:
            args = []
            for key, cl in zip(keys, channels_last):
                x = inputs[key]
                if cl:  # (N, d1, ..., C) -> (N, C, d1, ...)
                    x = x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))
                args.append(x)
            flat = flatten_outputs(call_forward(self.inner, input_names, args, binding))
            if len(flat) != len(output_names):
                raise ModelError(f"the model returns {len(flat)} tensors, the reference {len(output_names)}",
                                 "check the model's outputs")
            return dict(zip(output_names, flat))

    return NamedIO().eval()


def run(
    staging: str,
    out_dir: str,
    model: dict[str, Any],
    io: dict[str, Any],
    dims: dict[str, int],
    reference: str,
    parent_path: str | None = None,
    parent_io: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Worker entry (see :class:`edgeport.convert.base.StepJob`): PyTorch -> model.tflite (fp32).

    Returns ``{"artifacts": [Artifact JSON, path relative to staging], "notes": [...]}``.
    """
    t0 = time.perf_counter()
    opts, ignored = LiteRtTorchOptions.from_dict(options)
    notes: list[str] = []
    if ignored:
        notes.append(f"options not used by litert-torch: {', '.join(ignored)}")
    if extra:
        notes.append(f"job fields not used by litert-torch: {', '.join(sorted(extra))}")
    ref_io = IOSpec.from_json(io)
    module = _torch_module(model)
    sample, cl = _reference_sample(ref_io, reference, opts, notes)
    dest = Path(staging) / "model.tflite"
    dest.parent.mkdir(parents=True, exist_ok=True)
    _export(module, ref_io, sample, cl, opts, dest, notes)
    seconds = time.perf_counter() - t0
    info, res = _resolve(dest, ref_io, reference, cl, opts)
    if info["flex_ops"] or info["custom_ops"]:
        from edgeport.convert.tflite_inspect import describe_offenders

        notes.append(f"the .tflite holds {describe_offenders(info)}"
                     + ("" if opts.allow_flex else " (not allowed: the check step rejects it)"))
    art = Artifact(
        name="tflite", format="tflite", path=dest.name, converter="litert-torch", options=asdict(opts),
        tools=tool_versions("litert-torch", "torch", "ai-edge-litert", "jax"), variant="fp32", io=res.io,
        ops=dict(info["ops"]), notes=notes + res.notes, seconds=seconds, size_bytes=dest.stat().st_size,
    )
    return {"artifacts": [art.to_json()], "notes": notes}


def _torch_module(model: dict[str, Any]) -> Any:
    """The model as an nn.Module (TorchScript is refused: litert-torch needs torch.export)."""
    import torch

    from edgeport.models import load_for_export

    module, _example, _in_names, _out_names = load_for_export(model)
    if isinstance(module, torch.jit.ScriptModule):
        raise ConversionError("litert-torch cannot convert a TorchScript module (it needs torch.export)",
                              "pass the Python model (file.py:factory) or an ExportedProgram .pt2, or use --converter onnx2tf")
    return module


def _reference_sample(ref_io: IOSpec, reference: str, opts: LiteRtTorchOptions, notes: list[str]) -> tuple[dict[str, Any], list[bool]]:
    """Sample 0 of reference.npz as torch tensors (the sizes the .tflite is converted at) and, per input,
    whether it is fed channels-last."""
    import torch

    ref_in, _ = load_reference(reference)
    missing = [t.name for t in ref_io.inputs if t.name not in ref_in[0]]
    if missing:
        raise ConversionError(f"reference.npz has no sample for inputs {missing}", "re-run edgeport convert")
    sample = {t.name: torch.from_numpy(np.array(ref_in[0][t.name])) for t in ref_io.inputs}
    dynamic = [t for t in ref_io.inputs if t.is_dynamic]
    if dynamic:
        sizes = ", ".join(f"{t.name}={'x'.join(str(d) for d in sample[t.name].shape)}" for t in dynamic)
        notes.append(f"dynamic dims fixed to the reference sizes {sizes}: litert-torch 0.10 fails with dynamic "
                     "shapes (torch.export Dim), so the .tflite accepts only these sizes")
    cl = [opts.channels_last and t.rank in (3, 4, 5) and t.dtype.startswith(("float", "bfloat")) for t in ref_io.inputs]
    for t, c in zip(ref_io.inputs, cl):
        if c:
            sample[t.name] = sample[t.name].permute(0, *range(2, t.rank), 1).contiguous()
    return sample, cl


def _export(module: Any, ref_io: IOSpec, sample: dict[str, Any], cl: list[bool], opts: LiteRtTorchOptions,
            dest: Path, notes: list[str]) -> None:
    """litert-torch's conversion of ``module`` at ``sample``'s sizes, written to ``dest``."""
    import litert_torch  # type: ignore[import-not-found]

    names = [t.name for t in ref_io.inputs]
    try:
        if opts.named_io:
            from edgeport.forward_io import identifier_names

            wrapped = _wrapper(module, names, [t.name for t in ref_io.outputs], cl)
            edge = litert_torch.convert(wrapped, sample_kwargs=dict(zip(identifier_names(names), (sample[n] for n in names))))
        else:
            if opts.channels_last:
                raise UsageError("channels_last needs named_io", "leave named_io on")
            from edgeport.forward_io import flat_module

            target, wrap_notes = flat_module(module.eval(), names, tuple(sample[n] for n in names),
                                             output_names=[t.name for t in ref_io.outputs])
            notes.extend(wrap_notes)
            edge = litert_torch.convert(target, tuple(sample[n] for n in names))
        edge.export(str(dest))
    except EdgeportError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.export / MLIR lowering raise anything
        msg = " ".join(str(exc).split())
        raise ConversionError(f"litert-torch failed: {type(exc).__name__}: {msg[:300]}",
                              "see the worker log; try --converter onnx2tf") from None


def _resolve(dest: Path, ref_io: IOSpec, reference: str, cl: list[bool], opts: LiteRtTorchOptions) -> tuple[dict[str, Any], Any]:
    """The .tflite's ops and its inputs/outputs matched to the reference's (run, not assumed, unless verify_io is off)."""
    from edgeport.convert import io_resolution
    from edgeport.convert.tflite_inspect import inspect_tflite

    info = inspect_tflite(dest)
    nat_in, nat_out = io_resolution.tflite_natives(info)
    order = [x.name for x in ref_io.inputs]

    def expected_in(t: TensorSpec) -> tuple[int, ...]:
        return io_resolution.channels_last_perm(t.rank) if cl[order.index(t.name)] else io_resolution.identity(t.rank)

    def runner(specs: Any, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if not opts.verify_io:
            raise EdgeportError("verification is off (verify_io=False)")
        return io_resolution.probe_in_worker(dest, "tflite", specs, feeds)

    return info, io_resolution.resolve_io(nat_in, nat_out, ref_io, reference, runner, expected_in)
