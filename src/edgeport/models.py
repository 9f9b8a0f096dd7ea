"""Resolving MODEL references and loading them safely.

A MODEL is one of:
  ``path/to/file.py:factory_or_class``   ``package.module:factory_or_class``   ``sample:NAME``
  ``model.pt`` (TorchScript)   ``model.pt2`` (ExportedProgram)   ``model.onnx`` (start mid-pipeline)

:func:`resolve_ref` runs in the CLI process and imports no torch: it classifies the reference, checks
that files exist and hashes the source (the hash keys the conversion cache). :func:`load_model` runs
inside a worker and imports torch.

Pickles are never loaded unless the user passes ``--trust-pickle``: a full-model ``torch.save`` file
can run arbitrary code when unpickled. State dicts (``--weights``) load with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeport.errors import InputError, ModelError, SecurityError, UsageError
from edgeport.formats import model_suffixes
from edgeport.fsutil import sha256_file
from edgeport.spec import DEFAULT_DYNAMIC_SIZE, TensorSpec, default_layout, parse_input_spec

MAX_SAMPLE_ELEMENTS = 1 << 27  # 512 MiB of float32 per input
# Integer inputs of the reference samples (token ids, indices) when the example input does not show their range:
# 0..15, closed, so embeddings and gathers see more than two distinct ids.
REFERENCE_INT_RANGE = (0, 15)
_ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class ModelRef:
    ref: str
    kind: str
    path: str | None = None  # absolute path for file kinds
    module: str | None = None
    attr: str | None = None
    sha256: str = ""
    trust_pickle: bool = False
    weights: str | None = None
    weights_sha256: str | None = None
    inputs: list[dict] | None = None  # --input specs (TensorSpec JSON)
    inputs_npz: str | None = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> "ModelRef":
        return ModelRef(**d)

    @property
    def is_torch(self) -> bool:
        return self.kind != "onnx"


def resolve_ref(text: str, *, trust_pickle: bool = False, weights: str | None = None) -> ModelRef:
    """Classify a MODEL reference without importing torch."""
    text = str(text).strip()
    if not text:
        raise UsageError("empty MODEL reference", "pass file.py:factory, package.module:Class, a .pt/.pt2/.onnx file or sample:NAME")
    if text.startswith("sample:"):
        return _with_weights(_sample_ref(text), weights)
    path_part, attr = _split_attr(text)
    p = Path(path_part).expanduser()
    if p.suffix.lower() in model_suffixes() + (".py",) or os.sep in path_part or p.exists():
        ref = _file_ref(text, p, path_part, attr, trust_pickle)
        if weights and ref.kind != "python_file":  # a saved model carries its own weights
            raise UsageError(f"--weights applies to a model built by code, not to {p.name}, which carries its own weights",
                             "drop --weights, or pass the code that builds the model: file.py:build --weights FILE")
        return _with_weights(ref, weights)
    return _with_weights(_module_ref(text, path_part, attr), weights)


def _sample_ref(text: str) -> ModelRef:
    """``sample:NAME``: its digest covers the sample's module and the live-weights module."""
    name = text.split(":", 1)[1]
    import sample_models

    if name not in sample_models.SAMPLES:
        raise UsageError(f"unknown sample model {name!r}", f"choose one of: {', '.join(sample_models.SAMPLES)} (edgeport samples)")
    info = sample_models.SAMPLES[name]
    spec = importlib.util.find_spec(info.module)
    digest = sha256_file(spec.origin) if spec and spec.origin else ""
    live = importlib.util.find_spec("sample_models._live")
    if live and live.origin:
        digest = hashlib.sha256((digest + sha256_file(live.origin)).encode()).hexdigest()
    return ModelRef(ref=text, kind="sample", module=info.module, attr=name, sha256=digest)


