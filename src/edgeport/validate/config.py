"""Validation settings: tolerance defaults per artifact kind, per-output overrides, and the config file.

Tolerances are resolved per (artifact, output) from layers, later ones winning:

1. the default for the artifact's kind (:data:`KIND_DEFAULTS`, chosen from its ``variant``);
2. the config file: global keys, then ``[...validate.variants.KIND]``, then ``[...validate.outputs.NAME]``;
3. the command line: ``--atol 1e-4`` (global) then ``--atol logits:1e-3`` (one output).

The rule itself (``compare = "scale"``: every element within ``atol + rtol * max|ref|``, or
``"elementwise"``: numpy allclose) is :mod:`edgeport.tolerance`, the one convert's parity gate uses too.

The config file is ``edgeport.toml`` (table ``[validate]``) or ``pyproject.toml`` (table
``[tool.edgeport.validate]``), found in the working directory or its parents, or named with ``--config``::

    [tool.edgeport.validate]
    atol = 1e-4                    # or a list like the CLI: ["1e-4", "logits:1e-3"]
    rtol = 1e-3
    compare = "scale"              # or "elementwise" (numpy allclose: rtol relative to each element)
    statistic = "elementwise"      # max, mean, median, p99
    samples = 4
    seed = 0
    reference = "torch_eager"
    timeout = 300
    threads = 1
    jobs = 2
    [tool.edgeport.validate.outputs.logits]
    atol = 1e-3
    [tool.edgeport.validate.variants.int8]
    min_cosine = 0.995
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgeport.errors import InputError, UsageError
from edgeport.tolerance import ELEMENTWISE, FP32_ATOL, FP32_RTOL, SCALE, normalize_compare
from edgeport.validate.metrics import Tolerance, normalize_statistic

# Defaults per kind of artifact. fp32 and fp16 are judged against each output's magnitude (float noise
# is relative to it: fp32 conversions agree to ~1e-6 of it, fp16 to ~1e-3); quantized artifacts by their
# mean error, relative to each element, plus a cosine floor.
KIND_DEFAULTS: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=FP32_ATOL, rtol=FP32_RTOL, statistic="elementwise", compare=SCALE),
    "fp16": Tolerance(atol=1e-4, rtol=1e-2, statistic="elementwise", min_cosine=0.999, compare=SCALE),
    "quantized": Tolerance(atol=0.1, rtol=0.1, statistic="mean", min_cosine=0.98),
}
# The start when ``compare = "elementwise"`` is chosen for fp32 / fp16 (allclose needs a real absolute
# floor for the elements near zero): numpy-style ``atol + rtol * |ref|`` with ~100x headroom.
ELEMENTWISE_DEFAULTS: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, statistic="elementwise"),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2, statistic="elementwise", min_cosine=0.999),
}
TOLERANCE_KEYS = ("atol", "rtol", "compare", "statistic", "min_cosine", "min_snr_db", "min_top1")
RUN_KEYS = ("samples", "seed", "reference", "timeout", "threads", "jobs", "artifacts", "runtimes", "localize")
SECTION_KEYS = ("outputs", "variants")


def kind_of(variant: str) -> str:
    """fp32, fp16 or quantized, from an artifact's ``variant`` (fp32, fp16, dynamic-int8, int8, int16x8, ...)."""
    v = (variant or "fp32").lower()
    if any(k in v for k in ("int", "quant", "uint8", "qat")):
        return "quantized"
    if any(k in v for k in ("fp16", "float16", "half", "bf16", "bfloat16")):
        return "fp16"
    return "fp32"


