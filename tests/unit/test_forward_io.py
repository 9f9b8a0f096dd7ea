"""Output naming and input binding of edgeport.forward_io (no conversion, no subprocess)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import NamedTuple, Optional

import pytest

torch = pytest.importorskip("torch")

from edgeport.errors import ModelError  # noqa: E402
from edgeport.forward_io import Binding, bind, call_forward, flat_module, flatten_outputs, is_plain, named_outputs  # noqa: E402


class LookAlikeOutput(OrderedDict):
    """Like transformers' ModelOutput: a dataclass that is an OrderedDict of its non-None fields."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is not None:
                self[f.name] = getattr(self, f.name)


@dataclasses.dataclass
class CausalOut(LookAlikeOutput):
    logits: torch.Tensor = None
    past: Optional[tuple] = None
    attentions: Optional[torch.Tensor] = None


class Det(NamedTuple):
    boxes: torch.Tensor
    scores: torch.Tensor


@dataclasses.dataclass
class Stats:
    mean: torch.Tensor
    var: Optional[torch.Tensor] = None


def _names(out, declared=None):
    return [n for n, _ in named_outputs(out, declared)]


def test_names_of_every_structure():
    a, b, c = torch.ones(1), torch.zeros(2), torch.full((3,), 2.0)
    assert _names(a) == ["output"]
    assert _names((a, b)) == ["output_0", "output_1"]
    assert _names([a, b, c]) == ["output_0", "output_1", "output_2"]
    assert _names({"logits": a, "hidden": (b, [c]), "aux": {"boxes": a}}) == ["logits", "hidden.0", "hidden.1.0", "aux.boxes"]
    assert _names(Det(boxes=a, scores=b)) == ["boxes", "scores"]
    assert _names(Stats(mean=a)) == ["mean"]  # None fields are left out
    assert _names(Stats(mean=a, var=b)) == ["mean", "var"]
    assert _names(CausalOut(logits=a, past=(b, c))) == ["logits", "past.0", "past.1"]
    assert _names((a, (b, Det(boxes=c, scores=a)))) == ["output_0", "output_1.0", "output_1.1.boxes", "output_1.1.scores"]
    assert _names((a, None, b)) == ["output_0", "output_2"]  # names never shift
    # declared names (a sample's) replace positional names only
    assert _names((a, b), ["logits", "aux"]) == ["logits", "aux"]
    assert _names({"x": a, "y": b}, ["p", "q"]) == ["x", "y"]


def test_flat_order_is_naming_order():
    a, b, c = torch.ones(1), torch.zeros(2), torch.full((3,), 2.0)
    out = {"z": a, "a": (b, {"k": c})}
    assert [t.shape for t in flatten_outputs(out)] == [t.shape for _, t in named_outputs(out)] == [(1,), (2,), (3,)]


def test_bad_outputs_are_refused_with_their_path():
    x = torch.ones(1)
    with pytest.raises(ModelError, match="returned None"):
        named_outputs(None)
    with pytest.raises(ModelError, match="returned a int"):
        named_outputs(3)
    with pytest.raises(ModelError, match=r"'a\.1' is a str, not a tensor"):
        named_outputs({"a": (x, "s")})
    with pytest.raises(ModelError, match="no tensors"):
        named_outputs({"a": None})
    with pytest.raises(ModelError, match="duplicate names"):
        named_outputs({"a.b": x, "a": {"b": x}})
    with pytest.raises(ModelError, match="returns 65 outputs") as info:
        named_outputs([x] * 65)
    assert "at most 64" in info.value.hint


def test_plain_outputs():
    x = torch.ones(1)
    assert is_plain(x) and is_plain((x, x)) and is_plain([x])
    assert not is_plain({"a": x}) and not is_plain(Det(x, x)) and not is_plain((x, (x,))) and not is_plain(Stats(x))


class KwOnly(torch.nn.Module):
    def forward(self, x, *, mask):
        return x * mask


class TwoArgs(torch.nn.Module):
    def forward(self, x, y):
        return x - y


class VarKw(torch.nn.Module):
    def forward(self, **inputs):
        return inputs["a"] * 2 + inputs["b"]


