"""Parity validation across runtimes: the matrix (parity), its rows (results), worker runs (runner), metrics, reports.

    from edgeport.validate import ValidateOptions, validate_dir, validate_files
    report = validate_dir("out/", ValidateOptions(samples=4))
    assert report, report.summary()

Metrics and reports are numpy-only; torch, ONNX Runtime and TensorFlow load only inside the worker
processes that run the models. Names here are imported lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ValidateOptions", "ValidationReport", "TargetResult", "Tolerance", "ToleranceConfig", "validate_dir",
           "validate_files", "compare_output", "load_config"]

_WHERE = {
    "ValidateOptions": "edgeport.validate.parity",
    "ValidationReport": "edgeport.validate.results",
    "TargetResult": "edgeport.validate.results",
    "validate_dir": "edgeport.validate.parity",
    "validate_files": "edgeport.validate.parity",
    "Tolerance": "edgeport.validate.metrics",
    "compare_output": "edgeport.validate.metrics",
    "ToleranceConfig": "edgeport.validate.config",
    "load_config": "edgeport.validate.config",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'edgeport.validate' has no attribute {name!r}")
