"""Figures the test run measures about itself (bad inputs handled, faults survived, fuzzing done),
printed at the end of the run by ``pytest_terminal_summary`` in tests/conftest.py.

Tests add to them with :func:`add`; the conftest counts fault-injection and fuzz tests from their
reports, so a figure is only ever what this run did.
"""

from __future__ import annotations

from collections import Counter

FIGURES: Counter = Counter()


def add(name: str, n: float = 1) -> None:
    FIGURES[name] += n
