"""The library API: the four commands as functions that return the reports the CLI renders.

    import edgeport
    result = edgeport.convert(model, (torch.randn(1, 3, 32, 32),), to="torchscript,onnx", out="out/")
    report = edgeport.validate("out/")          # ValidationReport: truthy when parity holds
    bench = edgeport.bench("out/", runs=50)      # BenchReport
    sweep = edgeport.quantize("out/", modes="fp16,dynamic")  # SweepReport

``convert`` takes every MODEL form the CLI takes (``"sample:tiny_cnn"``, ``"file.py:build"``, a .pt/.pt2/.onnx
path) or an ``nn.Module`` object. The pipeline runs each step in a worker process, so an object is handed
over as a file in the output folder's state directory (``OUT/.edgeport/source/``):

- ``handoff="pickle"``: ``torch.save`` of the whole module. The workers unpickle it, which imports the
  module's class by name; an object the caller built is trusted by construction, so ``trust_pickle`` is
  implied for this file. Needs every class to live in an importable module.
- ``handoff="fx"``: ``torch.fx.symbolic_trace(module)``, saved the same way. A GraphModule pickles its
  generated code with it, so the workers need no code of the caller's: this serves classes defined in
  ``__main__``, a notebook or a function. Needs a forward that fx can trace (no control flow on tensor
  values).
- ``handoff="auto"`` (default): pickle when every class is importable by name, else fx.

The hand-off file is named by a digest of its bytes and of the source code of the module's classes, so
converting the same object again reuses the finished artifacts (the content-hash cache) and an edit to
the class converts afresh. Which hand-off was used is recorded in the manifest (the pytorch artifact's
``options.model.extra.handoff``).

Nothing here imports torch or TensorFlow at module level; ``import edgeport`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from edgeport.errors import InputError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from edgeport.bench.runner import BenchReport
    from edgeport.convert.plan import ConvertResult, Event
    from edgeport.models import ModelRef
    from edgeport.quantize.sweep import SweepReport
    from edgeport.validate.results import ValidationReport

HANDOFFS = ("auto", "pickle", "fx")
SOURCE_DIR = "source"  # inside the output folder's state directory


@dataclass(frozen=True)
class SourceOptions:
    """How the model is found and fed: the MODEL-side options of ``edgeport convert``."""

    inputs: tuple[str, ...] = ()  # --input specs: SHAPE | NAME:SHAPE[:DTYPE]
    inputs_npz: str | None = None
    weights: str | None = None
    trust_pickle: bool = False
    seed: int = 0
    handoff: str = "auto"  # for nn.Module objects: auto, pickle or fx


# ------------------------------------------------------------------------------------------ convert


def convert(model: Any, example_inputs: Any = None, *, to: str | Sequence[str] = ("torchscript", "onnx"),
            out: str | os.PathLike, on_event: "Callable[[Event], None] | None" = None, **options: Any) -> "ConvertResult":
    """Convert ``model`` (a MODEL string or an nn.Module) to the formats in ``to``, writing ``out``.

    ``options`` are the keywords of :class:`SourceOptions` and of
    :class:`edgeport.convert.plan.ConvertOptions` (converter, opset, legacy_exporter, script, keep_layout,
    allow_flex, samples, rtol, timeout, use_cache); an unknown keyword is a UsageError.
    ``example_inputs`` (a tensor, array or tuple of them) applies to module objects and plays the role of
    ``--inputs-npz``. Returns the ConvertResult the CLI renders (``exit_code`` 0, 1 parity, 3 failure).
    """
    source, opts = _split_options(to, options)
    if out is None:
        raise UsageError("convert needs an output folder", "pass out='folder'")
    return run_convert(model, out, source, opts, on_event=on_event, example_inputs=example_inputs)


def run_convert(model: Any, out: str | os.PathLike, source: SourceOptions, options, *,
                on_event: "Callable[[Event], None] | None" = None, example_inputs: Any = None) -> "ConvertResult":
    """:func:`convert` with its options as objects (``edgeport convert`` calls this)."""
    out = Path(out).expanduser().absolute()
    if isinstance(model, (str, os.PathLike)):
        if example_inputs is not None:
            raise UsageError("example_inputs apply to nn.Module objects", "pass inputs=[...] or inputs_npz= for a MODEL string")
        ref = model_ref(str(model), source)
        return _run_pipeline(ref, out, options, on_event, created=not out.exists())
    return _convert_module(model, example_inputs, out, source, options, on_event)


def targets(to: str | Sequence[str]) -> tuple[str, ...]:
    """``"torchscript,onnx"`` or a list of formats -> the ordered, unique formats (--to)."""
    from edgeport.cli.common import split_list

    found = tuple(dict.fromkeys(split_list(list(to) if not isinstance(to, str) else to)))
    if not found:
        raise UsageError("--to names no format", "use e.g. --to torchscript,onnx,saved_model,tflite")
    return found


def _split_options(to: str | Sequence[str], options: dict[str, Any]):
    from edgeport.convert.plan import ConvertOptions

    src_fields = {f.name for f in dataclasses.fields(SourceOptions)}
    conv_fields = {f.name for f in dataclasses.fields(ConvertOptions)} - {"targets"}
    unknown = sorted(set(options) - src_fields - conv_fields)
    if unknown:
        raise UsageError(f"unknown convert option {unknown[0]!r}",
                         f"use any of: {', '.join(sorted(src_fields | conv_fields))}")
    formats = targets(to)
    src = {k: v for k, v in options.items() if k in src_fields}
    if "inputs" in src:
        src["inputs"] = tuple(split_inputs(src["inputs"]))
    for key in ("inputs_npz", "weights"):
        if src.get(key) is not None:
            src[key] = str(src[key])
    source = SourceOptions(**src)
    if source.handoff not in HANDOFFS:
        raise UsageError(f"handoff {source.handoff!r} is unknown", f"use one of: {', '.join(HANDOFFS)}")
    return source, ConvertOptions(targets=formats, **{k: v for k, v in options.items() if k in conv_fields})


def split_inputs(value: str | Iterable[str] | None) -> list[str]:
    """``"x:1x3x8x8"`` or a list of specs -> a list of specs."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def model_ref(model: str, source: SourceOptions = SourceOptions()) -> "ModelRef":
    """Resolve a MODEL string with its input options, as ``edgeport convert`` does (imports no torch)."""
    from edgeport.models import resolve_ref
    from edgeport.spec import parse_input_specs

    specs = parse_input_specs(list(source.inputs))
    if source.inputs and source.inputs_npz:
        raise UsageError("--input and --inputs-npz both given", "use one of them")
    ref = resolve_ref(model, trust_pickle=source.trust_pickle, weights=source.weights)
    ref.seed = source.seed
    if specs:
        ref.inputs = [s.to_json() for s in specs]
    if source.inputs_npz:
        npz = Path(source.inputs_npz)
        if not npz.is_file():
            raise InputError(f"--inputs-npz {npz} does not exist", "check the path")
        ref.inputs_npz = str(npz.resolve())
    return ref


