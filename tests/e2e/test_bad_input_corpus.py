"""Issue 7: every case of the generated bad-input corpus ends in a one-line error with the documented
exit code, no traceback, and nothing left behind.

Two groups: the model/option cases of ``build`` (convert), and the reliability cases (bundles,
damaged manifests and artifacts, bad images, config files, corrupt model files, unwritable outputs)
that run validate, bench, bundle and quantize, several of them on a copy of one converted folder
(``sample:tiny_cnn --to onnx``, built once per module). Every case runs with its own TMPDIR, which
must be empty afterwards (no extraction or worker folder left behind).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.corpus.generate import MATRIX, build, out_folder_cases, reliability_cases

_CORPUS: dict = {}
ESCAPED = Path("/tmp/edgeport-corpus-escaped.txt")  # where the path-traversal bundles try to write


def _corpus(tmp_path_factory):
    if "cases" not in _CORPUS:
        d = tmp_path_factory.mktemp("corpus")
        _CORPUS["dir"] = d
        _CORPUS["cases"] = build(d) + out_folder_cases(d)
        _CORPUS["reliability"] = reliability_cases(d)
    return _CORPUS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus(tmp_path_factory)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """One real convert output folder (tiny_cnn to ONNX); cases work on copies of it."""
    out = tmp_path_factory.mktemp("converted") / "out"
    r = run_cli("convert", "sample:tiny_cnn", "--to", "onnx", "-o", str(out), timeout=600)
    assert r.code == 0, r.output
    return out


def test_corpus_is_large_enough(corpus):
    assert len(corpus["cases"]) >= 60
    assert len(corpus["reliability"]) >= 150
    tags = {t for c in corpus["reliability"] for t in c.tags}
    assert {"bundle", "manifest", "images", "config", "model-file", "output"} <= tags
    print(f"\nbad-input corpus: {len(corpus['cases']) + len(corpus['reliability'])} cases")


def test_every_bad_input_is_handled(corpus, tmp_path):
    _run_cases(corpus["cases"], corpus["dir"], tmp_path, None, "corpus-report.json")


def test_every_bad_bundle_manifest_image_config_and_output_is_handled(corpus, converted, tmp_path):
    cases = [c for c in corpus["reliability"] if MATRIX not in c.tags]
    _run_cases(cases, corpus["dir"], tmp_path, converted, "reliability-report.json")


@pytest.mark.slow
def test_the_full_matrix_of_bad_bundles_and_manifests_is_handled(corpus, converted, tmp_path):
    """The same damage through every other command that reads bundles or manifests."""
    cases = [c for c in corpus["reliability"] if MATRIX in c.tags]
    _run_cases(cases, corpus["dir"], tmp_path, converted, "reliability-matrix-report.json")


def _run_cases(cases, corpus_dir: Path, tmp_path: Path, converted: Path | None, report_name: str) -> None:
    ESCAPED.unlink(missing_ok=True)
    before = _snapshot(corpus_dir)
    # two at a time: each case is a fresh interpreter, mostly start-up; cases share nothing but the read-only corpus
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        outcomes = list(pool.map(lambda c: _run_case(c, tmp_path, converted), cases))
    results = [r for r, _ in outcomes]
    failures = [f"{r['id']}: {'; '.join(p)} :: {r['error'][:300]}" for r, p in outcomes if p]
    if _snapshot(corpus_dir) != before:
        failures.append(f"the user's files were modified: {_diff(before, _snapshot(corpus_dir))}")
    if ESCAPED.exists():
        failures.append(f"a bundle member was written outside the extraction folder: {ESCAPED}")
        ESCAPED.unlink(missing_ok=True)
    assert not (corpus_dir / "PWNED").exists(), "an untrusted pickle was executed"
    given = os.environ.get("EDGEPORT_CORPUS_REPORT")  # a file name; the reliability reports go next to it
    report = (Path(given).parent if given else tmp_path) / report_name
    report.write_text(json.dumps(results, indent=1))
    from tests.figures import add

    handled = sum(1 for _, problems in outcomes if not problems)
    add("bad inputs tried", len(results))
    add("bad inputs handled", handled)
    print(f"\nbad-input corpus: {len(results)} cases tried, {len(results) - len(failures)} handled "
          f"({sum(r['seconds'] for r in results):.0f} s of commands)")
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n" + "\n".join(failures)


JOBS = 2


def _run_case(case, tmp_path: Path, converted: Path | None) -> tuple[dict, list[str]]:
    case_dir = tmp_path / case.id
    case_dir.mkdir()
    out = case_dir / "out"
    temp = case_dir / "tmp"
    temp.mkdir()
    out_copy = None
    if case.needs_out:
        assert converted is not None, f"{case.id} needs a converted folder"
        out_copy = case_dir / "OUT"
        shutil.copytree(converted, out_copy, symlinks=True)
        if case.prepare:
            case.prepare(out_copy)
    argv = [a.replace("{out}", str(out)).replace("{OUT}", str(out_copy)) for a in case.argv]
    out_before = _snapshot(out_copy) if out_copy else None
    t0 = time.perf_counter()
    r = run_cli(*argv, timeout=300, env={"TMPDIR": str(temp), **case.env})
    seconds = time.perf_counter() - t0
    err = r.stderr.strip()
    problems = []
    if r.code != case.code:
        problems.append(f"exit {r.code} != {case.code}")
    if "Traceback" in r.output:
        problems.append("traceback printed")
    if case.one_line:
        if len(err.splitlines()) != 1:
            problems.append(f"{len(err.splitlines())} stderr lines")
        if case.fragment.lower() not in err.lower():
            problems.append(f"missing {case.fragment!r}")
    elif case.fragment.lower() not in r.output.lower():
        problems.append(f"missing {case.fragment!r} in the report")
    if case.out_must_not_exist and out.exists():
        problems.append(f"left {sorted(p.name for p in out.iterdir()) if out.is_dir() else 'a file'} behind")
    if out_copy is not None and _without_results(_snapshot(out_copy)) != _without_results(out_before):
        problems.append(f"modified the converted folder: {_diff(out_before, _snapshot(out_copy))}")
    # not ours, and not output: ONNX Runtime's telemetry library drops a session-id file (.ses) into TMPDIR when it
    # is imported; torch.export.load creates its compile cache folder (torchinductor_USER) there
    leftovers = sorted(p.name for p in temp.iterdir() if p.name != ".ses" and not p.name.startswith("torchinductor_"))
    if leftovers:
        problems.append(f"left {leftovers} in TMPDIR")
    if (case_dir / "edgeport-corpus-escaped.txt").exists():
        problems.append("a bundle member was written outside the extraction folder")
    shutil.rmtree(case_dir, ignore_errors=True)
    return {"id": case.id, "argv": argv, "exit": r.code, "error": err, "seconds": round(seconds, 2)}, problems


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in d.rglob("*"):
        st = p.lstat()
        if not p.is_dir() or p.is_symlink():
            out[str(p.relative_to(d))] = (st.st_size, st.st_mtime_ns)
    return out


def _without_results(snap: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """validate and bench keep their latest result in OUT and refresh OUT/report.html, also after a failed row
    (exit 3 is a result): those files are theirs to write; nothing else in the folder may change."""
    from edgeport.report.page import FILES_DIR, PAGE_NAME
    from edgeport.report.state import RESULT_NAMES, STATE_DIR, WORST_NAME

    ours = {PAGE_NAME, *(f"{STATE_DIR}/{n}" for n in (*RESULT_NAMES.values(), WORST_NAME))}
    return {k: v for k, v in snap.items() if k not in ours and not k.startswith(f"{FILES_DIR}/")}


def _diff(a: dict, b: dict) -> str:
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(changed[:5])
