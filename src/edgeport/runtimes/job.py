"""Worker entries that load a runtime session and run it (see :mod:`edgeport.worker`).

    run_in_worker("edgeport.runtimes.job:run_session_job", {"runtime": "onnxruntime", "path": ..., "io": ...,
                  "feeds": "feeds.npz", "out": "outputs.npz"}, timeout=300)

Feeds and outputs travel as .npz files with keys ``K:NAME`` (sample K, reference name and layout), so
large tensors never pass through JSON. A crash or hang in the session kills only this process.
"""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import UsageError
from edgeport.runtimes import RUNTIMES
from edgeport.spec import IOSpec


def session_class(runtime: str, cls: str | None = None) -> type:
    """The Session class of ``runtime`` (or the explicit ``module:Class`` ``cls``)."""
    target = cls or (RUNTIMES[runtime].cls if runtime in RUNTIMES else None)
    if not target:
        raise UsageError(f"unknown runtime {runtime!r}", f"use one of: {', '.join(RUNTIMES)}")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_session(runtime: str, path: str, io: dict[str, Any] | IOSpec, threads: int = 1,
                 options: dict[str, Any] | None = None, cls: str | None = None) -> Any:
    spec = io if isinstance(io, IOSpec) else IOSpec.from_json(io)
    return session_class(runtime, cls).load(path, spec, threads=threads, **(options or {}))


def run_session_job(*, runtime: str, path: str, io: dict[str, Any], feeds: str, out: str, threads: int = 1,
                    options: dict[str, Any] | None = None, cls: str | None = None, warmup: int = 0) -> dict[str, Any]:
    """Load ``path`` with ``runtime`` and run every sample of ``feeds``; write outputs to ``out``.

    Returns ``{"backend", "load_seconds", "run_seconds": [per sample], "samples", "outputs": out}``.
    """
    from edgeport.data.samples import load_samples, save_samples

    t0 = time.perf_counter()
    session = load_session(runtime, path, io, threads, options, cls)
    load_seconds = time.perf_counter() - t0
    samples = load_samples(feeds)
    for _ in range(max(0, int(warmup))):
        if samples:
            session.run(samples[0])
    outputs, times = [], []
    for s in samples:
        result, seconds = session.timed_run(s)
        outputs.append(result)
        times.append(seconds)
    save_samples(out, outputs)
    return {
        "runtime": runtime,
        "backend": getattr(session, "backend", "") or runtime,
        "load_seconds": load_seconds,
        "run_seconds": times,
        "samples": len(samples),
        "outputs": str(Path(out)),
    }


# ------------------------------------------------------------------------------------------ IO probing

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(int64)": "int64",
    "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
    "tensor(bool)": "bool", "tensor(bfloat16)": "bfloat16",
}


_DIM_NAME = re.compile(r"^[A-WYZa-wyz_][A-WYZa-wyz0-9_]*$")  # a symbol, not "1x3" or "?"


def _dim(d: Any, k: int, kind: str) -> int | str:
    """A concrete size, the file's own name for a dynamic dimension, or ``in_d0``/``out_d0`` when it has none
    (inputs and outputs get different names: an unnamed output size is not known to equal an input's)."""
    if isinstance(d, (int, np.integer)) and int(d) > 0:
        return int(d)
    if isinstance(d, str) and _DIM_NAME.match(d):
        return d
    return f"{kind}_d{k}"


def _specs(items: Any, kind: str) -> list[dict[str, Any]]:
    """(name, shape, dtype) triples as IOSpec JSON tensors."""
    return [{"name": n, "shape": [_dim(d, k, kind) for k, d in enumerate(shape)], "dtype": dt} for n, shape, dt in items]


def probe_onnx(path: str) -> dict[str, Any]:
    from edgeport.runtimes.onnxruntime import open_model_file

    sess = open_model_file(path, 1)

    def triples(items: Any) -> list[tuple[str, Any, str]]:
        return [(i.name, list(i.shape or []), _ORT_TYPES.get(i.type, "float32")) for i in items]

    return {"inputs": _specs(triples(sess.get_inputs()), "in"), "outputs": _specs(triples(sess.get_outputs()), "out")}


def probe_tflite(path: str) -> dict[str, Any]:
    """From the flatbuffer alone (no interpreter). Quantized inputs/outputs are declared float32: the TFLite
    session quantizes float feeds and dequantizes outputs with each tensor's own scale."""
    from edgeport.tflite_fb import inspect_tflite

    info = inspect_tflite(path)
    by_index = {t["index"]: t for t in info["inputs"] + info["outputs"]}

    def triple(name: str, t: dict[str, Any]) -> tuple[str, Any, str]:
        dtype = "float32" if t.get("quantization") and t["dtype"] in ("int8", "uint8", "int16") else t["dtype"]
        return name, list(t.get("shape_signature") or t["shape"]), dtype

    sig = info["signatures"].get("serving_default") or (next(iter(info["signatures"].values())) if len(info["signatures"]) == 1 else None)
    if sig is not None and all(i in by_index for i in list(sig["inputs"].values()) + list(sig["outputs"].values())):
        ins = [triple(n, by_index[i]) for n, i in sig["inputs"].items()]
        outs = [triple(n, by_index[i]) for n, i in sig["outputs"].items()]
    else:
        ins = [triple(t["name"], t) for t in info["inputs"]]
        outs = [triple(t["name"], t) for t in info["outputs"]]
    return {"inputs": _specs(ins, "in"), "outputs": _specs(outs, "out")}


def probe_saved_model(path: str) -> dict[str, Any]:
    from edgeport.runtimes.tensorflow import SavedModelSession

    s = SavedModelSession.load(path, IOSpec(), 1)
    if not s.input_names():
        raise UsageError(f"SavedModel {Path(path).name} has no serving signature to read its inputs from",
                         "compare it inside an edgeport output folder instead")
    ins = [(n, list(shape), dt) for n, (shape, dt) in s.input_signature().items()]
    outs = s._fn.structured_outputs  # noqa: SLF001 - the signature's output specs
    out_items = [(n, t.shape.as_list(), t.dtype.name) for n, t in (outs.items() if isinstance(outs, dict) else [])]
    return {"inputs": _specs(ins, "in"), "outputs": _specs(out_items, "out")}


def probe_io_job(*, format: str, path: str) -> dict[str, Any] | None:  # noqa: A002 - the manifest's word
    """Worker entry: the IOSpec JSON a model file declares (None for a format that declares none, e.g. TorchScript)."""
    from edgeport.formats import FORMATS

    f = FORMATS.get(format)
    if f is None or f.probe is None:
        return None
    module_name, _, attr = f.probe.partition(":")
    return getattr(importlib.import_module(module_name), attr)(path)


def probe_file(format: str, path: str | Path, timeout: float, env: dict[str, str] | None = None) -> IOSpec | None:  # noqa: A002
    """The IOSpec a bare model file declares, read in a worker (a loader crash is a RuntimeFailure, a file
    that is not a model a one-line InputError); None when the format declares none."""
    from edgeport.errors import RuntimeFailure
    from edgeport.worker import run_in_worker

    name = Path(path).name
    res = run_in_worker("edgeport.runtimes.job:probe_io_job", {"format": format, "path": str(path)}, timeout=timeout, env=env)
    if not res.ok:
        err = res.user_error()
        if err is not None:
            raise err
        raise RuntimeFailure(f"cannot read the inputs and outputs of {name}: {res.reason()}", "check that the file is a valid model")
    return IOSpec.from_json(res.value) if res.value else None