"""``edgeport validate A B --localize`` for two ONNX files and two TFLite files of one model.

A copy of the model file with one weight of the second convolution changed must be localized to the
node (op) that reads that weight, with the tensors before it matched.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

SECOND_CONV = "/features/features.3/Conv"  # named by the TorchScript-based exporter


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory) -> tuple[Path, Path, str]:
    import onnx
    import torch
    from onnx import numpy_helper

    import sample_models

    d = tmp_path_factory.mktemp("pair")
    module, (example,) = sample_models.build("tiny_cnn")
    a = d / "a.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(a), dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["logits"])
    model = onnx.load(str(a))
    node = next(n for n in model.graph.node if n.name == SECOND_CONV)
    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    w = numpy_helper.to_array(init).copy()
    w.flat[7] += 0.5
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    b = d / "b.onnx"
    onnx.save(model, str(b))
    return a, b, init.name


def test_two_onnx_files_localize_to_the_changed_node(onnx_pair, tmp_path):
    a, b, weight = onnx_pair
    j = tmp_path / "r.json"
    r = run_cli("validate", str(a), str(b), "--localize", "--json", str(j))
    assert r.code == 1, r.output
    assert "needs PyTorch" not in r.output
    data = json.loads(j.read_text())
    [loc] = data["localization"]
    assert loc["mode"] == "onnx-onnx" and loc["found"] and loc["paired_by"] == "name"
    assert loc["node"] == SECOND_CONV and loc["op_type"] == "Conv" and weight in loc["weights"]
    assert loc["metrics"]["max_abs"] > 100 * loc["metrics"]["allowed"]
    assert loc["tensors"]["matched"] >= 2  # the first convolution and its ReLU agree exactly
    [changed] = loc["changed_weights"]
    assert changed["name"] == weight and changed["read_by"] == [SECOND_CONV] and changed["elements_changed"] == 1
    assert abs(changed["max_abs"] - 0.5) < 1e-6
    assert f"first divergence at ONNX node {SECOND_CONV} [Conv]" in r.stdout


@pytest.mark.slow
def test_two_tflite_files_localize_to_the_changed_op(tmp_path):
    """litert-torch's .tflite of tiny_cnn, and a copy with one weight of the second CONV_2D changed in the file."""
    out = tmp_path / "out"
    r = run_cli("convert", "sample:tiny_cnn", "--to", "tflite", "--converter", "litert-torch", "-o", str(out))
    assert r.code == 0, r.output
    from ai_edge_litert.interpreter import Interpreter

    a = out / "model.tflite"
    interp = Interpreter(model_path=str(a))
    convs = [op for op in interp._get_ops_details() if op["op_name"] == "CONV_2D"]
    w = interp.get_tensor(int(convs[1]["inputs"][1]))
    data = bytearray(a.read_bytes())
    k = next(k for k in range(w.size) if data.count(np.float32(w.flat[k]).tobytes()) == 1)
    at = data.index(np.float32(w.flat[k]).tobytes())
    data[at:at + 4] = np.float32(w.flat[k] + 0.5).tobytes()
    b = tmp_path / "b.tflite"
    b.write_bytes(bytes(data))
    j = tmp_path / "r.json"
    r = run_cli("validate", str(a), str(b), "--localize", "--json", str(j))
    assert r.code == 1, r.output
    [loc] = json.loads(j.read_text())["localization"]
    assert loc["mode"] == "tflite-tflite" and loc["found"] and loc["paired_by"] == "name"
    assert loc["op_type"] == "CONV_2D" and loc["tensors"]["matched"] >= 2
    second_conv_output = interp.get_tensor_details()[int(convs[1]["outputs"][0])]["name"]
    assert loc["tensor"] == second_conv_output
    [changed] = loc["changed_weights"]
    assert changed["elements_changed"] == 1 and abs(changed["max_abs"] - 0.5) < 1e-6
    assert changed["read_by"] == [loc["node"].split(" ")[0] + " CONV_2D"]  # "#2 CONV_2D": the op localized
    assert "first divergence at TFLite op" in r.stdout
