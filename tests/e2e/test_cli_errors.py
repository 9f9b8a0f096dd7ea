"""Bad input: one line naming the problem and the fix, exit 2, no traceback, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _one_line_error(r, fragment: str, code: int = 2):
    assert r.code == code, r.output
    err = r.stderr.strip()
    assert "Traceback" not in r.output
    assert len(err.splitlines()) == 1, err
    assert fragment.lower() in err.lower(), err
    assert "(" in err and ")" in err, "the message carries a hint in parentheses"


def test_missing_model_file(cli, tmp_path):
    r = cli("convert", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "o"))
    _one_line_error(r, "does not exist")
    assert not (tmp_path / "o").exists()


def test_bad_reference(cli, tmp_path):
    _one_line_error(cli("convert", "not_a_module_xyz:Net", "-o", str(tmp_path / "o")), "cannot find module")
    _one_line_error(cli("convert", "sample:nope", "-o", str(tmp_path / "o")), "unknown sample")
    _one_line_error(cli("convert", "whatisthis", "-o", str(tmp_path / "o")), "cannot tell")


def test_bad_shape_string(cli, tmp_path):
    model = tmp_path / "m.py"
    model.write_text("import torch\ndef build():\n    return torch.nn.Linear(4, 2)\n")
    _one_line_error(cli("convert", f"{model}:build", "--input", "1x0x4", "-o", str(tmp_path / "o")), "bad shape")
    _one_line_error(cli("convert", f"{model}:build", "--input", "x:1x4:floaty", "-o", str(tmp_path / "o")), "unknown dtype")
    assert not (tmp_path / "o").exists()


def test_forward_fails_on_inputs(cli, tmp_path):
    model = tmp_path / "m.py"
    model.write_text("import torch\ndef build():\n    return torch.nn.Linear(4, 2)\n")
    out = tmp_path / "o"
    r = cli("convert", f"{model}:build", "--input", "1x5", "-o", str(out))
    _one_line_error(r, "forward failed")
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("*.onnx")) and not list(out.glob("*.pt"))


def test_unknown_format(cli, tmp_path):
    _one_line_error(cli("convert", "sample:tiny_cnn", "--to", "coreml", "-o", str(tmp_path / "o")), "unknown format")


def test_missing_factory_and_attribute(cli, tmp_path):
    model = tmp_path / "m.py"
    model.write_text("import torch\ndef build():\n    return torch.nn.Linear(4, 2)\n")
    _one_line_error(cli("convert", str(model), "-o", str(tmp_path / "o")), "names no factory")
    _one_line_error(cli("convert", f"{model}:nothere", "--input", "1x4", "-o", str(tmp_path / "o")), "no attribute")


def test_forward_returning_none_and_nan(cli, tmp_path):
    model = tmp_path / "m.py"
    model.write_text(textwrap.dedent("""
        import torch
        class NoneNet(torch.nn.Module):
            def forward(self, x):
                return None
        class NanNet(torch.nn.Module):
            def forward(self, x):
                return x * float('nan')
        class Nested(torch.nn.Module):
            def forward(self, x):
                return (x, (x, "not a tensor"))
    """))
    _one_line_error(cli("convert", f"{model}:NoneNet", "--input", "1x4", "-o", str(tmp_path / "a")), "returned None")
    _one_line_error(cli("convert", f"{model}:NanNet", "--input", "1x4", "-o", str(tmp_path / "b")), "NaN")
    _one_line_error(cli("convert", f"{model}:Nested", "--input", "1x4", "-o", str(tmp_path / "c")), "'output_1.1' is a str, not a tensor")


def test_output_folder_not_ours_is_refused(cli, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    _one_line_error(cli("convert", "sample:tiny_cnn", "-o", str(out)), "not empty")
    assert (out / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    f = tmp_path / "file"
    f.write_text("x")
    _one_line_error(cli("convert", "sample:tiny_cnn", "-o", str(f)), "is a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    _one_line_error(cli("convert", "sample:tiny_cnn", "-o", str(ro / "o")), "writ")


def test_pickle_is_not_loaded_without_trust(cli, tmp_path):
    """A full-model pickle that would write a file when unpickled: refused, and the file never appears."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    code = textwrap.dedent(f"""
        import os, torch
        class Evil:
            def __reduce__(self):
                return (os.system, ("touch {marker}",))
        torch.save({{"model": Evil()}}, {str(evil)!r})
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    r = cli("convert", str(evil), "--input", "1x4", "-o", str(tmp_path / "o"))
    _one_line_error(r, "trust-pickle")
    assert not marker.exists()


def test_state_dict_gets_a_hint(cli, tmp_path):
    sd = tmp_path / "weights.pt"
    subprocess.run([sys.executable, "-c", f"import torch; torch.save(torch.nn.Linear(4,2).state_dict(), {str(sd)!r})"], check=True)
    _one_line_error(cli("convert", str(sd), "--input", "1x4", "-o", str(tmp_path / "o")), "state dict")


def test_weights_are_applied(cli, tmp_path):
    """--weights loads a state dict (weights_only) into the factory's model."""
    import numpy as np

    model = tmp_path / "m.py"
    model.write_text("import torch\ndef build():\n    torch.manual_seed(0)\n    return torch.nn.Linear(4, 2)\n")
    sd = tmp_path / "w.pt"
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import torch
        torch.manual_seed(123)
        m = torch.nn.Linear(4, 2)
        torch.save(m.state_dict(), {str(sd)!r})
    """)], check=True)
    r = cli("convert", f"{model}:build", "--input", "x:1x4", "--weights", str(sd), "--to", "onnx", "-o", str(tmp_path / "o"))
    assert r.code == 0, r.output
    from edgeport.refdata import load_reference
    import torch

    ins, outs = load_reference(tmp_path / "o" / "reference.npz")
    torch.manual_seed(123)
    m = torch.nn.Linear(4, 2)
    with torch.no_grad():
        want = m(torch.from_numpy(ins[0]["x"])).numpy()
    assert np.allclose(outs[0]["output"], want, atol=1e-6)


def test_debug_shows_traceback(cli, tmp_path):
    r = cli("--debug", "convert", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "o"))
    assert r.code == 2 and "Traceback" in r.stderr
