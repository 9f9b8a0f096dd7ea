"""The benchmark architectures (benchmarks/architectures.py): they build, run, and every tensor is live.

Built at small input sizes (the factories take the size as a keyword) so the whole file stays cheap;
the weights and the graph are the same as at the benchmark's default size.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARCH_FILE = REPO_ROOT / "benchmarks" / "architectures.py"

# The smallest sizes each architecture takes (UNet needs four halvings, ViT one 16x16 patch per side, ...).
SMALL: dict[str, dict[str, int]] = {
    "resnet18": {"size": 32}, "mobilenet_v3": {"size": 32}, "vit": {"size": 32}, "bert": {"seq": 8},
    "unet": {"size": 32}, "deeplab_aspp": {"size": 32}, "bilstm": {"steps": 12}, "stacked_gru": {"steps": 12},
}


def _load() -> Any:
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("benchmark_architectures", ARCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def arch() -> Iterator[Any]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny forward passes: threads only add synchronisation
    try:
        yield _load()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def built(arch: Any) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    return {name: getattr(arch, name)(**SMALL[name]) for name in arch.ARCHITECTURES}


def _run(model: Any, inputs: tuple[Any, ...]) -> Any:
    import torch

    with torch.no_grad():
        return model(*inputs)


def test_the_eight_kinds_are_there(arch: Any) -> None:
    assert set(arch.ARCHITECTURES) == set(SMALL)  # a new architecture gets a small size here
    assert len(arch.ARCHITECTURES) >= 8
    for name in arch.ARCHITECTURES:
        assert callable(getattr(arch, name)), name


def test_resnet18_has_resnet18_parameter_count(built: dict[str, Any]) -> None:
    model, _ = built["resnet18"]
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 11.7e6) <= 0.1 * 11.7e6, count


@pytest.mark.parametrize("name", sorted(SMALL))
def test_builds_in_eval_mode_with_sane_outputs(name: str, built: dict[str, Any]) -> None:
    import torch
    from torch import nn

    model, inputs = built[name]
    assert not model.training and not any(m.training for m in model.modules())
    out = _run(model, inputs)
    assert isinstance(out, torch.Tensor) and bool(torch.isfinite(out).all())
    assert 0.1 < float(out.std()) < 10.0  # make_live's layer-output normalisation keeps outputs O(1)
    for mname, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert float(m.weight.detach().abs().min()) >= 0.3, mname  # no zero-init gammas
            assert not bool((m.running_mean == 0).all()) and not bool((m.running_var == 1).all()), mname
        if isinstance(m, nn.GELU):
            assert m.approximate == "none", mname  # exact (erf) GELU


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_tensor_is_live(name: str, built: dict[str, Any]) -> None:
    """Perturbing any single parameter or floating buffer changes the outputs by more than 1e-4."""
    from tests.live_weights import dead_tensors

    model, inputs = built[name]
    dead = dead_tensors(model, lambda m: _run(m, inputs), lambda a, b: float((a - b).abs().max()))
    assert not dead, f"perturbing these tensors leaves the outputs unchanged: {dead}"


def test_seed_changes_weights_and_is_deterministic(arch: Any, built: dict[str, Any]) -> None:
    model, inputs = built["bilstm"]
    again, inputs2 = arch.bilstm(**SMALL["bilstm"])
    assert bool((inputs[0] == inputs2[0]).all())
    assert float((_run(again, inputs) - _run(model, inputs)).abs().max()) == 0.0
    other, _ = arch.bilstm(seed=1, **SMALL["bilstm"])
    assert float((_run(other, inputs) - _run(model, inputs)).abs().max()) > 1e-3


def test_loads_as_an_edgeport_model_reference() -> None:
    """``benchmarks/architectures.py:NAME`` is what the benchmark hands to edgeport convert."""
    pytest.importorskip("torch")
    from edgeport.models import load_model, resolve_ref

    ref = resolve_ref(f"{ARCH_FILE}:stacked_gru")
    assert ref.kind == "python_file" and ref.attr == "stacked_gru"
    loaded = load_model(ref.to_json())
    assert loaded.example_inputs is not None and tuple(loaded.example_inputs[0].shape) == (1, 100, 32)
    assert tuple(_run(loaded.module, loaded.example_inputs).shape) == (1, 100, 8)
