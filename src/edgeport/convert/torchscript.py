"""PyTorch -> TorchScript (trace by default, ``--script`` to script).

A traced model.pt takes its inputs positionally in the manifest's order. A forward that returns a
tensor or a flat tuple is traced as is (strict). Any other structure (dict, NamedTuple, dataclass,
``ModelOutput``, nesting) is traced through :func:`edgeport.forward_io.flat_module` as a dict keyed by
the manifest's output names (``logits``, ``aux.boxes``): ``torch.jit.trace`` keeps dict outputs only
with ``strict=False``, and the artifact's notes say so. Keyword inputs are bound the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edgeport.convert.base import tool_versions
from edgeport.errors import ConversionError
from edgeport.manifest import Artifact
from edgeport.models import load_for_export
from edgeport.spec import IOSpec


@dataclass(frozen=True)
class TorchScriptOptions:
    script: bool = False  # torch.jit.script instead of torch.jit.trace
    strict: bool = True  # trace strictly; a structured (dict) output is traced with strict=False, and noted

    @staticmethod
    def from_dict(d: dict) -> "TorchScriptOptions":
        return TorchScriptOptions(script=bool(d.get("script", False)), strict=bool(d.get("strict", True)))


def run(*, staging: str, out_dir: str, model: dict, io: dict, dims: dict, reference: str,
        parent_path: str | None = None, parent_io: dict | None = None, options: dict | None = None) -> dict:
    import torch

    opts = TorchScriptOptions.from_dict(options or {})
    module, example, _, _ = load_for_export({**model, "extra": {**model.get("extra", {}), "reference": reference}})
    notes = []
    recorded = asdict(opts)
    if isinstance(module, torch.jit.ScriptModule):
        scripted = module
        notes.append("source is already TorchScript; saved as is")
        method = "copy"
    elif opts.script:
        try:
            scripted = torch.jit.script(module)
        except Exception as exc:  # noqa: BLE001
            msg = " ".join(str(exc).split())[:300]
            raise ConversionError(f"torch.jit.script failed: {msg}", "drop --script to trace the model instead") from None
        method = "script"
    else:
        from edgeport.forward_io import flat_module

        spec = IOSpec.from_json(io)
        target, wrap_notes = flat_module(module, [t.name for t in spec.inputs], example,
                                         output_names=[t.name for t in spec.outputs], as_dict=True)
        strict = opts.strict and not getattr(target, "returns_dict", False)
        if opts.strict and not strict:
            wrap_notes.append("traced with strict=False: torch.jit.trace refuses dict outputs in strict mode")
        notes.extend(wrap_notes)
        recorded["strict"] = strict
        try:
            with torch.no_grad():
                scripted = torch.jit.trace(target, example, strict=strict, check_trace=False)
        except Exception as exc:  # noqa: BLE001
            msg = " ".join(str(exc).split())[:300]
            raise ConversionError(f"torch.jit.trace failed: {msg}", "try --script, or simplify data-dependent control flow") from None
        method = "trace"
    path = Path(staging) / "model.pt"
    torch.jit.save(scripted, str(path))
    art = Artifact(
        name="torchscript", format="torchscript", path="model.pt", converter=f"torch.jit.{method}",
        options=recorded, tools=tool_versions("torch"), parent="pytorch", io=IOSpec.from_json(io), notes=notes,
    )
    return {"artifacts": [art.to_json()], "notes": notes}
