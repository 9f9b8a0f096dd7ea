"""ONNX Runtime sessions: CPU provider, sequential execution, ``threads`` intra-op threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import InputError, RuntimeFailure
from edgeport.runtimes.base import Session
from edgeport.spec import IOSpec


def session_options(threads: int = 1, optimize: bool = True) -> Any:
    """SessionOptions for reproducible CPU runs (``optimize=False`` keeps every graph tensor as is)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


def open_session(model: str | bytes, threads: int = 1, optimize: bool = True, where: str = "model") -> Any:
    """An ``onnxruntime.InferenceSession`` on CPU; RuntimeFailure with ORT's reason when it cannot load."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model, sess_options=session_options(threads, optimize), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise RuntimeFailure(f"ONNX Runtime cannot load {where}: {first}", "re-export it with edgeport convert --to onnx") from None


def check_external_data(path: Path) -> None:
    """Refuse a model whose external data files are missing or outside its folder, in one line
    (:func:`edgeport.onnx_data.external_files`). That needs ``onnx``; where it is not installed
    (the device profile) ONNX Runtime's own check refuses locations outside the model's folder. A file
    that is not ONNX at all is left to ONNX Runtime, whose error says so."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return
    from edgeport.onnx_data import external_files

    try:
        external_files(path)
    except InputError:
        return


# ONNX Runtime's words for "these bytes are not an ONNX model at all" (as opposed to a model it cannot run)
_NOT_A_MODEL = ("INVALID_PROTOBUF", "Protobuf parsing failed", "No graph was found")


def open_model_file(path: str | Path, threads: int = 1) -> Any:
    """:func:`open_session` for a model file the user handed over (no manifest): a file that is empty or
    that ONNX Runtime cannot even parse is bad input (InputError, exit 2), not a runtime failure."""
    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty", "pass an .onnx model file")
    check_external_data(p)
    try:
        return open_session(str(p), threads, where=p.name)
    except RuntimeFailure as exc:
        if any(k in exc.message for k in _NOT_A_MODEL):
            raise InputError(f"{p.name} is not a readable ONNX model (truncated or not ONNX)", "pass an .onnx model file") from None
        raise


class OnnxRuntimeSession(Session):
    name = "onnxruntime"

    def __init__(self, path: Path, io: IOSpec, threads: int, sess: Any) -> None:
        super().__init__(path, io, threads)
        import onnxruntime as ort

        self.sess = sess
        self.output_names = [o.name for o in sess.get_outputs()]
        self.backend = f"onnxruntime {ort.__version__} (CPU, {threads} thread{'s' if threads != 1 else ''})"

    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "OnnxRuntimeSession":
        p = Path(path)
        check_external_data(p)
        sess = open_session(str(p), threads, where=p.name)
        have = {i.name for i in sess.get_inputs()}
        missing = [s.name for s in io.inputs if s.name not in have]
        if missing:
            raise RuntimeFailure(f"{p.name} has no input(s) {missing} (it has {sorted(have)})", "re-run edgeport convert")
        return cls(p, io, threads, sess)

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.sess.run(self.output_names, feed)))


def profile_ops(path: str | Path, feed: dict[str, np.ndarray], threads: int = 1, runs: int = 20,
                top: int | None = None) -> dict[str, Any]:
    """Per-op time table from ONNX Runtime's own profiler (``SessionOptions.enable_profiling``).

    ``feed`` uses the model's native input names. The session runs ``runs`` times after one warm-up;
    the JSON trace's ``Node`` events (``*_kernel_time``, one per node per run) are summed per op type
    and run (:func:`summarize_trace`). The table is of the graph ONNX Runtime actually runs, after its
    optimizations (fused Conv+Relu, inserted layout reorders). Returns ``{"method", "ops": [{"op",
    "placement" (execution provider), "count" (nodes), "ms" (per inference), "share"}] slowest first,
    "total_ms" (kernel time per inference), "run_ms" (``model_run``), "coverage", "runs", "note"}``.
    """
    import json
    import os
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeport-ort-profile-") as tmp:
        so = session_options(threads)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        p = Path(path)
        try:
            sess = ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])
            names = [o.name for o in sess.get_outputs()]
            sess.run(names, feed)
            for _ in range(max(1, int(runs))):
                sess.run(names, feed)
            trace = sess.end_profiling()
        except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
            raise RuntimeFailure(f"ONNX Runtime cannot profile {p.name}: {first}", "check the model and its inputs") from None
        with open(trace, encoding="utf-8") as fh:
            events = json.load(fh)
    return summarize_trace(events, top)


def summarize_trace(events: list[dict[str, Any]], top: int | None = None) -> dict[str, Any]:
    """Per-op-type totals of an ONNX Runtime profiling trace (see :func:`profile_ops`).

    Each node event is assigned to the ``model_run`` it falls in; an op type's time is the median over
    runs of its per-run sum (robust to a run disturbed by another process), its share is of the sum of
    those medians.
    """
    runs = sorted((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    per_run: dict[str, list[float]] = {}
    nodes: dict[str, set[str]] = {}
    where: dict[str, str] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args") or {}
        op = str(args.get("op_name") or "?")
        ts = float(e.get("ts", 0))
        k = next((i for i, (a, b) in enumerate(runs) if a <= ts <= b), None)
        if k is None:
            continue
        per_run.setdefault(op, [0.0] * len(runs))[k] += float(e.get("dur", 0))
        nodes.setdefault(op, set()).add(str(e["name"])[: -len("_kernel_time")])
        where[op] = str(args.get("provider", "")).replace("ExecutionProvider", "")
    med = {op: float(np.median(v)) for op, v in per_run.items()}
    total = sum(med.values())
    table = [{"op": op, "placement": where.get(op, ""), "count": len(nodes[op]), "ms": round(us / 1e3, 5),
              "share": round(us / total, 4) if total > 0 else 0.0}
             for op, us in sorted(med.items(), key=lambda kv: -kv[1])]
    run_ms = float(np.median([b - a for a, b in runs])) / 1e3 if runs else None
    return {"method": "onnxruntime profiler", "ops": table[:top] if top else table, "op_types": len(table),
            "total_ms": round(total / 1e3, 5), "run_ms": round(run_ms, 5) if run_ms is not None else None,
            "coverage": round(total / 1e3 / run_ms, 3) if run_ms else None, "runs": len(runs),
            "note": "kernel time per node from ONNX Runtime's profiling trace: median over the profiled runs"}
