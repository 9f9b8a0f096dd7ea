"""Run a .tflite artifact with the LiteRT interpreter.

Interpreter preference: ``ai_edge_litert.interpreter`` (LiteRT, the maintained one), then
``tflite_runtime.interpreter``, then ``tf.lite.Interpreter`` (deprecated, and it imports all of
TensorFlow). ``session.backend`` says which one ran. Only numpy and one of those is needed: nothing
heavy is imported at module import time.

The first importable library loads the model and its failure is the answer: no other interpreter is
tried behind the caller's back. Select-TF ("Flex") operators run in none of them here (LiteRT has no
Flex delegate, and TensorFlow 2.21's deprecated ``tf.lite.Interpreter`` refuses them too). Pass
``backend="tensorflow"`` (or another name) to pick an interpreter explicitly.

Tensors are addressed by the artifact IOSpec: a spec name is a signature key (``serving_default``
inputs/outputs, what converters keep the model's names in) or, for models without signatures, a
tensor name. Quantized (int8/uint8/int16) inputs are quantized from float feeds with the tensor's
scale and zero point, and quantized outputs dequantized, so a quantized variant compares against
the float reference directly. Inputs with dynamic dimensions (-1 in the shape signature) are
resized to each feed's shape.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import RuntimeFailure, UsageError
from edgeport.runtimes.base import Session, native_feed, native_tensor
from edgeport.spec import IOSpec, TensorSpec

# name -> (module, distribution whose version is reported)
_BACKENDS: dict[str, tuple[str, str]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow", "tensorflow"),
}
_QUANTIZED = ("int8", "uint8", "int16")


def _version(dist: str) -> str:
    from importlib import metadata

    for d in (dist, "tensorflow-cpu") if dist == "tensorflow" else (dist,):
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def _interpreter_class(name: str) -> Any:
    module, _ = _BACKENDS[name]
    mod = importlib.import_module(module)
    return mod.lite.Interpreter if name == "tensorflow" else mod.Interpreter


def available_backends() -> list[str]:
    """Interpreter libraries importable here, in preference order (imports nothing heavy)."""
    import importlib.util

    out = []
    for name, (module, _) in _BACKENDS.items():
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is not None:
            out.append(name)
    return out


class TFLiteSession(Session):
    name = "tflite"

    def __init__(self, path: Path, io: IOSpec, threads: int = 1) -> None:
        super().__init__(path, io, threads)
        self.notes: list[str] = []
        self._interp: Any = None
        self._runner: Any = None  # signature runner when the spec names are signature keys
        self._in: dict[str, dict[str, Any]] = {}  # spec/native name -> input detail
        self._out: dict[str, dict[str, Any]] = {}  # native name -> output detail (index mode)
        self._sig_out_details: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, backend: str = "auto", **options: Any) -> "TFLiteSession":
        """Load ``path``. ``backend``: "auto" or one of ai-edge-litert, tflite-runtime, tensorflow."""
        s = cls(Path(path), io, threads)
        if not s.path.is_file():
            raise RuntimeFailure(f"{s.path} does not exist", "re-run edgeport convert")
        if backend != "auto" and backend not in _BACKENDS:
            raise UsageError(f"unknown TFLite backend {backend!r}", f"use auto or one of {', '.join(_BACKENDS)}")
        order = [backend] if backend != "auto" else available_backends()
        if not order:
            raise RuntimeFailure("no TFLite interpreter is installed", "pip install ai-edge-litert")
        skipped: list[str] = []
        for name in order:  # the first importable library loads the model; its failure is the answer
            try:
                cls_ = _interpreter_class(name)
            except ImportError as exc:
                skipped.append(f"{name} ({exc})")
                continue
            try:
                interp = cls_(model_path=str(s.path), num_threads=int(threads))
                interp.allocate_tensors()
            except (RuntimeError, ValueError) as exc:
                why = " ".join(str(exc).split())
                hint = ("the model holds Select-TF (Flex) ops, which neither LiteRT nor TensorFlow's deprecated "
                        "interpreter runs; re-convert without them") if _is_flex_error(why) else "re-convert the model"
                raise RuntimeFailure(f"{name} cannot load {s.path.name}: {why[:300]}", hint) from None
            s._interp = interp
            s.backend = f"{name} {_version(_BACKENDS[name][1])}"
            if skipped:
                s.notes.append("skipped TFLite interpreters that failed to import: " + "; ".join(skipped))
            s._bind()
            return s
        raise RuntimeFailure("no TFLite interpreter could be imported: " + "; ".join(skipped), "pip install ai-edge-litert")

    def _bind(self) -> None:
        interp = self._interp
        in_details = {d["name"]: d for d in interp.get_input_details()}
        out_details = {d["name"]: d for d in interp.get_output_details()}
        sigs: dict[str, Any] = {}
        try:
            sigs = interp.get_signature_list() or {}
        except (AttributeError, RuntimeError, ValueError):
            sigs = {}
        key = "serving_default" if "serving_default" in sigs else (next(iter(sigs)) if len(sigs) == 1 else None)
        wanted_in = [t.name for t in self.io.inputs]
        wanted_out = [t.name for t in self.io.outputs]
        if key is not None:
            sig = sigs[key]
            names_ok = all(n in sig["inputs"] for n in wanted_in) and all(n in sig["outputs"] for n in wanted_out)
            if names_ok:
                self._runner = interp.get_signature_runner(key)
                self._in = dict(self._runner.get_input_details())
                self._sig_out_details = dict(self._runner.get_output_details())
                return
        missing = [n for n in wanted_in if n not in in_details] + [n for n in wanted_out if n not in out_details]
        if missing:
            known_in = list(in_details) + ([f"{key}:{n}" for n in sigs[key]["inputs"]] if key else [])
            raise RuntimeFailure(f"{self.path.name} has no tensor or signature entry named {missing[0]!r}",
                                 f"its inputs are {known_in}; re-create the manifest with edgeport convert")
        self._in = in_details
        self._out = out_details

    # ------------------------------------------------------------------ info
    def input_details(self) -> dict[str, dict[str, Any]]:
        """Native input name -> interpreter detail (shape, dtype, quantization)."""
        return dict(self._in)

    def output_details(self) -> dict[str, dict[str, Any]]:
        return dict(self._sig_out_details if self._runner is not None else self._out)

    # ------------------------------------------------------------------ mapping with (de)quantization
    def to_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return native_feed(feed, self.io.inputs, self.path.name, self._native_tensor)

    def _native_tensor(self, arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
        """Float feeds of a quantized input are quantized with its scale and zero point (elementwise, so before the layout)."""
        detail = self._in.get(spec.name, {})
        scale, zero = _quant_params(detail)
        dtype = np.dtype(detail["dtype"]) if "dtype" in detail else np.dtype(spec.dtype)
        if scale is not None and np.issubdtype(arr.dtype, np.floating) and dtype.name in _QUANTIZED:
            info = np.iinfo(dtype)
            arr = np.clip(np.round(arr / scale + zero), info.min, info.max)
        return native_tensor(arr, spec, dtype)

    def from_native(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        details = self.output_details()
        deq = {}
        for name, arr in outputs.items():
            scale, zero = _quant_params(details.get(name, {}))
            if scale is not None and np.asarray(arr).dtype.name in _QUANTIZED:
                arr = ((np.asarray(arr).astype(np.float32) - zero) * scale).astype(np.float32)
            deq[name] = arr
        return super().from_native(deq)

    # ------------------------------------------------------------------ running
    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with native names; returns every output of the model (not only the spec's)."""
        try:
            if self._runner is not None:
                return {k: np.array(v) for k, v in self._runner(**feed).items()}
            interp = self._interp
            resized = False
            for name, arr in feed.items():
                d = self._in.get(name)
                if d is None:
                    raise UsageError(f"{self.path.name} has no input {name!r}", f"its inputs are {list(self._in)}")
                if tuple(d["shape"]) != tuple(arr.shape):
                    interp.resize_tensor_input(d["index"], list(arr.shape), strict=False)
                    resized = True
            if resized:
                interp.allocate_tensors()
                self._in = {d["name"]: d for d in interp.get_input_details()}
                self._out = {d["name"]: d for d in interp.get_output_details()}
            for name, arr in feed.items():
                interp.set_tensor(self._in[name]["index"], arr)
            interp.invoke()
            return {name: np.array(interp.get_tensor(d["index"])) for name, d in self._out.items()}
        except (RuntimeError, ValueError) as exc:
            raise RuntimeFailure(f"{self.path.name} failed to run: {' '.join(str(exc).split())[:300]}",
                                 "check the input shapes and dtypes against the manifest") from None


def _quant_params(detail: dict[str, Any]) -> tuple[float | None, int]:
    """(scale, zero_point) of a per-tensor quantized tensor, else (None, 0)."""
    q = detail.get("quantization_parameters") or {}
    scales = np.asarray(q.get("scales", []))
    if scales.size == 1 and float(scales[0]) != 0.0:
        zps = np.asarray(q.get("zero_points", [0]))
        return float(scales[0]), int(zps[0]) if zps.size else 0
    scale, zero = detail.get("quantization", (0.0, 0)) or (0.0, 0)
    if scale:
        return float(scale), int(zero)
    return None, 0


def _is_flex_error(text: str) -> bool:
    t = text.lower()
    return "select tensorflow op" in t or "flex" in t
