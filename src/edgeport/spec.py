"""Tensor and IO specifications, and the ``--input`` string grammar.

A shape string is dimensions joined by ``x`` (or ``,``): ``1x3x224x224``. A dimension is a positive
integer or a name (letters, digits and ``_``, starting with a letter, no ``x``) that marks it dynamic:
``Nx3x224x224``, ``Bxseqx16``. An ``--input`` is ``SHAPE``, ``SHAPE:DTYPE``, ``NAME:SHAPE`` or
``NAME:SHAPE:DTYPE``.

Every tensor an artifact consumes or produces carries a layout note: ``ref_name`` names the PyTorch
tensor it corresponds to and ``perm`` is the transpose that takes the reference tensor to this one
(``[0, 2, 3, 1]`` for NCHW -> NHWC). Runtimes feed and read tensors through it, so nobody guesses.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from edgeport.errors import UsageError

DTYPES = ("float32", "float16", "float64", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
_DTYPE_ALIASES = {
    "float": "float32", "fp32": "float32", "f32": "float32", "half": "float16", "fp16": "float16",
    "f16": "float16", "double": "float64", "fp64": "float64", "long": "int64", "int": "int32",
    "i64": "int64", "i32": "int32", "i8": "int8", "u8": "uint8", "bf16": "bfloat16",
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_DIM_NAME_RE = re.compile(r"^[A-WYZa-wyz_][A-WYZa-wyz0-9_]*$")  # no 'x' or 'X': it separates dims
MAX_DIM = 1 << 20
MAX_ELEMENTS = 1 << 31
DEFAULT_DYNAMIC_SIZE = 2

Dim = int | str


def normalize_dtype(text: str) -> str:
    t = str(text).strip().lower()
    t = _DTYPE_ALIASES.get(t, t)
    if t not in DTYPES:
        raise UsageError(f"unknown dtype {text!r}", f"use one of: {', '.join(DTYPES)}")
    return t


def parse_shape(text: str) -> tuple[Dim, ...]:
    """Parse ``1x3x224x224`` / ``Nx3x224x224`` / ``2,16``. A scalar is the empty string or ``scalar``."""
    raw = str(text).strip()
    if raw.lower() in ("", "scalar", "()"):
        return ()
    parts = re.split(r"[x,X]", raw)
    dims: list[Dim] = []
    for p in parts:
        p = p.strip()
        if re.fullmatch(r"[0-9]+", p):
            v = int(p)
            if v <= 0:
                raise UsageError(f"bad shape {text!r}: dimension {p} must be positive", "write sizes like 1x3x224x224")
            if v > MAX_DIM:
                raise UsageError(f"bad shape {text!r}: dimension {p} is absurdly large", f"keep each dimension <= {MAX_DIM}")
            dims.append(v)
        elif _DIM_NAME_RE.match(p):
            dims.append(p)
        else:
            raise UsageError(
                f"bad shape {text!r}: {p!r} is neither a positive size nor a dimension name",
                "write sizes like 1x3x224x224; a letter such as N marks a dynamic dimension",
            )
    return tuple(dims)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    layout: str | None = None  # e.g. "NCHW", "NHWC", "NCL"
    perm: tuple[int, ...] | None = None  # transpose taking the reference tensor to this one
    ref_name: str | None = None  # the reference (PyTorch) tensor this one corresponds to

    @property
    def is_dynamic(self) -> bool:
        return any(isinstance(d, str) for d in self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def concrete(self, sizes: dict[str, int] | None = None) -> tuple[int, ...]:
        sizes = sizes or {}
        return tuple(d if isinstance(d, int) else int(sizes.get(d, DEFAULT_DYNAMIC_SIZE)) for d in self.shape)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["perm"] = list(self.perm) if self.perm is not None else None
        return {k: v for k, v in d.items() if v is not None}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "TensorSpec":
        """Strict: anything that is not a well-formed spec raises UsageError (fuzzed in the tests)."""
        bad = UsageError(f"malformed tensor spec {str(data)[:120]}", "re-create it with edgeport convert")
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            raise bad
        raw_shape = data.get("shape")
        if not isinstance(raw_shape, (list, tuple)) or len(raw_shape) > 16:
            raise bad
        shape: list[Dim] = []
        for d in raw_shape:
            if isinstance(d, bool):
                raise bad
            if isinstance(d, int) and 0 < d <= MAX_DIM:
                shape.append(d)
            elif isinstance(d, str) and _DIM_NAME_RE.match(d):
                shape.append(d)
            else:
                raise bad
        perm = data.get("perm")
        if perm is not None:
            if (not isinstance(perm, (list, tuple)) or sorted(p for p in perm if isinstance(p, int) and not isinstance(p, bool)) != list(range(len(shape)))):
                raise bad
            perm = tuple(int(p) for p in perm)
        for key in ("layout", "ref_name"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise bad
        dtype = data.get("dtype", "float32")
        if not isinstance(dtype, str):
            raise bad
        return TensorSpec(name=data["name"], shape=tuple(shape), dtype=normalize_dtype(dtype), layout=data.get("layout"),
                          perm=perm, ref_name=data.get("ref_name"))

    def with_(self, **kw: Any) -> "TensorSpec":
        return replace(self, **kw)


def parse_input_spec(text: str, index: int = 0) -> TensorSpec:
    """Parse one ``--input`` value."""
    parts = str(text).strip().split(":")
    name: str | None = None
    dtype = "float32"
    if len(parts) == 1:
        shape_s = parts[0]
    elif len(parts) == 2:
        a, b = parts
        if b.strip().lower() in DTYPES or b.strip().lower() in _DTYPE_ALIASES:
            shape_s, dtype = a, b
        else:
            name, shape_s = a, b
    elif len(parts) == 3:
        name, shape_s, dtype = parts
    else:
        raise UsageError(f"bad --input {text!r}", "use SHAPE, NAME:SHAPE or NAME:SHAPE:DTYPE, e.g. x:Nx3x224x224:float32")
    if name is not None:
        name = name.strip()
        if not _NAME_RE.match(name):
            raise UsageError(f"bad input name {name!r} in --input {text!r}", "names start with a letter or _")
    shape = parse_shape(shape_s)
    dtype = normalize_dtype(dtype)
    spec = TensorSpec(name=name or f"input_{index}", shape=shape, dtype=dtype)
    n = 1
    for d in spec.concrete():
        n *= d
    if n > MAX_ELEMENTS:
        raise UsageError(f"--input {text!r} has {n} elements", "use a smaller shape")
    return spec


def parse_input_specs(texts: Sequence[str]) -> list[TensorSpec]:
    specs = [parse_input_spec(t, i) for i, t in enumerate(texts)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UsageError(f"duplicate input names in --input: {names}", "give each input a distinct name")
    return specs


def default_layout(rank: int) -> str | None:
    return {3: "NCL", 4: "NCHW", 5: "NCDHW"}.get(rank)


@dataclass
class IOSpec:
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "IOSpec":
        return IOSpec(
            inputs=[TensorSpec.from_json(t) for t in data.get("inputs", [])],
            outputs=[TensorSpec.from_json(t) for t in data.get("outputs", [])],
        )


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def to_artifact_layout(array, spec: TensorSpec):
    """Reference-layout array -> the layout ``spec`` expects."""
    if spec.perm is None or list(spec.perm) == list(range(len(spec.perm))):
        return array
    return array.transpose(spec.perm)


def to_reference_layout(array, spec: TensorSpec):
    """Array in ``spec``'s layout -> the reference (PyTorch) layout."""
    if spec.perm is None or list(spec.perm) == list(range(len(spec.perm))):
        return array
    return array.transpose(inverse_perm(spec.perm))
