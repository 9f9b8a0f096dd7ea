"""The library API: an nn.Module object through edgeport.convert, then edgeport.validate."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import edgeport  # noqa: E402
from edgeport.convert.plan import ConvertResult  # noqa: E402
from edgeport.errors import UsageError  # noqa: E402
from edgeport.validate.results import ValidationReport  # noqa: E402


def _live(module) -> None:
    """Random live values in every parameter and BatchNorm statistic (no 0/1 defaults that hide bugs)."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g) * 1.0 - 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=g) - 0.5)


class ImportableNet(torch.nn.Module):
    """A class a worker can import by name (tests.e2e.test_api): handed over by pickle."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)
        self.norm = torch.nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(torch.tanh(self.fc(x)))


def test_module_object_converts_and_validates(tmp_path):
    class LocalNet(torch.nn.Module):  # exists only in this test: not importable, handed over by torch.fx
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(6)
            self.head = torch.nn.Linear(6, 3)

        def forward(self, image, scale):
            y = torch.relu(self.bn(self.conv(image))) * scale
            return self.head(y.mean(dim=(2, 3)))

    net = LocalNet()
    _live(net)
    net.eval()
    example = (torch.randn(2, 3, 12, 12), torch.full((1,), 1.5))
    out = tmp_path / "out"
    result = edgeport.convert(net, example, to="torchscript,onnx", out=out)
    assert isinstance(result, ConvertResult)
    assert result.exit_code == 0, [f.reason for f in result.failed]
    assert {a.name for a in result.manifest.artifacts} == {"pytorch", "torchscript", "onnx"}
    src = result.manifest.find("pytorch").options["model"]
    assert src["extra"]["handoff"] == "fx" and src["trust_pickle"] is True
    assert [s.name for s in result.manifest.io.inputs] == ["image", "scale"]

    # the reference outputs of sample 0 (the example) are what the object itself computes
    from edgeport.refdata import load_reference

    ins, outs = load_reference(out / "reference.npz")
    np.testing.assert_array_equal(ins[0]["image"], example[0].numpy())
    with torch.no_grad():
        want = net(*example).numpy()
    got = next(iter(outs[0].values()))
    assert np.max(np.abs(got - want)) <= 1e-6 * max(1.0, float(np.max(np.abs(want))))

    report = edgeport.validate(out, samples=2)
    assert isinstance(report, ValidationReport)
    assert report.passed and report.exit_code == 0, report.summary()
    ran = {r.runtime for r in report.ran}
    assert {"torchscript", "onnxruntime"} <= ran
    for r in report.ran:
        for o in r.outputs:
            assert o.metrics["max_abs"] < 1e-4, (r.key, o.name, o.metrics)

    # the same object again: every step reused from the content-hash cache
    events = []
    start = time.perf_counter()
    again = edgeport.convert(net, example, to="torchscript,onnx", out=out, on_event=events.append)
    assert again.exit_code == 0
    assert {e.status for e in events} == {"cached"}, [(e.step, e.status) for e in events]
    assert time.perf_counter() - start < 10



def test_bad_calls_are_usage_errors(tmp_path):
    net = ImportableNet()
    with pytest.raises(UsageError, match="unknown convert option 'opsett'"):
        edgeport.convert(net, (torch.randn(1, 6),), out=tmp_path / "a", opsett=17)
    with pytest.raises(UsageError, match="needs example inputs"):
        edgeport.convert(net, out=tmp_path / "b")
    with pytest.raises(UsageError, match="not list"):
        edgeport.convert([1, 2], out=tmp_path / "c")
    with pytest.raises(UsageError, match="names no format"):
        edgeport.convert(net, (torch.randn(1, 6),), to=",", out=tmp_path / "d")
    with pytest.raises(UsageError, match="handoff='pickle' needs importable classes"):
        class Local(torch.nn.Module):
            def forward(self, x):
                return x + 1

        edgeport.convert(Local(), (torch.randn(1, 2),), out=tmp_path / "e", handoff="pickle")
    assert not any(tmp_path.iterdir())  # nothing left behind


@pytest.mark.slow
def test_importable_class_is_pickled_and_dynamic_dims_work(tmp_path):
    net = ImportableNet()
    _live(net)
    result = edgeport.convert(net, out=tmp_path / "out", inputs=["x:Bx6"], to="torchscript,onnx")
    assert result.exit_code == 0, [f.reason for f in result.failed]
    assert result.manifest.find("pytorch").options["model"]["extra"]["handoff"] == "pickle"
    assert result.manifest.io.inputs[0].shape[0] == "B"
    report = edgeport.validate(tmp_path / "out", samples=2)
    assert report.passed, report.summary()
    bench = edgeport.bench(tmp_path / "out", runs=20, warmup=2, runtimes="onnxruntime")
    assert bench.exit_code == 0 and all(r.p50 and r.p50 > 0 for r in bench.rows if r.ok)

    # a changed weight is a different model: converted afresh, and the old hand-off file is gone
    out = tmp_path / "out"
    events = []
    with torch.no_grad():
        net.fc.bias.add_(0.25)
    edgeport.convert(net, out=out, inputs=["x:Bx6"], to="torchscript", on_event=events.append)
    assert ("reference", "done") in {(e.step, e.status) for e in events}
    assert len(list((out / ".edgeport" / "source").glob("*.pt"))) == 1
