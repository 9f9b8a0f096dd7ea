"""What users read: every command's output at 80 columns with no terminal (a pipe, a CI log) keeps every
header and number whole; step logs hold each worker's output and end with its time and peak RSS; user
text (paths, names, values) prints verbatim, never as rich markup or emoji codes.

One real output folder (sample:tiny_cnn to TorchScript and ONNX) is made once for the module, in a folder
whose name holds markup and an emoji code, so every table that shows the path checks verbatim printing too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

ODD = ":abc: [red]x[/red] [bold]"
NARROW = {"COLUMNS": "80"}  # stdout is a pipe: no terminal


def _cli(*args: str, **kw):
    return run_cli(*args, env={**NARROW, **kw.pop("env", {})}, **kw)


def _assert_whole(out: str, values: list[str]) -> None:
    assert "…" not in out, out
    missing = [v for v in values if v not in out]
    assert not missing, f"not printed whole: {missing}\n{out}"


def _assert_verbatim(out: str) -> None:
    for token in (":abc:", "[red]x[/red]", "[bold]"):
        assert token in out, f"{token!r} not printed verbatim:\n{out}"
    assert "🔤" not in out


def _narrow(out: str) -> None:
    assert max(len(line) for line in out.splitlines()) <= 80, out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("console") / f"odd {ODD}" / "out"
    r = _cli("convert", "sample:tiny_cnn", "--to", "torchscript,onnx", "-o", str(out), timeout=600)
    assert r.code == 0, r.output
    return out, r


def test_convert_output_fits_80_columns(converted):
    out, r = converted
    m = json.loads((out / "manifest.json").read_text())
    from edgeport.fsutil import human_size

    arts = [a for a in m["artifacts"] if a["format"] != "pytorch"]
    assert {a["name"] for a in arts} == {"torchscript", "onnx"}
    _assert_whole(r.stdout, ["artifact", "converter", "size", "time"] + [a["name"] for a in arts]
                  + [a["converter"] for a in arts] + [human_size(a["size_bytes"]) for a in arts]
                  + [f"{a['seconds']:.1f} s" for a in arts])
    _narrow("\n".join(line for line in r.stdout.splitlines() if "odd" not in line))  # the long path may run on
    _assert_verbatim(r.stdout)


def test_every_step_log_holds_output_and_ends_with_time_and_rss(converted):
    from edgeport.worker import parse_footer

    out, _ = converted
    logs = sorted((out / ".edgeport" / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"reference", "torchscript-torchscript", "onnx-torch.onnx"}
    for p in logs:
        lines = p.read_text().splitlines()
        assert len(lines) >= 3, p
        f = parse_footer(lines[-1])
        assert f is not None and f["status"] == "ok", (p, lines[-1])
        assert 0 < f["seconds"] < 600 and f["peak_rss_mb"] > 50, f  # a torch worker's RSS is hundreds of MB
    r = _cli("logs", str(out))
    assert r.code == 0, r.output
    _assert_whole(r.stdout, ["step", "status", "wall time", "peak RSS"] + [p.stem for p in logs]
                  + [f"{parse_footer(p.read_text().splitlines()[-1])['seconds']:.2f} s" for p in logs])
    _assert_verbatim(r.stdout)
    r = _cli("logs", str(out), "reference")
    assert r.code == 0 and r.stdout == (out / ".edgeport/logs/reference.log").read_text()
    r = _cli("logs", str(out), "no-such-step")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "reference" in r.stderr


def test_validate_output_fits_80_columns(converted, tmp_path):
    from edgeport.validate.report import fmt

    out, _ = converted
    # the stored reference outputs and ONNX Runtime only: one light worker
    r = _cli("validate", str(out), "--reference", "stored", "-r", "onnxruntime", "--json", str(tmp_path / "v.json"), timeout=600)
    assert r.code == 0, r.output
    doc = json.loads((tmp_path / "v.json").read_text())
    values = ["status", "artifact", "runtime", "output", "max abs"]
    for res in doc["results"]:
        if res["status"] == "skipped":
            continue
        values += [res["artifact"], res["runtime"]]
        for o in res["outputs"]:
            m = o["metrics"]
            values += [fmt(m.get("max_abs")), fmt(m.get("max_rel")), fmt(m.get("mean_abs")), fmt(m.get("cosine"), "cos")]
    assert len(values) >= 9
    _assert_whole(r.stdout, values)
    _narrow("\n".join(line for line in r.stdout.splitlines() if line.startswith(("status", "pass ", "    "))))
    _assert_verbatim(r.stdout)


def test_bench_output_fits_80_columns(converted, tmp_path):
    from edgeport.bench.report import fmt_mb, fmt_ms

    out, _ = converted
    r = _cli("bench", str(out), "--runs", "20", "--warmup", "2", "-r", "onnxruntime",
             "--json", str(tmp_path / "b.json"), timeout=600)
    assert r.code == 0, r.output
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 1
    values = ["artifact", "runtime", "p50", "p99", "peak RSS"]
    for row in ok:
        lat = row["latency_ms"]
        values += [row["artifact"], row["runtime"], fmt_ms(lat["p50"]), fmt_ms(lat["p90"]), fmt_ms(lat["p99"]),
                   fmt_mb(row["peak_rss_mb"])]
    _assert_whole(r.stdout, values)
    _narrow("\n".join(line for line in r.stdout.splitlines() if line.startswith(("artifact", "onnx ", "    "))))


def test_backends_samples_and_bundle_fit_80_columns(converted, tmp_path):
    out, _ = converted
    r = _cli("samples")
    assert r.code == 0, r.output
    samples = json.loads(_cli("samples", "--json").stdout)
    _assert_whole(r.stdout, [s["name"] for s in samples] + [i for s in samples for i in s["inputs"]])
    _narrow(r.stdout)
    r = _cli("backends")
    assert r.code == 0, r.output
    entries = json.loads(_cli("backends", "--json").stdout)
    _assert_whole(r.stdout, [e["name"] for e in entries] + [f"{k} {v}" for e in entries for k, v in e.get("versions", {}).items()])
    bundle = tmp_path / f"b {ODD}.tar.gz"
    r = _cli("bundle", str(out), "-o", str(bundle), "--json", str(tmp_path / "b.json"))
    assert r.code == 0, r.output
    doc = json.loads((tmp_path / "b.json").read_text())
    _assert_whole(r.stdout, [doc["sha256"], "model.onnx", "manifest.json"])
    _assert_verbatim(r.stdout)


# the same user text, through every command's error path: a one-line error that repeats it verbatim
VERBATIM_CASES = {
    "convert": (["convert", "sample:tiny_cnn", "--to", ODD, "-o", "{tmp}/never"], 2),
    "validate": (["validate", "{OUT}", "--atol", f"logits{ODD}"], 2),
    "bench": (["bench", "{tmp}/missing " + ODD + ".onnx"], 2),
    "bundle": (["bundle", "{tmp}/missing " + ODD], 2),
    "backends": (["backends", "install", ODD], 2),
    "samples": (["samples", ODD], 2),
    "logs": (["logs", "{OUT}", ODD], 2),
}


@pytest.mark.parametrize("command", sorted(VERBATIM_CASES))
def test_user_text_in_errors_prints_verbatim(command, converted, tmp_path):
    out, _ = converted
    argv, code = VERBATIM_CASES[command]
    r = _cli(*(a.replace("{tmp}", str(tmp_path)).replace("{OUT}", str(out)) for a in argv))
    assert r.code == code, r.output
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in r.output, err
    _assert_verbatim(err)
    assert not (tmp_path / "never").exists()
