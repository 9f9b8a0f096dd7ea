"""Shared pieces of the converter contract."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepJob:
    """What a converter step receives (as JSON kwargs) inside its worker.

    - ``staging``: an empty folder to write results into (same file system as ``out_dir``).
    - ``out_dir``: the output folder, holding the finished parents (``parent_path`` is inside it).
    - ``model``: the model reference JSON (see edgeport.models.ModelRef.to_json) for steps from PyTorch.
    - ``io``: the reference IOSpec JSON (PyTorch names, shapes with dynamic dims as names, dtypes).
    - ``dims``: concrete sizes used for the dynamic dims in the reference data.
    - ``reference``: absolute path of reference.npz (inputs under "input:NAME", outputs under "output:NAME").
    - ``parent_path``: absolute path of the parent artifact (e.g. model.onnx) for steps not from PyTorch.
    - ``parent_io``: the parent artifact's IOSpec JSON.
    - ``options``: converter options (a frozen dataclass's asdict on the parent side).
    """

    staging: str
    out_dir: str
    model: dict[str, Any]
    io: dict[str, Any]
    dims: dict[str, int]
    reference: str
    parent_path: str | None = None
    parent_io: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def tool_versions(*names: str) -> dict[str, str]:
    """Versions of installed distributions, for the manifest (missing ones are left out)."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out
