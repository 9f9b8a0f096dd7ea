"""ONNX -> TF SavedModel + float32 .tflite with onnx2tf (PINTO0309/onnx2tf 1.29.x, Python API).

Runs inside a worker (:func:`run`). What it does around ``onnx2tf.convert`` and why:

- The user's .onnx is only read: it is loaded (with any external data) and a simplified copy is
  written into a private work folder, because onnx2tf overwrites its input file.
- onnx-simplifier runs here (in a worker of its own) instead of inside onnx2tf: onnx2tf shells out to an
  ``onnxsim`` executable found on PATH, which is missing whenever edgeport runs from a venv that is not
  activated, and it then carries on silently *without* simplification (the dynamic sample failed that
  way). The same simplification happens (up to 3 passes, as onnx2tf does) and fixed input shapes are
  folded in when static shapes are asked for; ``not_use_onnxsim=True`` then tells onnx2tf it is done.
- Offline: when every input is a 4-D, 3-channel image onnx2tf reads
  ``calibration_image_sample_data_20x128x128x3_float32.npy`` from the *current directory* and
  otherwise downloads it from GitHub (onnx2tf/utils/common_functions.py:download_test_image_data). It
  only feeds its own dummy inference (and int8 calibration, which edgeport does not ask onnx2tf for),
  so a seeded uniform [0, 1) array of that shape is written into the work folder and the worker
  chdirs there. The worker's network guard makes any connection attempt fail loudly.
- Flex ops: exact GELU's Erf becomes FlexErf, which LiteRT cannot run. When the graph holds an op
  onnx2tf can replace by a builtin-only "pseudo" op (``replace_to_pseudo_operators``, lower-case
  names: 'Erf' is silently ignored) the replacement is asked for up front; if Flex ops remain in the
  .tflite, their pseudo replacements are added and the conversion retried once. What remains is
  recorded in ``ops`` and the notes; :mod:`edgeport.convert.check` rejects Flex ops unless allowed.
- Layout: by default 4-D/5-D inputs become channels-last (onnx2tf's native layout, what TFLite kernels
  want) and the perm is recorded. 3-D inputs keep their PyTorch shape (``keep_shape_absolutely``):
  onnx2tf would transpose every 3-D input as if it were (N, C, L), which turns a (B, T, F) sequence into
  (B, F, T); ``channels_last_3d=True`` asks for that transpose. ``keep_layout=True`` keeps every input
  in its PyTorch layout (``keep_ncw_or_nchw_or_ncdhw_input_names``). Output layouts are whatever
  onnx2tf produces; they are measured, not assumed (see :func:`edgeport.convert.io_resolution.resolve_io`).
- Dynamic dims: kept when onnx2tf can convert them; when it cannot (it fails on the dynamic sample's
  attention with batch and sequence both dynamic) the conversion is retried with the reference's
  concrete sizes (``static_shapes="auto"``), and the notes and IO shapes say so.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgeport.convert.base import tool_versions
from edgeport.errors import ConversionError, EdgeportError, InputError, UsageError
from edgeport.fsutil import sha256_file
from edgeport.manifest import Artifact
from edgeport.convert.check import DEFAULT_RTOL
from edgeport.refdata import load_reference
from edgeport.spec import IOSpec, TensorSpec

CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
CALIBRATION_SHAPE = (20, 128, 128, 3)
TARGETS = ("saved_model", "tflite")
# ONNX op type -> onnx2tf pseudo-operator name (lower case, as onnx2tf's ops/*.py test for them).
# Only ops without a TFLite builtin: HardSwish, LeakyRelu, PRelu, GatherND, Abs, Neg, Pow have builtins, and
# their pseudo forms only add ops (a pseudo HardSwish made mobile_cnn's conversion 2x slower).
PSEUDO_FOR_ONNX_OP = {"Erf": "erf", "Asin": "asin", "Acos": "acos", "Atan": "atan"}
# Flex op left in a .tflite -> pseudo-operator that avoids it.
PSEUDO_FOR_FLEX = {"FlexErf": "erf", "FlexAsin": "asin", "FlexAcos": "acos", "FlexAtan": "atan",
                   "FlexGatherNd": "gathernd", "FlexAbs": "abs", "FlexNeg": "neg", "FlexPow": "power"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Onnx2TfOptions:
    """Options of the onnx2tf converter (built from ``job["options"]``).

    - ``targets``: subset of ("saved_model", "tflite") to return.
    - ``keep_layout``: keep every input in its PyTorch layout (NCHW) instead of channels-last.
    - ``allow_flex``: Flex ops are acceptable (recorded; the check step lets them pass).
    - ``channels_last_3d``: let onnx2tf transpose 3-D inputs (N, C, L) -> (N, L, C).
    - ``static_shapes``: "auto" (keep dynamic dims, fix them to the reference sizes if onnx2tf fails),
      "always" (fix them up front), "never" (fail rather than fix).
    - ``simplify``: run onnx-simplifier before onnx2tf (onnx2tf converts far less without it).
    - ``pseudo_ops``: extra onnx2tf ``replace_to_pseudo_operators`` names.
    - ``auto_pseudo``: "upfront" (replace ops known to become Flex before converting), "on_flex"
      (only retry with replacements when the .tflite holds Flex ops), "off" (never).
    - ``verify_io``: run the converted models on the reference samples to verify the output mapping.
    - ``rtol``: the user's parity tolerance (relative to the output's magnitude), for the retry decisions.
    """

    targets: tuple[str, ...] = TARGETS
    keep_layout: bool = False
    allow_flex: bool = False
    channels_last_3d: bool = False
    static_shapes: str = "auto"
    simplify: bool = True
    pseudo_ops: tuple[str, ...] = ()
    auto_pseudo: str = "upfront"
    verify_io: bool = True
    rtol: float = DEFAULT_RTOL  # the parity gate's --rtol: a retry is made when a result is worse than this
    timeout: float = 1800.0  # seconds for one converter run in a managed environment

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> tuple["Onnx2TfOptions", list[str]]:
        """Options from a plain dict; returns (options, names of keys that are not options here)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        ignored = sorted(k for k in data if k not in known)
        kw = {k: v for k, v in data.items() if k in known}
        for key in ("targets", "pseudo_ops"):
            if key in kw:
                val = kw[key]
                kw[key] = tuple(str(v).strip().lower() for v in ([val] if isinstance(val, str) else val))
        opts = cls(**kw)
        bad = [t for t in opts.targets if t not in TARGETS]
        if bad or not opts.targets:
            raise UsageError(f"onnx2tf cannot make {bad or 'nothing'}", f"choose targets among {', '.join(TARGETS)}")
        if opts.static_shapes not in ("auto", "always", "never"):
            raise UsageError(f"bad static_shapes {opts.static_shapes!r}", "use auto, always or never")
        if opts.auto_pseudo not in ("upfront", "on_flex", "off"):
            raise UsageError(f"bad auto_pseudo {opts.auto_pseudo!r}", "use upfront, on_flex or off")
        return opts, ignored


