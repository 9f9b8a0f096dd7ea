"""Through prepare_for_xnnpack and onnx2tf 2.x: a 7x7 depthwise conv, sparse dilated convs and exact GELU come out
as ops XNNPACK runs fast, all in one delegate partition, and the .tflite still computes what ONNX Runtime does."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from edgeport.backends import isolated_status

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not isolated_status("onnx2tf")["installed"],
    reason="the onnx2tf 2.x backend is not installed (edgeport backends install onnx2tf)")]

SIZE = 14


MODEL_SOURCE = """
import torch
from torch import nn

from sample_models._live import input_generator, make_live


class Net(nn.Module):
    def __init__(self, shared: bool) -> None:
        super().__init__()
        self.shared = shared
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)  # ConvNeXt's depthwise kernel
        self.act = nn.GELU()  # exact (erf)
        self.rate12 = nn.Conv2d(16, 8, 3, padding=12, dilation=12)  # ASPP rates on a 14x14 map
        self.rate24 = nn.Conv2d(16, 8, 3, padding=24, dilation=24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        y = self.act(self.dw(s))
        return torch.cat([self.rate12(y if self.shared else s), self.rate24(y)], dim=1)


def build(shared: bool = False):
    inputs = (torch.randn(1, 3, 14, 14, generator=input_generator(0)),)
    return make_live(Net(shared), 0, inputs).eval(), inputs


def shared():
    return build(True)
"""


def _net(tmp_path, shared: bool = False):  # noqa: ANN001, ANN202
    import importlib.util

    path = tmp_path / "xnnpack_net.py"
    path.write_text(MODEL_SOURCE)
    spec = importlib.util.spec_from_file_location("xnnpack_net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build(shared)


def _convert(tmp_path, model) -> str:  # noqa: ANN001
    import onnx

    from edgeport.backends import python_for, venv_bin
    from edgeport.convert.onnx2tf2_backend import SCRIPT
    from edgeport.worker import run_in_worker

    onnx.save(model, str(tmp_path / "model.onnx"))
    python = python_for("onnx2tf")
    path = os.pathsep.join([str(venv_bin(python)), os.environ.get("PATH", "")])
    res = run_in_worker("convert", {"onnx_path": str(tmp_path / "model.onnx"), "work_dir": str(tmp_path),
                                    "saved_model": False},
                        python=python, script=SCRIPT, timeout=900, cwd=tmp_path,
                        env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1", "PATH": path})
    assert res.ok, res.reason()
    return res.value["tflite"]


def _filter_taps(tflite: str, op_name: str) -> list[int]:
    """Kernel taps (height x width of the filter, input 1) of every ``op_name`` op in subgraph 0."""
    from edgeport.tflite_fb import _tensor_info, opcode_names, read_model

    _, schema, model = read_model(tflite)
    names, _ = opcode_names(schema, model)
    sg = model.Subgraphs(0)
    taps = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if names[op.OpcodeIndex()] == op_name:
            shape = _tensor_info(schema, sg, int(op.InputsAsNumpy()[1]))["shape"]  # [1 or O, H, W, C]
            taps.append(shape[1] * shape[2])
    return taps


def test_rewritten_convs_and_gelu_are_fast_ops_in_one_partition(tmp_path) -> None:  # noqa: ANN001
    torch = pytest.importorskip("torch")
    import onnx
    import onnxruntime as ort

    from edgeport.convert.io_resolution import probe_in_worker
    from edgeport.convert.tflite_inspect import inspect_tflite
    from edgeport.convert.xnnpack_rewrite import MAX_DEPTHWISE_TAPS, prepare_for_xnnpack
    from edgeport.runtimes.tflite_delegation import delegation_in_worker
    from edgeport.spec import TensorSpec

    net, inputs = _net(tmp_path)
    buf = io.BytesIO()
    torch.onnx.export(net, inputs, buf, input_names=["x"], opset_version=17, dynamo=False)
    original = onnx.load_from_string(buf.getvalue())
    model, notes = prepare_for_xnnpack(original)
    assert len(notes) == 4, notes  # the depthwise conv, both dilated convs, the GELU
    tflite = _convert(tmp_path, model)

    info = inspect_tflite(tflite)
    ops = info["ops"]
    assert ops.get("GELU") == 1, ops
    assert not {"SIGN", "ABS", "EXP"} & set(ops), ops  # no erf polynomial
    dw = _filter_taps(tflite, "DEPTHWISE_CONV_2D")
    assert len(dw) == 3 and max(dw) <= MAX_DEPTHWISE_TAPS, dw  # 7x7 as 3 + 3 + 1 rows of 7
    assert max(_filter_taps(tflite, "CONV_2D")) == 9  # the stem; the dilated convs became 1x1 pieces
    report = delegation_in_worker(tflite)
    assert report.get("partitions") == 1 and not report.get("builtin_ops"), report

    x = inputs[0].numpy()
    (native,) = info["inputs"]
    assert native["shape"] == [1, SIZE, SIZE, 3]  # onnx2tf's channels-last input
    got = probe_in_worker(tflite, "tflite", [TensorSpec(name=native["name"], shape=(1, SIZE, SIZE, 3))],
                          [{native["name"]: np.transpose(x, (0, 2, 3, 1))}])[0]
    ref = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    y = next(iter(got.values()))
    y = y if y.shape == ref.shape else np.transpose(y, (0, 3, 1, 2))  # onnx2tf keeps NCHW after a Concat here
    assert y.shape == ref.shape and np.abs(ref).max() > 0.5
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()


def test_a_graph_onnx2tf_mis_converts_with_the_rewrites_is_converted_without_them(tmp_path) -> None:  # noqa: ANN001
    """The banded depthwise sum, its GELU and that GELU read by both a split and a plain convolution: onnx2tf 2.6
    fuses the activation into the sum's ADD and leaves the split's input without a producer ("Input tensor ...
    lacks data"). The backend then converts the graph as it came; either way the kept .tflite is right."""
    import json

    from tests.conftest import run_cli

    (tmp_path / "xnnpack_net.py").write_text(MODEL_SOURCE)
    out = tmp_path / "out"
    r = run_cli("convert", f"{tmp_path / 'xnnpack_net.py'}:shared", "--to", "onnx,tflite", "--converter", "onnx2tf",
                "-o", str(out), timeout=900)
    assert r.code == 0, r.output
    tfl = next(a for a in json.loads((out / "manifest.json").read_text())["artifacts"] if a["format"] == "tflite")
    assert tfl["checks"]["passed"] and tfl["checks"]["worst_rel"] <= 1e-5, tfl["checks"]
    notes = tfl.get("notes", [])
    rewritten = any("row bands" in n for n in notes)
    retried = any("no XNNPACK rewrites" in n or "without the XNNPACK rewrites" in n for n in notes)
    assert rewritten != retried, notes  # kept with the rewrites, or without them and saying why
