"""PyTorch eager: the model reference itself (the ``pytorch`` artifact of a manifest).

The artifact has no file: ``options["model"]`` is the model reference JSON, loaded through
:func:`edgeport.models.load_for_export`. Inputs go to ``forward`` positionally in IOSpec order and the
outputs (a tensor, a tuple/list or a dict of tensors) are named by the IOSpec's outputs in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import RuntimeFailure, UsageError
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


def flatten_outputs(out: Any) -> list[Any]:
    """A tensor, a (nested) tuple/list or a dict of tensors -> a flat list, in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten_outputs(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in flatten_outputs(o)]
    return [out]


def to_numpy(t: Any) -> np.ndarray:
    import torch

    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(t)


def run_module(module: Any, io: IOSpec, feed: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Call ``module`` with ``feed`` (IOSpec input order) and name its flat outputs by the IOSpec."""
    import torch

    args = [torch.from_numpy(np.ascontiguousarray(feed[s.name])) for s in io.inputs]
    with torch.inference_mode():
        out = module(*args)
    flat = flatten_outputs(out)
    if len(flat) != len(io.outputs):
        raise RuntimeFailure(f"{where} returned {len(flat)} outputs, the manifest lists {len(io.outputs)}",
                             "re-run edgeport convert so the manifest matches the model")
    return {s.name: to_numpy(t) for s, t in zip(io.outputs, flat)}


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
