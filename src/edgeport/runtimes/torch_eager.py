"""PyTorch eager: the model reference itself (the ``pytorch`` artifact of a manifest).

The artifact has no file: ``options["model"]`` is the model reference JSON, loaded through
:func:`edgeport.models.load_for_export`. Inputs go to ``forward`` as :func:`edgeport.forward_io.call_forward`
binds them (positionally in IOSpec order; by keyword for keyword parameters). Outputs (any structure of
tensors) are named as :mod:`edgeport.forward_io` names them; they are matched to the IOSpec's outputs by
name when every name is there, else by position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import ModelError, RuntimeFailure, UsageError
from edgeport.forward_io import Binding, call_forward, flatten_outputs, named_outputs  # noqa: F401 - flatten_outputs is used from here
from edgeport.runtimes.base import Session
from edgeport.spec import IOSpec


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op (and, when still possible, inter-op) thread pools."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set or parallel work already started
        pass


def to_numpy(t: Any) -> np.ndarray:
    import torch

    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(t)


def run_module(module: Any, io: IOSpec, feed: dict[str, np.ndarray], where: str, positional: bool = False) -> dict[str, np.ndarray]:
    """Call ``module`` with ``feed`` and name its outputs by the IOSpec (``positional``: every input
    positionally in IOSpec order, as converted models take them)."""
    import torch

    names = [s.name for s in io.inputs]
    args = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in names]
    with torch.inference_mode():
        out = call_forward(module, names, args, Binding(len(names)) if positional else None)
    try:
        named = named_outputs(out)
    except ModelError as exc:
        raise RuntimeFailure(f"{where}: {exc.message}", "re-run edgeport convert so the manifest matches the model") from None
    wanted = [s.name for s in io.outputs]
    by_name = dict(named)
    if len(named) != len(wanted):
        raise RuntimeFailure(f"{where} returned {len(named)} outputs, the manifest lists {len(wanted)}",
                             "re-run edgeport convert so the manifest matches the model")
    if all(n in by_name for n in wanted):
        return {n: to_numpy(by_name[n]) for n in wanted}
    return {n: to_numpy(t) for n, (_, t) in zip(wanted, named)}


class TorchEagerSession(Session):
    name = "torch_eager"

    def __init__(self, path: Path, io: IOSpec, threads: int, module: Any) -> None:
        super().__init__(path, io, threads)
        self.module = module
        import torch

        self.backend = f"torch {torch.__version__} (eager)"

    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "TorchEagerSession":
        model = options.get("model")
        if not isinstance(model, dict):
            raise UsageError("the pytorch artifact has no model reference (options.model)", "re-run edgeport convert")
        set_torch_threads(threads)
        from edgeport.models import load_for_export

        module, _example, _in_names, _out_names = load_for_export(model)
        if hasattr(module, "eval"):
            module.eval()
        return cls(Path(path), io, threads, module)

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_module(self.module, self.io, feed, "the PyTorch model")