def _run_pipeline(ref: "ModelRef", out: Path, opts, on_event, *, created: bool) -> "ConvertResult":
    from edgeport.convert.plan import convert as run_convert
    from edgeport.outdir import has_artifacts
    from edgeport.errors import EdgeportError
    from edgeport.manifest import MANIFEST_NAME

    try:
        return run_convert(ref, out, opts, on_event=on_event)
    except BaseException as exc:
        # the pipeline cleans up folders it created; one made for the hand-off file is cleaned up here, by its rule
        bad_input = isinstance(exc, EdgeportError) and exc.exit_code == 2
        if created and out.is_dir() and (bad_input or not ((out / MANIFEST_NAME).exists() or has_artifacts(out))):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _convert_module(module: Any, example_inputs: Any, out: Path, source: SourceOptions, opts, on_event) -> "ConvertResult":
    import torch

    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"convert takes a MODEL string or an nn.Module, not {type(module).__name__}",
                         "pass e.g. 'sample:tiny_cnn', 'file.py:build' or a torch.nn.Module")
    if source.weights or source.inputs_npz:
        raise UsageError("weights/inputs_npz apply to MODEL strings", "load the weights into the module; pass example_inputs")
    if example_inputs is None and not source.inputs:
        raise UsageError("an nn.Module needs example inputs", "pass example_inputs=(tensor, ...) or inputs=['x:1x3x224x224']")
    if example_inputs is not None and source.inputs:
        raise UsageError("example_inputs and inputs both given", "use one of them")
    method = _handoff_method(module, source)
    created = not out.exists()
    from edgeport import outdir

    outdir.check_out(out)  # the pipeline's rule, checked before the hand-off file is written
    state = outdir.state_dir(out) / SOURCE_DIR
    state.mkdir(parents=True, exist_ok=True)
    try:
        ref = _handoff(module, example_inputs, source, method, state)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    result = _run_pipeline(ref, out, opts, on_event, created=created)
    _remove_stale(state, keep={Path(ref.path).name, Path(ref.inputs_npz).name if ref.inputs_npz else ""})
    return result


