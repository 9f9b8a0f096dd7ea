"""The one line of an exception that says what went wrong, for messages and notes.

    first_line(exc)   # "'tf.Erf' op is neither a custom op nor a flex op" from a 40-line ConverterError

Converters and runtimes raise multi-line texts (MLIR diagnostics, C++ asserts with ``file:line:`` prefixes,
tracebacks). Whitespace is collapsed; when the text holds an ``error:`` marker (MLIR's ``loc(...): error:``)
the part after the first one is kept; a leading C++ ``/path/file.cc:123: Kind:`` prefix is dropped. Pure
string handling: imports nothing from edgeport.
"""

from __future__ import annotations

import re

_CPP_PREFIX = re.compile(r"^/\S+:\d+: \w+: ")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """What ``exc`` says, on one line of at most ``limit`` characters (its type name when it says nothing)."""
    text = " ".join(str(exc).split())
    for marker in ("error: ", "Error: "):
        if marker in text:
            text = text[text.index(marker) + len(marker):]
            break
    text = _CPP_PREFIX.sub("", text)
    return text[:limit] or type(exc).__name__