def _float(value: Any, what: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {value!r} is not a number", "write a number such as 1e-4") from None
    if f < 0 or f != f:
        raise UsageError(f"{what}: {value!r} must be a non-negative number", "write a number such as 1e-4")
    return f


def parse_overrides(values: Iterable[str] | str | float | None, what: str) -> tuple[float | None, dict[str, float]]:
    """``["1e-4", "logits:1e-3"]`` -> (1e-4, {"logits": 1e-3}). Commas separate items too."""
    if values is None:
        return None, {}
    if isinstance(values, (int, float)):
        return _float(values, f"--{what}"), {}
    if isinstance(values, str):
        values = [values]
    glob: float | None = None
    per: dict[str, float] = {}
    for raw in values:
        for item in str(raw).split(","):
            item = item.strip()
            if not item:
                continue
            if ":" in item:
                name, val = item.rsplit(":", 1)
                if not name.strip():
                    raise UsageError(f"--{what} {item!r} names no output", f"write --{what} NAME:VALUE, e.g. --{what} logits:1e-3")
                per[name.strip()] = _float(val, f"--{what} {item}")
            else:
                glob = _float(item, f"--{what} {item}")
    return glob, per


def parse_compare(values: Iterable[str] | str | None) -> tuple[str | None, dict[str, str]]:
    """``["elementwise", "emb:scale"]`` -> ("elementwise", {"emb": "scale"}). Commas separate items too."""
    glob: str | None = None
    per: dict[str, str] = {}
    for raw in [values] if isinstance(values, str) else (values or []):
        for item in (i.strip() for i in str(raw).split(",")):
            if not item:
                continue
            name, sep, mode = item.rpartition(":")
            if sep and not name.strip():
                raise UsageError(f"--compare {item!r} names no output", "write --compare NAME:MODE, e.g. --compare logits:elementwise")
            if sep:
                per[name.strip()] = normalize_compare(mode)
            else:
                glob = normalize_compare(mode)
    return glob, per


def _tol_fields(table: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k not in TOLERANCE_KEYS:
            raise UsageError(f"unknown key {k!r} in {where}", f"use any of: {', '.join(TOLERANCE_KEYS)}")
        if k == "statistic":
            out[k] = normalize_statistic(v)
        elif k == "compare":
            out[k] = normalize_compare(v)
        else:
            out[k] = _float(v, f"{where}.{k}")
    return out


@dataclass
class ToleranceConfig:
    """Resolves the tolerance of one output of one artifact (see the module doc for the layers)."""

    config_global: dict[str, Any] = field(default_factory=dict)
    config_variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cli_global: dict[str, Any] = field(default_factory=dict)
    cli_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(self, variant: str, output: str) -> Tolerance:
        """The tolerance of ``output`` of an artifact of ``variant``: its kind's default for the chosen
        ``compare`` (:data:`KIND_DEFAULTS`, or :data:`ELEMENTWISE_DEFAULTS`), then every layer set."""
        kind = kind_of(variant)
        layers = [layer for layer in (self.config_global, self.config_variants.get(kind, {}), self.config_variants.get(variant, {}),
                                      self.config_outputs.get(output, {}), self.cli_global, self.cli_outputs.get(output, {}))
                  if layer]
        tol = KIND_DEFAULTS[kind]
        compare = next((layer["compare"] for layer in reversed(layers) if "compare" in layer), tol.compare)
        if compare != tol.compare:
            tol = ELEMENTWISE_DEFAULTS.get(kind, tol) if compare == ELEMENTWISE else tol
        for layer in layers:
            tol = tol.with_(**layer)
        return tol

    def for_artifact(self, variant: str):
        """A ``name -> Tolerance`` function for one artifact."""
        return lambda name: self.resolve(variant, name)

    def for_reference_check(self, variant: str):
        """A ``name -> Tolerance`` function for checking the reference against reference.npz.

        That check asks whether the model changed since convert, so float noise between processes must
        never fail it: the scale rule, never tighter than the kind's default (settings may loosen it).
        """
        base = KIND_DEFAULTS[kind_of(variant)]

        def tol(name: str) -> Tolerance:
            t = self.resolve(variant, name)
            return t.with_(compare=SCALE, atol=max(t.atol, base.atol), rtol=max(t.rtol, base.rtol))

        return tol

    def add_cli(self, atol: Iterable[str] | None = None, rtol: Iterable[str] | None = None, statistic: str | None = None,
                *, compare: Iterable[str] | str | None = None) -> None:
        """Command-line layers: ``--atol``/``--rtol`` VALUE or NAME:VALUE, ``--stat``, ``--compare`` MODE or NAME:MODE."""
        for key, values in (("atol", atol), ("rtol", rtol)):
            glob, per = parse_overrides(values, key)
            if glob is not None:
                self.cli_global[key] = glob
            for name, v in per.items():
                self.cli_outputs.setdefault(name, {})[key] = v
        if statistic:
            self.cli_global["statistic"] = normalize_statistic(statistic)
        glob_mode, per_mode = parse_compare(compare)
        if glob_mode is not None:
            self.cli_global["compare"] = glob_mode
        for name, mode in per_mode.items():
            self.cli_outputs.setdefault(name, {})["compare"] = mode

    def to_json(self) -> dict[str, Any]:
        return {
            "defaults": {k: t.to_json() for k, t in KIND_DEFAULTS.items()},
            "elementwise_defaults": {k: t.to_json() for k, t in ELEMENTWISE_DEFAULTS.items()},
            "config": {"global": self.config_global, "variants": self.config_variants, "outputs": self.config_outputs},
            "cli": {"global": self.cli_global, "outputs": self.cli_outputs},
        }


@dataclass
class ValidateConfig:
    """Run settings and tolerances, from the config file (CLI options are layered on by the caller)."""

    tolerances: ToleranceConfig = field(default_factory=ToleranceConfig)
    run: dict[str, Any] = field(default_factory=dict)  # samples, seed, reference, timeout, threads, ...
    source: str | None = None  # the file it came from


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest edgeport.toml, or pyproject.toml with a [tool.edgeport.validate] table, upwards from ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        e = d / "edgeport.toml"
        if e.is_file():
            return e
        p = d / "pyproject.toml"
        if p.is_file():
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue
            if isinstance(_table_at(data, ("tool", "edgeport", "validate")), dict):
                return p
    return None


def _table_at(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or is not a table."""
    cur: Any = data
    for key in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def load_config(path: str | os.PathLike | None = None, *, search: bool = True) -> ValidateConfig:
    """Read validation settings from ``path`` (or the nearest config file when ``search``)."""
    p = Path(path) if path else (find_config() if search else None)
    if p is None:
        return ValidateConfig()
    if not p.is_file():
        raise InputError(f"config file {p} does not exist", "check the --config path")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p} is not valid TOML: {exc}", "fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {p}: {exc}", "check the file") from None
    keys = ("tool", "edgeport", "validate") if p.name == "pyproject.toml" else ("validate",)
    where = f"[{'.'.join(keys)}]"
    cur: Any = data
    for depth, key in enumerate(keys):  # every level must be a table (pyproject.toml may say tool = "x")
        cur = cur.get(key, {})
        if not isinstance(cur, dict):
            raise UsageError(f"[{'.'.join(keys[:depth + 1])}] in {p} is not a table", "write it as a TOML table")
    table = cur
    return config_from_table(table, where, source=str(p))


def config_from_table(table: dict[str, Any], where: str = "[validate]", source: str | None = None) -> ValidateConfig:
    cfg = ValidateConfig(source=source)
    tc = cfg.tolerances
    for key, value in table.items():
        if key in ("atol", "rtol"):
            glob, per = parse_overrides(value if isinstance(value, (list, str)) else [str(value)], key)
            if glob is not None:
                tc.config_global[key] = glob
            for name, v in per.items():
                tc.config_outputs.setdefault(name, {})[key] = v
        elif key in TOLERANCE_KEYS:
            tc.config_global.update(_tol_fields({key: value}, where))
        elif key == "outputs":
            for name, sub in _subtables(value, f"{where}.outputs"):
                tc.config_outputs.setdefault(name, {}).update(_tol_fields(sub, f"{where}.outputs.{name}"))
        elif key == "variants":
            for name, sub in _subtables(value, f"{where}.variants"):
                tc.config_variants[name] = _tol_fields(sub, f"{where}.variants.{name}")
        elif key in RUN_KEYS:
            cfg.run[key] = _run_value(key, value, where)
        else:
            raise UsageError(f"unknown key {key!r} in {where}" + (f" of {source}" if source else ""),
                             f"use any of: {', '.join(TOLERANCE_KEYS + RUN_KEYS + SECTION_KEYS)}")
    return cfg


def _run_value(key: str, value: Any, where: str) -> Any:
    """Check the type of one run setting (a typo in CI config must fail loudly, not at run time)."""
    bad = UsageError(f"{where}.{key} = {value!r} is not valid", _RUN_HINTS[key])
    if key in ("samples", "threads", "jobs"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad
    elif key == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif key == "timeout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise bad
        value = float(value)
    elif key == "reference":
        if not isinstance(value, str) or not value.strip():
            raise bad
    elif key in ("artifacts", "runtimes"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
    elif key == "localize" and not isinstance(value, bool):
        raise bad
    return value


_RUN_HINTS = {
    "samples": "write a positive integer", "threads": "write a positive integer", "jobs": "write a positive integer",
    "seed": "write an integer", "timeout": "write seconds as a positive number", "reference": "write a runtime or artifact name",
    "artifacts": "write a list of artifact names", "runtimes": "write a list of runtime names", "localize": "write true or false",
}


def _subtables(value: Any, where: str):
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise UsageError(f"{where} must hold tables like {where}.NAME", "see the example in the README")
    return value.items()
