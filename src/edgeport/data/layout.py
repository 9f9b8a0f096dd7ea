"""Layouts as axis letters (``NCHW``, ``NHWC``, ``NCL``) and the transposes between them."""

from __future__ import annotations

from edgeport.errors import UsageError
from edgeport.spec import TensorSpec, default_layout


def layout_perm(src: str, dst: str) -> tuple[int, ...]:
    """The transpose taking an array laid out as ``src`` to ``dst`` (both strings of the same letters)."""
    s, d = src.upper(), dst.upper()
    if sorted(s) != sorted(d) or len(set(s)) != len(s):
        raise UsageError(f"layout {src!r} cannot be rearranged into {dst!r}", "give a layout with the same axes, e.g. NHWC for NCHW")
    return tuple(s.index(c) for c in d)


def parse_layout(text: str | None) -> str | None:
    """``nhwc`` -> ``NHWC``; None or blank -> None."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip().upper()
    if not t.isalpha() or len(set(t)) != len(t) or not (2 <= len(t) <= 6):
        raise UsageError(f"bad layout {text!r}", "write it as letters, one per axis, e.g. NCHW or NHWC")
    return t


def reference_layout(spec: TensorSpec) -> str | None:
    """The layout of ``spec`` in the reference model: its own note, else the rank's default (NCHW for rank 4)."""
    return (spec.layout or default_layout(spec.rank) or None) if spec.rank else None
