"""Converters: one module per edge of the conversion graph.

Each converter module exposes ``run(**job) -> dict`` executed inside a worker process (see
:mod:`edgeport.worker`). The job is plain JSON (see :class:`edgeport.convert.base.StepJob`); the return
value is ``{"artifacts": [Artifact JSON, ...], "notes": [...]}`` with files written under
``job["staging"]`` and paths relative to it. The parent (:mod:`edgeport.convert.plan`) moves them into
the output folder atomically, hashes them and records them in the manifest.

The registry holds "module:function" strings so that listing converters imports nothing heavy.
"""

# target format -> ordered converter names tried by --converter auto
TARGETS = ("torchscript", "onnx", "saved_model", "tflite")

CONVERTERS: dict[str, dict] = {
    "torchscript": {"entry": "edgeport.convert.torchscript:run", "targets": ("torchscript",), "from": "pytorch"},
    "torch.onnx": {"entry": "edgeport.convert.onnx_export:run", "targets": ("onnx",), "from": "pytorch"},
    "onnx2tf": {"entry": "edgeport.convert.onnx2tf_backend:run", "targets": ("saved_model", "tflite"), "from": "onnx"},
    "litert-torch": {"entry": "edgeport.convert.litert_torch_backend:run", "targets": ("tflite",), "from": "pytorch"},
    "onnx-tf": {"entry": "edgeport.convert.onnx_tf_backend:run", "targets": ("saved_model", "tflite"), "from": "onnx"},
}
