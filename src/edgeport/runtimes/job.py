"""Worker entries that load a runtime session and run it (see :mod:`edgeport.worker`).

    run_in_worker("edgeport.runtimes.job:run_session_job", {"runtime": "onnxruntime", "path": ..., "io": ...,
                  "feeds": "feeds.npz", "out": "outputs.npz"}, timeout=300)

Feeds and outputs travel as .npz files with keys ``K:NAME`` (sample K, reference name and layout), so
large tensors never pass through JSON. A crash or hang in the session kills only this process.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from edgeport.errors import UsageError
from edgeport.runtimes import RUNTIMES
from edgeport.spec import IOSpec


def session_class(runtime: str, cls: str | None = None) -> type:
    """The Session class of ``runtime`` (or the explicit ``module:Class`` ``cls``)."""
    target = cls or (RUNTIMES.get(runtime) or {}).get("cls")
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
    from edgeport.validate.data import load_samples, save_samples

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


def _dim(d: Any, k: int) -> int | str:
    if isinstance(d, int) and d > 0:
        return d
    if isinstance(d, str) and d and "x" not in d.lower() and d.replace("_", "a").isalnum() and d[0].isalpha():
        return d
    return f"d{k}"


def _probe_onnx(path: str) -> dict[str, Any]:
    from edgeport.runtimes.onnxruntime import open_model_file

    sess = open_model_file(path, 1)

    def specs(items: Any) -> list[dict[str, Any]]:
        return [{"name": i.name, "shape": [_dim(d, k) for k, d in enumerate(i.shape)],
                 "dtype": _ORT_TYPES.get(i.type, "float32")} for i in items]

    return {"inputs": specs(sess.get_inputs()), "outputs": specs(sess.get_outputs())}


def _probe_tflite(path: str) -> dict[str, Any]:
    from edgeport.tflite_fb import inspect_tflite

    info = inspect_tflite(path)
    by_index = {t["index"]: t for t in info["inputs"] + info["outputs"]}

    def spec(name: str, t: dict[str, Any]) -> dict[str, Any]:
        sig = t.get("shape_signature") or t["shape"]
        dtype = "float32" if t.get("quantization") and t["dtype"] in ("int8", "uint8", "int16") else t["dtype"]
        return {"name": name, "shape": [_dim(d, k) for k, d in enumerate(sig)], "dtype": dtype}

    sig = info["signatures"].get("serving_default") or (next(iter(info["signatures"].values())) if len(info["signatures"]) == 1 else None)
    if sig is not None and all(i in by_index for i in list(sig["inputs"].values()) + list(sig["outputs"].values())):
        return {"inputs": [spec(n, by_index[i]) for n, i in sig["inputs"].items()],
                "outputs": [spec(n, by_index[i]) for n, i in sig["outputs"].items()]}
    return {"inputs": [spec(t["name"], t) for t in info["inputs"]], "outputs": [spec(t["name"], t) for t in info["outputs"]]}


def _probe_saved_model(path: str) -> dict[str, Any]:
    from edgeport.runtimes.tensorflow import SavedModelSession

    s = SavedModelSession.load(path, IOSpec(), 1)
    if not s.input_names():
        raise UsageError(f"SavedModel {Path(path).name} has no serving signature to read its inputs from",
                         "compare it inside an edgeport output folder instead")
    inputs = [{"name": n, "shape": [_dim(d, k) if d is not None else f"d{k}" for k, d in enumerate(shape)], "dtype": dt}
              for n, (shape, dt) in s.input_signature().items()]
    outs = s._fn.structured_outputs  # noqa: SLF001 - the signature's output specs
    outputs = [{"name": n, "shape": [d if d else f"d{k}" for k, d in enumerate(t.shape.as_list())], "dtype": t.dtype.name}
               for n, t in (outs.items() if isinstance(outs, dict) else [])]
    return {"inputs": inputs, "outputs": outputs}


def probe_io_job(*, format: str, path: str) -> dict[str, Any] | None:  # noqa: A002 - the manifest's word
    """Worker entry: the IOSpec JSON a model file declares (None for TorchScript, which declares none)."""
    probes = {"onnx": _probe_onnx, "tflite": _probe_tflite, "saved_model": _probe_saved_model}
    fn = probes.get(format)
    return fn(path) if fn else None
