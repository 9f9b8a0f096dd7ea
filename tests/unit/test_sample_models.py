"""The sample models: registry, determinism, sane outputs, and that every tensor is live.

The liveness test is the important one: a parity test only proves a converter right if dropping or
mis-folding any single weight or BatchNorm statistic would change the outputs. The trained samples
(``SampleInfo.dataset``) pass it too; what they are exempt from is said where it applies: their weights
come from training, so the seed does not change them and their values are not drawn from init ranges.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sample_models
from sample_models import DATASETS, SAMPLES

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(SAMPLES)


def _parse_spec(text: str) -> tuple[str, tuple[int | str, ...], str]:
    """NAME:SHAPE:DTYPE -> (name, dims, dtype); a dimension that is not a number is dynamic."""
    name, shape, dtype = text.split(":")
    dims = tuple(int(d) if d.isdigit() else d for d in re.split(r"[xX]", shape))
    return name, dims, dtype


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _run(model: Any, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    import torch

    with torch.no_grad():
        return _as_tuple(model(*inputs))


def _max_diff(a: tuple[Any, ...], b: tuple[Any, ...]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    pytest.importorskip("torch")
    return {name: sample_models.build(name) for name in NAMES}


def test_import_does_not_import_torch() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    code = "import sample_models, sys; assert 'torch' not in sys.modules, 'sample_models imported torch'"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_registry() -> None:
    assert sample_models.DEFAULT_SAMPLE in SAMPLES
    assert len(SAMPLES) == 8
    assert sorted(n for n, i in SAMPLES.items() if i.trained) == ["digits_cnn", "digits_outlier"]
    for key, info in SAMPLES.items():
        assert info.name == key
        assert info.module == f"sample_models.{key}"
        if info.trained:
            assert info.dataset in DATASETS and info.weights
            assert (REPO_ROOT / "sample_models" / info.weights).is_file()
            assert sample_models.training_facts(key)["test_accuracy"] >= 0.95
        assert info.description and "\n" not in info.description
        assert info.inputs and info.outputs
        names = [_parse_spec(s)[0] for s in info.inputs]
        assert len(set(names)) == len(names)
        assert len(set(info.outputs)) == len(info.outputs)


def test_specs_parse_with_edgeport_grammar() -> None:
    spec = pytest.importorskip("edgeport.spec")
    for info in SAMPLES.values():
        for text in info.inputs:
            parsed = spec.parse_input_spec(text)
            assert (parsed.name, parsed.shape, parsed.dtype) == _parse_spec(text)


def test_unknown_sample_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no_such_model"):
        sample_models.build("no_such_model")


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_runs(name: str, built: dict[str, Any]) -> None:
    import torch

    model, inputs = built[name]
    info = SAMPLES[name]
    assert not model.training
    assert len(inputs) == len(info.inputs)
    for tensor, text in zip(inputs, info.inputs, strict=True):
        _, dims, dtype = _parse_spec(text)
        assert str(tensor.dtype) == f"torch.{dtype}", text
        assert tensor.dim() == len(dims), text
        for size, dim in zip(tensor.shape, dims, strict=True):
            if isinstance(dim, int):
                assert size == dim, text
    for tensor in inputs:
        if tensor.is_floating_point():
            assert 0.5 < float(tensor.std()) < 2.0  # standard normal
    outputs = _run(model, inputs)
    assert len(outputs) == len(info.outputs)
    for out in outputs:
        assert isinstance(out, torch.Tensor) and out.is_floating_point()
        assert bool(torch.isfinite(out).all())
        assert 1e-3 < float(out.std()) < 100.0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_seed(name: str, built: dict[str, Any]) -> None:
    model, inputs = built[name]
    first = _run(model, inputs)
    model2, inputs2 = sample_models.build(name, seed=0)
    assert all(bool((a == b).all()) for a, b in zip(inputs, inputs2, strict=True))
    assert _max_diff(first, _run(model2, inputs2)) == 0.0
    model3, inputs3 = sample_models.build(name, seed=1)
    assert _max_diff(first, _run(model3, inputs3)) > 1e-3
    if SAMPLES[name].trained:
        # Trained weights are fixed: the seed picks another example input, never other weights.
        assert _max_diff(first, _run(model3, inputs)) == 0.0
        assert not all(bool((a == b).all()) for a, b in zip(inputs, inputs3, strict=True))
        return
    # Same inputs, other weights: the seed changes the weights, not only the inputs.
    assert _max_diff(first, _run(model3, inputs)) > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_every_tensor_is_live(name: str, built: dict[str, Any]) -> None:
    """Perturbing any single parameter or floating buffer changes the outputs (tests/live_weights.py)."""
    from tests.live_weights import dead_tensors

    model, inputs = built[name]
    dead = dead_tensors(model, lambda m: _run(m, inputs), _max_diff)
    assert not dead, f"perturbing these tensors leaves the outputs unchanged: {dead}"


@pytest.mark.parametrize("name", NAMES)
def test_no_default_init_values(name: str, built: dict[str, Any]) -> None:
    from torch import nn

    model, _ = built[name]
    for mname, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if SAMPLES[name].trained:  # training sets gamma; only an untouched default (all ones) would be wrong
                assert not bool((module.weight == 1).all()), mname
            else:
                assert float(module.weight.detach().abs().min()) >= 0.3, mname
            assert not bool((module.running_mean == 0).all()), mname
            assert not bool((module.running_var == 1).all()), mname
    for pname, p in model.named_parameters():
        if "bias" in pname.rsplit(".", 1)[-1]:
            assert bool((p != 0).any()), f"{pname} is all zero"


def test_dynamic_batch_and_sequence(built: dict[str, Any]) -> None:
    import torch

    model, _ = built["dynamic"]
    x = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(7))
    (out,) = _run(model, (x,))
    assert out.shape == (3, 8)
    for row in range(3):
        (alone,) = _run(model, (x[row : row + 1],))
        torch.testing.assert_close(alone[0], out[row], atol=1e-5, rtol=0)
    # The sequence length really matters: dropping a step changes the result.
    (shorter,) = _run(model, (x[:, :6],))
    assert float((shorter - out).abs().max()) > 1e-4


# ------------------------------------------------------------------------------------------------ the trained samples


def _weight_diff(a: Any, b: Any) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.slow
def test_digits_cnn_training_reproduces_the_committed_weights() -> None:
    """The committed state dict is what the training script makes (seeded, one thread; ~7-25 s)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from sample_models import digits, digits_cnn

    committed, _ = digits_cnn.load_trained()
    model, facts = digits_cnn.train()
    diff = _weight_diff(model, committed)
    assert diff <= 1e-5, f"retraining moved a weight by {diff}"
    x, y = digits.load("test")
    assert abs(facts["test_accuracy"] - digits_cnn.accuracy(committed, x, y)) <= 1 / len(y)


