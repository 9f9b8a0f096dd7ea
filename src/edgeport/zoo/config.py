"""The zoo file: a TOML list of models with defaults at the top, checked before anything runs.

    [defaults]
    formats = ["torchscript", "onnx"]
    [[model]]
    name = "tiny_cnn"
    reference = "sample:tiny_cnn"

Every mistake (a TOML syntax error, an unknown key, a wrong type, a model without a reference, two models
with one name, a reference that does not resolve) is a one-line UsageError (exit 2) naming the model and
the key. Paths in the file (references, ``inputs_npz``, ``weights``, ``calibration``) are relative to it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeport.errors import EdgeportError, UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MODEL_FILE_SUFFIXES = (".py", ".pt", ".pth", ".pt2", ".onnx", ".ptl", ".jit")

# key -> (accepted types, description for the error message); every key may sit in [defaults] or a [[model]]
SETTINGS: dict[str, tuple[tuple[type, ...], str]] = {
    "inputs": ((list,), "a list of input specs like \"x:1x3x224x224\""),
    "inputs_npz": ((str,), "a path to an .npz"),
    "weights": ((str,), "a path to a state dict"),
    "trust_pickle": ((bool,), "true or false"),
    "formats": ((list,), "a list of formats (torchscript, onnx, saved_model, tflite)"),
    "converter": ((str,), "auto, or a comma list of litert-torch, onnx2tf, onnx-tf"),
    "opset": ((int,), "an integer"),
    "seed": ((int,), "an integer"),
    "samples": ((int,), "an integer (reference and validation samples)"),
    "gate_rtol": ((int, float), "a number (the conversion's parity gate)"),
    "atol": ((int, float, dict), "a number or a table of output = number"),
    "rtol": ((int, float, dict), "a number or a table of output = number"),
    "statistic": ((str,), "elementwise, max, mean, median or pNN"),
    "bench": ((bool,), "true or false"),
    "bench_runs": ((int,), "an integer"),
    "bench_warmup": ((int,), "an integer"),
    "bench_runtimes": ((list,), "a list of runtimes (onnxruntime, tflite, torchscript, torch_eager, tensorflow)"),
    "quantize": ((list,), "a list of modes (fp16, dynamic, int8, int16x8, ort-dynamic, ort-qdq)"),
    "calibration": ((str,), "a calibration data path or module:function"),
    "calibration_samples": ((int,), "an integer"),
    "max_int8_delta": ((int, float), "a number (largest allowed drop of int8 top-1 agreement)"),
    "timeout": ((int, float), "seconds per step"),
}
MODEL_ONLY = {"name": ((str,), "a folder name"), "reference": ((str,), "a MODEL reference")}


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo with its defaults applied (plain data: it crosses process and Ray boundaries)."""

    name: str
    reference: str
    inputs: tuple[str, ...] = ()
    inputs_npz: str | None = None
    weights: str | None = None
    trust_pickle: bool = False
    formats: tuple[str, ...] = ("torchscript", "onnx")
    converter: str = "auto"
    opset: int = 18
    seed: int = 0
    samples: int = 3
    gate_rtol: float = 1e-4
    atol: Any = None
    rtol: Any = None
    statistic: str | None = None
    bench: bool = True
    bench_runs: int = 50
    bench_warmup: int = 5
    bench_runtimes: tuple[str, ...] = ("onnxruntime", "tflite")
    quantize: tuple[str, ...] = ()
    calibration: str | None = None
    calibration_samples: int = 32
    max_int8_delta: float | None = None
    timeout: float = 1800.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> "ModelSpec":
        return ModelSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Zoo:
    path: str
    models: list[ModelSpec] = field(default_factory=list)


