"""Every registered converter and runtime has an end-to-end test that names it.

A backend added to a registry without a test would ship unchecked; this fails until one exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgeport.convert import CONVERTERS
from edgeport.runtimes import RUNTIMES

E2E = Path(__file__).resolve().parents[1] / "e2e"


def _e2e_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(E2E.glob("test_*.py")))


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_every_converter_has_an_e2e_test(name):
    text = _e2e_text()
    if name in ("torchscript", "torch.onnx"):  # the export steps: every convert run uses them
        assert re.search(r"--to\"?,\s*\"[^\"]*" + ("torchscript" if name == "torchscript" else "onnx"), text), name
        return
    assert re.search(r"[\"']" + re.escape(name) + r"[\"']", text), f"no e2e test names the {name} converter"


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_has_an_e2e_test(name):
    assert re.search(r"[\"']" + re.escape(name) + r"[\"']", _e2e_text()), f"no e2e test names the {name} runtime"