def test_digits_cnn_is_trained_deterministically_and_accurate() -> None:
    """Training is deterministic (two short runs agree exactly); the committed weights reach >= 0.95 held out."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import json

    import numpy as np

    from sample_models import digits, digits_cnn

    first, f1 = digits_cnn.train(epochs=1)
    second, _ = digits_cnn.train(epochs=1)
    assert _weight_diff(first, second) == 0.0
    committed, _ = digits_cnn.load_trained()
    assert _weight_diff(first, committed) > 1e-2  # one epoch is not the committed model: the comparison can fail
    x, y = digits.load("test")
    acc = digits_cnn.accuracy(committed, x, y)
    assert acc >= 0.95
    recorded = json.loads(digits_cnn.FACTS.read_text())
    assert abs(recorded["test_accuracy"] - acc) < 1e-9 and recorded["test_samples"] == len(y) == 597
    assert f1["test_accuracy"] < acc  # training moves accuracy: the accuracy check measures the weights
    # train and test are the two parts of one permutation of the whole set: together they are every image once.
    xt, _ = digits.load("train")
    xa, _ = digits.load("all")
    assert len(xt) == digits.TRAIN_SIZE and len(xt) + len(x) == len(xa) == 1797
    np.testing.assert_array_equal(np.sort(np.concatenate([xt, x]).reshape(len(xa), -1), axis=0), np.sort(xa.reshape(len(xa), -1), axis=0))


def test_digits_outlier_keeps_the_function_and_has_a_100x_channel(built: dict[str, Any]) -> None:
    import torch

    from sample_models.digits_outlier import OUTLIER_CHANNEL

    base, inputs = built["digits_cnn"]
    outlier, _ = built["digits_outlier"]
    x = torch.cat([sample_models.build("digits_cnn", seed=k)[1][0] for k in range(8)])
    torch.testing.assert_close(_run(outlier, (x,))[0], _run(base, (x,))[0], atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        stem = outlier.features[0](x).amax(dim=(0, 2, 3))
    others = torch.cat([stem[:OUTLIER_CHANNEL], stem[OUTLIER_CHANNEL + 1:]])
    assert float(stem[OUTLIER_CHANNEL]) >= 50 * float(others.median())