def _file_ref(text: str, p: Path, path_part: str, attr: str | None, trust_pickle: bool) -> ModelRef:
    """A model file: ``file.py:factory``, a TorchScript ``.pt``, an ExportedProgram ``.pt2`` or an ``.onnx`` file."""
    suffix = p.suffix.lower()
    if suffix == ".tflite":
        raise UsageError(f"{text} is already a .tflite model", "edgeport converts from PyTorch or ONNX; use edgeport validate/bench on it")
    _check_model_file(p)
    absolute = str(p.resolve())
    digest = sha256_file(p)
    if suffix == ".py":
        if not attr:
            raise UsageError(f"{text} names no factory or class", f"write {path_part}:build (the function or class that makes the model)")
        return ModelRef(ref=text, kind="python_file", path=absolute, attr=attr, sha256=digest)
    if attr:
        raise UsageError(f"{text}: ':{attr}' only applies to .py files and modules", "pass the file alone")
    if suffix == ".onnx":  # external data files are checked (inside the model's folder) and hashed too
        from edgeport.onnx_data import digest_with_data

        return ModelRef(ref=text, kind="onnx", path=absolute, sha256=digest_with_data(p))
    if suffix == ".pt2":
        return ModelRef(ref=text, kind="exported_program", path=absolute, sha256=digest)
    if suffix in (".pt", ".pth", ".ptl", ".jit"):
        return ModelRef(ref=text, kind="torchscript", path=absolute, sha256=digest, trust_pickle=trust_pickle)
    raise UsageError(f"unsupported model file type {suffix or '(none)'} for {p}", "pass a .py, .pt, .pt2 or .onnx file")


def _check_model_file(p: Path) -> None:
    if not p.exists():
        raise InputError(f"model file {p} does not exist", "check the path, or use sample:NAME for a built-in model")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a model file", "pass a .py, .pt, .pt2 or .onnx file")
    if not os.access(p, os.R_OK):
        raise InputError(f"model file {p} is not readable", "check its permissions")
    if p.stat().st_size == 0:
        raise InputError(f"model file {p} is empty", "re-export or re-save the model")


def _module_ref(text: str, path_part: str, attr: str | None) -> ModelRef:
    """``package.module:attr``, found without importing the module."""
    if not attr:
        raise UsageError(f"cannot tell what {text!r} is: no such file, and no ':factory' part",
                         "pass file.py:factory, package.module:Class, a .pt/.pt2/.onnx file or sample:NAME")
    if not _MODULE_RE.match(path_part):
        raise UsageError(f"{path_part!r} is not a Python module name", "write package.module:factory")
    try:
        spec = importlib.util.find_spec(path_part)
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot find module {path_part!r}: {exc}", "check the name and that its package is installed") from None
    if spec is None:
        raise InputError(f"cannot find module {path_part!r}", "check the name, or install the package that provides it")
    digest = sha256_file(spec.origin) if spec.origin and os.path.isfile(spec.origin) else ""
    return ModelRef(ref=text, kind="module", module=path_part, attr=attr, sha256=digest)


def _split_attr(text: str) -> tuple[str, str | None]:
    # "C:\x.py:build" is not a concern here (POSIX); split on the last colon if what follows is an identifier
    if ":" in text:
        head, tail = text.rsplit(":", 1)
        if _ATTR_RE.match(tail):
            return head, tail
        if tail == "":
            raise UsageError(f"{text!r} ends with ':' but names no factory", "write file.py:build")
    return text, None


def _with_weights(ref: ModelRef, weights: str | None) -> ModelRef:
    if weights:
        w = Path(weights)
        if not w.is_file():
            raise InputError(f"weights file {w} does not exist", "check the --weights path")
        ref.weights = str(w.resolve())
        ref.weights_sha256 = sha256_file(w)
    return ref


# ------------------------------------------------------------------------------------ worker side


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module, ScriptModule or the ExportedProgram's module
    example_inputs: tuple | None  # tensors the factory returned, if any
    input_names: list[str] | None
    output_names: list[str] | None
    input_specs: list[TensorSpec] | None  # from a sample's declaration
    exported_program: Any = None


