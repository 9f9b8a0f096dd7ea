"""The options of ``edgeport convert`` (the conversion side; :class:`edgeport.api.SourceOptions` is the model side).

One frozen dataclass, read by the pipeline (:mod:`edgeport.convert.plan`), the library call and the CLI, whose
option defaults are these fields' defaults. It imports nothing, so that ``edgeport --help`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvertOptions:
    targets: tuple[str, ...] = ("torchscript", "onnx")
    converter: str = "auto"  # auto, or a comma list of converter names
    opset: int = 18
    legacy_exporter: bool = False
    script: bool = False
    keep_layout: bool = False
    allow_flex: bool = False
    samples: int = 3
    rtol: float = 1e-4  # parity gate for tflite/saved_model candidates (relative to the output's max magnitude)
    select: str = "fastest"  # auto: keep the fastest passing .tflite of the fast tier, or the first that passes
    timeout: float = 1800.0
    use_cache: bool = True
