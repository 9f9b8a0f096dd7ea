"""onnx2tf (2.x and 1.29) and litert-torch end to end on every sample model, each step in a worker as the pipeline runs it.

For each sample the pipeline's own steps make reference.npz and a dynamo opset-18 model.onnx; the
converter runs in a worker (network guard on); then ``edgeport.convert.check:run`` runs the result in
another worker against the PyTorch reference. Every .tflite must be Flex-free and within 1e-4 (relative
to each output's magnitude) of PyTorch; so must every SavedModel.

``test_onnx2tf_tiny_cnn_offline_and_input_untouched`` runs in CI (not slow): it is the guard for the two
onnx2tf pitfalls that bite silently (a download at run time, an overwritten input file), for both onnx2tf
versions. A
``sitecustomize`` put on the workers' path (run_in_worker hands the parent's sys.path to its children)
records every socket event and every open of onnx2tf's calibration file, in every process the
conversion starts (the simplifier and probe workers too).
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from edgeport.backends import isolated_status
from edgeport.convert import CONVERTERS
from edgeport.fsutil import sha256_file
from tests.e2e.pipeline_steps import prepare_sample

REL_TOL = 1e-4
SAMPLES = ("tiny_cnn", "mobile_cnn", "transformer", "gru", "multi_io", "dynamic")
TIMINGS: dict[str, float] = {}
NEEDS_ONNX2TF2 = pytest.mark.skipif(not isolated_status("onnx2tf")["installed"],
                                    reason="the onnx2tf 2.x environment is not built (edgeport backends install onnx2tf)")


def _convert(job: dict[str, Any], converter: str, staging: Path, options: dict[str, Any], env: dict | None = None):
    from edgeport.worker import run_in_worker

    staging.mkdir(parents=True)
    kw = {**job, "staging": str(staging), "options": options}
    if CONVERTERS[converter].source == "pytorch":
        kw["parent_path"], kw["parent_io"] = None, None
    return run_in_worker(CONVERTERS[converter].entry, kw, timeout=900, env=env)


def _check(staging: Path, art: dict[str, Any], reference: str) -> dict[str, Any]:
    from edgeport.worker import run_in_worker

    res = run_in_worker("edgeport.convert.check:run", {
        "path": str(staging / art["path"]), "format": art["format"], "io": art["io"], "reference": reference,
        "allow_flex": False, "rtol": REL_TOL,
    }, timeout=600)
    assert res.ok, res.reason() + "\n" + res.log_tail
    return res.value


def _assert_io_complete(art: dict[str, Any], job: dict[str, Any]) -> None:
    """Every tensor names its reference tensor and carries a perm of its rank."""
    ref_io = job["io"]
    for kind in ("inputs", "outputs"):
        assert sorted(t["ref_name"] for t in art["io"][kind]) == sorted(t["name"] for t in ref_io[kind])
        for t in art["io"][kind]:
            assert sorted(t["perm"]) == list(range(len(t["shape"]))), t


# ------------------------------------------------------------------------------------------ not slow
_SITECUSTOMIZE = textwrap.dedent('''
    import os, sys
    _log = os.environ.get("EDGEPORT_TEST_NET_LOG")
    if _log:
        _fd = os.open(_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _busy = [False]

        def _hook(event, args):
            if _busy[0]:
                return
            if event.startswith("socket.") and event in ("socket.connect", "socket.getaddrinfo",
                                                         "socket.gethostbyname", "socket.sendto"):
                line = f"{event} {args[1:] if event == 'socket.connect' else args}"
            elif event == "open" and "calibration_image_sample_data" in str(args[0]):
                line = f"open {args[0]}"
            else:
                return
            _busy[0] = True
            try:
                os.write(_fd, (f"{os.getpid()} " + line.replace(chr(10), " ") + chr(10)).encode())
            finally:
                _busy[0] = False

        sys.addaudithook(_hook)
''')


@pytest.mark.parametrize("converter", [pytest.param("onnx2tf", marks=NEEDS_ONNX2TF2), "onnx2tf-1"])
def test_onnx2tf_tiny_cnn_offline_and_input_untouched(tmp_path, monkeypatch, converter):
    """onnx2tf 1.29 runs in edgeport's workers, where the recording hook sees every socket event; 2.x runs in
    its managed venv (no PYTHONPATH from here), whose job script installs the same guard
    (tests/unit/test_job_protocol.py proves it refuses)."""
    job = prepare_sample(tmp_path, "tiny_cnn")
    onnx_path = Path(job["parent_path"])
    before = sha256_file(onnx_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "net.log"
    monkeypatch.syspath_prepend(str(hooks))  # workers get the parent's sys.path as PYTHONPATH
    env = {"EDGEPORT_TEST_NET_LOG": str(log)}
    t0 = time.perf_counter()
    res = _convert(job, converter, tmp_path / "s2", {"targets": ["tflite"]}, env=env)
    TIMINGS[f"{converter}:tiny_cnn"] = time.perf_counter() - t0
    assert res.ok, res.reason() + "\n" + res.log_tail
    assert sha256_file(onnx_path) == before, "onnx2tf modified the user's .onnx"
    assert log.exists(), "the recording sitecustomize did not load in the workers"
    events = log.read_text().splitlines()
    sockets = [e for e in events if " socket." in e]
    assert not sockets, f"network access attempted: {sockets}"
    if converter == "onnx2tf-1":
        # The calibration file edgeport writes was read (so onnx2tf took the path that would download it).
        assert any("open " in e and e.endswith(".npy") for e in events), events
    (art,) = res.value["artifacts"]
    assert art["format"] == "tflite" and art["converter"] == converter
    assert art["io"]["inputs"][0]["perm"] == [0, 2, 3, 1] and art["io"]["inputs"][0]["layout"] == "NHWC"
    _assert_io_complete(art, job)
    check = _check(tmp_path / "s2", art, job["reference"])
    assert check["passed"], check["reason"]
    assert check["worst_rel"] <= REL_TOL
    assert not check["flex_ops"] and check["ops"].get("CONV_2D") == 2


# ------------------------------------------------------------------------------------------ slow matrix
@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        if name not in cache:
            cache[name] = prepare_sample(tmp_path_factory.mktemp(name), name)
        return cache[name]

    return get  # type: ignore[return-value]


# In the default run (CI): the transformer (exact GELU -> Erf, attention) and the dynamic sample (onnx2tf
# converts it wrong with both dims dynamic; the retry with fixed sizes must catch that). The rest is slow.
IN_CI = ("transformer", "dynamic")


def _matrix():
    for converter in ("onnx2tf", "litert-torch", "onnx2tf-1"):
        for name in SAMPLES:
            marks = [] if name in IN_CI and converter != "onnx2tf-1" else [pytest.mark.slow]
            if converter == "onnx2tf":
                marks.append(NEEDS_ONNX2TF2)
            yield pytest.param(name, converter, marks=marks, id=f"{name}-{converter}")


@pytest.mark.parametrize("name,converter", list(_matrix()))
def test_converter_parity_and_no_flex(prepared, tmp_path, name, converter):
    job = prepared(name)
    targets = list(CONVERTERS[converter].tf_targets)
    t0 = time.perf_counter()
    res = _convert(job, converter, tmp_path / "stage", {"targets": targets})
    seconds = time.perf_counter() - t0
    assert res.ok, res.reason() + "\n" + res.log_tail
    arts = {a["format"]: a for a in res.value["artifacts"]}
    assert sorted(arts) == sorted(targets)
    summary = {"sample": name, "converter": converter, "seconds": round(seconds, 1)}
    for fmt, art in arts.items():
        _assert_io_complete(art, job)
        check = _check(tmp_path / "stage", art, job["reference"])
        assert not check["flex_ops"] and not check["custom_ops"], check["reason"]
        assert check["passed"], check["reason"]
        assert check["worst_rel"] <= REL_TOL
        summary[fmt] = {"worst_rel": check["worst_rel"], "ops": sum(check["ops"].values()) if check["ops"] else None}
    if any(isinstance(d, str) for t in job["io"]["inputs"] for d in t["shape"]):
        # dynamic dims: kept (onnx2tf 2.x's .tflite) or fixed to the reference sizes, and said so either way
        assert any("dynamic dims" in n for a in arts.values() for n in a["notes"]), [a["notes"] for a in arts.values()]
        if converter == "onnx2tf":
            shape = arts["tflite"]["io"]["inputs"][0]["shape"]
            assert sum(isinstance(d, str) for d in shape) == 2, shape
    print(json.dumps(summary))


def test_onnx2tf_retries_without_simplifier_when_the_simplified_model_converts_wrong(tmp_path):
    """Two Slices that onnx-simplifier fuses into one multi-axis Slice come out of onnx2tf 1.29 with the wrong
    shape; edgeport retries without the simplifier and keeps that (correct) .tflite."""
    from tests.conftest import run_cli

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    r = run_cli("convert", f"{root / 'benchmarks' / 'op_catalog.py'}:op_slice", "--to", "tflite", "--converter", "onnx2tf-1",
                "-o", str(out), timeout=900)
    assert r.code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    tfl = next(a for a in man["artifacts"] if a["format"] == "tflite")
    assert tfl["checks"]["passed"] and tfl["checks"]["worst_rel"] <= REL_TOL
    assert any("without onnx-simplifier" in n for n in tfl.get("notes", [])), tfl.get("notes")
