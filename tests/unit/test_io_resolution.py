"""Matching a converted model's outputs to the reference's by their values (edgeport.convert.io_resolution),
on arrays made here: no converter, no runtime."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from edgeport.convert.io_resolution import MATCH_TOL, NativeTensor, resolve_outputs
from edgeport.errors import RuntimeFailure
from edgeport.spec import IOSpec, TensorSpec

RNG = np.random.default_rng(7)


def _ref(**shapes):
    io = IOSpec(inputs=[], outputs=[TensorSpec(n, s, layout="NCL" if len(s) == 3 else None) for n, s in shapes.items()])
    samples = [{n: RNG.standard_normal(s).astype(np.float32) for n, s in shapes.items()} for _ in range(2)]
    return io, samples


def _natives(got):
    return [NativeTensor(n, tuple(a.shape), "float32") for n, a in got[0].items()]


def test_outputs_matched_by_name_by_values_and_through_a_transpose():
    io, refs = _ref(logits=(1, 3, 4), score=(1, 2))
    got = [{"out_0": r["logits"].transpose(0, 2, 1), "score": r["score"], "extra": np.ones((1, 5), np.float32)}
           for r in refs]
    specs, notes, worst = resolve_outputs(_natives(got), io, refs, got)
    by_ref = {s.ref_name: s for s in specs}
    assert by_ref["logits"].name == "out_0" and by_ref["logits"].perm == (0, 2, 1)
    assert by_ref["logits"].layout == "NLC" and by_ref["logits"].shape == (1, 4, 3)
    assert by_ref["score"].name == "score" and by_ref["score"].perm == (0, 1)
    assert worst == 0.0
    assert notes == ["output 'logits' matched to 'out_0' by its values (rel err 0.0e+00)",
                     "output 'logits' comes out transposed by [0, 2, 1]",
                     "model outputs ['extra'] correspond to no reference output and are ignored"]


def test_values_beat_names_that_they_contradict():
    io, refs = _ref(a=(1, 6), b=(1, 6))
    got = [{"a": r["b"], "b": r["a"]} for r in refs]  # a converter that swapped the names
    specs, notes, worst = resolve_outputs(_natives(got), io, refs, got)
    assert {s.ref_name: s.name for s in specs} == {"a": "b", "b": "a"}
    assert worst == 0.0 and len(notes) == 2 and all("by its values" in n for n in notes)


def test_an_output_that_matches_nothing_keeps_its_closest_candidate_and_says_parity_will_fail():
    io, refs = _ref(y=(1, 8))
    got = [{"y_out": r["y"] + 0.5} for r in refs]
    specs, notes, worst = resolve_outputs(_natives(got), io, refs, got)
    assert specs[0].name == "y_out" and worst > MATCH_TOL
    assert notes[0].startswith(f"output 'y': no model output matches it within {MATCH_TOL:g} (closest 'y_out'")
    assert notes[0].endswith("parity will fail")


def test_missing_and_misshapen_outputs_are_runtime_failures():
    io, refs = _ref(y=(1, 8))
    got = [{"y": r["y"]} for r in refs]
    natives = _natives(got) + [NativeTensor("z", (1, 8), "float32")]
    with pytest.raises(RuntimeFailure, match=r"did not produce outputs \['z'\]"):
        resolve_outputs(natives, io, refs, got)
    wrong = [{"y": np.zeros((1, 7), np.float32)} for _ in refs]
    with pytest.raises(RuntimeFailure, match="no output of the converted model has the shape of reference output 'y'"):
        resolve_outputs(_natives(wrong), io, refs, wrong)


def test_every_convert_worker_target_resolves():
    """Each "edgeport.convert.MODULE:FUNCTION" string in the package names a function that exists (a worker
    imports it by that string, so a moved function would only fail at run time)."""
    src = Path(__file__).resolve().parents[2] / "src" / "edgeport"
    pattern = re.compile(r"edgeport\.convert\.[A-Za-z0-9_.]+:[A-Za-z_][A-Za-z0-9_]*")
    targets = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.fullmatch(node.value):
                targets.add(node.value)
    assert {"edgeport.convert.check:run", "edgeport.convert.io_resolution:probe"} <= targets
    for target in sorted(targets):
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func, None)), target
