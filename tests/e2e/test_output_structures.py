"""Every output structure a forward can return converts, keeps stable names, and validates.

Names (see edgeport.forward_io): a tensor is ``output``, a flat tuple/list ``output_0``..., dict keys and
NamedTuple / dataclass / ModelOutput field names are kept and nested paths are joined with ``.``.
The names must be the same in the manifest, reference.npz and every runtime's results.

Fast tier: one model per structure runs through the reference, TorchScript and ONNX (legacy exporter)
steps in this process and through every runtime's session; one model mixing all structures and a
keyword-only input goes through ``edgeport convert --to torchscript,onnx`` (dynamo exporter) and
``edgeport validate``. Slow tier: the mixed model through litert-torch to .tflite.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

MODELS = textwrap.dedent('''
    import dataclasses
    from collections import OrderedDict
    from typing import NamedTuple, Optional

    import torch


    class LookAlikeOutput(OrderedDict):
        """Like transformers' ModelOutput: a dataclass that is an OrderedDict of its non-None fields."""

        def __post_init__(self):
            for f in dataclasses.fields(self):
                if getattr(self, f.name) is not None:
                    self[f.name] = getattr(self, f.name)


    @dataclasses.dataclass
    class SeqOut(LookAlikeOutput):
        logits: torch.Tensor = None
        hidden_states: Optional[tuple] = None
        attentions: Optional[torch.Tensor] = None


    class Det(NamedTuple):
        boxes: torch.Tensor
        scores: torch.Tensor


    @dataclasses.dataclass
    class Stats:
        mean: torch.Tensor
        var: torch.Tensor


    class Base(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(7)
            self.a = torch.nn.Linear(8, 6)
            self.b = torch.nn.Linear(8, 4)
            with torch.no_grad():  # live random weights and biases everywhere
                for p in self.parameters():
                    p.uniform_(-0.6, 0.6)

        def feats(self, x):
            return torch.tanh(self.a(x)), self.b(x)


    class Single(Base):
        def forward(self, x):
            return self.feats(x)[0]


    class TupleOut(Base):
        def forward(self, x):
            return self.feats(x)


    class ListOut(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return [h, g, h * g.sum(-1, keepdim=True)]


    class DictOut(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return {"logits": h, "hidden": (h * 2, [g]), "aux": {"boxes": g.sum(-1)}}


    class NamedTupleOut(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return Det(boxes=g, scores=h)


    class DataclassOut(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return Stats(mean=h, var=g * g)


    class ModelOutputOut(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return SeqOut(logits=h, hidden_states=(g, g + 1))


    class NestedTuple(Base):
        def forward(self, x):
            h, g = self.feats(x)
            return h, (g, [h - 1])


    class Mixed(Base):
        """Every structure at once, a dict input and a keyword-only input."""

        def forward(self, x, batch, *, mask):
            h, g = self.feats(x * batch["scale"] + batch["shift"])
            h = h * mask
            return {
                "logits": h,
                "det": Det(boxes=g, scores=h.sum(-1)),
                "stats": Stats(mean=h.mean(-1), var=g.var(-1)),
                "seq": SeqOut(logits=h - g.mean(-1, keepdim=True), hidden_states=(g * 2,)),
                "hidden": [g + 1, (h * h,)],
            }
''')

STRUCTURES = {
    "Single": ["output"],
    "TupleOut": ["output_0", "output_1"],
    "ListOut": ["output_0", "output_1", "output_2"],
    "DictOut": ["logits", "hidden.0", "hidden.1.0", "aux.boxes"],
    "NamedTupleOut": ["boxes", "scores"],
    "DataclassOut": ["mean", "var"],
    "ModelOutputOut": ["logits", "hidden_states.0", "hidden_states.1"],
    "NestedTuple": ["output_0", "output_1.0", "output_1.1.0"],
}
MIXED = ["logits", "det.boxes", "det.scores", "stats.mean", "stats.var", "seq.logits", "seq.hidden_states.0",
         "hidden.0", "hidden.1.0"]
MIXED_INPUTS = ["x:2x8", "batch.scale:2x8", "batch.shift:1x8", "mask:2x6"]
MIXED_ARGS = [a for t in MIXED_INPUTS for a in ("--input", t)]
TOL = 1e-5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("structures") / "structures.py"
    path.write_text(MODELS)
    return path


def _max_err(got: dict, want: dict) -> float:
    assert list(got) == list(want)
    return max(float(np.max(np.abs(np.asarray(got[n], np.float64) - want[n]))) for n in want)


def _convert_in_process(models, cls: str, tmp_path):
    """The reference, TorchScript and ONNX steps, as the pipeline's workers run them."""
    from edgeport.convert import onnx_export, reference, torchscript
    from edgeport.models import resolve_ref
    from edgeport.spec import parse_input_spec

    ref = resolve_ref(f"{models}:{cls}")
    ref.inputs = [parse_input_spec("x:2x8").to_json()]
    model = ref.to_json()
    dirs = {k: tmp_path / k for k in ("ref", "ts", "onnx")}
    for d in dirs.values():
        d.mkdir()
    res = reference.run(staging=str(dirs["ref"]), out_dir=str(tmp_path), model=model, io={}, dims={}, reference="",
                        options={"samples": 2})
    npz = str(dirs["ref"] / "reference.npz")
    job = {"out_dir": str(tmp_path), "model": model, "io": res["io"], "dims": res["dims"], "reference": npz}
    ts = torchscript.run(staging=str(dirs["ts"]), options={}, **job)["artifacts"][0]
    ox = onnx_export.run(staging=str(dirs["onnx"]), options={"legacy": True, "opset": 17}, **job)["artifacts"][0]
    return model, res, npz, {"torchscript": (dirs["ts"] / ts["path"], ts), "onnxruntime": (dirs["onnx"] / ox["path"], ox)}


@pytest.mark.parametrize("cls", list(STRUCTURES))
def test_structure_converts_with_stable_names(models, cls, tmp_path):
    import onnx

    from edgeport.refdata import load_npz, load_reference
    from edgeport.runtimes.job import load_session
    from edgeport.spec import IOSpec

    want = STRUCTURES[cls]
    model, res, npz, arts = _convert_in_process(models, cls, tmp_path)
    assert [o["name"] for o in res["io"]["outputs"]] == want
    assert sorted(k.split(":", 2)[2] for k in load_npz(npz) if k.startswith("output:0:")) == sorted(want)
    ts_path, ts_art = arts["torchscript"]
    plain = cls in ("Single", "TupleOut", "ListOut")
    assert ts_art["options"]["strict"] is plain
    assert plain or any("strict=False" in n for n in ts_art["notes"])
    onnx_path, onnx_art = arts["onnxruntime"]
    assert [o.name for o in onnx.load(str(onnx_path)).graph.output] == want
    ins, outs = load_reference(npz)
    sessions = {"torch_eager": load_session("torch_eager", "", IOSpec.from_json(res["io"]), options={"model": model})}
    for runtime, (path, art) in arts.items():
        assert [o["name"] for o in art["io"]["outputs"]] == want
        sessions[runtime] = load_session(runtime, str(path), IOSpec.from_json(art["io"]))
    for runtime, sess in sessions.items():
        for k in range(len(ins)):
            err = _max_err(sess.run(ins[k]), outs[k])
            assert err < TOL, (runtime, k, err)
    # a real perturbation is seen through every name: the outputs depend on the weights
    assert float(np.max(np.abs(outs[0][want[0]]))) > 1e-2


def test_keyword_and_dict_inputs_in_process(models, tmp_path):
    """A keyword-only forward parameter is fed from the input of that name, a dict parameter ``batch``
    from the inputs ``batch.KEY``."""
    from edgeport.convert import onnx_export, reference, torchscript
    from edgeport.models import resolve_ref
    from edgeport.refdata import load_reference
    from edgeport.runtimes.job import load_session
    from edgeport.spec import IOSpec, parse_input_spec

    ref = resolve_ref(f"{models}:Mixed")
    ref.inputs = [parse_input_spec(t).to_json() for t in MIXED_INPUTS]
    model = ref.to_json()
    (tmp_path / "r").mkdir()
    res = reference.run(staging=str(tmp_path / "r"), out_dir=str(tmp_path), model=model, io={}, dims={}, reference="",
                        options={"samples": 2})
    assert [o["name"] for o in res["io"]["outputs"]] == MIXED
    npz = str(tmp_path / "r" / "reference.npz")
    ins, outs = load_reference(npz)
    job = {"out_dir": str(tmp_path), "model": model, "io": res["io"], "dims": res["dims"], "reference": npz}
    for step, runtime, opts in ((torchscript, "torchscript", {}), (onnx_export, "onnxruntime", {"legacy": True, "opset": 17})):
        d = tmp_path / runtime
        d.mkdir()
        art = step.run(staging=str(d), options=opts, **job)["artifacts"][0]
        assert any("by keyword (as dicts: batch)" in n for n in art["notes"])
        sess = load_session(runtime, str(d / art["path"]), IOSpec.from_json(art["io"]))
        assert _max_err(sess.run(ins[1]), outs[1]) < TOL
    # the mask really reaches forward: another mask, other logits
    eager = load_session("torch_eager", "", IOSpec.from_json(res["io"]), options={"model": model})
    for name in ("mask", "batch.scale", "batch.shift"):
        other = eager.run({**ins[0], name: ins[0][name] + 1.0})
        assert float(np.max(np.abs(other["logits"] - outs[0]["logits"]))) > 1e-2, name


def _validate(cli, out, tmp_path, names):
    report = tmp_path / "report.json"
    r = cli("validate", str(out), "--json", str(report))
    assert r.code == 0, r.output
    data = json.loads(report.read_text())
    assert data["passed"] is True
    for res in data["results"]:
        assert [o["name"] for o in res["outputs"]] == names, (res["artifact"], res["runtime"])
        assert all(o["passed"] and o["metrics"]["max_abs"] < TOL for o in res["outputs"]), res
    return {(r["artifact"], r["runtime"]) for r in data["results"]}


def _manifest_names(out):
    m = json.loads((out / "manifest.json").read_text())
    return m, {a["name"]: [o["name"] for o in a["io"]["outputs"]] for a in m["artifacts"]}


def test_mixed_structure_and_keyword_inputs_cli(cli, models, tmp_path):
    out = tmp_path / "out"
    r = cli("convert", f"{models}:Mixed", *MIXED_ARGS, "--to", "torchscript,onnx", "-o", str(out))
    assert r.code == 0, r.output
    m, names = _manifest_names(out)
    assert [o["name"] for o in m["model"]["io"]["outputs"]] == MIXED
    assert names == {"pytorch": MIXED, "torchscript": MIXED, "onnx": MIXED}
    ts = next(a for a in m["artifacts"] if a["name"] == "torchscript")
    assert any("strict=False" in n for n in ts["notes"]) and ts["options"]["strict"] is False
    onnx_art = next(a for a in m["artifacts"] if a["name"] == "onnx")
    assert onnx_art["options"]["exporter"] == "dynamo"
    with np.load(out / "reference.npz") as ref:
        assert sorted(k.split(":", 2)[2] for k in ref.files if k.startswith("output:0:")) == sorted(MIXED)
    ran = _validate(cli, out, tmp_path, MIXED)
    assert ran == {("pytorch", "torch_eager"), ("torchscript", "torchscript"), ("onnx", "onnxruntime")}


@pytest.mark.slow
def test_mixed_structure_through_litert_torch(cli, models, tmp_path):
    out = tmp_path / "out"
    r = cli("convert", f"{models}:Mixed", *MIXED_ARGS, "--to", "tflite",
            "--converter", "litert-torch", "-o", str(out))
    assert r.code == 0, r.output
    _, names = _manifest_names(out)
    assert names["tflite"] == MIXED
    assert ("tflite", "tflite") in _validate(cli, out, tmp_path, MIXED)
