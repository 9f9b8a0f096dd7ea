"""User-facing errors and the exit codes they map to.

Every error a user can cause is an :class:`EdgeportError` carrying a one-line message that names the
problem and a hint that names the fix. The CLI prints ``error: <message> (<hint>)`` and exits with the
class's exit code; ``--debug`` adds the traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a parity check or a threshold failed
EXIT_BAD_INPUT = 2  # bad input or usage
EXIT_FAILED = 3  # a conversion or a runtime failed or crashed
EXIT_INTERRUPTED = 130


class EdgeportError(Exception):
    """Base class. ``message`` says what is wrong, ``hint`` what to do about it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())
        self.hint = " ".join(str(hint).split())

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_json(self) -> dict:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint, "exit_code": self.exit_code}

    @staticmethod
    def from_json(data: dict) -> "EdgeportError":
        cls = _BY_NAME.get(data.get("type", ""), EdgeportError)
        err = cls(data.get("message", "unknown error"), data.get("hint", ""))
        return err


class UsageError(EdgeportError):
    """A bad option, flag combination or spec string."""


class InputError(EdgeportError):
    """A missing, unreadable or malformed file the user handed us."""


class ModelError(EdgeportError):
    """The user's model cannot be loaded or run on the given inputs."""


class OutputError(EdgeportError):
    """The output location cannot be written safely."""


class ManifestError(EdgeportError):
    """A manifest is missing, malformed, or does not match the files it describes."""


class SecurityError(EdgeportError):
    """A file asks for something unsafe (unpickling, path traversal, links)."""


class ConversionError(EdgeportError):
    """A converter failed on a valid input."""

    exit_code = EXIT_FAILED


class RuntimeFailure(EdgeportError):
    """A runtime failed to load or run an artifact."""

    exit_code = EXIT_FAILED


_BY_NAME = {
    c.__name__: c
    for c in (
        EdgeportError,
        UsageError,
        InputError,
        ModelError,
        OutputError,
        ManifestError,
        SecurityError,
        ConversionError,
        RuntimeFailure,
    )
}
