"""Parity checks for a project's own test suite, in one line.

    from edgeport.testing import assert_parity

    def test_exported_model_matches():
        assert_parity("build/model_out")                         # every artifact vs PyTorch
        assert_parity("model.onnx", "model.tflite", atol=1e-4)   # two files, no manifest

With pytest, the ``edgeport_parity`` fixture is the same function (the package registers this module
as a pytest plugin; without the entry point, add ``pytest_plugins = ["edgeport.testing"]`` to a
conftest.py)::

    def test_parity(edgeport_parity):
        edgeport_parity("build/model_out", atol={"logits": 1e-3})

Failures raise ``AssertionError`` naming every failing artifact, runtime and output with its error;
a runtime that crashes or cannot load its artifact fails the assertion too. The report is returned
on success. Nothing heavy is imported until a check runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from edgeport.validate.results import ValidationReport

__all__ = ["assert_parity", "assert_close", "edgeport_parity"]

Tol = float | Mapping[str, float] | Iterable[str] | None


def _tol_strings(value: Tol) -> list[str] | None:
    """1e-4 / {"logits": 1e-3, "*": 1e-4} / ["1e-4", "logits:1e-3"] -> CLI-style strings."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return [repr(float(value))]
    if isinstance(value, Mapping):
        return [repr(float(v)) if k in ("*", "") else f"{k}:{float(v)!r}" for k, v in value.items()]
    return [str(v) for v in value]


def assert_parity(
    model: str | os.PathLike,
    other: str | os.PathLike | None = None,
    *,
    atol: Tol = None,
    rtol: Tol = None,
    statistic: str | None = None,
    compare: str | Iterable[str] | None = None,
    samples: int | None = None,
    seed: int = 0,
    inputs_npz: str | os.PathLike | None = None,
    reference: str | None = None,
    artifacts: Iterable[str] | None = None,
    runtimes: Iterable[str] | None = None,
    threads: int = 1,
    timeout: float = 300.0,
    config: str | os.PathLike | None | bool = True,
    localize: bool = False,
    allow_skipped: bool = True,
) -> "ValidationReport":
    """Assert that every artifact of the output folder ``model`` (or the file ``other`` against the file
    ``model``) matches its reference within tolerance. Returns the report.

    ``atol``/``rtol``: a number, ``{"output": value}`` (``"*"`` for all), or CLI strings. ``compare``:
    ``"scale"`` (the default for fp32/fp16) or ``"elementwise"`` (allclose), or ``"NAME:MODE"`` strings. ``config``:
    True reads the nearest edgeport.toml / pyproject.toml like the CLI, a path reads that file, False
    none. ``allow_skipped=False`` also fails when a runtime could not run here (e.g. torch missing).
    """
    from edgeport.validate.config import ValidateConfig, load_config
    from edgeport.validate.parity import ValidateOptions, validate_dir, validate_files

    if config is False or config is None:
        cfg = ValidateConfig()
    else:
        cfg = load_config(None if config is True else config)
    cfg.tolerances.add_cli(_tol_strings(atol), _tol_strings(rtol), statistic, compare=compare)
    opts = ValidateOptions(samples=samples, seed=seed, inputs_npz=str(inputs_npz) if inputs_npz else None,
                           reference=reference, artifacts=list(artifacts) if artifacts else None,
                           runtimes=list(runtimes) if runtimes else None, tolerances=cfg.tolerances, threads=threads,
                           timeout=timeout, localize=localize)
    report = validate_dir(model, opts) if other is None else validate_files(model, other, opts)
    problems = _parity_problems(report, allow_skipped)
    if problems:
        raise AssertionError(report.summary() + "\n  " + "\n  ".join(problems))
    return report


def _parity_problems(report: "ValidationReport", allow_skipped: bool) -> list[str]:
    """One line per output out of tolerance, row that failed to run (or was skipped, unless allowed) and failed localization."""
    from edgeport.status import SKIPPED

    problems = []
    for r in report.results:
        if r.status == SKIPPED:
            if not allow_skipped and not r.reason.startswith("not selected"):
                problems.append(f"{r.key}: skipped ({r.reason})")
            continue
        if not r:
            if r.outputs and any(not o.passed for o in r.outputs):
                for o in r.outputs:
                    if not o.passed:
                        problems.append(f"{r.key} output {o.name!r}: " + "; ".join(o.failures))
            else:
                problems.append(f"{r.key}: {r.status}: {r.reason}")
    if not report.ran:
        problems.append("nothing could be validated: no runtime could run any artifact here")
    for loc in report.localizations:
        if loc.get("message"):
            problems.append(f"localize {loc.get('reference')} vs {loc.get('candidate')}: {loc['message']}")
    return problems


def assert_close(expected: Any, actual: Any, *, atol: float | None = None, rtol: float | None = None,
                 statistic: str | None = None, compare: str | None = None, name: str = "output") -> None:
    """Assert two arrays (or two dicts of arrays with the same keys) agree, with edgeport's metrics in the message.

    Unset tolerances are ``edgeport validate``'s fp32 default (the scale rule of :mod:`edgeport.tolerance`:
    every element within atol + rtol x the output's max |expected|); ``compare="elementwise"`` is allclose.
    """
    from edgeport.validate.config import KIND_DEFAULTS
    from edgeport.validate.metrics import compare_output

    tol = KIND_DEFAULTS["fp32"].with_(atol=atol, rtol=rtol, statistic=statistic, compare=compare)
    pairs = [(k, expected[k], actual[k] if k in actual else None) for k in expected] if isinstance(expected, Mapping) \
        else [(name, expected, actual)]
    problems = []
    for k, e, a in pairs:
        if a is None:
            problems.append(f"{k}: missing")
            continue
        c = compare_output(k, e, a, tol)
        if not c:
            problems.append(f"{k}: " + "; ".join(c.failures))
    if problems:
        raise AssertionError("outputs differ:\n  " + "\n  ".join(problems))


try:  # the pytest fixture, when pytest is around (this module is also a pytest11 plugin)
    import pytest as _pytest
except ImportError:  # pragma: no cover - used outside pytest
    _pytest = None

if _pytest is not None:

    @_pytest.fixture
    def edgeport_parity():  # type: ignore[no-untyped-def]
        """The :func:`assert_parity` function, as a fixture."""
        return assert_parity
else:  # pragma: no cover
    edgeport_parity = None
