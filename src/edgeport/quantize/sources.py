"""The manifest artifacts a quantization sweep starts from: the SavedModel, the ONNX model, the float .tflite.

The sweep's own files live under ``OUT/quant/``: a float .tflite found there was made by an earlier sweep and
is never taken as a source (the SavedModel may have changed since).
"""

from __future__ import annotations

from edgeport.manifest import Artifact, Manifest
from edgeport.quantize import QUANT_DIR


def find_saved_model(m: Manifest) -> Artifact | None:
    cands = [a for a in m.artifacts if a.format == "saved_model" and a.variant == "fp32"]
    return next((a for a in cands if a.name == "saved_model"), cands[0] if cands else None)


def find_onnx(m: Manifest) -> Artifact | None:
    cands = [a for a in m.artifacts if a.format == "onnx" and a.variant == "fp32"]
    return next((a for a in cands if a.name == "onnx"), cands[0] if cands else None)


def find_float_tflite(m: Manifest) -> Artifact | None:
    """The float .tflite edgeport convert kept (any converter), for ai-edge-quantizer; not one a sweep made."""
    cands = [a for a in m.artifacts if a.format == "tflite" and a.variant == "fp32" and not a.path.startswith(f"{QUANT_DIR}/")]
    return next((a for a in cands if a.name == "tflite"), cands[0] if cands else None)


def find_tflite_fp32(m: Manifest, sm: Artifact) -> Artifact | None:
    """The fp32 .tflite edgeport convert made from the same SavedModel (or with the converter that made it), if any.

    A baseline an earlier sweep made (under quant/) is made again: the SavedModel may have changed since.
    """
    for a in m.artifacts:
        if a.format == "tflite" and a.variant == "fp32" and not a.path.startswith(f"{QUANT_DIR}/") \
                and (a.parent == sm.name or (a.converter and a.converter == sm.converter)):
            return a
    return None