def load_zoo(path: str | Path) -> Zoo:
    """Read and check a zoo file; every model's reference is resolved (no torch) so typos fail now."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"zoo file {p} does not exist", "pass a TOML zoo file, or write an example with edgeport zoo --init FILE")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"zoo file {p} is not UTF-8 text", "save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"zoo file {p} is not valid TOML: {exc}", "fix the syntax (see edgeport zoo --init for an example)") from None
    unknown = sorted(set(data) - {"defaults", "model"})
    if unknown:
        raise UsageError(f"zoo file {p}: unknown top-level key {unknown[0]!r}", "use [defaults] and [[model]] tables only")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"zoo file {p}: defaults must be a table", "write [defaults] followed by key = value lines")
    _check_table(defaults, SETTINGS, f"{p} [defaults]")
    models = data.get("model")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
        raise UsageError(f"zoo file {p} lists no models", "add [[model]] tables, each with name and reference")
    base = p.resolve().parent
    specs: list[ModelSpec] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(models, 1):
        spec = _model(table, defaults, base, f"{p} model {i}")
        if spec.name in seen:
            raise UsageError(f"zoo file {p}: models {seen[spec.name]} and {i} are both named {spec.name!r}",
                             "give each model a distinct name (it is its output folder)")
        seen[spec.name] = i
        specs.append(spec)
    return Zoo(path=str(p.resolve()), models=specs)


def _check_table(table: dict[str, Any], allowed: dict[str, tuple[tuple[type, ...], str]], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            close = [k for k in allowed if k.split("_")[0] == key.split("_")[0]]
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(allowed))}"
            raise UsageError(f"{where}: unknown key {key!r}", hint)
        types, desc = allowed[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and isinstance(value, list):
            ok = all(isinstance(v, str) for v in value)
        if ok and isinstance(value, dict):
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
        if not ok:
            raise UsageError(f"{where}: {key} = {value!r} has the wrong type", f"{key} takes {desc}")


def _model(table: dict[str, Any], defaults: dict[str, Any], base: Path, where: str) -> ModelSpec:
    _check_table(table, {**SETTINGS, **MODEL_ONLY}, where)
    reference = table.get("reference")
    if not reference or not reference.strip():
        raise UsageError(f"{where}: no reference", "add reference = \"sample:tiny_cnn\" (any MODEL form edgeport convert takes)")
    reference = _relative_to(reference.strip(), base)
    name = table.get("name") or _default_name(reference)
    where = f"{where} ({name})"
    if not NAME_RE.match(name):
        raise UsageError(f"{where}: name {name!r} cannot be a folder name", "use letters, digits, '.', '_' and '-'")
    values = {**defaults, **{k: v for k, v in table.items() if k not in MODEL_ONLY}}
    for key in ("inputs_npz", "weights"):
        if values.get(key):
            values[key] = str((base / values[key]).resolve())
    if values.get("calibration") and not _is_callable_ref(values["calibration"]):
        values["calibration"] = str((base / values["calibration"]).resolve())
    spec = ModelSpec(name=name, reference=reference,
                     **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    _check_resolves(spec, where)
    return spec


def _relative_to(reference: str, base: Path) -> str:
    """A file reference (file.py:build, model.onnx) is relative to the zoo file; sample: and modules stay."""
    if reference.startswith("sample:"):
        return reference
    head, sep, tail = reference.rpartition(":")
    if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", tail):
        head, sep, tail = reference, "", ""
    if head.lower().endswith(_MODEL_FILE_SUFFIXES) or "/" in head:
        head = str((base / head).resolve())
    return head + (f":{tail}" if sep else "")


def _is_callable_ref(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and not head.lower().endswith((".npz", ".npy")) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", tail) is not None


def _default_name(reference: str) -> str:
    if reference.startswith("sample:"):
        return reference.split(":", 1)[1]
    head, _, tail = reference.rpartition(":") if ":" in reference else (reference, "", "")
    stem = Path(head).stem if head else reference
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{stem}-{tail}" if tail and head.endswith(".py") else stem)


def _check_resolves(spec: ModelSpec, where: str) -> None:
    """The reference, input specs, formats and converter must make sense before anything runs."""
    from edgeport.api import SourceOptions, model_ref
    from edgeport.formats import targets

    bad = [f for f in spec.formats if f not in targets()]
    if bad or not spec.formats:
        raise UsageError(f"{where}: unknown format {bad[0]!r}" if bad else f"{where}: formats is empty",
                         f"use any of: {', '.join(targets())}")
    try:
        model_ref(spec.reference, SourceOptions(inputs=spec.inputs, inputs_npz=spec.inputs_npz, weights=spec.weights,
                                                trust_pickle=spec.trust_pickle, seed=spec.seed))
        if spec.quantize:
            from edgeport.quantize.sweep import parse_modes

            parse_modes(list(spec.quantize))
    except EdgeportError as exc:
        raise UsageError(f"{where}: {exc.message}", exc.hint or "fix the model entry") from None


INIT_TEMPLATE = '''\
# edgeport zoo file: every model below goes through convert -> validate -> bench (-> quantize)
# into its own folder OUT/<name>/. Run:   edgeport zoo THIS_FILE -o OUT [--jobs 2] [--ray auto]
# A re-run reuses every finished folder (the content-hash cache) and redoes only what changed.
# Paths are relative to this file.

[defaults]                       # apply to every model; a model's own keys win
formats = ["torchscript", "onnx"]   # torchscript, onnx, saved_model, tflite
converter = "auto"               # auto, or litert-torch, onnx2tf, onnx-tf (comma list keeps each)
samples = 3                      # reference samples recorded, and samples validated
# atol = 1e-5                    # validation tolerance: a number, or a table { logits = 1e-4 }
# rtol = 1e-4
bench = true                     # benchmark after validation
bench_runs = 50
bench_runtimes = ["onnxruntime", "tflite"]
# quantize = ["fp16", "dynamic", "int8"]   # optional quantization sweep (needs saved_model for TFLite modes)
# calibration = "calib/"         # images, .npz/.npy, or module:function; without it int8 calibrates on random data
# max_int8_delta = 0.05          # fail (exit 1) when int8 top-1 agreement drops more than this
timeout = 1800                   # seconds per conversion step

[[model]]
name = "tiny_cnn"                # its output folder: OUT/tiny_cnn
reference = "sample:tiny_cnn"    # any MODEL edgeport convert takes: file.py:build, pkg.mod:Class, .pt, .pt2, .onnx

[[model]]
name = "multi_io"
reference = "sample:multi_io"

[[model]]
name = "dynamic"
reference = "sample:dynamic"
# inputs = ["x:Bxseqx16:float32"]   # --input specs (a letter is a dynamic dimension)

# [[model]]
# name = "my_model"
# reference = "models/net.py:build"
# inputs = ["image:1x3x224x224"]
# formats = ["torchscript", "onnx", "saved_model", "tflite"]
# quantize = ["int8"]
# calibration = "calib/"
'''
