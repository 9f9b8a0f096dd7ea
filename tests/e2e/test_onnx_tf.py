"""The legacy onnx-tf backend end to end: install (or reuse) its isolated venv, convert sample models.

Slow: the first run installs ~1.4 GB (TensorFlow 2.15) into $EDGEPORT_HOME/backends/onnx-tf; later
runs reuse it. Each conversion takes 5-20 s (TensorFlow import included). The pipeline's own steps
make the reference and the dynamo ONNX; the onnx-tf step runs in a worker like the pipeline runs it,
and its .tflite is run with LiteRT against the PyTorch reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeport.spec import IOSpec
from tests.e2e.pipeline_steps import prepare_sample

pytestmark = pytest.mark.slow
REL_TOL = 1e-4


@pytest.fixture(scope="module")
def onnx_tf_python() -> str:
    from edgeport import backends

    entry = backends.install("onnx-tf", echo=lambda line: None)
    assert entry["installed"], entry
    assert entry["versions"].get("onnx-tf") == "1.10.0"
    return entry["python"]


def _prepare(tmp: Path, name: str) -> dict:
    return {**prepare_sample(tmp, name), "staging": str(tmp / "s2"), "options": {"targets": ["saved_model", "tflite"]}}


def _convert(tmp: Path, name: str):
    from edgeport.worker import run_in_worker

    job = _prepare(tmp, name)
    Path(job["staging"]).mkdir()
    res = run_in_worker("edgeport.convert.onnx_tf_backend:run", job, timeout=900)
    return res, job


def _max_rel(tflite: Path, io: IOSpec, reference: str) -> float:
    from ai_edge_litert.interpreter import Interpreter

    from edgeport.refdata import load_reference

    runner = Interpreter(model_path=str(tflite), num_threads=1).get_signature_runner("serving_default")
    worst = 0.0
    for feed, expect in zip(*load_reference(reference)):
        got = runner(**{s.name: np.asarray(feed[s.ref_name]).astype(s.dtype) for s in io.inputs})
        for s in io.outputs:
            want = expect[s.ref_name]
            err = float(np.max(np.abs(got[s.name].astype(np.float64) - want)))
            worst = max(worst, err / max(float(np.max(np.abs(want))), 1e-12))
    return worst


@pytest.mark.parametrize("name", ["tiny_cnn", "transformer"])
def test_converts_with_parity_and_no_flex(onnx_tf_python, tmp_path, name):
    from edgeport.convert.tflite_inspect import inspect_tflite

    res, job = _convert(tmp_path, name)
    assert res.ok, res.reason() + "\n" + res.log_tail
    arts = {a["format"]: a for a in res.value["artifacts"]}
    assert set(arts) == {"saved_model", "tflite"}
    tfl = arts["tflite"]
    path = Path(job["staging"]) / tfl["path"]
    info = inspect_tflite(path)
    assert info["flex_ops"] == [] and info["custom_ops"] == []
    assert tfl["converter"] == "onnx-tf" and tfl["tools"]["onnx-tf"] == "1.10.0"
    io = IOSpec.from_json(tfl["io"])
    ref_io = IOSpec.from_json(job["io"])
    assert [s.ref_name for s in io.inputs] == [s.name for s in ref_io.inputs]
    assert [s.ref_name for s in io.outputs] == [s.name for s in ref_io.outputs]
    for s in io.inputs + io.outputs:
        assert s.perm == tuple(range(s.rank))  # onnx-tf keeps the PyTorch layout
    assert (Path(job["staging"]) / arts["saved_model"]["path"] / "saved_model.pb").is_file()
    assert _max_rel(path, io, job["reference"]) <= REL_TOL


def test_gru_is_a_clear_failure(onnx_tf_python, tmp_path):
    res, _ = _convert(tmp_path, "gru")
    assert not res.ok
    err = res.user_error()
    assert err is not None and "linear_before_reset" in err.one_line() and "\n" not in err.one_line()
