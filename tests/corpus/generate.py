"""The bad-input corpus: generated files and command lines, each with its expected exit code and
the fragment its one-line error must contain.

    python -m tests.corpus.generate DIR     # writes the files and prints the cases

Every case runs the real CLI; the test asserts a one-line error, the exit code, no traceback, and that
nothing was left behind (the output folder does not exist afterwards, or holds no manifest).

Groups: :func:`build` (model references, model files, shapes, inputs, weights, options of convert),
:func:`out_folder_cases`, and :func:`reliability_cases`: bundles (:func:`tarball_cases`), damaged
manifests and artifacts (:func:`manifest_cases`), calibration/validation images (:func:`image_cases`),
validate config files (:func:`config_cases`), corrupt .onnx/.tflite files (:func:`model_file_cases`) and
unwritable outputs (:func:`output_cases`). "{OUT}" in a case's argv stands for a fresh copy of a real
convert output folder (sample:tiny_cnn --to onnx), damaged by the case's ``prepare`` first; the test
also checks that the command left that folder and its TMPDIR as they were.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import tarfile
import textwrap
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


MATRIX = "matrix"  # tag: a redundant combination (same code path as a kept case); run by the slow test only


@dataclass
class Case:
    id: str
    argv: list[str]  # "{out}" is replaced by a fresh output path, "{OUT}" by a fresh copy of a converted folder
    code: int
    fragment: str
    out_must_not_exist: bool = True
    tags: list[str] = field(default_factory=list)
    prepare: Callable[[Path], None] | None = None  # damages the "{OUT}" copy before the command runs
    one_line: bool = True  # False: the command reports per artifact (a table); the fragment is looked for in all output
    env: dict[str, str] = field(default_factory=dict)  # set for the command (e.g. an EDGEPORT_HOME of the case's own)

    @property
    def needs_out(self) -> bool:
        """True when the case runs on a copy of a converted output folder (sample:tiny_cnn --to onnx)."""
        return self.prepare is not None or any("{OUT}" in a for a in self.argv)


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
                return {"a": (x, [3])}
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
        C("forward-returns-nested", ["convert", f"{lin}:ReturnsNested", "--input", "1x4", "-o", "{out}"], 2, "'a.1.0' is a int, not a tensor"),
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
        C("weights-on-onnx", ["convert", f"{d / 'good.onnx'}", "--weights", f"{d / 'state_dict.pt'}", "-o", "{out}"], 2, "carries its own weights"),
        C("weights-on-torchscript", ["convert", f"{d / 'good.pt'}", "--input", "1x4", "--weights", f"{d / 'state_dict.pt'}", "-o", "{out}"], 2,
          "carries its own weights"),
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


# ------------------------------------------------------------------------------------------ bundles

_FIXED_MTIME = 315532800


def _io_json() -> dict:
    from edgeport.spec import IOSpec, TensorSpec

    return IOSpec([TensorSpec("x", (1, 4), "float32", ref_name="x")], [TensorSpec("y", (1, 4), "float32", ref_name="y")]).to_json()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _bundle_parts(d: Path) -> dict[str, bytes]:
    """The files of a small, valid bundle: good.onnx (Relu on x[1,4]), its reference data, a manifest."""
    from edgeport.refdata import save_reference

    onnx_bytes = (d / "good.onnx").read_bytes()
    x = np.random.default_rng(3).standard_normal((1, 4)).astype(np.float32)
    ref_path = d / "_bundle_reference.npz"
    save_reference(ref_path, [{"x": x}], [{"y": np.maximum(x, 0)}])
    ref = ref_path.read_bytes()
    ref_path.unlink()
    return {"model.onnx": onnx_bytes, "reference.npz": ref}


def _bundle_manifest(parts: dict[str, bytes], edit: Callable[[dict], None] | None = None) -> bytes:
    data = {
        "schema": "edgeport.manifest/1", "edgeport_version": "0.1.0", "created": "1980-01-01T00:00:00Z",
        "model": {"source": "corpus", "source_sha256": "", "io": _io_json(), "dims": {}},
        "reference": {"path": "reference.npz", "sha256": _sha(parts["reference.npz"]), "runtime": "torch_eager", "samples": 1},
        "artifacts": [{"name": "onnx", "format": "onnx", "path": "model.onnx", "sha256": _sha(parts["model.onnx"]),
                       "size_bytes": len(parts["model.onnx"]), "io": _io_json(), "parent": "pytorch"}],
        "attempts": [], "tools": {}, "extra": {"bundle": {"schema": "edgeport.bundle/1"}},
    }
    if edit:
        edit(data)
    return (json.dumps(data, indent=2) + "\n").encode()


def _reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.type = len(data), _FIXED_MTIME, 0o644, tarfile.REGTYPE
    return ti, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime, ti.mode = kind, linkname, _FIXED_MTIME, 0o644
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    return ti, None


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return path


def _bundles(d: Path) -> dict[str, Path]:
    """Good and bad bundles, built with tarfile by hand."""
    b = d / "bundles"
    b.mkdir(exist_ok=True)
    parts = _bundle_parts(d)
    manifest = _bundle_manifest(parts)
    good = [_reg("manifest.json", manifest)] + [_reg(n, data) for n, data in parts.items()]
    out: dict[str, Path] = {}

    def tar(name: str, members, mode: str = "w:gz") -> None:
        out[name] = _write_tar(b / f"{name}.bundle.tar.gz" if mode == "w:gz" else b / f"{name}.bundle.tar", members, mode)

    tar("good", good)
    tar("good-plain", good, "w")
    blob = out["good"].read_bytes()
    out["empty"] = b / "empty.bundle.tar.gz"
    out["empty"].write_bytes(b"")
    out["garbage"] = b / "garbage.bundle.tar.gz"
    out["garbage"].write_bytes(np.random.default_rng(4).bytes(2000))
    out["truncated"] = b / "truncated.bundle.tar.gz"
    out["truncated"].write_bytes(blob[: len(blob) * 6 // 10])
    plain_path = out.pop("good-plain")
    with tarfile.open(plain_path) as t:
        last = t.getmembers()[-1]
        cut = last.offset_data + last.size // 2  # in the middle of the last member's data
    out["truncated-plain"] = b / "truncated-plain.bundle.tar"
    out["truncated-plain"].write_bytes(plain_path.read_bytes()[:cut])
    plain_path.unlink()
    out["gzip-not-tar"] = b / "gzip-not-tar.bundle.tar.gz"
    import gzip

    out["gzip-not-tar"].write_bytes(gzip.compress(b"not a tar archive " * 100, mtime=0))
    evil_target = "/tmp/edgeport-corpus-escaped.txt"
    tar("dotdot", good + [_reg("../edgeport-corpus-escaped.txt", b"escaped")])
    tar("dotdot-nested", [_reg("manifest.json", manifest), _reg("model/../../edgeport-corpus-escaped.txt", b"escaped")])
    tar("absolute", good + [_reg(evil_target, b"escaped")])
    tar("symlink", [_reg("manifest.json", manifest), _special("model.onnx", tarfile.SYMTYPE, "/etc/passwd"),
                    _reg("reference.npz", parts["reference.npz"])])
    tar("symlink-dir", [_special("sub", tarfile.SYMTYPE, "/tmp"), _reg("sub/edgeport-corpus-escaped.txt", b"escaped")] + good)
    tar("hardlink", [_reg("manifest.json", manifest), _special("model.onnx", tarfile.LNKTYPE, "/etc/passwd"),
                     _reg("reference.npz", parts["reference.npz"])])
    tar("device", good + [_special("dev-null", tarfile.CHRTYPE)])
    tar("fifo", good + [_special("pipe", tarfile.FIFOTYPE)])
    tar("duplicate", good + [_reg("model.onnx", b"second copy")])
    tar("no-manifest", [_reg(n, data) for n, data in parts.items()])
    tar("manifest-not-json", [_reg("manifest.json", b"{ this is not json")] + good[1:])
    tar("manifest-wrong-schema", [_reg("manifest.json", _bundle_manifest(parts, lambda m: m.update(schema="something/9")))] + good[1:])
    tar("manifest-escape", [_reg("manifest.json", _bundle_manifest(parts, lambda m: m["artifacts"][0].update(path="../../../etc/passwd")))]
        + good[1:])
    tar("tampered", [_reg("manifest.json", manifest), _reg("model.onnx", parts["model.onnx"][:-4] + b"\x00\x00\x00\x00"),
                     _reg("reference.npz", parts["reference.npz"])])
    tar("unlisted", good + [_reg("run_me.sh", b"#!/bin/sh\necho hi\n")])
    tar("no-sha", [_reg("manifest.json", _bundle_manifest(parts, lambda m: m["artifacts"][0].update(sha256="")))] + good[1:])
    tar("missing-artifact", [_reg("manifest.json", manifest), _reg("reference.npz", parts["reference.npz"])])
    return out


def tarball_cases(d: Path) -> list[Case]:
    """Bundles (edgeport bundle's .tar.gz) that validate, bench and bundle must refuse with exit 2, writing nothing.

    Needs the ONNX files of :func:`build` in ``d``.
    """
    b = _bundles(d)
    expect = {  # bundle -> fragment of the one-line error (exit 2 for all of them)
        "empty": "not a readable bundle",
        "garbage": "not a readable bundle",
        "gzip-not-tar": "not a readable bundle",
        "truncated": "truncated or corrupt",
        "truncated-plain": "truncated",
        "dotdot": "escapes the extraction folder",
        "dotdot-nested": "escapes the extraction folder",
        "absolute": "absolute path",
        "symlink": "symbolic link",
        "symlink-dir": "symbolic link",
        "hardlink": "hard link",
        "device": "device file",
        "fifo": "FIFO",
        "duplicate": "appears twice",
        "no-manifest": "has no manifest.json",
        "manifest-not-json": "not valid JSON",
        "manifest-wrong-schema": "not an edgeport manifest",
        "manifest-escape": "points outside",
        "tampered": "does not match its sha256",
        "unlisted": "does not list",
        "no-sha": "has no sha256",
        "missing-artifact": "is missing",
    }
    cases = []
    core = ("empty", "truncated", "dotdot", "absolute", "symlink", "hardlink", "device", "no-manifest", "tampered")
    for name, fragment in expect.items():
        path = str(b[name])
        cases.append(Case(f"bundle-{name}-validate", ["validate", path], 2, fragment, tags=["bundle"]))
        # bench opens bundles through the same code: the whole list runs in the slow matrix
        cases.append(Case(f"bundle-{name}-bench", ["bench", path, "--runs", "1", "--warmup", "0"], 2, fragment,
                          tags=["bundle"] + ([] if name in core else [MATRIX])))
    for name in ("truncated", "dotdot", "symlink", "tampered", "unlisted"):
        cases.append(Case(f"bundle-{name}-check", ["bundle", str(b[name])], 2, expect[name], tags=["bundle"]))
        cases.append(Case(f"bundle-{name}-extract", ["bundle", str(b[name]), "-o", "{out}"], 2, expect[name], tags=["bundle"]))
    return cases


# ------------------------------------------------------------------------------------------ manifests


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        p = out / "manifest.json"
        data = json.loads(p.read_text())
        edit(data)
        p.write_text(json.dumps(data, indent=2))
    return prepare


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        (out / rel).write_bytes(data)
    return prepare


def _remove(rel: str) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        (out / rel).unlink()
    return prepare


def _append(rel: str, data: bytes) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        with open(out / rel, "ab") as fh:
            fh.write(data)
    return prepare


def _symlink(rel: str, target: str) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        (out / rel).unlink()
        os.symlink(target, out / rel)
    return prepare


def _onnx_entry(m: dict) -> dict:
    return next(a for a in m["artifacts"] if a["name"] == "onnx")


def manifest_cases(d: Path) -> list[Case]:
    """A converted folder ({OUT}: sample:tiny_cnn --to onnx) whose manifest or artifacts were damaged afterwards.

    Every command that reads a manifest refuses with exit 2 and leaves the folder as it was.
    """
    _ = d
    damage: list[tuple[str, Callable[[Path], None], str]] = [
        ("missing", _remove("manifest.json"), "no manifest.json"),
        ("empty", _write("manifest.json", b""), "not valid JSON"),
        ("not-json", _write("manifest.json", b"{\"schema\": \"edgeport.manifest/1\", "), "not valid JSON"),
        ("binary", _write("manifest.json", b"\xff\xfe\x00garbage\x80"), "not valid JSON"),
        ("a-list", _write("manifest.json", b"[]"), "not an edgeport manifest"),
        ("wrong-schema", _edit_manifest(lambda m: m.update(schema="edgeport.manifest/999")), "not an edgeport manifest"),
        ("artifacts-not-list", _edit_manifest(lambda m: m.update(artifacts=5)), "malformed"),
        ("artifact-no-path", _edit_manifest(lambda m: _onnx_entry(m).pop("path")), "malformed"),
        ("artifact-bad-io", _edit_manifest(lambda m: _onnx_entry(m).update(io="oops")), "malformed"),
        ("dims-wrong-type", _edit_manifest(lambda m: m["model"].update(dims={"N": "many"})), "malformed"),
        ("duplicate-name", _edit_manifest(lambda m: m["artifacts"].append(dict(_onnx_entry(m)))), "twice"),
        ("path-escape", _edit_manifest(lambda m: _onnx_entry(m).update(path="../../../../etc/passwd")), "points outside"),
        ("path-absolute", _edit_manifest(lambda m: _onnx_entry(m).update(path="/etc/passwd")), "points outside"),
        ("symlink-escape", _symlink("model.onnx", "/etc/passwd"), "points outside"),
    ]
    commands = {
        "validate": ["validate", "{OUT}"],
        "bench": ["bench", "{OUT}", "--runs", "1", "--warmup", "0"],
        "bundle": ["bundle", "{OUT}", "-o", "{out}"],
        "quantize": ["quantize", "{OUT}", "--modes", "ort-dynamic"],
    }
    cases = []
    core = ("missing", "not-json", "wrong-schema", "artifact-bad-io", "path-escape", "symlink-escape")
    for name, prepare, fragment in damage:
        for cmd, argv in commands.items():
            # every command reads manifests through Manifest.load: validate gets every damage, the others the
            # core list; the full cross product runs in the slow matrix
            tags = ["manifest"] + ([] if cmd == "validate" or name in core else [MATRIX])
            cases.append(Case(f"manifest-{name}-{cmd}", list(argv), 2, fragment, prepare=prepare, tags=tags))
    # An artifact changed or removed after convert: bundle and quantize refuse it (they would ship or quantize
    # a file the manifest does not describe).
    for name, prepare, fragment in (("artifact-edited", _append("model.onnx", b"\x00edited"), "does not match its sha256"),
                                    ("artifact-missing", _remove("model.onnx"), "is missing"),
                                    ("reference-edited", _append("reference.npz", b"\x00"), "does not match its sha256")):
        for cmd in ("bundle", "quantize"):
            cases.append(Case(f"manifest-{name}-{cmd}", list(commands[cmd]), 2, fragment, prepare=prepare, tags=["manifest"]))
    # validate and bench measure what is there: the mismatch is a note, the damaged artifact a failed row
    # (exit 3: "an artifact failed to load"), and the other rows still run.
    for name, prepare, fragment in (("artifact-edited", _append("model.onnx", b"\x00edited"), "does not match its sha256"),
                                    ("artifact-missing", _remove("model.onnx"), "model.onnx is missing")):
        cases.append(Case(f"manifest-{name}-validate", ["validate", "{OUT}", "--reference", "stored", "-r", "onnxruntime"], 3,
                          fragment, prepare=prepare, one_line=False, tags=["manifest"]))
        cases.append(Case(f"manifest-{name}-bench", commands["bench"] + ["-r", "onnxruntime"], 3, fragment, prepare=prepare,
                          one_line=False, tags=["manifest"]))
    return cases


# ------------------------------------------------------------------------------------------ images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _image_folders(d: Path) -> dict[str, Path]:
    from PIL import Image

    rng = np.random.default_rng(5)
    good = []
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(buf, fmt)
        good.append(buf.getvalue())
    png, jpg = good
    idat = png.index(b"IDAT")
    broken_crc = bytearray(png)
    broken_crc[idat + 12] ^= 0xFF
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)) + _png_chunk(b"IEND", b"")
    bad = {
        "empty-png": ("bad.png", b""),
        "empty-jpg": ("bad.jpg", b""),
        "truncated-png": ("bad.png", png[: len(png) // 2]),
        "truncated-png-header": ("bad.png", png[:20]),
        "truncated-jpg": ("bad.jpg", jpg[: len(jpg) // 2]),
        "garbage-jpg": ("bad.jpg", np.random.default_rng(6).bytes(1000)),
        "text-png": ("bad.png", b"this is not an image\n"),
        "broken-crc-png": ("bad.png", bytes(broken_crc)),
        "decompression-bomb-png": ("bad.png", bomb),
    }
    out = {}
    for kind, (name, data) in bad.items():
        f = d / "images" / kind
        f.mkdir(parents=True, exist_ok=True)
        (f / "a_good.png").write_bytes(png)
        (f / "b_good.jpg").write_bytes(jpg)
        (f / name).write_bytes(data)
        out[kind] = f
    empty = d / "images" / "no-images"
    empty.mkdir(parents=True, exist_ok=True)
    (empty / "readme.txt").write_text("no images here\n")
    out["no-images"] = empty
    return out


def image_cases(d: Path) -> list[Case]:
    """Calibration folders (quantize --calibration) and validate --images folders with one bad image each."""
    folders = _image_folders(d)
    cases = []
    for kind, folder in folders.items():
        fragment = "holds no images" if kind == "no-images" else "cannot read image"
        cases.append(Case(f"images-{kind}-quantize", ["quantize", "{OUT}", "--modes", "ort-qdq", "--calibration", str(folder)],
                          2, fragment, tags=["images"]))
        if kind in ("truncated-png", "garbage-jpg", "decompression-bomb-png", "no-images"):
            cases.append(Case(f"images-{kind}-validate", ["validate", "{OUT}", "--images", str(folder)], 2, fragment, tags=["images"]))
    return cases


# ------------------------------------------------------------------------------------------ config files


def config_cases(d: Path) -> list[Case]:
    """validate --config files with unknown keys, wrong types or broken syntax: exit 2 before anything runs."""
    c = d / "configs"
    c.mkdir(exist_ok=True)
    files = {
        "unknown-key": ("edgeport.toml", "[validate]\natoll = 1e-4\n", "unknown key 'atoll'"),
        "unknown-key-in-output": ("edgeport.toml", "[validate.outputs.logits]\natoll = 1e-3\n", "unknown key 'atoll'"),
        "unknown-key-pyproject": ("pyproject.toml", "[tool.edgeport.validate]\nsampels = 4\n", "unknown key 'sampels'"),
        "samples-string": ("edgeport.toml", "[validate]\nsamples = \"four\"\n", "samples = 'four' is not valid"),
        "samples-zero": ("edgeport.toml", "[validate]\nsamples = 0\n", "is not valid"),
        "seed-float": ("edgeport.toml", "[validate]\nseed = 1.5\n", "is not valid"),
        "timeout-bool": ("edgeport.toml", "[validate]\ntimeout = true\n", "is not valid"),
        "localize-string": ("edgeport.toml", "[validate]\nlocalize = \"yes\"\n", "is not valid"),
        "runtimes-ints": ("edgeport.toml", "[validate]\nruntimes = [1, 2]\n", "is not valid"),
        "atol-string": ("edgeport.toml", "[validate]\natol = \"tight\"\n", "is not a number"),
        "atol-negative": ("edgeport.toml", "[validate]\natol = -1.0\n", "non-negative"),
        "atol-nan": ("edgeport.toml", "[validate]\natol = nan\n", "non-negative"),
        "atol-table": ("edgeport.toml", "[validate.atol]\nx = 1\n", "is not a number"),
        "min-cosine-list": ("edgeport.toml", "[validate]\nmin_cosine = [1]\n", "is not a number"),
        "statistic-number": ("edgeport.toml", "[validate]\nstatistic = 5\n", "statistic"),
        "statistic-unknown": ("edgeport.toml", "[validate]\nstatistic = \"p999x\"\n", "statistic"),
        "outputs-not-table": ("edgeport.toml", "[validate]\noutputs = 3\n", "must hold tables"),
        "variants-not-table": ("edgeport.toml", "[validate.variants]\nint8 = 5\n", "must hold tables"),
        "validate-not-table": ("edgeport.toml", "validate = 3\n", "is not a table"),
        "tool-not-table": ("pyproject.toml", "tool = \"x\"\n", "is not a table"),
        "edgeport-not-table": ("pyproject.toml", "[tool]\nedgeport = 5\n", "is not a table"),
        "bad-toml": ("edgeport.toml", "[validate\natol = \n", "not valid TOML"),
        "binary": ("edgeport.toml", b"\xff\xfe\x00\x80garbage", "cannot read"),
    }
    cases = []
    for name, (fname, text, fragment) in files.items():
        folder = c / name
        folder.mkdir(exist_ok=True)
        p = folder / fname
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        cases.append(Case(f"config-{name}", ["validate", "{OUT}", "--config", str(p)], 2, fragment, tags=["config"]))
    cases.append(Case("config-missing", ["validate", "{OUT}", "--config", str(c / "nope.toml")], 2, "does not exist", tags=["config"]))
    cases.append(Case("config-is-folder", ["validate", "{OUT}", "--config", str(c)], 2, "does not exist", tags=["config"]))
    return cases


# ------------------------------------------------------------------------------------------ model files and outputs


def model_file_cases(d: Path) -> list[Case]:
    """Corrupt .onnx / .tflite files given to validate (two files) and bench (one file). Needs :func:`build`'s files."""
    (d / "empty.tflite").write_bytes(b"")
    (d / "garbage.tflite").write_bytes(np.random.default_rng(7).bytes(700))
    # a flatbuffer-looking file: a root offset, the TFL3 identifier, then nonsense tables
    (d / "fake_flatbuffer.tflite").write_bytes(struct.pack("<I", 16) + b"TFL3" + bytes(range(8, 256)) * 4)
    good = str(d / "good.onnx")
    files = {"empty-onnx": "empty.onnx", "truncated-onnx": "truncated.onnx", "garbage-onnx": "garbage.onnx", "text-onnx": "text.onnx",
             "empty-tflite": "empty.tflite", "garbage-tflite": "garbage.tflite", "zeros-tflite": "model.tflite",
             "fake-flatbuffer-tflite": "fake_flatbuffer.tflite"}
    cases = []
    for name, fname in files.items():
        p = str(d / fname)
        cases.append(Case(f"validate-{name}-as-candidate", ["validate", good, p], 2, fname, tags=["model-file"]))
        if name in ("empty-onnx", "garbage-onnx", "garbage-tflite", "fake-flatbuffer-tflite"):
            cases.append(Case(f"validate-{name}-as-reference", ["validate", p, good], 2, fname, tags=["model-file"]))
            cases.append(Case(f"bench-{name}", ["bench", p, "--runs", "1", "--warmup", "0"], 2, fname, tags=["model-file"]))
    # names that look like rich console markup are printed as they are (a stray "[/]" once crashed the error printer)
    marked = d / "bad[bold]name.onnx"
    marked.write_bytes(b"")
    cases += [
        Case("markup-path-validate", ["validate", str(d / "no[/]such")], 2, "no[/]such does not exist", tags=["model-file"]),
        Case("markup-path-bench", ["bench", str(d / "x[/bold]y.onnx")], 2, "x[/bold]y.onnx does not exist", tags=["model-file"]),
        Case("markup-path-convert", ["convert", str(d / "m[red]x[/red].onnx"), "-o", "{out}"], 2, "m[red]x[/red].onnx",
             tags=["model-file"]),
        Case("markup-empty-model-validate", ["validate", good, str(marked)], 2, "bad[bold]name.onnx is empty", tags=["model-file"]),
    ]
    return cases


def output_cases(d: Path) -> list[Case]:
    """Output paths that cannot be written: under a regular file, into an existing folder, or (when not root)
    under a folder without write permission. Exit 2 before any work, nothing written, the folder unchanged.

    chmod does not stop root, so the read-only-folder cases are generated only for other users; the
    under-a-file cases (ENOTDIR) fail for everyone.
    """
    blocker = d / "a_regular_file"
    blocker.write_text("not a folder\n")
    under = blocker / "sub"
    cases = [
        Case("output-bundle-under-file", ["bundle", "{OUT}", "-o", str(under / "m.bundle.tar.gz")], 2, "cannot write", tags=["output"]),
        Case("output-bundle-is-folder", ["bundle", "{OUT}", "-o", str(d / "a_folder")], 2, "is a folder", out_must_not_exist=False,
             tags=["output"]),
        Case("output-bundle-json-under-file", ["bundle", "{OUT}", "--json", str(under / "b.json")], 2, "cannot write", tags=["output"]),
        Case("output-bundle-extract-under-file", ["bundle", str(d / "bundles" / "good.bundle.tar.gz"), "-o", str(under / "x")], 2,
             "cannot write", tags=["output"]),
        Case("output-bundle-check-json-under-file", ["bundle", str(d / "bundles" / "good.bundle.tar.gz"), "--json", str(under / "b.json")],
             2, "cannot write", tags=["output"]),
        Case("output-validate-json-under-file", ["validate", "{OUT}", "--json", str(under / "r.json")], 2, "cannot write", tags=["output"]),
        Case("output-validate-junit-under-file", ["validate", "{OUT}", "--junit", str(under / "r.xml")], 2, "cannot write", tags=["output"]),
        Case("output-validate-keep-outputs-under-file", ["validate", "{OUT}", "--keep-outputs", str(under / "k")], 2, "cannot write",
             tags=["output"]),
        Case("output-bench-json-under-file", ["bench", "{OUT}", "--runs", "1", "--warmup", "0", "--json", str(under / "r.json")], 2,
             "cannot write", tags=["output"]),
        Case("output-bench-html-under-file", ["bench", "{OUT}", "--runs", "1", "--warmup", "0", "--html", str(under / "r.html")], 2,
             "cannot write", tags=["output"]),
        Case("output-quantize-json-under-file", ["quantize", "{OUT}", "--modes", "ort-dynamic", "--json", str(under / "r.json")], 2,
             "cannot write", tags=["output"]),
        Case("output-convert-under-file", ["convert", "sample:tiny_cnn", "-o", str(under / "out")], 2, "cannot write", tags=["output"]),
    ]
    if os.geteuid() != 0:
        ro = d / "read_only"
        ro.mkdir(exist_ok=True)
        ro.chmod(0o500)
        cases += [
            Case("output-bundle-read-only", ["bundle", "{OUT}", "-o", str(ro / "m.bundle.tar.gz")], 2, "not writable", tags=["output"]),
            Case("output-validate-read-only", ["validate", "{OUT}", "--json", str(ro / "r.json")], 2, "not writable", tags=["output"]),
            Case("output-convert-read-only", ["convert", "sample:tiny_cnn", "-o", str(ro / "out")], 2, "not writable", tags=["output"]),
        ]
    return cases


def managed_env_cases(d: Path) -> list[Case]:
    """Managed converter environments that are not usable: half-built (a venv with no stamp, as a killed install
    leaves it) and out of date (stamped for other pins). A converter named explicitly fails at once, in one line."""
    cases = []
    for kind, stamp in (("half-built", None), ("stale-pins", {"name": "onnx2tf", "requirements_sha256": "0" * 64})):
        home = d / "edgeport-home" / kind
        venv = home / "backends" / "onnx2tf"
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        if not (venv / "bin" / "python").exists():
            (venv / "bin" / "python").symlink_to(sys.executable)  # an interpreter that runs: still not installed
        if stamp is not None:
            (venv / "edgeport-backend.json").write_text(json.dumps(stamp))
        fragment = "edgeport backends install onnx2tf"
        env = {"EDGEPORT_HOME": str(home), "EDGEPORT_ONNX2TF_PYTHON": "", "EDGEPORT_ONNX2TF_REQUIREMENTS": ""}
        cases.append(Case(f"managed-env-{kind}-convert", ["convert", "sample:tiny_cnn", "--to", "tflite", "--converter", "onnx2tf",
                                                           "-o", "{out}"], 3, fragment, tags=["managed-env"], env=env))
    return cases


def reliability_cases(d: Path) -> list[Case]:
    """Everything after :func:`build` that reads converted folders, bundles, images, configs and outputs."""
    return (tarball_cases(d) + manifest_cases(d) + image_cases(d) + config_cases(d) + model_file_cases(d) + output_cases(d)
            + managed_env_cases(d))


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-input-corpus")
    all_cases = build(target) + out_folder_cases(target) + reliability_cases(target)
    for c in all_cases:
        prep = f"  [damage: {c.prepare.__qualname__}]" if c.prepare else ""
        print(f"{c.id:28s} exit {c.code}  {c.fragment!r:40s} edgeport {' '.join(c.argv)}{prep}")
    print(f"{len(all_cases)} cases in {target}")
