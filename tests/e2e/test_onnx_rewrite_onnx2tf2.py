"""LSTMs through prepare_for_onnx2tf2 and onnx2tf 2.x come out as fused TFLite LSTM ops that keep no state."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from edgeport.backends import isolated_status

pytestmark = pytest.mark.slow

STEPS, FEATURES = 12, 8


def _convert(tmp_path, model):  # noqa: ANN001, ANN202
    import onnx

    from edgeport.backends import python_for, venv_bin
    from edgeport.convert.onnx2tf2_backend import SCRIPT
    from edgeport.worker import run_in_worker

    onnx.save(model, str(tmp_path / "model.onnx"))
    python = python_for("onnx2tf")
    path = os.pathsep.join([str(venv_bin(python)), os.environ.get("PATH", "")])
    res = run_in_worker("convert", {"onnx_path": str(tmp_path / "model.onnx"), "work_dir": str(tmp_path),
                                    "saved_model": False, "keep_shape_names": ["x"]},
                        python=python, script=SCRIPT, timeout=900, cwd=tmp_path,
                        env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1", "PATH": path})
    assert res.ok, res.reason()
    return res.value["tflite"]


@pytest.mark.skipif(not isolated_status("onnx2tf")["installed"],
                    reason="the onnx2tf 2.x backend is not installed (edgeport backends install onnx2tf)")
@pytest.mark.parametrize("bidirectional", [True, False])
def test_lstm_converts_to_stateless_fused_ops(tmp_path, bidirectional) -> None:  # noqa: ANN001
    torch = pytest.importorskip("torch")
    import onnx
    import onnxruntime as ort

    from edgeport.convert.io_resolution import probe_in_worker
    from edgeport.convert.onnx_rewrite import prepare_for_onnx2tf2
    from edgeport.convert.tflite_inspect import inspect_tflite
    from edgeport.spec import TensorSpec

    torch.manual_seed(0)
    net = torch.nn.LSTM(FEATURES, 16, num_layers=2, bidirectional=bidirectional, batch_first=True).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.randn(1, STEPS, FEATURES),), buf, input_names=["x"], opset_version=17, dynamo=False)
    original = onnx.load_from_string(buf.getvalue())
    model, notes = prepare_for_onnx2tf2(original)
    assert len([n for n in notes if "made stateless" in n]) == 2
    tflite = _convert(tmp_path, model)

    info = inspect_tflite(tflite)
    ops = info["ops"]
    fused = "BIDIRECTIONAL_SEQUENCE_LSTM" if bidirectional else "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert ops.get(fused) == 2, ops
    assert "WHILE" not in ops and "CUSTOM" not in ops and info["subgraphs"] == 1, ops
    assert not info["custom_ops"] and not info["flex_ops"]

    # three different inputs through one interpreter: each matches ONNX Runtime (no state carried over)
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, STEPS, FEATURES)).astype(np.float32)} for _ in range(3)]
    got = probe_in_worker(tflite, "tflite", [TensorSpec(name="x", shape=(1, STEPS, FEATURES))], feeds)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for feed, out in zip(feeds, got):
        ref = sess.run(None, feed)[0]  # y: [B, T, D * H] (batch_first)
        y = max(out.values(), key=lambda a: a.size)
        assert y.size == ref.size
        assert np.abs(y.reshape(ref.shape) - ref).max() <= 1e-4 * np.abs(ref).max()
