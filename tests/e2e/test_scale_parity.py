"""Outputs of magnitude ~1e11: ``edgeport convert`` then ``edgeport validate`` is green on float noise
(the reference re-run included) and red when one ONNX weight changes.

The model is a small CNN with live random weights whose convolutions are scaled up, so its outputs
reach ~4e11 and contain elements near zero: numpy allclose (``--compare elementwise``) fails those on
float32 rounding, the scale rule does not.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

MODEL = textwrap.dedent('''
    import torch
    from torch import nn

    from sample_models._live import input_generator, make_live


    class Huge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 8, 3, padding=1),
            )

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.features(image)


    def build() -> nn.Module:
        inputs = (torch.randn(1, 3, 16, 16, generator=input_generator(0)),)
        model = make_live(Huge(), 0, inputs).eval()
        with torch.no_grad():
            for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
                conv.weight.mul_(600.0)  # x600 per convolution: outputs of magnitude ~1e11
                conv.bias.mul_(600.0)
        return model
''')


def _rows(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["artifact"], r["runtime"]): r for r in json.loads(path.read_text())["results"]}


def _perturb_first_conv(path: Path) -> None:
    """Change one weight of the first convolution of the ONNX model by 5 % of that weight tensor's range."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init).copy()
    w.flat[3] += 0.05 * float(np.ptp(w))
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(path))


@pytest.mark.slow  # a real convert and three validate runs: ~25 s of CPU
def test_huge_outputs_green_on_noise_red_on_a_changed_weight(cli, tmp_path):
    (tmp_path / "huge.py").write_text(MODEL)
    out = tmp_path / "out"
    r = cli("convert", f"{tmp_path / 'huge.py'}:build", "--input", "1x3x16x16", "--to", "torchscript,onnx", "-o", str(out))
    assert r.code == 0, r.output
    j = tmp_path / "r.json"
    r = cli("validate", str(out), "--json", str(j), "--runtime", "torch_eager,onnxruntime")
    assert r.code == 0, r.output
    rows = _rows(j)
    ref, onnx_row = rows[("pytorch", "torch_eager")], rows[("onnx", "onnxruntime")]
    assert ref["status"] == "pass" and ref["compared_with"].startswith("reference.npz")  # re-run in another process
    [y] = onnx_row["outputs"]
    assert onnx_row["status"] == "pass" and y["metrics"]["ref_max_abs"] > 1e10
    assert 0 < y["metrics"]["max_rel_scale"] < 1e-5 and y["tolerance"]["compare"] == "scale"

    r = cli("validate", str(out), "--json", str(j), "--runtime", "torch_eager,onnxruntime", "--compare", "elementwise")
    assert r.code == 1, r.output  # allclose fails the same float noise on the near-zero elements
    assert _rows(j)[("pytorch", "torch_eager")]["status"] == "pass"  # the reference check keeps the scale rule

    _perturb_first_conv(out / "model.onnx")
    r = cli("validate", str(out), "--json", str(j), "--runtime", "torch_eager,onnxruntime")
    assert r.code == 1, r.output
    rows = _rows(j)
    [y] = rows[("onnx", "onnxruntime")]["outputs"]
    assert not y["passed"] and y["metrics"]["max_rel_scale"] > 1e-3
    assert "of the output's magnitude" in y["failures"][0]
    assert rows[("pytorch", "torch_eager")]["status"] == "pass"
