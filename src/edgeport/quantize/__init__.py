"""Quantization experiments: every mode, real calibration data, a sweep report, the layers that break int8.

    edgeport quantize OUT --modes fp16,dynamic,int8,int16x8,ort-dynamic,ort-qdq --calibration images/ --keep-float 3

Modules (numpy-only at import time; TensorFlow, ONNX Runtime and torch load inside worker processes):

- :mod:`.calibration`: calibration/held-out data from .npz/.npy, image folders or a ``module:function``; the
  split that keeps accuracy off calibration inputs; feeding converters in their own layout;
- :mod:`.tflite_variants`: TFLiteConverter variants of the SavedModel (fp16, dynamic-int8, int8, int16x8,
  int8 with layers left in float);
- :mod:`.ort_variants`: ONNX Runtime dynamic and static (QDQ) int8;
- :mod:`.debug`: per-layer int8 error from TensorFlow's quantization debugger, ranked and mapped to ONNX
  nodes and PyTorch modules;
- :mod:`.sweep`: the orchestration, one worker process per conversion and per evaluation;
- :mod:`.report`: console table, report.json, report.html and the PNG plots.

Variants go to ``OUT/quant/`` and into ``OUT/manifest.json`` as artifacts with ``variant`` fp16,
dynamic-int8, int8, int16x8, int8-keepfloat, ort-dynamic-int8 or ort-qdq-int8 and ``parent`` the artifact
they were made from.
"""

from __future__ import annotations

__all__ = ["QUANT_DIR", "VARIANTS"]

QUANT_DIR = "quant"
VARIANTS = ("fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat", "ort-dynamic-int8", "ort-qdq-int8")
