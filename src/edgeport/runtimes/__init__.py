"""Runtimes: one small module per engine, behind :class:`edgeport.runtimes.base.Session`.

The registry maps a runtime name to "module:Class" and to the artifact formats it loads, so listing
runtimes imports neither torch nor TensorFlow.
"""

RUNTIMES: dict[str, dict] = {
    "torch_eager": {"cls": "edgeport.runtimes.torch_eager:TorchEagerSession", "formats": ("pytorch",)},
    "torchscript": {"cls": "edgeport.runtimes.torchscript:TorchScriptSession", "formats": ("torchscript",)},
    "onnxruntime": {"cls": "edgeport.runtimes.onnxruntime:OnnxRuntimeSession", "formats": ("onnx",)},
    "tensorflow": {"cls": "edgeport.runtimes.tensorflow:SavedModelSession", "formats": ("saved_model",)},
    "tflite": {"cls": "edgeport.runtimes.tflite:TFLiteSession", "formats": ("tflite",)},
}


def runtimes_for(fmt: str) -> list[str]:
    return [name for name, r in RUNTIMES.items() if fmt in r["formats"]]
