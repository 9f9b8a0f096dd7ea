"""Test-only runtime sessions that misbehave, run inside worker processes by the crash-isolation tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.runtimes.base import Session
from edgeport.spec import IOSpec


class AbortSession(Session):
    """Loads fine, then aborts the process (SIGABRT) on the first run, like a native assertion."""

    name = "abort"

    @classmethod
    def load(cls, path: str | Path, io: IOSpec, threads: int = 1, **options: Any) -> "AbortSession":
        return cls(Path(path), io, threads)

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        os.abort()


class HangSession(AbortSession):
    """Never returns from run."""

    name = "hang"

    def run_native(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(3600)
        return {}