def _import_file(path: str, name_hint: str):
    mod_name = f"edgeport_user_{hashlib.sha1(path.encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {path}", "pass a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    parent = str(Path(path).parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ModelError(f"{path} has a syntax error at line {exc.lineno}: {exc.msg}", "fix the file") from None
    except ImportError as exc:
        raise ModelError(f"importing {path} failed: {exc}", "install what it imports, or fix the import") from None
    except Exception as exc:  # noqa: BLE001 - the user's module body raised
        raise ModelError(f"importing {path} raised {type(exc).__name__}: {exc}", "fix the module so it imports cleanly") from None
    return module


def _call_factory(obj: Any, where: str):
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise ModelError(f"{where} is not a class, a factory function or an nn.Module", "point at something that makes the model")
    try:
        return obj()
    except TypeError as exc:
        raise ModelError(f"calling {where}() failed: {exc}", "give the factory defaults for all arguments") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{where}() raised {type(exc).__name__}: {exc}", "fix the factory") from None


def _unpack_factory_result(result: Any, where: str) -> tuple[Any, tuple | None]:
    import torch

    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        ex = result[1]
        if isinstance(ex, torch.Tensor):
            ex = (ex,)
        elif isinstance(ex, list):
            ex = tuple(ex)
        ok = isinstance(ex, tuple) and all(
            isinstance(t, torch.Tensor) or (isinstance(t, dict) and t and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                                             for k, v in t.items())) for t in ex)
        if not ok:
            raise ModelError(f"{where} returned (module, example_inputs) but example_inputs is not a tensor or tuple of tensors",
                             "return (module, (tensor, ...)); a dict argument is {name: tensor}")
        return result[0], ex
    if isinstance(result, torch.nn.Module):
        return result, None
    raise ModelError(f"{where} returned {type(result).__name__}, not an nn.Module", "return the module, or (module, example_inputs)")


def load_model(ref_json: dict[str, Any]) -> LoadedModel:
    """Load a model reference inside a worker (imports torch)."""
    import torch

    ref = ModelRef.from_json(ref_json) if not isinstance(ref_json, ModelRef) else ref_json
    torch.manual_seed(ref.seed)
    specs = None
    out_names = None
    example = None
    ep = None
    in_names = None
    if ref.kind == "sample":
        import sample_models

        module, example = sample_models.build(ref.attr, seed=ref.seed)
        info = sample_models.SAMPLES[ref.attr]
        specs = [parse_input_spec(s, i) for i, s in enumerate(info.inputs)]
        if info.layout:
            specs = [s.with_(layout=info.layout) if s.rank == len(info.layout) else s for s in specs]
        out_names = list(info.outputs)
    elif ref.kind in ("python_file", "module"):
        where = ref.ref
        if ref.kind == "python_file":
            mod = _import_file(ref.path, ref.attr)
        else:
            try:
                mod = importlib.import_module(ref.module)
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"importing {ref.module} raised {type(exc).__name__}: {exc}", "fix the module or its dependencies") from None
        if not hasattr(mod, ref.attr):
            names = [n for n in dir(mod) if not n.startswith("_")][:12]
            raise ModelError(f"{ref.ref}: the module has no attribute {ref.attr!r}", f"pick one of: {', '.join(names)}")
        module, example = _unpack_factory_result(_call_factory(getattr(mod, ref.attr), where), where)
        example, in_names = _flatten_dict_example(module, example, where)
    elif ref.kind == "torchscript":
        module = _load_pt(ref)
    elif ref.kind == "exported_program":
        try:
            ep = torch.export.load(ref.path)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{ref.path} is not a loadable ExportedProgram ({type(exc).__name__}: {str(exc)[:120]})",
                             "save it with torch.export.save") from None
        module = ep.module()
        example = tuple(ep.example_inputs[0]) if getattr(ep, "example_inputs", None) else None
    else:
        raise UsageError(f"cannot load {ref.kind} models with torch", "pass a PyTorch model")
    if ref.weights:
        _apply_weights(module, ref)
    if isinstance(module, torch.nn.Module):
        module.eval()
    return LoadedModel(module=module, example_inputs=example, input_names=in_names, output_names=out_names,
                       input_specs=specs, exported_program=ep)