def _handoff_method(module: Any, source: SourceOptions) -> str:
    if source.handoff != "auto":
        return source.handoff
    return "pickle" if not unimportable_classes(module) else "fx"


def unimportable_classes(module: Any) -> list[str]:
    """Classes of ``module``'s submodules a worker could not import by name (``__main__``, local classes)."""
    import importlib.util

    bad = []
    for cls in dict.fromkeys(type(m) for m in module.modules()):
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ in ("__main__", "__mp_main__") or "<locals>" in cls.__qualname__:
            bad.append(name)
            continue
        try:
            found = importlib.util.find_spec(cls.__module__) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            bad.append(name)
    return bad


def _handoff(module: Any, example_inputs: Any, source: SourceOptions, method: str, state: Path) -> "ModelRef":
    """Write the module (and its example inputs) under ``state`` and return a reference the workers load."""
    from edgeport.models import resolve_ref

    module.eval()
    arrays = _example_arrays(example_inputs) if example_inputs is not None else None
    if method == "pickle":
        bad = unimportable_classes(module)
        if bad:
            raise UsageError(f"handoff='pickle' needs importable classes, but {bad[0]} is not importable by name",
                             "define the class in a module on sys.path, or use handoff='fx'")
    names = _input_names(module, arrays)
    with tempfile.TemporaryDirectory(dir=state, prefix=".handoff-") as tmp:
        path = Path(tmp) / "model.pt"
        _save_module(module, method, path)
        digest = _digest(path, module)
        final = _install_named(path, state, f"{method}-{digest[:16]}{path.suffix}")
        npz = _install_npz(dict(zip(names, arrays)), state, tmp) if arrays is not None else None
    ref = resolve_ref(str(final), trust_pickle=True)
    cls = type(module)
    ref.ref = f"{cls.__module__}.{cls.__qualname__} (nn.Module object)"
    ref.sha256 = digest
    ref.seed = source.seed
    ref.extra = {"handoff": method}
    if npz is not None:
        ref.inputs_npz = str(npz)
    elif source.inputs:  # unnamed specs take forward's parameter names in the reference step
        from edgeport.spec import parse_input_specs

        ref.inputs = [s.to_json() for s in parse_input_specs(list(source.inputs))]
    return ref


def _example_arrays(example_inputs: Any) -> list:
    import numpy as np
    import torch

    items = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    arrays = []
    for i, t in enumerate(items):
        if isinstance(t, torch.Tensor):
            arrays.append(t.detach().cpu().numpy())
        elif isinstance(t, np.ndarray):
            arrays.append(t)
        else:
            raise UsageError(f"example input {i} is a {type(t).__name__}, not a tensor or array",
                             "pass example_inputs as a tensor or a tuple of tensors")
    if not arrays:
        raise UsageError("example_inputs is empty", "pass at least one tensor")
    return arrays


def _input_names(module: Any, arrays: list | None) -> list[str]:
    from edgeport.models import forward_param_names

    if arrays is None:
        return []
    names = forward_param_names(module)
    if not names or len(names) < len(arrays):
        return [f"input_{i}" for i in range(len(arrays))]
    return names[:len(arrays)]


def _save_module(module: Any, method: str, path: Path) -> None:
    import torch

    from edgeport.errors import ModelError

    if method == "fx":
        try:
            module = torch.fx.symbolic_trace(module)
        except Exception as exc:  # noqa: BLE001 - control flow on tensor values and the like
            msg = " ".join(str(exc).split())[:200]
            raise ModelError(f"torch.fx cannot trace the module: {type(exc).__name__}: {msg}",
                             "define its class in an importable module (handoff='pickle'), or avoid control flow on tensor values") from None
    try:
        torch.save(module, str(path))
    except Exception as exc:  # noqa: BLE001 - an unpicklable attribute (a lambda, a file handle...)
        raise ModelError(f"the module cannot be pickled: {type(exc).__name__}: {str(exc)[:160]}",
                         "remove the unpicklable attribute, or use handoff='fx'") from None


