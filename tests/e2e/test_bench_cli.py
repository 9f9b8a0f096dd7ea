"""Issue 5: ``edgeport bench`` on a converted sample, the regression gate, bundles, and a remote run over SSH.

One conversion of tiny_cnn to every format is shared by the module. Nothing asserts how fast anything
is: the gate test compares a model against a genuinely slower variant of itself (16x the pixels, the
same weights) and only checks the gate's verdict. The remote test starts its own sshd on 127.0.0.1.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

FULL = {("pytorch", "torch_eager"), ("torchscript", "torchscript"), ("onnx", "onnxruntime"),
        ("saved_model", "tensorflow"), ("tflite", "tflite")}
FAST = ["--runs", "30", "--warmup", "3"]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny") / "out"
    r = run_cli("convert", "sample:tiny_cnn", "--to", "torchscript,onnx,saved_model,tflite", "--legacy-exporter", "-o", str(d))
    assert r.code == 0, r.output
    return d


@pytest.fixture(scope="module")
def bench_json(out, tmp_path_factory) -> dict:
    """One full bench run (every artifact x runtime) with every output format requested."""
    work = tmp_path_factory.mktemp("bench")
    (out / "validate.html").write_text("<html><body><h1>parity</h1></body></html>")  # validate --html wrote it
    r = run_cli("bench", str(out), *FAST, "--json", str(work / "b.json"), "--markdown", str(work / "b.md"),
                "--plot", str(work / "b.png"))
    assert r.code == 0, r.output
    doc = json.loads((work / "b.json").read_text())
    doc["_work"] = str(work)
    doc["_stdout"] = r.stdout
    return doc


def test_json_has_every_artifact_on_every_runtime(bench_json):
    assert bench_json["schema"] == "edgeport.bench/1" and bench_json["exit_code"] == 0
    rows = {(r["artifact"], r["runtime"]): r for r in bench_json["results"]}
    assert set(rows) == FULL
    for (art, _rt), r in rows.items():
        assert r["status"] == "ok", r
        assert r["threads"] == 1 and r["runs"] == 30 and r["warmup"] == 3
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], r["key"]
        assert lat["mean"] > 0 and lat["std"] >= 0 and r["throughput"] > 0
        assert r["init_ms"] > 0 and r["first_ms"] > 0 and r["import_ms"] >= 0
        assert r["peak_rss_mb"] > 0 and r["memory"]["peak_mb"] >= r["memory"]["baseline_mb"] > 0
        assert len(r["samples_us"]) == 30
        if art == "pytorch":
            assert r["size_bytes"] is None
        else:
            assert r["size_bytes"] > 0
    p50s = [r["latency_ms"]["p50"] for r in bench_json["results"]]
    assert p50s == sorted(p50s)  # sorted by speed
    assert bench_json["machine"]["cpu"] and bench_json["feed"]["source"] == "reference.npz sample 0"


def test_markdown_plot_and_html_report(bench_json, out):
    work = Path(bench_json["_work"])
    md = (work / "b.md").read_text()
    for art, rt in FULL:
        assert f"| {art} | {rt} | 1 |" in md
    assert (work / "b.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "validate.html").read_text()  # bench adds its section to validate's HTML report
    assert "<h1>parity</h1>" in page and "edgeport-bench:begin" in page and "data:image/png;base64," in page
    folder_page = (out / "report.html").read_text()  # and OUT/report.html shows the latest run's latency
    assert '<section id="latency">' in folder_page and "report_files/latency.png" in folder_page
    assert (out / "report_files" / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert "fastest" in bench_json["_stdout"]


def test_thread_sweep_gives_a_row_per_thread_count(out, tmp_path):
    r = run_cli("bench", str(out), "-a", "onnx,tflite", "--threads", "1,2", *FAST, "--json", str(tmp_path / "t.json"), "-q")
    assert r.code == 0, r.output
    keys = {x["key"] for x in json.loads((tmp_path / "t.json").read_text())["results"]}
    assert keys == {"onnx/onnxruntime/1t", "onnx/onnxruntime/2t", "tflite/tflite/1t", "tflite/tflite/2t"}


def test_gate_trips_on_a_genuinely_slower_model(out, tmp_path):
    base = tmp_path / "base.json"
    r = run_cli("bench", str(out), "-a", "onnx", *FAST, "--json", str(base), "-q")
    assert r.code == 0, r.output
    slow = tmp_path / "slow"  # the same tiny_cnn (same seed, same weights) on 128x128 instead of 32x32 images
    r = run_cli("convert", "sample:tiny_cnn", "--input", "image:1x3x128x128", "--to", "onnx", "--legacy-exporter", "-o", str(slow))
    assert r.code == 0, r.output
    r = run_cli("bench", str(slow), "-a", "onnx", *FAST, "--baseline", str(base), "--max-regression", "10%",
                "--json", str(tmp_path / "slow.json"), "-q")
    assert r.code == 1, r.output
    assert "gate FAILED" in r.stdout and "onnx/onnxruntime/1t" in r.stdout
    gate = json.loads((tmp_path / "slow.json").read_text())["gate"]
    assert gate["passed"] is False and gate["rows"][0]["status"] == "regressed"
    # the same measurement passes a gate wide enough for it: the verdict follows the threshold
    r = run_cli("bench", str(slow), "-a", "onnx", *FAST, "--baseline", str(tmp_path / "slow.json"), "--max-regression", "400%", "-q")
    assert r.code == 0, r.output


def test_bench_model_files(out, tmp_path):
    for name in ("model.onnx", "model.tflite"):
        r = run_cli("bench", str(out / name), *FAST, "--json", str(tmp_path / f"{name}.json"), "-q")
        assert r.code == 0, r.output
        rows = json.loads((tmp_path / f"{name}.json").read_text())["results"]
        assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["size_bytes"] == (out / name).stat().st_size
    r = run_cli("bench", str(out / "model.pt"), *FAST)
    assert r.code == 2 and "--input" in r.stderr
    r = run_cli("bench", str(out / "model.pt"), "--input", "image:1x3x32x32", *FAST, "-q")
    assert r.code == 0, r.output


def test_bench_a_bundle(out, tmp_path):
    bundle = tmp_path / "m.bundle.tar.gz"
    r = run_cli("bundle", str(out), "-o", str(bundle))
    assert r.code == 0, r.output
    r = run_cli("bench", str(bundle), *FAST, "--json", str(tmp_path / "b.json"), "-q")
    assert r.code == 0, r.output
    rows = {(x["artifact"], x["runtime"]) for x in json.loads((tmp_path / "b.json").read_text())["results"]}
    assert rows == {("onnx", "onnxruntime"), ("tflite", "tflite")}


@pytest.mark.parametrize("args, fragment", [
    (["{missing}"], "does not exist"),
    (["{out}", "--threads", "one"], "--threads"),
    (["{out}", "--threads", "0"], "--threads 0"),
    (["{out}", "--runtime", "tensorrt"], "unknown runtime"),
    (["{out}", "--baseline", "{out}/manifest.json"], "not an edgeport benchmark"),
    (["{out}", "--baseline", "{out}/manifest.json", "--max-regression", "lots"], "not a percentage"),
    (["{out}", "--remote", "http://host"], "ssh://"),
])
def test_bad_input_is_a_one_line_exit_2(out, tmp_path, args, fragment):
    argv = [a.format(out=out, missing=tmp_path / "nope") for a in args]
    r = run_cli("bench", *argv)
    assert r.code == 2, r.output
    assert fragment in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ------------------------------------------------------------------------------------------ remote over ssh

SSH_OPTIONS = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
REMOTE_EDGEPORT = f"{sys.executable} -m edgeport"  # the remote side runs this environment's edgeport
INSTALL_HINT = "sshd is not installed: run `apt-get update && apt-get install -y openssh-server` (CI setup needs it for this test)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd of our own on 127.0.0.1 with a temporary host key and a temporary authorized key."""
    exe = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None)
    if exe is None:
        pytest.fail(INSTALL_HINT)
    keygen = shutil.which("ssh-keygen")
    if keygen is None or shutil.which("ssh") is None or shutil.which("scp") is None:
        pytest.fail("the OpenSSH client (ssh, scp, ssh-keygen) is not installed: run `apt-get install -y openssh-client`")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    port = _free_port()
    user = getpass.getuser()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        f"AllowUsers {user}", "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
    ]))
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited at start: {(d / 'sshd.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sshd did not start listening within 20 s")
                time.sleep(0.1)
        yield {"url": f"ssh://{user}@127.0.0.1:{port}", "key": str(d / "client_key"), "options": SSH_OPTIONS}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_remote_bench_over_ssh_brings_the_json_back(out, sshd, tmp_path):
    r = run_cli("bench", str(out), "--remote", sshd["url"], "--remote-edgeport", REMOTE_EDGEPORT,
                "--ssh-identity", sshd["key"], "--ssh-option", "StrictHostKeyChecking=no",
                "--ssh-option", "UserKnownHostsFile=/dev/null", "--ssh-option", "LogLevel=ERROR",
                *FAST, "--json", str(tmp_path / "remote.json"), "-q", timeout=600)
    assert r.code == 0, r.output
    doc = json.loads((tmp_path / "remote.json").read_text())
    assert doc["remote"]["url"] == sshd["url"] and doc["remote"]["exit_code"] == 0
    rows = {(x["artifact"], x["runtime"]): x for x in doc["results"]}
    assert set(rows) == {("onnx", "onnxruntime"), ("tflite", "tflite")}  # the bundle holds the deployable artifacts
    assert all(x["status"] == "ok" and x["latency_ms"]["p50"] > 0 for x in rows.values())


def test_remote_validate_over_ssh(out, sshd, tmp_path):
    r = run_cli("validate", str(out), "--remote", sshd["url"], "--remote-edgeport", REMOTE_EDGEPORT,
                "--ssh-identity", sshd["key"], "--ssh-option", "StrictHostKeyChecking=no",
                "--ssh-option", "UserKnownHostsFile=/dev/null", "--ssh-option", "LogLevel=ERROR",
                "--json", str(tmp_path / "remote.json"), timeout=600)
    assert r.code == 0, r.output
    assert "parity OK" in r.stdout
    doc = json.loads((tmp_path / "remote.json").read_text())
    assert doc["remote"]["url"] == sshd["url"] and doc["remote"]["command"] == "validate"
    assert doc["passed"] is True and doc["reference"]["source"] == "reference.npz"  # no torch needed on the device
    rows = {(x["artifact"], x["runtime"]): x for x in doc["results"] if x["status"] != "skipped"}
    assert {("onnx", "onnxruntime"), ("tflite", "tflite")} <= set(rows)
    for row in rows.values():
        for o in row["outputs"]:
            assert o["metrics"]["max_abs"] < 1e-3  # the real comparison ran there


def test_remote_bad_input_keeps_exit_2(out, sshd):
    # a bundle holds no PyTorch model: fresh random samples need a runtime reference, which the remote names
    r = run_cli("validate", str(out), "--remote", sshd["url"], "--remote-edgeport", REMOTE_EDGEPORT,
                "--ssh-identity", sshd["key"], *(x for o in SSH_OPTIONS for x in ("--ssh-option", o)), "--samples", "2", timeout=600)
    assert r.code == 2, r.output
    assert "refused the input" in r.stderr and "--reference" in r.stderr and "Traceback" not in r.output


def test_remote_validate_refuses_local_only_options(out, tmp_path):
    r = run_cli("validate", str(out), "--remote", "ssh://nobody@127.0.0.1:1", "--junit", str(tmp_path / "j.xml"))
    assert r.code == 2 and "--junit cannot be used with --remote" in r.stderr, r.output
    assert not (tmp_path / "j.xml").exists()


def test_remote_failure_is_a_one_line_error(out, tmp_path):
    port = _free_port()  # nothing listens there
    r = run_cli("bench", str(out), "--remote", f"ssh://nobody@127.0.0.1:{port}", "--ssh-option", "ConnectTimeout=5", "-q")
    assert r.code == 3, r.output
    assert "failed" in r.stderr and "Traceback" not in r.output
