"""The bad-input corpus: generated files and command lines, each with its expected exit code and
the fragment its one-line error must contain.

    python -m tests.corpus.generate DIR     # writes the files and prints the cases

Every case runs the real CLI; the test asserts a one-line error, the exit code, no traceback, and that
nothing was left behind (the output folder does not exist afterwards, or holds no manifest).
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Case:
    id: str
    argv: list[str]  # "{out}" is replaced by a fresh output path
    code: int
    fragment: str
    out_must_not_exist: bool = True
    tags: list[str] = field(default_factory=list)


def _py(dirpath: Path, name: str, body: str) -> Path:
    p = dirpath / name
    p.write_text(textwrap.dedent(body))
    return p


def _onnx_files(d: Path) -> dict[str, Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    files = {}

    def save(name: str, graph, opset: int = 18, ir: int | None = None, check: bool = True):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        if ir is not None:
            model.ir_version = ir
        p = d / name
        p.write_bytes(model.SerializeToString())
        files[name] = p

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    good = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    save("good.onnx", good)
    save("unknown_op.onnx", helper.make_graph([helper.make_node("FrobnicateXYZ", ["x"], ["y"], domain="")], "g", [x], [y]))
    save("custom_domain.onnx", helper.make_graph([helper.make_node("Foo", ["x"], ["y"], domain="com.example")], "g", [x], [y]))
    save("future_ir.onnx", good, ir=99)
    save("future_opset.onnx", good, opset=99)
    cyc = helper.make_graph([helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                             helper.make_node("Identity", ["b"], ["y"])], "g", [x], [y])
    save("cycle.onnx", cyc)
    x0 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 0])
    save("zero_dim.onnx", helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x0], [y]))
    xh = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 100000, 100000])
    save("absurd_dim.onnx", helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [xh], [y]))
    # external data that escapes the model folder
    w = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    ext = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], initializer=[w])
    save("external_escape.onnx", ext)
    wa = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    wa.data_location = TensorProto.EXTERNAL
    wa.ClearField("raw_data")
    for k, v in (("location", "/etc/hostname"), ("offset", "0"), ("length", "16")):
        e = wa.external_data.add()
        e.key, e.value = k, v
    save("external_absolute.onnx", helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], initializer=[wa]))
    nan = numpy_helper.from_array(np.full((1, 4), np.nan, np.float32), "w")
    save("nan_output.onnx", helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], initializer=[nan]))
    blob = files["good.onnx"].read_bytes()
    (d / "truncated.onnx").write_bytes(blob[: len(blob) // 2])
    (d / "empty.onnx").write_bytes(b"")
    (d / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(300))
    (d / "text.onnx").write_text("this is not a model\n")
    _ = onnx
    return files


def _torch_files(d: Path) -> None:
    import torch

    lin = torch.nn.Linear(4, 2)
    ts = torch.jit.trace(lin, torch.zeros(1, 4))
    torch.jit.save(ts, str(d / "good.pt"))
    blob = (d / "good.pt").read_bytes()
    (d / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(np.random.default_rng(1).bytes(500))
    torch.save(lin.state_dict(), str(d / "state_dict.pt"))
    torch.save(torch.nn.Linear(3, 3).state_dict(), str(d / "wrong_state_dict.pt"))
    torch.save({"a": [1, 2, 3]}, str(d / "not_weights.pt"))
    (d / "empty.pt2").write_bytes(b"")
    (d / "garbage.pt2").write_bytes(np.random.default_rng(2).bytes(500))
    with zipfile.ZipFile(d / "zip_not_model.pt2", "w") as z:
        z.writestr("hello.txt", "hi")
    # a pickle that would write a file when loaded
    evil = d / "evil_full_model.pt"
    marker = d / "PWNED"
    code = (f"import os, torch\nclass E:\n    def __reduce__(self):\n        return (os.system, ('touch {marker}',))\n"
            f"torch.save({{'m': E()}}, {str(evil)!r})\n")
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def _npz_files(d: Path) -> None:
    np.savez(d / "inputs_ok.npz", x=np.zeros((1, 4), np.float32))
    np.savez(d / "inputs_empty.npz")
    (d / "inputs_truncated.npz").write_bytes((d / "inputs_ok.npz").read_bytes()[:60])
    (d / "inputs_garbage.npz").write_bytes(b"\x00" * 64)
    np.savez(d / "inputs_pickled.npz", x=np.array([{"a": 1}], dtype=object))
    np.savez(d / "inputs_wrong_rank.npz", x=np.zeros((1, 2, 4), np.float32))
    np.savez(d / "inputs_wrong_dtype.npz", x=np.zeros((1, 4), np.int64))
    np.savez(d / "inputs_nan.npz", x=np.full((1, 4), np.nan, np.float32))


def _py_files(d: Path) -> None:
    _py(d, "linear.py", """
        import torch
        def build():
            torch.manual_seed(0)
            return torch.nn.Linear(4, 2)
        NOT_CALLABLE = 3
        def returns_string():
            return "model"
        def raises():
            raise RuntimeError("factory exploded")
        def needs_args(width):
            return torch.nn.Linear(width, 2)
        def bad_pair():
            return torch.nn.Linear(4, 2), "not tensors"
        class ReturnsNone(torch.nn.Module):
            def forward(self, x):
                return None
        class ReturnsNested(torch.nn.Module):
            def forward(self, x):
                return {"a": (x, [x])}
        class ReturnsNaN(torch.nn.Module):
            def forward(self, x):
                return x / 0.0 * 0.0
        class ReturnsInf(torch.nn.Module):
            def forward(self, x):
                return x.abs() / 0.0 + 1.0
        class ReturnsInt(torch.nn.Module):
            def forward(self, x):
                return 3
        class Raises(torch.nn.Module):
            def forward(self, x):
                raise ValueError("forward exploded")
        def conv():
            return torch.nn.Conv2d(3, 4, 3)
        class NoDynamic(torch.nn.Module):
            def forward(self, x):
                assert x.shape[0] == 2, "batch must be 2"
                return x * 2
    """)
    _py(d, "syntax_error.py", "def build(:\n    pass\n")
    _py(d, "import_error.py", "import module_that_does_not_exist_xyz\ndef build():\n    pass\n")
    _py(d, "raises_on_import.py", "raise RuntimeError('module body exploded')\n")


def build(d: Path) -> list[Case]:
    """Write the corpus files into ``d`` and return the cases."""
    d.mkdir(parents=True, exist_ok=True)
    _onnx_files(d)
    _torch_files(d)
    _npz_files(d)
    _py_files(d)
    (d / "model.tflite").write_bytes(b"TFL3" + b"\x00" * 32)
    (d / "a_folder").mkdir(exist_ok=True)
    lin = f"{d / 'linear.py'}"
    C = Case
    cases = [
        # ---- model references and files
        C("missing-pt", ["convert", f"{d / 'nope.pt'}", "-o", "{out}"], 2, "does not exist"),
        C("missing-py", ["convert", f"{d / 'nope.py'}:build", "-o", "{out}"], 2, "does not exist"),
        C("folder-as-model", ["convert", f"{d / 'a_folder'}", "-o", "{out}"], 2, "is a folder"),
        C("unknown-sample", ["convert", "sample:nope", "-o", "{out}"], 2, "unknown sample"),
        C("bad-reference", ["convert", "what_is_this", "-o", "{out}"], 2, "cannot tell"),
        C("bad-module-name", ["convert", "1abc.x:Net", "-o", "{out}"], 2, "module"),
        C("missing-module", ["convert", "no_such_pkg_xyz.models:Net", "-o", "{out}"], 2, "cannot find module"),
        C("trailing-colon", ["convert", f"{lin}:", "-o", "{out}"], 2, "names no factory"),
        C("py-without-factory", ["convert", lin, "-o", "{out}"], 2, "names no factory"),
        C("attr-on-onnx", ["convert", f"{d / 'good.onnx'}:build", "-o", "{out}"], 2, "only applies"),
        C("tflite-as-model", ["convert", f"{d / 'model.tflite'}", "-o", "{out}"], 2, "already a .tflite"),
        C("empty-onnx", ["convert", f"{d / 'empty.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "is empty"),
        C("truncated-onnx", ["convert", f"{d / 'truncated.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "onnx"),
        C("garbage-onnx", ["convert", f"{d / 'garbage.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "onnx"),
        C("text-onnx", ["convert", f"{d / 'text.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "onnx"),
        C("onnx-unknown-op", ["convert", f"{d / 'unknown_op.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "FrobnicateXYZ"),
        C("onnx-custom-domain", ["convert", f"{d / 'custom_domain.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "com.example"),
        C("onnx-future-ir", ["convert", f"{d / 'future_ir.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "IR version"),
        C("onnx-future-opset", ["convert", f"{d / 'future_opset.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "opset"),
        C("onnx-cycle", ["convert", f"{d / 'cycle.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "onnx"),
        C("onnx-zero-dim", ["convert", f"{d / 'zero_dim.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "zero-size"),
        C("onnx-absurd-dim", ["convert", f"{d / 'absurd_dim.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "too many"),
        C("onnx-external-escape", ["convert", f"{d / 'external_escape.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "outside the model folder"),
        C("onnx-external-absolute", ["convert", f"{d / 'external_absolute.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "outside the model folder"),
        C("onnx-nan-output", ["convert", f"{d / 'nan_output.onnx'}", "--to", "onnx", "-o", "{out}"], 2, "NaN"),
        C("onnx-to-torchscript", ["convert", f"{d / 'good.onnx'}", "--to", "torchscript", "-o", "{out}"], 2, "TorchScript from an ONNX"),
        C("onnx-litert-torch", ["convert", f"{d / 'good.onnx'}", "--to", "tflite", "--converter", "litert-torch", "-o", "{out}"], 2, "litert-torch"),
        C("empty-pt", ["convert", f"{d / 'empty.pt'}", "--input", "1x4", "-o", "{out}"], 2, "is empty"),
        C("truncated-pt", ["convert", f"{d / 'truncated.pt'}", "--input", "1x4", "-o", "{out}"], 2, "neither a TorchScript"),
        C("garbage-pt", ["convert", f"{d / 'garbage.pt'}", "--input", "1x4", "-o", "{out}"], 2, "neither a TorchScript"),
        C("state-dict-as-model", ["convert", f"{d / 'state_dict.pt'}", "--input", "1x4", "-o", "{out}"], 2, "state dict"),
        C("pickle-without-trust", ["convert", f"{d / 'evil_full_model.pt'}", "--input", "1x4", "-o", "{out}"], 2, "--trust-pickle"),
        C("empty-pt2", ["convert", f"{d / 'empty.pt2'}", "-o", "{out}"], 2, "is empty"),
        C("garbage-pt2", ["convert", f"{d / 'garbage.pt2'}", "-o", "{out}"], 2, "ExportedProgram"),
        C("zip-not-pt2", ["convert", f"{d / 'zip_not_model.pt2'}", "-o", "{out}"], 2, "ExportedProgram"),
        C("py-syntax-error", ["convert", f"{d / 'syntax_error.py'}:build", "--input", "1x4", "-o", "{out}"], 2, "syntax error"),
        C("py-import-error", ["convert", f"{d / 'import_error.py'}:build", "--input", "1x4", "-o", "{out}"], 2, "module_that_does_not_exist_xyz"),
        C("py-raises-on-import", ["convert", f"{d / 'raises_on_import.py'}:build", "--input", "1x4", "-o", "{out}"], 2, "module body exploded"),
        C("attr-missing", ["convert", f"{lin}:nothere", "--input", "1x4", "-o", "{out}"], 2, "no attribute"),
        C("attr-not-callable", ["convert", f"{lin}:NOT_CALLABLE", "--input", "1x4", "-o", "{out}"], 2, "not a class"),
        C("factory-returns-string", ["convert", f"{lin}:returns_string", "--input", "1x4", "-o", "{out}"], 2, "not an nn.Module"),
        C("factory-raises", ["convert", f"{lin}:raises", "--input", "1x4", "-o", "{out}"], 2, "factory exploded"),
        C("factory-needs-args", ["convert", f"{lin}:needs_args", "--input", "1x4", "-o", "{out}"], 2, "defaults"),
        C("factory-bad-example", ["convert", f"{lin}:bad_pair", "-o", "{out}"], 2, "example_inputs"),
        C("forward-returns-none", ["convert", f"{lin}:ReturnsNone", "--input", "1x4", "-o", "{out}"], 2, "returned None"),
        C("forward-returns-nested", ["convert", f"{lin}:ReturnsNested", "--input", "1x4", "-o", "{out}"], 2, "nested"),
        C("forward-returns-int", ["convert", f"{lin}:ReturnsInt", "--input", "1x4", "-o", "{out}"], 2, "returned a int"),
        C("forward-nan", ["convert", f"{lin}:ReturnsNaN", "--input", "1x4", "-o", "{out}"], 2, "NaN"),
        C("forward-inf", ["convert", f"{lin}:ReturnsInf", "--input", "1x4", "-o", "{out}"], 2, "Inf"),
        C("forward-raises", ["convert", f"{lin}:Raises", "--input", "1x4", "-o", "{out}"], 2, "forward exploded"),
        C("dynamic-dim-not-supported", ["convert", f"{lin}:NoDynamic", "--input", "Nx4", "-o", "{out}"], 2, "other sizes"),
        C("no-input-shape", ["convert", f"{lin}:build", "-o", "{out}"], 2, "no input shape"),
        C("wrong-rank", ["convert", f"{lin}:conv", "--input", "1x3", "-o", "{out}"], 2, "forward failed"),
        C("wrong-dtype", ["convert", f"{lin}:build", "--input", "1x4:int64", "-o", "{out}"], 2, "forward failed"),
        C("wrong-width", ["convert", f"{lin}:build", "--input", "1x5", "-o", "{out}"], 2, "forward failed"),
        # ---- shape and dtype strings
        C("shape-zero", ["convert", f"{lin}:build", "--input", "1x0", "-o", "{out}"], 2, "must be positive"),
        C("shape-negative", ["convert", f"{lin}:build", "--input", "1x-4", "-o", "{out}"], 2, "bad shape"),
        C("shape-letters", ["convert", f"{lin}:build", "--input", "1x4.5", "-o", "{out}"], 2, "bad shape"),
        C("shape-empty-dim", ["convert", f"{lin}:build", "--input", "1xx4", "-o", "{out}"], 2, "bad shape"),
        C("shape-absurd", ["convert", f"{lin}:build", "--input", "100000x100000x100000", "-o", "{out}"], 2, "elements"),
        C("shape-too-large-dim", ["convert", f"{lin}:build", "--input", "1x99999999999", "-o", "{out}"], 2, "absurdly large"),
        C("dtype-unknown", ["convert", f"{lin}:build", "--input", "x:1x4:float99", "-o", "{out}"], 2, "unknown dtype"),
        C("spec-too-many-parts", ["convert", f"{lin}:build", "--input", "a:b:c:d", "-o", "{out}"], 2, "bad --input"),
        C("spec-bad-name", ["convert", f"{lin}:build", "--input", "9x!:1x4", "-o", "{out}"], 2, "bad input name"),
        C("spec-duplicate-names", ["convert", f"{lin}:build", "--input", "x:1x4", "--input", "x:1x4", "-o", "{out}"], 2, "duplicate"),
        # ---- inputs npz
        C("npz-missing", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'nope.npz'}", "-o", "{out}"], 2, "does not exist"),
        C("npz-empty", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_empty.npz'}", "-o", "{out}"], 2, "no arrays"),
        C("npz-truncated", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_truncated.npz'}", "-o", "{out}"], 2, "not a readable .npz"),
        C("npz-garbage", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_garbage.npz'}", "-o", "{out}"], 2, "not a readable .npz"),
        C("npz-pickled", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_pickled.npz'}", "-o", "{out}"], 2, "pickled"),
        C("npz-wrong-rank", ["convert", f"{lin}:conv", "--inputs-npz", f"{d / 'inputs_wrong_rank.npz'}", "-o", "{out}"], 2, "forward failed"),
        C("npz-wrong-dtype", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_wrong_dtype.npz'}", "-o", "{out}"], 2, "forward failed"),
        C("npz-nan", ["convert", f"{lin}:build", "--inputs-npz", f"{d / 'inputs_nan.npz'}", "-o", "{out}"], 2, "NaN"),
        C("npz-and-input", ["convert", f"{lin}:build", "--input", "1x4", "--inputs-npz", f"{d / 'inputs_ok.npz'}", "-o", "{out}"], 2, "both given"),
        # ---- weights
        C("weights-missing", ["convert", f"{lin}:build", "--input", "1x4", "--weights", f"{d / 'nope.pt'}", "-o", "{out}"], 2, "does not exist"),
        C("weights-garbage", ["convert", f"{lin}:build", "--input", "1x4", "--weights", f"{d / 'garbage.pt'}", "-o", "{out}"], 2, "not a loadable state dict"),
        C("weights-mismatch", ["convert", f"{lin}:build", "--input", "1x4", "--weights", f"{d / 'wrong_state_dict.pt'}", "-o", "{out}"], 2, "does not fit"),
        C("weights-pickle", ["convert", f"{lin}:build", "--input", "1x4", "--weights", f"{d / 'evil_full_model.pt'}", "-o", "{out}"], 2, "not a loadable state dict"),
        # ---- options
        C("unknown-format", ["convert", "sample:tiny_cnn", "--to", "coreml", "-o", "{out}"], 2, "unknown format"),
        C("empty-format", ["convert", "sample:tiny_cnn", "--to", ",", "-o", "{out}"], 2, "names no format"),
        C("unknown-converter", ["convert", "sample:tiny_cnn", "--to", "tflite", "--converter", "magic", "-o", "{out}"], 2, "unknown converter"),
        C("converter-no-savedmodel", ["convert", "sample:tiny_cnn", "--to", "saved_model", "--converter", "litert-torch", "-o", "{out}"], 2, "makes no SavedModel"),
        C("opset-out-of-range", ["convert", "sample:tiny_cnn", "--to", "onnx", "--opset", "99", "-o", "{out}"], 2, "opset"),
        C("samples-zero", ["convert", "sample:tiny_cnn", "--samples", "0", "-o", "{out}"], 2, "--samples"),
        C("unknown-option", ["convert", "sample:tiny_cnn", "--frobnicate", "-o", "{out}"], 2, "no such option"),
        C("missing-output", ["convert", "sample:tiny_cnn"], 2, "missing option"),
        C("unknown-command", ["frobnicate"], 2, "no such command"),
    ]
    return cases


def out_folder_cases(d: Path) -> list[Case]:
    """Cases whose output location is the problem (the test prepares these paths)."""
    f = d / "an_existing_file"
    f.write_text("precious")
    busy = d / "not_ours"
    busy.mkdir(exist_ok=True)
    (busy / "precious.txt").write_text("mine")
    return [
        Case("output-is-file", ["convert", "sample:tiny_cnn", "-o", str(f)], 2, "is a file", out_must_not_exist=False),
        Case("output-not-ours", ["convert", "sample:tiny_cnn", "-o", str(busy)], 2, "not empty", out_must_not_exist=False),
    ]


def tarball_cases(d: Path) -> list[Case]:
    """Tarballs for commands that read bundles (validate/bench); filled in by those commands' tests."""
    _ = (io, tarfile, json)
    return []


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-input-corpus")
    all_cases = build(target) + out_folder_cases(target)
    for c in all_cases:
        print(f"{c.id:28s} exit {c.code}  {c.fragment!r:40s} edgeport {' '.join(c.argv)}")
    print(f"{len(all_cases)} cases in {target}")
