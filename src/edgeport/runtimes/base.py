"""The Session contract every runtime implements.

    session = TFLiteSession.load(path, artifact_io, threads=1)
    outputs = session.run({"image": array_in_reference_layout})   # -> {"logits": array_in_reference_layout}

A session knows its artifact's IOSpec. ``run`` takes and returns tensors keyed by the *reference*
(PyTorch) names, in the reference layout; the session applies each tensor's ``perm`` and name mapping
itself, so callers never guess NCHW vs NHWC or which output came out first. ``run_native`` skips the
mapping (benchmarks time that).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgeport.data.feeds import np_dtype
from edgeport.errors import RuntimeFailure, UsageError
from edgeport.spec import IOSpec, TensorSpec, to_artifact_layout, to_reference_layout


def native_tensor(arr: Any, spec: TensorSpec, dtype: Any = None) -> np.ndarray:
    """One reference-layout tensor -> the artifact's layout and dtype (``dtype``, else the spec's), C-contiguous."""
    target = np_dtype(spec.dtype) if dtype is None else np.dtype(dtype)
    return np.ascontiguousarray(to_artifact_layout(np.asarray(arr), spec).astype(target, copy=False))


def native_feed(feed: Mapping[str, Any], inputs: Sequence[TensorSpec], where: str,
                convert: Callable[[np.ndarray, TensorSpec], np.ndarray] = native_tensor) -> dict[str, np.ndarray]:
    """A sample keyed by reference names, in the reference layout -> the feed of the artifact ``where``
    (its input names, layout and dtypes). ``convert`` turns one checked tensor into the native one.

    A missing input or a tensor of the wrong rank is a UsageError naming ``where``.
    """
    native = {}
    for spec in inputs:
        ref = spec.ref_name or spec.name
        if ref not in feed:
            raise UsageError(f"missing input {ref!r} for {where}", f"feed all of: {[s.ref_name or s.name for s in inputs]}")
        arr = np.asarray(feed[ref])
        if arr.ndim != spec.rank:
            raise UsageError(f"input {ref!r} has rank {arr.ndim}, {where} expects rank {spec.rank}",
                             f"give a tensor shaped like {list(spec.shape)}")
        native[spec.name] = convert(arr, spec)
    return native


class Session(ABC):
    name: str = "base"  # runtime name as in the registry
    backend: str = ""  # which library actually ran, e.g. "ai-edge-litert 2.3.0"

    def __init__(self, path: Path, io: IOSpec, threads: int = 1) -> None:
        self.path = Path(path)
        self.io = io
        self.threads = threads

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "Session":
        """Load the artifact. Raise RuntimeFailure with the library's reason when it cannot."""

    @abstractmethod
    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with tensors keyed by the artifact's own input names, in its own layout."""

    # ---------------------------------------------------------------- mapping
    def to_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return native_feed(feed, self.io.inputs, self.path.name)

    def from_native(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = {}
        for spec in self.io.outputs:
            if spec.name not in outputs:
                raise RuntimeFailure(f"{self.path.name} did not produce output {spec.name!r}", "re-convert the model")
            result[spec.ref_name or spec.name] = to_reference_layout(np.asarray(outputs[spec.name]), spec)
        return result

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.from_native(self.run_native(self.to_native(feed)))

    def timed_run(self, feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        native = self.to_native(feed)
        t0 = time.perf_counter()
        out = self.run_native(native)
        return self.from_native(out), time.perf_counter() - t0
