"""TorchScript (``torch.jit.load``) sessions: inputs positionally in IOSpec order (how edgeport writes
model.pt), outputs named as for PyTorch eager (a dict keyed by the output names, or a tuple in order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import RuntimeFailure
from edgeport.runtimes.base import Session
from edgeport.runtimes.torch_eager import run_module, set_torch_threads
from edgeport.spec import IOSpec


class TorchScriptSession(Session):
    name = "torchscript"

    def __init__(self, path: Path, io: IOSpec, threads: int, module: Any) -> None:
        super().__init__(path, io, threads)
        self.module = module
        import torch

        self.backend = f"torch {torch.__version__} (TorchScript)"

    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "TorchScriptSession":
        import torch

        set_torch_threads(threads)
        p = Path(path)
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - the library's reason, in one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise RuntimeFailure(f"TorchScript cannot load {p.name}: {first}", "re-export it with edgeport convert --to torchscript") from None
        module.eval()
        return cls(p, io, threads, module)

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_module(self.module, self.io, feed, f"TorchScript model {self.path.name}", positional=True)
