"""Converters: one module per edge of the conversion graph, described once in :data:`CONVERTERS`.

Each converter module exposes ``run(**job) -> dict`` executed inside a worker process (see
:mod:`edgeport.worker`). The job is plain JSON (see :class:`edgeport.convert.base.StepJob`); the return
value is ``{"artifacts": [Artifact JSON, ...], "notes": [...]}`` with files written under
``job["staging"]`` and paths relative to it. The parent (:mod:`edgeport.convert.plan`) moves them into
the output folder atomically, hashes them and records them in the manifest.

The registry is the one place a converter is described: the CLI help, ``edgeport backends``, the
plan's converter order (``--converter auto``), whether an ONNX model is needed, and the error for an
unknown ``--converter`` are all derived from it. It holds "module:function" strings so that listing
converters imports nothing heavy. Adding a converter is its module plus one :func:`register` call.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeport.formats import targets


@dataclass(frozen=True)
class Converter:
    """One converter backend.

    - ``source``: the format it starts from, "pytorch" or "onnx".
    - ``env``: the managed environment it runs in (a name in :data:`edgeport.backends.MANAGED`), or None
      for edgeport's own interpreter; ``requires`` then lists the distributions it needs there (a tuple
      inside lists alternatives, e.g. tensorflow or tensorflow-cpu).
    - ``auto``: its place in ``--converter auto`` (lower first; None: only when named). ``fast`` marks the
      first tier: the slow tier is tried only when no fast candidate passes.
    """

    name: str
    entry: str
    source: str
    targets: tuple[str, ...]
    description: str
    env: str | None = None
    requires: tuple[str | tuple[str, ...], ...] = ()
    also_report: tuple[str, ...] = ()
    auto: int | None = None
    fast: bool = False

    @property
    def needs_onnx(self) -> bool:
        return self.source == "onnx"

    @property
    def tf_targets(self) -> tuple[str, ...]:
        return tuple(t for t in self.targets if t in ("saved_model", "tflite"))


CONVERTERS: dict[str, Converter] = {}


def register(conv: Converter) -> Converter:
    """Add ``conv`` to the registry (a test or a plug-in may add its own)."""
    if conv.source not in ("pytorch", "onnx"):
        raise ValueError(f"converter {conv.name}: source must be pytorch or onnx, not {conv.source!r}")
    unknown = [t for t in conv.targets if t not in targets()]
    if unknown:
        raise ValueError(f"converter {conv.name}: unknown targets {unknown}")
    CONVERTERS[conv.name] = conv
    return conv


def unregister(name: str) -> None:
    CONVERTERS.pop(name, None)


def tf_converters(target: str) -> list[Converter]:
    """Converters that make ``target`` (saved_model or tflite), in auto order (fast tier first)."""
    cands = [c for c in CONVERTERS.values() if target in c.targets]
    return sorted(cands, key=lambda c: (not c.fast, c.auto if c.auto is not None else 1_000, c.name))


register(Converter("torchscript", "edgeport.convert.torchscript:run", "pytorch", ("torchscript",),
                   "PyTorch -> TorchScript (torch.jit.trace)", requires=("torch",)))
register(Converter("torch.onnx", "edgeport.convert.onnx_export:run", "pytorch", ("onnx",),
                   "PyTorch -> ONNX (dynamo or legacy exporter)", requires=("torch", "onnx"), also_report=("onnxscript",)))
register(Converter("onnx2tf", "edgeport.convert.onnx2tf2_backend:run", "onnx", ("saved_model", "tflite"),
                   "onnx2tf 2.x: ONNX -> .tflite straight from the graph (+ SavedModel), NHWC, seconds",
                   env="onnx2tf", auto=10, fast=True))
register(Converter("litert-torch", "edgeport.convert.litert_torch_backend:run", "pytorch", ("tflite",),
                   "PyTorch -> TFLite directly (torch.export)", requires=("litert-torch", "torch"),
                   also_report=("ai-edge-litert",), auto=20, fast=True))
register(Converter("onnx2tf-1", "edgeport.convert.onnx2tf_backend:run", "onnx", ("saved_model", "tflite"),
                   "onnx2tf 1.29: ONNX -> TF graph -> SavedModel/TFLite (NHWC), minutes",
                   requires=("onnx2tf", "onnx", ("tensorflow", "tensorflow-cpu")), also_report=("tf-keras",), auto=30))
register(Converter("onnx-tf", "edgeport.convert.onnx_tf_backend:run", "onnx", ("saved_model", "tflite"),
                   "legacy onnx/onnx-tensorflow: ONNX -> SavedModel -> TFLite (TF 2.15, keeps NCHW)",
                   env="onnx-tf", auto=40))