def _digest(path: Path, module: Any) -> str:
    """Bytes of the hand-off file plus the source of every class (a pickle holds no code)."""
    from edgeport.fsutil import sha256_file

    h = hashlib.sha256(sha256_file(path).encode())
    for cls in dict.fromkeys(type(m) for m in module.modules()):
        h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        try:
            h.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            h.update(b"<no source>")
    return h.hexdigest()


def _install_named(tmp_file: Path, folder: Path, name: str) -> Path:
    from edgeport.fsutil import install_path

    final = folder / name
    if not final.exists():
        install_path(tmp_file, final)
    return final


def _install_npz(arrays: Mapping[str, Any], folder: Path, tmp: str) -> Path:
    """Example inputs as an .npz named by their content (numpy's zip stamps the time, so bytes differ per write)."""
    import numpy as np

    h = hashlib.sha256()
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        h.update(f"{name}|{a.dtype}|{a.shape}".encode())
        h.update(a.tobytes())
    final = folder / f"inputs-{h.hexdigest()[:16]}.npz"
    if not final.exists():
        staged = Path(tmp) / "inputs.npz"
        np.savez(staged, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
        _install_named(staged, folder, final.name)
    return final


def _remove_stale(folder: Path, keep: set[str]) -> None:
    for p in folder.iterdir():
        if p.name not in keep and not p.name.startswith(".handoff-"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ validate


def validate(out: str | os.PathLike, other: str | os.PathLike | None = None, *, config: Any = False,
             atol: Any = None, rtol: Any = None, statistic: str | None = None, compare: Any = None, resize: Any = None,
             progress: Callable[[str], None] | None = None, **options: Any) -> "ValidationReport":
    """Parity of every artifact in ``out`` (or of model file ``other`` against ``out``) on every runtime.

    ``config``: False (default) ignores settings files, None uses the nearest one (as the CLI does), a path
    reads that file. ``atol``/``rtol``: a number, ``"NAME:VALUE"`` strings or a ``{name: value}`` dict;
    ``compare``: ``"scale"``/``"elementwise"`` or ``"NAME:MODE"`` strings (``--compare``).
    ``options`` are the fields of :class:`edgeport.validate.parity.ValidateOptions` (samples, seed,
    inputs_npz, images, mean, std, reference, artifacts, runtimes, threads, jobs, timeout, localize,
    keep_outputs). Returns the ValidationReport (truthy when every row passed; ``exit_code`` 0/1/3).
    """
    from edgeport.validate.parity import validate_dir, validate_files

    opts = validate_options(config=config, atol=atol, rtol=rtol, statistic=statistic, compare=compare, resize=resize,
                            progress=progress, **options)
    if other is not None:
        return validate_files(out, other, opts)
    from edgeport.bundle import resolve_target

    return validate_dir(resolve_target(Path(out)), opts)  # a device bundle opens to its checked folder


def validate_options(*, config: Any = False, atol: Any = None, rtol: Any = None, statistic: str | None = None,
                     compare: Any = None, resize: Any = None, progress: Callable[[str], None] | None = None,
                     **options: Any):
    """ValidateOptions from keywords, layered over a settings file's [validate] run table."""
    from edgeport.cli.common import split_list
    from edgeport.validate.config import ValidateConfig, load_config
    from edgeport.data.images import parse_resize
    from edgeport.validate.parity import DEFAULT_TIMEOUT, ValidateOptions

    fields = {f.name for f in dataclasses.fields(ValidateOptions)} - {"tolerances", "progress", "resize"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UsageError(f"unknown validate option {unknown[0]!r}", f"use any of: {', '.join(sorted(fields))}")
    cfg = ValidateConfig() if config is False else load_config(config)
    cfg.tolerances.add_cli(_overrides(atol), _overrides(rtol), statistic, compare=compare)
    run = cfg.run

    def pick(key: str, default: Any = None) -> Any:
        value = options.get(key)
        return value if value is not None else run.get(key, default)

    for key in ("inputs_npz", "images", "keep_outputs"):
        if options.get(key) is not None:
            options[key] = str(options[key])
    if cfg.source and progress is not None:
        progress(f"settings from {cfg.source}")
    return ValidateOptions(
        samples=pick("samples"), seed=int(pick("seed", 0)), inputs_npz=options.get("inputs_npz"),
        images=options.get("images"), resize=parse_resize(resize) if isinstance(resize, str) or resize is None else tuple(resize),
        mean=options.get("mean"), std=options.get("std"), reference=pick("reference"),
        artifacts=split_list(options.get("artifacts")) or split_list(run.get("artifacts")) or None,
        runtimes=split_list(options.get("runtimes")) or split_list(run.get("runtimes")) or None,
        tolerances=cfg.tolerances, threads=int(pick("threads", 1)), jobs=int(pick("jobs", 1)),
        timeout=float(pick("timeout", DEFAULT_TIMEOUT)), localize=bool(options.get("localize") or run.get("localize", False)),
        keep_outputs=options.get("keep_outputs"), progress=progress)


def _overrides(value: Any) -> list[str] | None:
    """A tolerance given as a number, a string, a list of strings or a {name: value} dict -> CLI strings."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return [f"{k}:{v}" for k, v in value.items()]
    if isinstance(value, (int, float, str)):
        return [str(value)]
    return [str(v) for v in value]


# ------------------------------------------------------------------------------------------ bench


def bench(target: str | os.PathLike, *, threads: Any = (1,), baseline: str | os.PathLike | None = None,
          max_regression: str = "10%", gate_metric: str = "p50", min_delta_ms: float = 0.0, remote: str | None = None,
          ssh_identity: str | None = None, ssh_options: Sequence[str] = (), remote_edgeport: str = "edgeport",
          **options: Any) -> "BenchReport":
    """Latency, memory and size of every artifact in ``target`` (a folder, a bundle or a model file).

    ``options`` are the fields of :class:`edgeport.bench.runner.BenchOptions` (artifacts, runtimes, warmup,
    runs, seconds, timeout, inputs, seed, max_samples, progress). With ``baseline`` (an earlier
    ``bench --json``) the report carries a regression gate. ``remote`` (ssh://user@host) measures there.
    """
    from edgeport.bench.runner import BenchOptions, bench_target, load_report

    fields = {f.name for f in dataclasses.fields(BenchOptions)} - {"threads"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UsageError(f"unknown bench option {unknown[0]!r}", f"use any of: {', '.join(sorted(fields | {'threads'}))}")
    from edgeport.cli.common import split_list

    for key in ("artifacts", "runtimes"):
        if key in options:
            options[key] = split_list(options[key]) or None
    if options.get("inputs") is not None:
        options["inputs"] = split_inputs(options["inputs"])
    opts = BenchOptions(threads=_thread_list(threads), **options)
    opts.check()
    gate = _gate_args(baseline, max_regression, gate_metric, load_report)
    if remote:
        from edgeport.remote import bench_remote, parse_ssh_url

        where = parse_ssh_url(remote, identity=ssh_identity, options=list(ssh_options), edgeport=remote_edgeport)
        report = bench_remote(Path(target), where, opts)
    else:
        report = bench_target(target, opts)
    if gate is not None:
        from edgeport.bench.gate import compare_to_baseline

        base, limit, label = gate
        report.gate = compare_to_baseline(report, base, limit, gate_metric, min_delta_ms, label).to_json()
    return report


def _thread_list(threads: Any) -> list[int]:
    from edgeport.cli.common import split_list

    values = [threads] if isinstance(threads, int) else split_list(threads) if isinstance(threads, str) else list(threads)
    out: list[int] = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise UsageError(f"--threads {threads!r} is not a list of numbers", "write e.g. --threads 1,2,4") from None
    return list(dict.fromkeys(out))


def _gate_args(baseline, max_regression: str, gate_metric: str, load_report):
    if baseline is None:
        return None
    from edgeport.bench.gate import METRICS, parse_regression

    if gate_metric not in METRICS:
        raise UsageError(f"--gate-metric {gate_metric!r} is unknown", f"use one of: {', '.join(METRICS)}")
    limit = parse_regression(max_regression)
    return load_report(baseline), limit, str(baseline)


# ------------------------------------------------------------------------------------------ quantize


# CLI option names -> CalibrationOptions fields
_CALIBRATION_ALIASES = {"calibration": "source", "calibration_samples": "samples", "holdout_samples": "holdout",
                        "eval_data": "eval_source", "random_calibration": "allow_random", "calibration_layout": "data_layout"}


def quantize(out: str | os.PathLike, *, modes: str | Sequence[str] = "all", progress: Callable[[str], None] | None = None,
             **options: Any) -> "SweepReport":
    """Quantized variants of ``out``'s SavedModel/ONNX model: size, latency and accuracy (the quantize sweep).

    ``options`` are the fields of :class:`edgeport.quantize.sweep.QuantizeOptions` (io_dtype, keep_float,
    layers, rank_by, latency_runs, reference, timeout, ...) and of
    :class:`edgeport.quantize.calibration.CalibrationOptions`, also under their CLI names (calibration,
    calibration_samples, holdout_samples, eval_data, random_calibration, calibration_layout). Strings are
    parsed as the CLI parses them (``resize="224x224"``, ``mean="0.485,0.456,0.406"``, ``keep_float="3"``).
    Returns the SweepReport (``exit_code`` 0 the sweep ran, 3 nothing could be made).
    """
    from edgeport.quantize.calibration import CalibrationOptions
    from edgeport.quantize.sweep import QuantizeOptions, parse_modes, sweep

    q_fields = {f.name for f in dataclasses.fields(QuantizeOptions)} - {"modes", "calibration"}
    c_fields = {f.name for f in dataclasses.fields(CalibrationOptions)}
    cal: dict[str, Any] = {}
    qo: dict[str, Any] = {}
    for key, value in options.items():
        name = _CALIBRATION_ALIASES.get(key, key)
        if name in c_fields:
            cal[name] = value
        elif name in q_fields:
            qo[name] = value
        else:
            known = sorted(q_fields | c_fields | set(_CALIBRATION_ALIASES))
            raise UsageError(f"unknown quantize option {key!r}", f"use any of: {', '.join(known)}")
    _check_quantize(qo, cal)
    opts = QuantizeOptions(modes=parse_modes(modes if isinstance(modes, str) else list(modes)),
                           calibration=CalibrationOptions(**_calibration_values(cal)), **qo)
    return sweep(out, opts, progress)


def _check_quantize(qo: dict[str, Any], cal: dict[str, Any]) -> None:
    from edgeport.quantize.debug import RANK_KEYS
    from edgeport.quantize.sweep import parse_keep_float

    if qo.get("rank_by", "snr_db") not in RANK_KEYS:
        raise UsageError(f"--rank-by {qo['rank_by']!r} is not one of {', '.join(RANK_KEYS)}", "use --rank-by snr_db or rmse_scale")
    if qo.get("reference", "auto") not in ("auto", "torch", "onnx"):
        raise UsageError(f"--reference {qo['reference']!r} is not auto, torch or onnx", "use --reference auto")
    if qo.get("io_dtype", "float") not in ("float", "int8", "uint8"):
        raise UsageError(f"--io-dtype {qo['io_dtype']!r} is not float, int8 or uint8", "use --io-dtype float")
    if cal.get("source") and cal.get("allow_random"):
        raise UsageError("--calibration and --random-calibration both given", "use one of them")
    kf = qo.get("keep_float")
    if isinstance(kf, (str, list, tuple)):
        qo["keep_float"] = parse_keep_float(",".join(kf) if isinstance(kf, (list, tuple)) else kf)


def _calibration_values(cal: dict[str, Any]) -> dict[str, Any]:
    from edgeport.data.images import parse_floats, parse_resize
    from edgeport.data.layout import parse_layout

    out = dict(cal)
    for key in ("source", "eval_source", "labels"):
        if out.get(key) is not None:
            out[key] = str(out[key])
    if isinstance(out.get("resize"), str):
        out["resize"] = parse_resize(out["resize"])
    for key in ("mean", "std"):
        if key in out:
            out[key] = parse_floats(out[key], f"--{key}")
    if isinstance(out.get("data_layout"), str):
        out["data_layout"] = parse_layout(out["data_layout"])
    return out
