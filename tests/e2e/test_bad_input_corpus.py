"""Issue 7: every case of the generated bad-input corpus ends in a one-line error with the documented
exit code, no traceback, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.corpus.generate import build, out_folder_cases

_CORPUS: dict = {}


def _corpus(tmp_path_factory):
    if "cases" not in _CORPUS:
        d = tmp_path_factory.mktemp("corpus")
        _CORPUS["dir"] = d
        _CORPUS["cases"] = build(d) + out_folder_cases(d)
    return _CORPUS




@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus(tmp_path_factory)


def test_corpus_is_large_enough(corpus):
    assert len(corpus["cases"]) >= 60


def test_every_bad_input_is_handled(corpus, tmp_path):
    failures = []
    results = []
    for case in corpus["cases"]:
        out = tmp_path / f"out-{case.id}"
        argv = [a.replace("{out}", str(out)) for a in case.argv]
        before = _snapshot(corpus["dir"])
        r = run_cli(*argv, timeout=300)
        err = r.stderr.strip()
        problems = []
        if r.code != case.code:
            problems.append(f"exit {r.code} != {case.code}")
        if "Traceback" in r.output:
            problems.append("traceback printed")
        if len(err.splitlines()) != 1:
            problems.append(f"{len(err.splitlines())} stderr lines")
        if case.fragment.lower() not in err.lower():
            problems.append(f"missing {case.fragment!r}")
        if case.out_must_not_exist and out.exists():
            problems.append(f"left {sorted(p.name for p in out.iterdir())} behind")
        if _snapshot(corpus["dir"]) != before:
            problems.append("modified the user's files")
        results.append({"id": case.id, "exit": r.code, "error": err})
        if problems:
            failures.append(f"{case.id}: {'; '.join(problems)} :: {err[:300]}")
    assert not (corpus["dir"] / "PWNED").exists(), "an untrusted pickle was executed"
    report = Path(os.environ.get("EDGEPORT_CORPUS_REPORT", tmp_path / "corpus-report.json"))
    report.write_text(json.dumps(results, indent=1))
    print(f"\nbad-input corpus: {len(results)} cases tried, {len(results) - len(failures)} handled")
    assert not failures, "\n".join(failures)


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}