class DictIn(torch.nn.Module):
    def forward(self, x, batch):
        return x * batch["scale"] + batch["shift"]


def test_keyword_binding():
    x, y = torch.tensor([3.0]), torch.tensor([1.0])
    assert bind(TwoArgs(), ["x", "y"]) == Binding(2)
    assert bind(TwoArgs(), ["input_0", "input_1"]) == Binding(2)  # not forward's names: positional, as before
    assert bind(TwoArgs(), ["y", "x"]) == Binding(0)  # out of order: by keyword
    assert float(call_forward(TwoArgs(), ["y", "x"], [y, x])) == 2.0
    assert bind(KwOnly(), ["x", "mask"]) == Binding(1)
    assert float(call_forward(KwOnly(), ["x", "mask"], [x, y * 2])) == 6.0
    assert bind(VarKw(), ["a", "b"]) == Binding(0)
    assert float(call_forward(VarKw(), ["a", "b"], [x, y])) == 7.0
    assert bind(torch.jit.script(TwoArgs()), ["y", "x"]) == Binding(2)  # TorchScript: positional


def test_dict_inputs_from_dotted_names():
    x, scale, shift = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    names = ["x", "batch.scale", "batch.shift"]
    assert bind(DictIn(), names) == Binding(1, frozenset({"batch"}))
    assert float(call_forward(DictIn(), names, [x, scale, shift])) == 6.5
    assert bind(DictIn(), ["x", "other.scale"]) == Binding(2)  # no such parameter: positional, as before
    wrapped, notes = flat_module(DictIn(), names, (x, scale, shift), output_names=["output"])
    assert any("as dicts: batch" in n for n in notes)
    traced = torch.jit.trace(wrapped, (x, scale, shift), check_trace=False)
    assert float(traced(x, scale, shift)) == 6.5  # a tensor stays a tensor


class Structured(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x, *, scale):
        h = self.lin(x) * scale
        return CausalOut(logits=h, past=(h + 1, Det(boxes=h * 2, scores=h.sum(-1))))


def test_flat_module_returns_the_reference_order_and_traces():
    m = Structured().eval()
    ex = (torch.randn(2, 4), torch.randn(2, 3))
    names = [n for n, _ in named_outputs(m(ex[0], scale=ex[1]))]
    assert names == ["logits", "past.0", "past.1.boxes", "past.1.scores"]
    flat, notes = flat_module(m, ["x", "scale"], ex, output_names=names)
    assert flat is not m and any("by keyword" in n for n in notes) and any("CausalOut" in n for n in notes)
    want = flatten_outputs(m(ex[0], scale=ex[1]))
    got = flat(*ex)
    assert isinstance(got, tuple) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    as_dict, _ = flat_module(m, ["x", "scale"], ex, output_names=names, as_dict=True)
    traced = torch.jit.trace(as_dict, ex, strict=False, check_trace=False)
    out = traced(*ex)
    assert list(out) == names and all(torch.equal(out[n], t) for n, t in zip(names, want, strict=True))
    plain = TwoArgs()
    same, notes = flat_module(plain, ["x", "y"], (ex[0], ex[0]), output_names=["output"])
    assert same is plain and notes == []


def test_dict_example_inputs_are_named_after_the_parameter(tmp_path):
    from edgeport.models import load_model, resolve_input_specs, resolve_ref

    path = tmp_path / "m.py"
    path.write_text(
        "import torch\n"
        "class DictIn(torch.nn.Module):\n"
        "    def forward(self, x, batch):\n"
        "        return x * batch['scale'] + batch['shift']\n"
        "def build():\n"
        "    return DictIn(), (torch.ones(2, 3), {'scale': torch.full((2, 3), 2.0), 'shift': torch.ones(1, 3)})\n")
    ref = resolve_ref(f"{path}:build")
    loaded = load_model(ref.to_json())
    specs, _dims, example = resolve_input_specs(loaded, ref)
    names = [s.name for s in specs]
    assert names == ["x", "batch.scale", "batch.shift"] and [s.shape for s in specs] == [(2, 3), (2, 3), (1, 3)]
    out = call_forward(loaded.module, names, [torch.from_numpy(a) for a in example])
    assert torch.equal(out, torch.full((2, 3), 3.0))
