"""Run a TensorFlow SavedModel (as written by onnx2tf) through its serving signature.

The serving signature takes keyword arguments named after the model inputs and returns a dict of
named outputs; those names are the artifact IOSpec's names. A SavedModel without signatures is
called as ``obj(list_of_inputs)`` in IOSpec order (onnx2tf's Keras model convention), and its
outputs are named by IOSpec order; ``session.notes`` says so.

Threads are set with ``tf.config.threading`` before the first op runs. TensorFlow allows that only
once per process: when the runtime was already initialised with other values, the session keeps
them and records it in ``session.notes`` (benchmarks run each session in a fresh worker anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import RuntimeFailure, UsageError
from edgeport.runtimes.base import Session
from edgeport.spec import IOSpec

SIGNATURE_KEY = "serving_default"


def _tf_version() -> str:
    from importlib import metadata

    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "?"


class SavedModelSession(Session):
    name = "tensorflow"

    def __init__(self, path: Path, io: IOSpec, threads: int = 1) -> None:
        super().__init__(path, io, threads)
        self.notes: list[str] = []
        self._obj: Any = None
        self._fn: Any = None
        self._signature = False
        self._input_specs: dict[str, Any] = {}
        self._tf: Any = None

    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "SavedModelSession":
        s = cls(Path(path), io, threads)
        if not (s.path / "saved_model.pb").is_file() and not (s.path / "saved_model.pbtxt").is_file():
            raise RuntimeFailure(f"{s.path} is not a SavedModel folder (no saved_model.pb)", "re-run edgeport convert")
        try:
            import tensorflow as tf
        except ImportError:
            raise RuntimeFailure("TensorFlow is not installed", "pip install tensorflow-cpu to run SavedModels") from None
        s._tf = tf
        s._set_threads(int(threads))
        try:
            s._obj = tf.saved_model.load(str(s.path))
        except Exception as exc:  # noqa: BLE001 - TF raises many types; all mean "cannot load"
            raise RuntimeFailure(f"cannot load SavedModel {s.path.name}: {' '.join(str(exc).split())[:300]}",
                                 "re-run edgeport convert") from None
        sigs = getattr(s._obj, "signatures", {}) or {}
        if SIGNATURE_KEY in sigs or len(sigs) == 1:
            s._fn = sigs[SIGNATURE_KEY] if SIGNATURE_KEY in sigs else next(iter(sigs.values()))
            s._signature = True
            _, kw = s._fn.structured_input_signature
            s._input_specs = dict(kw)
        elif callable(s._obj):
            s._fn = s._obj
            s.notes.append("SavedModel has no serving signature: called positionally in IOSpec order")
        else:
            raise RuntimeFailure(f"SavedModel {s.path.name} has no serving signature and is not callable",
                                 "re-export it with a serving_default signature")
        s.backend = f"tensorflow {_tf_version()}"
        return s

    def _set_threads(self, threads: int) -> None:
        tf = self._tf
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            got = tf.config.threading.get_intra_op_parallelism_threads()
            if got != threads:
                self.notes.append(f"TensorFlow was already initialised with {got} intra-op threads; asked for {threads}")

    def input_names(self) -> list[str]:
        """The serving signature's keyword input names (empty without a signature)."""
        return list(self._input_specs)

    def input_signature(self) -> dict[str, tuple[list[int | None], str]]:
        """Signature input name -> (shape with None for dynamic dims, dtype name)."""
        return {n: ([d for d in spec.shape.as_list()] if spec.shape.rank is not None else [], spec.dtype.name)
                for n, spec in self._input_specs.items()}

    def output_signature(self) -> dict[str, tuple[list[int | None], str]]:
        """Signature output name -> (shape with None for dynamic dims, dtype name)."""
        if not self._signature:
            return {}
        outs = self._fn.structured_outputs
        if not isinstance(outs, dict):
            return {}
        return {n: ([d for d in spec.shape.as_list()] if spec.shape.rank is not None else [], spec.dtype.name)
                for n, spec in outs.items()}

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with the signature's input names; returns every output the signature produces."""
        tf = self._tf
        try:
            if self._signature:
                unknown = [k for k in feed if k not in self._input_specs]
                if unknown:
                    raise UsageError(f"SavedModel {self.path.name} has no input {unknown[0]!r}",
                                     f"its inputs are {list(self._input_specs)}")
                out = self._fn(**{k: tf.constant(v) for k, v in feed.items()})
            else:
                out = self._fn([tf.constant(feed[t.name]) for t in self.io.inputs])
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise RuntimeFailure(f"SavedModel {self.path.name} failed to run: {' '.join(str(exc).split())[:300]}",
                                 "check the input shapes and dtypes against the manifest") from None
        if isinstance(out, dict):
            return {k: np.asarray(v) for k, v in out.items()}
        seq = out if isinstance(out, (list, tuple)) else [out]
        names = [t.name for t in self.io.outputs] or [f"output_{i}" for i in range(len(seq))]
        return {n: np.asarray(v) for n, v in zip(names, seq)}
