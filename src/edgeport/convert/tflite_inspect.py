"""Flex/custom-op messages for converters, over :mod:`edgeport.tflite_fb` (the one .tflite reader).

``inspect_tflite``, ``layer_hint`` and ``FLEX_PREFIX`` are re-exported from there, so callers in
convert/ keep importing them from here.
"""

from __future__ import annotations

from typing import Any

from edgeport.tflite_fb import FLEX_PREFIX, inspect_tflite, layer_hint

__all__ = ["FLEX_PREFIX", "describe_offenders", "inspect_tflite", "layer_hint"]


def describe_offenders(info: dict[str, Any], limit: int = 3) -> str:
    """One phrase naming the Flex/custom ops and the layers they come from, for error messages.

    ``"Flex ops FlexErf (from layer 'blocks.0.mlp.act', 'blocks.1.mlp.act'); custom ops X (...)"``
    """
    parts = []
    for kind, names in (("Flex ops", info.get("flex_ops", [])), ("custom ops", info.get("custom_ops", []))):
        if not names:
            continue
        items = []
        for n in names:
            layers = []
            for o in info.get("offenders", []):
                if o["op"] == n and o.get("layer") and o["layer"] not in layers:
                    layers.append(o["layer"])
            where = ", ".join(repr(x) for x in layers[:limit]) + (f" and {len(layers) - limit} more" if len(layers) > limit else "")
            items.append(f"{n} (from layer {where})" if where else n)
        parts.append(f"{kind} " + ", ".join(items))
    return "; ".join(parts)
