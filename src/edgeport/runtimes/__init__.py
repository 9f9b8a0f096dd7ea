"""Runtimes: one small module per engine, behind :class:`edgeport.runtimes.base.Session`.

The registry is the one place a runtime is described: the Session class that runs it (``module:Class``,
imported only when a session is made, so listing runtimes imports neither torch nor TensorFlow), the
formats it loads, the Python modules it needs (the first one importable is the library it uses; checked
without importing it, so a device without torch reports "skipped: torch is not installed"), and whether it
belongs to the device profile (numpy + ai-edge-litert + onnxruntime). validate, bench and the CLI help
read it; adding a runtime is its Session module plus one entry here (:func:`register`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    name: str
    cls: str  # "module:Class" of its Session
    formats: tuple[str, ...]  # edgeport.formats names it loads
    modules: tuple[str, ...]  # the libraries it can use, preferred first (any one is enough)
    device: bool = False  # part of the device profile (runs without torch and TensorFlow)

    def missing(self) -> str | None:
        """Why this runtime cannot run here (None when it can)."""
        for m in self.modules:
            try:
                if importlib.util.find_spec(m.split(".")[0]) is not None:
                    return None
            except (ImportError, ValueError):
                continue
        return f"{' or '.join(dict.fromkeys(m.split('.')[0] for m in self.modules))} is not installed" if self.modules else None


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("torch_eager", "edgeport.runtimes.torch_eager:TorchEagerSession", ("pytorch",), ("torch",)),
    Runtime("torchscript", "edgeport.runtimes.torchscript:TorchScriptSession", ("torchscript",), ("torch",)),
    Runtime("onnxruntime", "edgeport.runtimes.onnxruntime:OnnxRuntimeSession", ("onnx",), ("onnxruntime",), device=True),
    Runtime("tensorflow", "edgeport.runtimes.tensorflow:SavedModelSession", ("saved_model",), ("tensorflow",)),
    Runtime("tflite", "edgeport.runtimes.tflite:TFLiteSession", ("tflite",),
            ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow"), device=True),
)}


def register(runtime: Runtime) -> Runtime:
    RUNTIMES[runtime.name] = runtime
    return runtime


def unregister(name: str) -> None:
    RUNTIMES.pop(name, None)


def runtimes_for(fmt: str) -> list[str]:
    return [name for name, r in RUNTIMES.items() if fmt in r.formats]


def runtime_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot run in this environment (None when it can, or when it is not registered)."""
    r = RUNTIMES.get(runtime)
    return r.missing() if r else None


def names() -> str:
    """The registered runtimes as a comma list, for help texts and error messages."""
    return ", ".join(RUNTIMES)
