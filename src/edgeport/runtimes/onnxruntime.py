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


# ONNX Runtime's words for "these bytes are not an ONNX model at all" (as opposed to a model it cannot run)
_NOT_A_MODEL = ("INVALID_PROTOBUF", "Protobuf parsing failed", "No graph was found")


def open_model_file(path: str | Path, threads: int = 1) -> Any:
    """:func:`open_session` for a model file the user handed over (no manifest): a file that is empty or
    that ONNX Runtime cannot even parse is bad input (InputError, exit 2), not a runtime failure."""
    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty", "pass an .onnx model file")
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
        sess = open_session(str(p), threads, where=p.name)
        have = {i.name for i in sess.get_inputs()}
        missing = [s.name for s in io.inputs if s.name not in have]
        if missing:
            raise RuntimeFailure(f"{p.name} has no input(s) {missing} (it has {sorted(have)})", "re-run edgeport convert")
        return cls(p, io, threads, sess)

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.sess.run(self.output_names, feed)))