def _flatten_dict_example(module: Any, example: tuple | None, where: str) -> tuple[tuple | None, list[str] | None]:
    """Example inputs with dict arguments -> flat tensors named ``PARAM.KEY`` (what feeds a dict parameter)."""
    if example is None or not any(isinstance(t, dict) for t in example):
        return example, None
    names = forward_param_names(module)
    if names is None or len(names) < len(example):
        raise ModelError(f"{where}: a dict example input needs a forward whose parameters can be read by name",
                         "give forward named parameters (def forward(self, batch): ...)")
    flat, flat_names = [], []
    for n, t in zip(names, example):
        items = t.items() if isinstance(t, dict) else [(None, t)]
        for k, v in items:
            flat.append(v)
            flat_names.append(n if k is None else f"{n}.{k}")
    return tuple(flat), flat_names


def _load_pt(ref: ModelRef):
    import torch

    try:
        return torch.jit.load(ref.path, map_location="cpu")
    except Exception as jit_exc:  # noqa: BLE001 - not TorchScript; find out what it is
        jit_reason = str(jit_exc).splitlines()[0][:120] if str(jit_exc) else type(jit_exc).__name__
    if not zipfile.is_zipfile(ref.path):
        raise InputError(f"{ref.path} is neither a TorchScript archive nor a torch.save file ({jit_reason})",
                         "save the model with torch.jit.save, or pass file.py:factory")
    try:
        obj = torch.load(ref.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        if not ref.trust_pickle:
            raise SecurityError(
                f"{ref.path} is a pickled full model; unpickling it can run arbitrary code",
                "pass --trust-pickle if you trust its origin, or save it with torch.jit.save",
            ) from None
        try:
            obj = torch.load(ref.path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001
            raise InputError(f"{ref.path} could not be loaded: {type(exc2).__name__}: {str(exc2)[:120]}", "re-save the model") from None
        if not isinstance(obj, torch.nn.Module):
            raise InputError(f"{ref.path} holds a {type(obj).__name__}, not a model", "save the nn.Module itself")
        return obj
    if isinstance(obj, dict):
        raise UsageError(f"{ref.path} is a state dict (weights only), not a model",
                         f"pass the code that builds it with --weights {ref.path}: edgeport convert file.py:build --weights {ref.path}")
    if isinstance(obj, torch.nn.Module):
        return obj
    raise InputError(f"{ref.path} holds a {type(obj).__name__}, not a model", "save the model with torch.jit.save")


def _apply_weights(module, ref: ModelRef) -> None:
    import torch

    try:
        state = torch.load(ref.weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{ref.weights} is not a loadable state dict ({type(exc).__name__}: {str(exc)[:100]})",
                         "save weights with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{ref.weights} holds a {type(state).__name__}, not a state dict", "save model.state_dict()")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise ModelError(f"--weights {ref.weights} does not fit the model: {first}", "use the weights saved from this model's code") from None


def forward_param_names(module) -> list[str] | None:
    """Parameter names of forward(), for naming inputs (None when they cannot be read)."""
    try:
        fwd = module.forward
        sig = inspect.signature(fwd)
    except (TypeError, ValueError, AttributeError):
        return None
    names = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None
        names.append(p.name)
    return names


# ------------------------------------------------------------------------------------ sample data


def make_feed(specs: list[TensorSpec], dims: dict[str, int], seed: int, int_ranges: dict[str, tuple[int, int]] | None = None):
    """Seeded random inputs for specs (:func:`edgeport.data.feeds.random_samples`), dynamic dims taken from ``dims``.

    ``int_ranges`` holds closed ranges [low, high] per integer input; others draw from :data:`REFERENCE_INT_RANGE`.
    """
    import numpy as np

    from edgeport.data.feeds import random_samples

    for s in specs:
        shape = s.concrete(dims)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if n > MAX_SAMPLE_ELEMENTS:
            raise UsageError(f"input {s.name!r} of shape {list(shape)} has {n} elements, too many for sample data",
                             f"use a smaller shape (at most {MAX_SAMPLE_ELEMENTS} elements per input)")
    return random_samples(specs, 1, seed, dims, int_ranges, default_int_range=REFERENCE_INT_RANGE)[0]


def resolve_input_specs(loaded: LoadedModel, ref: ModelRef) -> tuple[list[TensorSpec], dict[str, int], tuple | None]:
    """Decide input names/shapes/dtypes and concrete dynamic sizes.

    Priority: --inputs-npz > --input > the sample's declaration > the factory's example inputs.
    Returns (specs, dims, example arrays or None).
    """

    example = loaded.example_inputs
    names = forward_param_names(loaded.module) if loaded.exported_program is None else None
    if ref.inputs_npz:
        from edgeport.refdata import load_npz

        data = load_npz(ref.inputs_npz)
        if not data:
            raise InputError(f"{ref.inputs_npz} holds no arrays", "save the inputs with numpy.savez(path, name=array, ...)")
        specs = [TensorSpec(name=k, shape=tuple(v.shape), dtype=str(v.dtype), layout=default_layout(v.ndim)) for k, v in data.items()]
        return specs, {}, tuple(data.values())
    if ref.inputs:
        specs = [TensorSpec.from_json(s) for s in ref.inputs]
        if names and all(s.name.startswith("input_") for s in specs) and len(names) == len(specs):
            specs = [s.with_(name=n) for s, n in zip(specs, names)]
        dims: dict[str, int] = {}
        if example is not None and len(example) == len(specs):
            for s, t in zip(specs, example):
                for d, size in zip(s.shape, t.shape):
                    if isinstance(d, str) and int(size) > 1:
                        dims.setdefault(d, int(size))
        for s in specs:
            for d in s.shape:
                if isinstance(d, str):
                    dims.setdefault(d, DEFAULT_DYNAMIC_SIZE)
        specs = [s.with_(layout=s.layout or default_layout(s.rank)) if s.dtype.startswith("float") else s for s in specs]
        return specs, dims, None
    if loaded.input_specs:
        specs = loaded.input_specs
        dims = {}
        if example is not None:
            if len(example) != len(specs):
                raise ModelError(f"sample declares {len(specs)} inputs but builds {len(example)}", "fix the sample declaration")
            for s, t in zip(specs, example):
                for d, size in zip(s.shape, t.shape):
                    if isinstance(d, str):
                        dims[d] = int(size)
        return specs, dims, tuple(t.detach().cpu().numpy() for t in example) if example is not None else None
    if example is not None:
        if loaded.input_names:
            names = loaded.input_names
        elif names is None or len(names) < len(example):
            names = [f"input_{i}" for i in range(len(example))]
        specs = []
        for n, t in zip(names, example):
            dtype = str(t.dtype).replace("torch.", "")
            specs.append(TensorSpec(name=n, shape=tuple(int(x) for x in t.shape), dtype=dtype,
                                    layout=default_layout(t.dim()) if t.is_floating_point() else None))
        return specs, {}, tuple(t.detach().cpu().numpy() for t in example)
    raise UsageError(f"{ref.ref}: no input shape known", "pass --input 1x3x224x224 (repeat for several inputs), or --inputs-npz file.npz")


def load_for_export(model_json: dict[str, Any]):
    """Convenience for converters: (module, example tensors, input names, output names).

    The example tensors are the reference's sample 0, so a conversion sees the same sizes as the
    reference data.
    """
    import torch

    from edgeport.refdata import load_reference

    loaded = load_model(model_json)
    ref = ModelRef.from_json(model_json)
    specs, dims, example = resolve_input_specs(loaded, ref)
    ref_path = ref.extra.get("reference")
    if ref_path and Path(ref_path).exists():
        ins, outs = load_reference(ref_path)
        arrays = [ins[0][s.name] for s in specs]
        out_names = list(outs[0].keys())
    else:
        arrays = list(example) if example is not None else list(make_feed(specs, dims, ref.seed).values())
        out_names = loaded.output_names
    tensors = tuple(torch.from_numpy(a.copy()) if hasattr(a, "shape") else a for a in arrays)
    return loaded.module, tensors, [s.name for s in specs], out_names
