"""Quantization experiments: every mode, real calibration data, a sweep report, the layers that break int8.

    edgeport quantize OUT --modes fp16,dynamic,int8,int16x8,ort-dynamic,ort-qdq --calibration images/ --keep-float 3
    edgeport quantize OUT --dataset digits --max-accuracy-drop 0.5%     # every mode; search; recommendation

Modules (numpy-only at import time; TensorFlow, ONNX Runtime and torch load inside worker processes):

- :mod:`.calibration`: calibration/held-out data from .npz/.npy, image folders or a ``module:function``; the
  split that keeps accuracy off calibration inputs; feeding converters in their own layout;
- :mod:`.tflite_variants`: TFLiteConverter variants of the SavedModel (fp16, dynamic-int8, int8, int16x8,
  int8 with layers left in float);
- :mod:`.aeq_variants`: ai-edge-quantizer recipes on any float .tflite (dynamic int8, weight-only int8/int4,
  static int8, int16 activations with int8 weights), isolated per-op sensitivity and the keep-float search;
- :mod:`.ort_variants`: ONNX Runtime dynamic and static (QDQ) int8;
- :mod:`.remedies` (decisions) and :mod:`.remedy_steps` (running them): when the delegate leaves ops of the int8
  model on builtin kernels, int8 with those ops in float, with their ONNX ops rewritten (:mod:`.rewrite`), and
  with int8 I/O, as extra variants; the verdict on int8 speed against fp32, op by op when it falls short;
- :mod:`.debug`: per-layer int8 error from TensorFlow's quantization debugger, ranked and mapped to ONNX
  nodes and PyTorch modules;
- :mod:`.options` (the --modes vocabulary, QuantizeOptions), :mod:`.model` (VariantRow, SweepReport, the
  recommendation), :mod:`.evaluate` (worker entries that run and time a variant), :mod:`.compare` (outputs
  against the reference);
- :mod:`.sweep`: the orchestration, one worker process per conversion and per evaluation;
- :mod:`.report`: console table, report.json, report.html and the PNG plots.

Variants go to ``OUT/quant/`` and into ``OUT/manifest.json`` as artifacts with a ``variant`` of
:data:`VARIANTS` and ``parent`` the artifact they were made from.
"""

from __future__ import annotations

__all__ = ["QUANT_DIR", "VARIANTS"]

QUANT_DIR = "quant"
VARIANTS = ("fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat", "int8-float-ops", "int8-rewrite", "int8-io",
            "aeq-dynamic-int8", "aeq-weight-int8",
            "aeq-weight-int4", "aeq-int8", "aeq-int16x8", "aeq-int8-selective", "ort-dynamic-int8", "ort-qdq-int8")
