"""How edgeport calls a PyTorch ``forward`` and names what it returns.

Output names (the same in the manifest, reference.npz and every runtime's report):

- a single tensor is ``output``; a flat tuple or list is ``output_0``, ``output_1``, ... (a sample
  model's declared names replace these);
- dict keys and the field names of NamedTuples, dataclasses and ``ModelOutput``-style classes (an
  ``OrderedDict`` subclass that is also a dataclass) are kept: ``logits``;
- nested structures join their path with ``.``: ``hidden.0``, ``aux.boxes``; inside a top-level tuple
  the position comes first: ``output_1.0``;
- ``None`` entries (an optional output the model did not produce) are left out; the others keep
  their names, so the names never shift.

The flat order is the order of that walk (dict insertion order, field order, position), which is
the order of the converted models' outputs.

Inputs are passed positionally in the manifest's order, except that inputs named after keyword
parameters of ``forward`` (keyword-only ones, ``**kwargs``, or parameters given out of order) are
passed by keyword, and inputs named ``P.K`` (``--input batch.input_ids:1x16:int64``) for a parameter
``P`` are passed to it as one dict ``{K: tensor}``. A converted model always takes its inputs positionally in the manifest order:
:func:`flat_module` wraps a model whose forward needs keywords or returns a structure that the
format cannot hold, and says why in the notes it returns.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import re
from typing import Any

from edgeport.errors import ModelError

MAX_OUTPUTS = 64
MAX_DEPTH = 16
_HINT = "return a tensor, or a tuple, list, dict, NamedTuple or dataclass of tensors"


def _join(path: str | None, part: str) -> str:
    return part if path is None else f"{path}.{part}"


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _walk(node: Any, path: str | None, acc: list[tuple[str | None, Any]], depth: int) -> None:
    import torch

    if depth > MAX_DEPTH:
        raise ModelError(f"the model's output is nested more than {MAX_DEPTH} levels deep", _HINT)
    if isinstance(node, torch.Tensor):
        acc.append((path, node))
    elif node is None:
        return
    elif isinstance(node, dict):  # dict, OrderedDict, ModelOutput-style classes
        for k, v in node.items():
            _walk(v, _join(path, str(k)), acc, depth + 1)
    elif _is_namedtuple(node):
        for f in type(node)._fields:
            _walk(getattr(node, f), _join(path, f), acc, depth + 1)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _walk(getattr(node, f.name), _join(path, f.name), acc, depth + 1)
    elif isinstance(node, (tuple, list)):
        for i, v in enumerate(node):
            _walk(v, f"output_{i}" if path is None else _join(path, str(i)), acc, depth + 1)
    elif path is None:
        raise ModelError(f"the model's forward returned a {type(node).__name__}", _HINT)
    else:
        raise ModelError(f"the model's output {path!r} is a {type(node).__name__}, not a tensor", _HINT)


def is_plain(out: Any) -> bool:
    """A tensor, or a flat tuple/list of tensors (what every exporter takes as is)."""
    import torch

    if isinstance(out, torch.Tensor):
        return True
    return (isinstance(out, (tuple, list)) and not _is_namedtuple(out) and len(out) > 0
            and all(isinstance(o, torch.Tensor) for o in out))


def named_outputs(out: Any, declared: list[str] | None = None) -> list[tuple[str, Any]]:
    """The tensors of a forward's result, named and in flat order (see the module docstring)."""
    import torch

    if out is None:
        raise ModelError("the model's forward returned None", _HINT)
    acc: list[tuple[str | None, Any]] = []
    _walk(out, None, acc, 0)
    if not acc:
        raise ModelError("the model's forward returned no tensors", "return at least one tensor")
    if len(acc) > MAX_OUTPUTS:
        raise ModelError(f"the model returns {len(acc)} outputs", f"return at most {MAX_OUTPUTS} tensors")
    if declared and len(declared) == len(acc) and (isinstance(out, torch.Tensor) or is_plain(out)):
        return list(zip(declared, [v for _, v in acc]))
    if len(acc) == 1 and acc[0][0] is None:
        return [("output", acc[0][1])]
    names = [n for n, _ in acc]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ModelError(f"the model's outputs have duplicate names {dup}", "give each output a distinct key or field name")
    return [(n, v) for n, v in acc]  # type: ignore[misc]


def flatten_outputs(out: Any) -> list[Any]:
    """The tensors of a forward's result in flat order (no names, no checks)."""
    acc: list[tuple[str | None, Any]] = []
    _walk(out, None, acc, 0)
    return [v for _, v in acc]


# ------------------------------------------------------------------------------------------ inputs


@dataclasses.dataclass(frozen=True)
class Binding:
    """How named inputs reach ``forward``: the first ``positional`` go by position, the rest by keyword;
    an input ``P.K`` whose ``P`` is in ``groups`` is the entry ``K`` of the dict passed as ``P``."""

    positional: int
    groups: frozenset[str] = frozenset()


