"""The live-weights check shared by the sample-model and architecture tests.

Perturbing any single parameter or floating buffer must move the outputs by more than ``tol``: 1e-4,
not just "nonzero", because float32 reassociation alone moves O(1) outputs by ~1e-6, which would let a
mathematically dead tensor pass. Live tensors move outputs by far more (> 1e-2 in the samples).
"""

from __future__ import annotations

import copy
from typing import Any, Callable


def dead_tensors(model: Any, run: Callable[[Any], Any], diff: Callable[[Any, Any], float], tol: float = 1e-4) -> list[str]:
    """Names of the tensors whose perturbation leaves ``run(model)`` within ``tol`` (by ``diff``)."""
    import torch

    reference = run(model)
    probe = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1234)
    tensors = list(probe.named_parameters()) + [(n, b) for n, b in probe.named_buffers() if b.is_floating_point()]
    assert tensors, "the model has no tensor to perturb"
    dead = []
    with torch.no_grad():
        for name, t in tensors:
            saved = t.detach().clone()
            sign = torch.randint(0, 2, t.shape, generator=gen).to(t.dtype) * 2 - 1
            t.add_(0.5 * (saved.abs() + 0.1) * sign)
            if diff(reference, run(probe)) <= tol:
                dead.append(name)
            t.copy_(saved)
    assert diff(reference, run(probe)) == 0.0, "the perturbed tensors were not restored exactly"
    return dead