# ----------------------------------------------------------------------------------------- helpers
class _Tail:
    """The last ``keep`` characters written to it (onnx2tf's log, for error messages)."""

    def __init__(self, keep: int = 200_000) -> None:
        self.keep, self.buf = keep, io.StringIO()

    def add(self, s: str) -> None:
        self.buf.write(s)
        if self.buf.tell() > 2 * self.keep:
            tail = self.buf.getvalue()[-self.keep:]
            self.buf = io.StringIO()
            self.buf.write(tail)

    def text(self) -> str:
        return _ANSI.sub("", self.buf.getvalue())


class _Tee(io.TextIOBase):
    """Write through to the real stream (the worker log) and into a shared tail."""

    def __init__(self, stream: Any, tail: _Tail) -> None:
        self.stream, self.tail = stream, tail

    def write(self, s: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(s)
        self.tail.add(s)
        return len(s)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()


@contextlib.contextmanager
def _captured() -> Iterator[_Tail]:
    """Python-level stdout and stderr go on to the worker log and into one tail (C++ logs only to the log)."""
    out, err = sys.stdout, sys.stderr
    tail = _Tail()
    sys.stdout, sys.stderr = _Tee(out, tail), _Tee(err, tail)
    try:
        yield tail
    finally:
        sys.stdout, sys.stderr = out, err


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _reason(exc: BaseException, log: str) -> str:
    """One line saying why onnx2tf failed.

    onnx2tf reports errors by printing ``ERROR:`` lines and a traceback, then re-raising or calling
    ``sys.exit(1)``. The exception's own text is best when there is one; after ``sys.exit`` the last
    exception line of the printed traceback, else the last ``ERROR:`` line, says it. The ONNX node it
    failed on is appended when onnx2tf named it.
    """
    lines = log.splitlines()
    # at info verbosity every converted node names itself: the failing one is the last named before the error
    err_at = next((i for i, ln in enumerate(lines) if "ERROR:" in ln), len(lines))
    op = next((ln.split("onnx_op_name:", 1)[1].strip() for ln in reversed(lines[:err_at + 3]) if "onnx_op_name:" in ln), "")
    text = "" if isinstance(exc, SystemExit) else " ".join(str(exc).split())
    if not text:
        raised = [ln.strip() for ln in lines if re.match(r"^\s*[A-Za-z_.]*(Error|Exception): ", ln)]
        errors = [ln.split("ERROR:", 1)[1].strip() for ln in lines if "ERROR:" in ln]
        errors = [e for e in errors if e and not e.startswith(_BOILERPLATE)]
        text = raised[-1] if raised else (errors[-1] if errors else f"onnx2tf stopped ({type(exc).__name__})")
    return text[:300] + (f" (at ONNX node {op})" if op else "")


# onnx2tf's generic advice lines, printed after every error
_BOILERPLATE = ("The trace log", "Read this", "Alternatively", "If the input", "Also, for", "input_onnx_file_path",
                "onnx_op_name")


def _onnx_io(model: Any) -> tuple[list[Any], list[Any]]:
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits], list(model.graph.output)