def _parameters(module: Any) -> list[inspect.Parameter] | None:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return None
    try:
        return list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):
        return None


def bind(module: Any, names: list[str]) -> Binding:
    """The :class:`Binding` of ``names`` to ``module.forward``.

    Every input goes positionally (as before) unless the signature can be read and the inputs after
    the leading run that matches its positional parameters are named after its keyword parameters (or
    it takes ``**kwargs``); ``P.K`` names feed a dict parameter ``P``."""
    params = _parameters(module)
    if params is None or any(p.kind is p.VAR_POSITIONAL for p in params):
        return Binding(len(names))
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    any_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    n = 0
    while n < len(names) and n < len(positional) and names[n] == positional[n]:
        n += 1
    groups = {r.partition(".")[0] for r in names[n:] if r not in by_name and r.partition(".")[0] in by_name}
    groups -= set(names)
    keys = [r.partition(".")[0] if r.partition(".")[0] in groups else r for r in names[n:]]
    ok = all(k in by_name or any_kw for k in keys) and not set(keys) & set(positional[:n])
    if names[n:] and ok:
        return Binding(n, frozenset(groups))
    return Binding(len(names))


def call_forward(module: Any, names: list[str], tensors: list[Any] | tuple[Any, ...], binding: Binding | None = None) -> Any:
    """``module(...)`` with the inputs bound as :func:`bind` says (or as ``binding`` says)."""
    b = bind(module, names) if binding is None else binding
    kwargs: dict[str, Any] = {}
    for name, t in zip(names[b.positional:], tensors[b.positional:]):
        head, _, key = name.partition(".")
        if head in b.groups:
            kwargs.setdefault(head, {})[key] = t
        else:
            kwargs[name] = t
    return module(*tensors[:b.positional], **kwargs)


def identifier_names(names: list[str]) -> list[str]:
    """Python identifiers for ``names`` (``batch.scale`` -> ``batch_scale``), distinct, for code that
    needs parameter or keyword names (a wrapper's forward, litert-torch's signature inputs)."""
    out: list[str] = []
    for n in names:
        ident = re.sub(r"\W", "_", n)
        if not ident or ident[0].isdigit() or keyword.iskeyword(ident) or ident == "self":
            ident = f"_{ident}"
        base, k = ident, 2
        while ident in out:
            ident, k = f"{base}_{k}", k + 1
        out.append(ident)
    return out


def flat_module(module: Any, input_names: list[str], example: tuple[Any, ...], *, output_names: list[str],
                as_dict: bool = False) -> tuple[Any, list[str]]:
    """``(module, notes)``: ``module`` itself when it takes its inputs positionally and returns a plain
    tensor or tuple, else a wrapper that takes them positionally (parameters named after the inputs)
    and returns the flat tensors as a tuple (``as_dict``: a dict keyed by ``output_names`` when forward's
    result is not plain; the wrapper's ``returns_dict`` says which)."""
    import torch

    binding = bind(module, input_names)
    with torch.no_grad():
        out = call_forward(module, input_names, example, binding)
    plain = is_plain(out)
    if plain and binding.positional == len(input_names):
        return module, []
    notes = []
    if binding.positional < len(input_names):
        how = f" (as dicts: {', '.join(sorted(binding.groups))})" if binding.groups else ""
        notes.append(f"inputs {input_names[binding.positional:]} are passed to forward by keyword{how}; the converted "
                     "model takes every input positionally in the manifest's order")
    if not plain:
        kind = type(out).__name__
        notes.append(f"forward returns a {kind}; the converted model returns its tensors flat, "
                     + ("as a dict keyed by the manifest's output names" if as_dict else "as a tuple in the manifest's output order"))
    n_out = len(flatten_outputs(out))
    if n_out != len(output_names):
        raise ModelError(f"the model returns {n_out} tensors, the reference {len(output_names)}", "re-run edgeport convert")
    single = isinstance(out, torch.Tensor)
    params = identifier_names(input_names)
    args = "".join(f"{p}, " for p in params)
    namespace: dict[str, Any] = {}
    # one named parameter per input (validated identifiers), so exporters and torch.export see a fixed signature
    exec(f"def forward(self, {args}):\n    return self._flat(({args}))\n", namespace)  # noqa: S102

    class FlatIO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def _flat(self, args: tuple[Any, ...]) -> Any:
            flat = flatten_outputs(call_forward(self.inner, input_names, args, binding))
            if self.returns_dict:
                return dict(zip(output_names, flat))
            return flat[0] if single else tuple(flat)

    FlatIO.forward = namespace["forward"]  # type: ignore[method-assign]
    wrapped = FlatIO()
    wrapped.returns_dict = bool(as_dict and not plain)
    wrapped.eval()
    return wrapped, notes