def _onnx_shape(value_info: Any) -> list[int | str]:
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def simplify_file(src: str, dst: str, overwrite: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Worker entry: onnx-simplifier, up to 3 passes (onnx2tf's own loop), optional fixed input shapes.

    Runs in its own process: onnxsim's C++ extension segfaults when TensorFlow (imported by onnx2tf)
    is already loaded in the same process (seen with onnxsim 0.4.36 + TF 2.21), and a crash here must
    not take the conversion down with it.
    """
    import onnx
    import onnxsim  # type: ignore[import-not-found]

    model = onnx.load(src)
    notes: list[str] = []
    before = len(model.graph.node)
    for _ in range(3):
        n = len(model.graph.node)
        kw: dict[str, Any] = {"overwrite_input_shapes": overwrite} if overwrite else {}
        model, ok = onnxsim.simplify(model, **kw)
        if not ok:
            notes.append("onnx-simplifier could not verify its result with onnxruntime")
        if len(model.graph.node) == n:
            break
    _save_onnx(model, Path(dst))
    return {"notes": notes, "nodes_before": before, "nodes_after": len(model.graph.node)}


def _simplify(src: Path, dst: Path, overwrite: dict[str, list[int]] | None, notes: list[str]) -> bool:
    """Simplify ``src`` into ``dst`` in a worker; False (with a note) when that fails."""
    import importlib.util

    from edgeport.worker import run_in_worker

    if importlib.util.find_spec("onnxsim") is None:
        notes.append("onnx-simplifier is not installed: converted without simplification")
        return False
    res = run_in_worker("edgeport.convert.onnx2tf_backend:simplify_file",
                        {"src": str(src), "dst": str(dst), "overwrite": overwrite}, timeout=1800)
    if not res.ok:
        notes.append(f"onnx-simplifier failed ({res.reason()[:200]}): converted without simplification")
        return False
    for n in res.value["notes"]:
        if n not in notes:
            notes.append(n)
    return True


def _save_onnx(model: Any, path: Path) -> None:
    import onnx

    if model.ByteSize() > 1_900_000_000:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save(model, str(path))


def _write_calibration_file(folder: Path) -> Path:
    """The sample-image file onnx2tf would otherwise download (seeded uniform [0, 1), float32)."""
    path = folder / CALIBRATION_FILE
    data = np.random.default_rng(20240611).random(CALIBRATION_SHAPE, dtype=np.float32)
    np.save(path, data)
    return path


def expected_input_perm(opts: Onnx2TfOptions) -> Any:
    """The transpose onnx2tf applies to an input of the given rank under ``opts``."""
    from edgeport.convert.io_resolution import channels_last_perm, identity

    def perm(t: TensorSpec) -> tuple[int, ...]:
        if opts.keep_layout or t.rank < 3:
            return identity(t.rank)
        if t.rank == 3 and not opts.channels_last_3d:
            return identity(3)
        return channels_last_perm(t.rank)

    return perm


# ----------------------------------------------------------------------------------------- conversion
@dataclass
class _Attempt:
    """One onnx2tf run: its settings, why it was made, and what came out."""

    static: bool
    pseudo: tuple[str, ...]
    why: str = "first try"
    signaturedefs: bool = False  # onnx2tf's output_signaturedefs (needed for some tensor names)
    simplify: bool = True  # run onnx-simplifier first (when the options allow it)
    folder: Path = Path()
    reason: str = ""  # why it failed or was not kept
    seconds: float = 0.0
    out: Path | None = None
    info: dict[str, Any] | None = None  # inspect_tflite of its .tflite
    resolved: dict[str, Any] = field(default_factory=dict)  # target -> io_resolution.IOResolution

    @property
    def flex(self) -> list[str]:
        return list(self.info["flex_ops"]) + list(self.info["custom_ops"]) if self.info else []

    @property
    def worst_rel(self) -> float | None:
        vals = [r.worst_rel for r in self.resolved.values() if r.worst_rel is not None]
        return max(vals) if vals else None

    def to_json(self) -> dict[str, Any]:
        return {"static_shapes": self.static, "pseudo_ops": list(self.pseudo), "signaturedefs": self.signaturedefs,
                "simplified": self.simplify, "why": self.why,
                "seconds": round(self.seconds, 3), "reason": self.reason, "flex_ops": self.flex,
                "worst_rel": self.worst_rel, "converted": self.out is not None}


def _convert(model: Any, attempt: _Attempt, opts: Onnx2TfOptions, onnx_inputs: list[Any],
             fixed: dict[str, list[int]], notes: list[str]) -> Path:
    """One onnx2tf run into ``attempt.folder``; returns the output folder. Raises ConversionError."""
    import onnx2tf  # type: ignore[import-not-found]

    attempt.folder.mkdir(parents=True, exist_ok=True)
    src = attempt.folder / "model.onnx"
    raw = attempt.folder / "unsimplified.onnx"
    _save_onnx(model, raw)  # a private copy: onnx2tf overwrites the file it converts
    if not (opts.simplify and attempt.simplify and _simplify(raw, src, fixed if attempt.static else None, notes)):
        os.replace(raw, src)
    _write_calibration_file(attempt.folder)
    names = [i.name for i in onnx_inputs]
    ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in onnx_inputs}
    kw: dict[str, Any] = {
        "input_onnx_file_path": str(src),
        "output_folder_path": str(attempt.folder / "out"),
        "not_use_onnxsim": True,  # done above, in a worker (see module docstring)
        "verbosity": "debug" if os.environ.get("EDGEPORT_DEBUG") else "info",  # its log is the step log
    }
    if attempt.pseudo:
        kw["replace_to_pseudo_operators"] = list(attempt.pseudo)
    if opts.keep_layout:
        kw["keep_ncw_or_nchw_or_ncdhw_input_names"] = [n for n in names if ranks[n] in (3, 4, 5)]
    elif not opts.channels_last_3d and any(ranks[n] == 3 for n in names):
        kw["keep_shape_absolutely_input_names"] = [n for n in names if ranks[n] == 3]
    if attempt.signaturedefs:
        kw["output_signaturedefs"] = True
    if attempt.static and fixed:
        kw["overwrite_input_shape"] = [f"{n}:{','.join(str(d) for d in s)}" for n, s in fixed.items()]
    from edgeport.worker import report_stage

    report_stage(f"onnx2tf 1.29, {'static' if attempt.static else 'dynamic'} shapes: {attempt.why}")
    t0 = time.perf_counter()
    with _cwd(attempt.folder), _captured() as log:
        try:
            onnx2tf.convert(**kw)
        except BaseException as exc:  # noqa: BLE001 - onnx2tf calls sys.exit(1) on many errors
            if isinstance(exc, KeyboardInterrupt):
                raise
            attempt.seconds = time.perf_counter() - t0
            attempt.reason = _reason(exc, log.text())
            raise ConversionError(f"onnx2tf failed: {attempt.reason}",
                                  "see the worker log; try --converter litert-torch") from None
    attempt.seconds = time.perf_counter() - t0
    out = attempt.folder / "out"
    if not (out / "model_float32.tflite").is_file() and not (out / "saved_model.pb").is_file():
        attempt.reason = _reason(RuntimeError("no output written"), log.text())
        raise ConversionError(f"onnx2tf wrote no model: {attempt.reason}", "see the worker log")
    attempt.out = out
    return out


MAX_ATTEMPTS = 5


def run(
    staging: str,
    out_dir: str,
    model: dict[str, Any],
    io: dict[str, Any],
    dims: dict[str, int],
    reference: str,
    parent_path: str | None = None,
    parent_io: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Worker entry (see :class:`edgeport.convert.base.StepJob`): ONNX -> SavedModel and/or .tflite.

    Returns ``{"artifacts": [Artifact JSON, path relative to staging], "notes": [...], "attempts":
    [{"static_shapes", "pseudo_ops", "why", "seconds", "reason", "flex_ops", "worst_rel", "converted"}]}``.
    Raises ConversionError when no attempt converts.
    """
    t_start = time.perf_counter()
    opts, ignored = Onnx2TfOptions.from_dict(options)
    notes: list[str] = []
    if ignored:
        notes.append(f"options not used by onnx2tf: {', '.join(ignored)}")
    if extra:
        notes.append(f"job fields not used by onnx2tf: {', '.join(sorted(extra))}")
    staging_p = Path(staging)
    staging_p.mkdir(parents=True, exist_ok=True)
    ref_io = IOSpec.from_json(io)
    src = _load_source(parent_path, parent_io, ref_io, reference)
    pseudo = _upfront_pseudo(src.op_types, opts, notes)
    work = staging_p / ".onnx2tf-work"
    try:
        attempts = _run_attempts(src, opts=opts, ref_io=ref_io, reference=reference, pseudo=pseudo, work=work, notes=notes)
        chosen = _choose(attempts, opts)
        notes.extend(_history_notes(attempts, chosen, src.dynamic, src.fixed))
        if chosen.flex:
            notes.append(f"the .tflite holds {_with_torch_layers(chosen.info or {}, src.model)}"
                         + ("" if opts.allow_flex else " (not allowed: the check step rejects it)"))
        if sha256_file(src.path) != src.sha_before:  # never expected: onnx2tf only ever saw a copy
            raise ConversionError(f"{src.path.name} changed during conversion",
                                  "report this bug; restore the file from a backup")
        artifacts = _collect(staging_p, chosen, opts, notes, seconds=time.perf_counter() - t_start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"artifacts": artifacts, "notes": notes, "attempts": [a.to_json() for a in attempts]}


@dataclass(frozen=True)
class _Source:
    """The parent ONNX model and what the attempts need to know about it."""

    path: Path
    sha_before: str  # sha256 of the file before conversion (it must not change)
    model: Any  # the loaded ModelProto
    inputs: list[Any]  # its graph inputs (initializers left out)
    aliases: dict[str, list[str]]  # reference name -> ONNX names
    op_types: frozenset[str]
    dynamic: dict[str, list[int | str]]  # ONNX input with a dynamic dim -> its shape
    fixed: dict[str, list[int]]  # ONNX input name -> the reference sample's concrete shape


def _load_source(parent_path: str | None, parent_io: dict[str, Any] | None, ref_io: IOSpec, reference: str) -> _Source:
    path, sha_before, onnx_model = load_parent(parent_path, ref_io, "onnx2tf 1.29")
    onnx_inputs, onnx_outputs = _onnx_io(onnx_model)
    aliases = _aliases(ref_io, parent_io, onnx_inputs, onnx_outputs)
    dynamic = {i.name: _onnx_shape(i) for i in onnx_inputs if any(not isinstance(d, int) for d in _onnx_shape(i))}
    return _Source(path=path, sha_before=sha_before, model=onnx_model, inputs=onnx_inputs, aliases=aliases,
                   op_types=frozenset(n.op_type for n in onnx_model.graph.node), dynamic=dynamic,
                   fixed=_fixed_shapes(onnx_inputs, aliases, dynamic, reference))


def _fixed_shapes(onnx_inputs: list[Any], aliases: dict[str, list[str]], dynamic: dict[str, Any],
                  reference: str) -> dict[str, list[int]]:
    """ONNX input name -> the shape of the first reference sample (what a static-shapes attempt fixes)."""
    onnx_to_ref = {a: r for r, names in aliases.items() for a in names}
    ref_inputs, _ = load_reference(reference)
    fixed: dict[str, list[int]] = {}
    for i in onnx_inputs:
        ref_name = onnx_to_ref.get(i.name, i.name)
        if ref_name in ref_inputs[0]:
            fixed[i.name] = [int(d) for d in np.asarray(ref_inputs[0][ref_name]).shape]
        elif i.name in dynamic:
            raise ConversionError(f"reference.npz has no sample for input {ref_name!r}", "re-run edgeport convert")
    return fixed


def _upfront_pseudo(op_types: frozenset[str], opts: Onnx2TfOptions, notes: list[str]) -> tuple[str, ...]:
    """The pseudo-operators asked for on the first attempt: the user's, and those of ops known to become Flex."""
    upfront = {PSEUDO_FOR_ONNX_OP[o] for o in op_types if o in PSEUDO_FOR_ONNX_OP} if opts.auto_pseudo == "upfront" else set()
    pseudo = tuple(sorted(upfront | set(opts.pseudo_ops)))
    if "erf" in pseudo and "Erf" in op_types:
        notes.append("Erf (exact GELU) replaced by onnx2tf's builtin-only approximation (max error ~1.5e-7) "
                     "to avoid the FlexErf op")
    return pseudo


def _run_attempts(src: _Source, *, opts: Onnx2TfOptions, ref_io: IOSpec, reference: str, pseudo: tuple[str, ...],
                  work: Path, notes: list[str]) -> list[_Attempt]:
    """Convert, evaluate and retry (at most MAX_ATTEMPTS runs) until an attempt is final; returns every attempt."""
    start_static = bool(src.dynamic) and opts.static_shapes == "always"
    queue = [_Attempt(static=start_static, pseudo=pseudo,
                      why="dynamic dims fixed up front (static_shapes=always)" if start_static else "first try")]
    attempts: list[_Attempt] = []
    while queue and len(attempts) < MAX_ATTEMPTS:
        att = queue.pop(0)
        att.folder = work / f"attempt{len(attempts)}"
        attempts.append(att)
        try:
            _convert(src.model, att, opts, src.inputs, src.fixed, notes)
        except ConversionError:
            _queue_after_failure(att, src, opts, queue)
            continue
        try:
            _evaluate(att, opts, ref_io, reference, src.aliases)
        except EdgeportError as exc:  # e.g. no output of the .tflite has the reference's shape
            att.reason, att.out = exc.message, None
            _retry_unsimplified(att, opts, attempts, queue)
            continue
        if not _queue_after_result(att, src, opts, attempts, queue):
            break
    return attempts


def _queue_after_failure(att: _Attempt, src: _Source, opts: Onnx2TfOptions, queue: list[_Attempt]) -> None:
    """After onnx2tf failed: retry with output_signaturedefs when it asked for them, else with fixed shapes."""
    if "output_signaturedefs" in att.reason and not att.signaturedefs:
        # SavedModel export refused a tensor name (e.g. "/out/mask"); onnx2tf's own advice.
        queue.insert(0, _Attempt(static=att.static, pseudo=att.pseudo, signaturedefs=True,
                                 why=f"onnx2tf asked for output_signaturedefs ({att.reason})"))
    elif src.dynamic and not att.static and opts.static_shapes == "auto":
        queue.insert(0, _Attempt(static=True, pseudo=att.pseudo, signaturedefs=att.signaturedefs,
                                 why=f"onnx2tf failed with dynamic dims ({att.reason})"))


def _queue_after_result(att: _Attempt, src: _Source, opts: Onnx2TfOptions, attempts: list[_Attempt],
                        queue: list[_Attempt]) -> bool:
    """After a converted attempt: queue a better one (pseudo ops for Flex ops left, fixed shapes or no simplifier for
    wrong outputs) and return True, or False when this attempt is final."""
    remedy = sorted({PSEUDO_FOR_FLEX[f] for f in att.flex if f in PSEUDO_FOR_FLEX} - set(att.pseudo)) \
        if opts.auto_pseudo != "off" else []
    if remedy:
        att.reason = f"left Flex ops {att.flex}"
        queue.insert(0, _Attempt(static=att.static, pseudo=tuple(sorted(set(att.pseudo) | set(remedy))),
                                 signaturedefs=att.signaturedefs, why=f"replace {att.flex} by pseudo ops {remedy}"))
        return True
    good = att.worst_rel is not None and att.worst_rel <= opts.rtol
    if src.dynamic and not att.static and opts.static_shapes == "auto" and not good:
        att.reason = ("its outputs differ from the reference by "
                      f"{att.worst_rel:.2e} of their magnitude" if att.worst_rel is not None
                      else "its outputs could not be verified")
        queue.insert(0, _Attempt(static=True, pseudo=att.pseudo, signaturedefs=att.signaturedefs,
                                 why=f"with dynamic dims kept, {att.reason}"))
        return True
    if not good and att.worst_rel is not None:
        att.reason = f"its outputs differ from the reference by {att.worst_rel:.2e} of their magnitude"
        return _retry_unsimplified(att, opts, attempts, queue)
    return False


def _choose(attempts: list[_Attempt], opts: Onnx2TfOptions) -> _Attempt:
    """The attempt to keep: no disallowed Flex ops first, then the smallest error, then the earliest."""
    done = [a for a in attempts if a.out is not None]
    if not done:
        tried = "; ".join(f"{'static' if a.static else 'dynamic'} shapes: {a.reason}" for a in attempts)
        raise ConversionError(f"onnx2tf failed ({tried})" if len(attempts) > 1 else f"onnx2tf failed: {attempts[0].reason}",
                              "see the worker log; try --converter litert-torch")
    return min(done, key=lambda a: (bool(a.flex) and not opts.allow_flex,
                                    a.worst_rel if a.worst_rel is not None else float("inf"),
                                    attempts.index(a)))


def load_parent(parent_path: str | None, ref_io: IOSpec, converter: str) -> tuple[Path, str, Any]:
    """The parent .onnx (external data folded in), its sha256 before conversion, checked against the reference IO."""
    import onnx

    from edgeport.onnx_data import fits_one_file

    if not parent_path:
        raise UsageError(f"the {converter} step needs the .onnx file (parent_path)", "convert to onnx first")
    src = Path(parent_path)
    if not src.is_file():
        raise InputError(f"{src} does not exist", "convert to onnx first")
    fits_one_file(src, converter=converter, instead="--converter litert-torch (it converts from PyTorch)")
    sha_before = sha256_file(src)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, OSError, ...
        raise InputError(f"cannot load {src.name}: {' '.join(str(exc).split())[:200]}", "re-export the ONNX model") from None
    inputs, outputs = _onnx_io(model)
    if len(inputs) != len(ref_io.inputs) or len(outputs) != len(ref_io.outputs):
        raise ConversionError(
            f"{src.name} has {len(inputs)} inputs/{len(outputs)} outputs, the reference "
            f"{len(ref_io.inputs)}/{len(ref_io.outputs)}", "re-export the ONNX model from the same PyTorch model")
    return src, sha_before, model


def _retry_unsimplified(att: _Attempt, opts: Onnx2TfOptions, attempts: list[_Attempt], queue: list[_Attempt]) -> bool:
    """Queue the same attempt without onnx-simplifier, once, when simplification may be to blame.

    onnx-simplifier fuses consecutive Slices into one multi-axis Slice, which onnx2tf then applies to the
    wrong axes of the channels-last tensor (seen with onnxsim 0.4.36 + onnx2tf 1.29.24).
    """
    if not (opts.simplify and att.simplify) or any(not a.simplify for a in attempts + queue):
        return False
    queue.insert(0, _Attempt(static=att.static, pseudo=att.pseudo, signaturedefs=att.signaturedefs, simplify=False,
                             why=f"without onnx-simplifier, because the simplified model's result was wrong ({att.reason})"))
    return True


def _aliases(ref_io: IOSpec, parent_io: dict[str, Any] | None, onnx_inputs: list[Any],
             onnx_outputs: list[Any]) -> dict[str, list[str]]:
    """Reference name -> ONNX names: from the parent (ONNX) artifact's IOSpec, else by position."""
    pio = IOSpec.from_json(parent_io) if parent_io else None
    aliases: dict[str, list[str]] = {}
    for kind, refs, onnx_list in (("inputs", ref_io.inputs, onnx_inputs), ("outputs", ref_io.outputs, onnx_outputs)):
        for k, ref in enumerate(refs):
            by_parent = [t.name for t in (getattr(pio, kind) if pio else []) if (t.ref_name or t.name) == ref.name]
            aliases[ref.name] = by_parent or [onnx_list[k].name]
    return aliases


def _history_notes(attempts: list[_Attempt], chosen: _Attempt, dynamic: dict[str, Any],
                   fixed: dict[str, list[int]]) -> list[str]:
    out = []
    if chosen.static and dynamic:
        sizes = ", ".join(f"{n}={'x'.join(map(str, fixed[n]))}" for n in dynamic)
        out.append(f"dynamic dims fixed to the reference sizes {sizes}: {chosen.why}")
    elif chosen.why != "first try":
        out.append(f"onnx2tf converted on a retry: {chosen.why}")
    if chosen.signaturedefs:
        out.append("converted with onnx2tf's output_signaturedefs: SavedModel/tflite tensor names are mangled "
                   "(the IO mapping below is by values)")
    for a in attempts:
        if a is not chosen and a.reason and a.reason not in chosen.why:
            out.append(f"onnx2tf attempt ({'static' if a.static else 'dynamic'} shapes, pseudo ops "
                       f"{list(a.pseudo) or 'none'}) not kept: {a.reason}")
    return out


def _evaluate(att: _Attempt, opts: Onnx2TfOptions, ref_io: IOSpec, reference: str,
              aliases: dict[str, list[str]]) -> None:
    """Inspect the attempt's .tflite and resolve (and numerically verify) the IO of each target."""
    from edgeport.convert import io_resolution
    from edgeport.convert.tflite_inspect import inspect_tflite

    assert att.out is not None
    perm_in = expected_input_perm(opts)
    tfl = att.out / "model_float32.tflite"
    if "tflite" in opts.targets and tfl.is_file():
        att.info = inspect_tflite(tfl)
        nat_in, nat_out = io_resolution.tflite_natives(att.info)
        runner = (lambda specs, feeds: io_resolution.probe_in_worker(tfl, "tflite", specs, feeds)) if opts.verify_io \
            else _no_runner
        att.resolved["tflite"] = io_resolution.resolve_io(nat_in, nat_out, ref_io, reference, runner, perm_in, aliases=aliases)
    if "saved_model" in opts.targets and (att.out / "saved_model.pb").is_file():
        att.resolved["saved_model"] = _saved_model_io(att.out, ref_io, reference, aliases, perm_in, opts.verify_io)


def _with_torch_layers(info: dict[str, Any], onnx_model: Any) -> str:
    """describe_offenders, with the PyTorch module paths of the ONNX nodes behind each Flex op.

    Dynamo-exported ONNX nodes carry ``pkg.torch.onnx.name_scopes``; onnx2tf's tensor names only
    carry Keras layer names (``tf.math.erf``), so the ONNX graph is the better witness.
    """
    from edgeport.convert.tflite_inspect import describe_offenders

    enriched = dict(info)
    offenders = []
    for f in info["flex_ops"] + info["custom_ops"]:
        op_type = f[4:] if f.startswith("Flex") else f
        layers = []
        for node in onnx_model.graph.node:
            if node.op_type.lower() != op_type.lower():
                continue
            props = {p.key: p.value for p in node.metadata_props}
            scopes = props.get("pkg.torch.onnx.name_scopes", "")
            parts = re.findall(r"'([^']*)'", scopes)
            module = next((p for p in reversed(parts[:-1]) if p), "") if len(parts) > 1 else ""
            layers.append(module or node.name)
        if layers:
            offenders += [{"op": f, "tensor": "", "layer": name} for name in layers]
        else:
            offenders += [o for o in info["offenders"] if o["op"] == f]
    enriched["offenders"] = offenders
    return describe_offenders(enriched)


def _collect(staging: Path, att: _Attempt, opts: Onnx2TfOptions, notes: list[str],
             seconds: float) -> list[dict[str, Any]]:
    """Move the requested results of the chosen attempt into staging and describe them."""
    assert att.out is not None
    out = att.out
    tools = tool_versions("onnx2tf", "onnx", "onnxsim", "tensorflow-cpu", "tensorflow", "tf-keras", "onnxruntime")
    options = asdict(opts)
    artifacts: list[dict[str, Any]] = []
    if "tflite" in opts.targets:
        tfl = out / "model_float32.tflite"
        if not tfl.is_file() or "tflite" not in att.resolved:
            notes.append("onnx2tf wrote no float32 .tflite")
        else:
            res = att.resolved["tflite"]
            dest = staging / "model.tflite"
            shutil.move(str(tfl), dest)
            artifacts.append(Artifact(
                name="tflite", format="tflite", path=dest.name, converter="onnx2tf-1", options=options, tools=tools,
                variant="fp32", io=res.io, ops=dict((att.info or {}).get("ops", {})), notes=list(notes) + res.notes,
                seconds=seconds, size_bytes=dest.stat().st_size,
            ).to_json())
    if "saved_model" in opts.targets:
        if not (out / "saved_model.pb").is_file() or "saved_model" not in att.resolved:
            notes.append("onnx2tf wrote no SavedModel (it logs and swallows SavedModel export errors)")
        else:
            res = att.resolved["saved_model"]
            dest = staging / "saved_model"
            dest.mkdir()
            for item in out.iterdir():
                if item.suffix != ".tflite":
                    shutil.move(str(item), dest / item.name)
            artifacts.append(Artifact(
                name="saved_model", format="saved_model", path=dest.name, converter="onnx2tf-1", options=options,
                tools=tools, variant="fp32", io=res.io, notes=list(notes) + res.notes, seconds=seconds,
            ).to_json())
    if not artifacts:
        raise ConversionError("onnx2tf produced none of the requested formats " + ", ".join(opts.targets),
                              "see the worker log")
    return artifacts


def _no_runner(specs: Any, feeds: Any) -> Any:
    raise EdgeportError("verification is off (verify_io=False)")


def _saved_model_io(path: Path, ref_io: IOSpec, reference: str, aliases: dict[str, list[str]], perm_in: Any,
                    verify: bool) -> Any:
    """IOResolution of the SavedModel's serving signature, outputs verified in-process (TF is loaded already)."""
    from edgeport.convert import io_resolution
    from edgeport.runtimes.tensorflow import SavedModelSession

    sess = SavedModelSession.load(path, IOSpec(), threads=1)
    sig = sess.input_signature()
    if not sig:
        raise ConversionError("the SavedModel onnx2tf wrote has no serving signature", "see the worker log")
    nat_in = [io_resolution.NativeTensor(n, tuple(-1 if d is None else int(d) for d in shape), dtype)
              for n, (shape, dtype) in sig.items()]
    nat_out = [io_resolution.NativeTensor(n, tuple(-1 if d is None else int(d) for d in shape), dtype)
               for n, (shape, dtype) in sess.output_signature().items()]

    def runner(specs: Any, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if not verify:
            raise EdgeportError("verification is off (verify_io=False)")
        return [sess.run_native(f) for f in feeds]

    return io_resolution.resolve_io(nat_in, nat_out, ref_io, reference, runner, perm_in, aliases=aliases)
