"""The protocol of the standalone job scripts run by managed environments (no edgeport there)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import edgeport.convert

CONVERT_DIR = Path(edgeport.convert.__file__).parent


def _run(tmp_path: Path, body: str, kwargs: dict) -> tuple[int, dict]:
    script = tmp_path / "job_under_test.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(CONVERT_DIR)!r})
        from _job_protocol import JobError, main
        {body}
        sys.exit(main(sys.argv[1:], {{"convert": convert}}, "job_under_test.py"))
    """))
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"target": "convert", "kwargs": kwargs}))
    res = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-S", str(script), job.name, res.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={})
    return proc.returncode, json.loads(res.read_text())


def test_result_written_even_when_the_job_changes_directory(tmp_path):
    body = "def convert(where):\n            import os; os.chdir(where); return {'cwd': os.getcwd()}"
    (tmp_path / "elsewhere").mkdir()
    rc, out = _run(tmp_path, body, {"where": str(tmp_path / "elsewhere")})
    assert rc == 0 and out == {"ok": True, "value": {"cwd": str(tmp_path / "elsewhere")}}


def test_job_error_is_a_one_line_conversion_error(tmp_path):
    body = "def convert():\n            raise JobError('the model has\\nan op it cannot take', 'use litert-torch')"
    rc, out = _run(tmp_path, body, {})
    assert rc == 1 and out["error"]["type"] == "ConversionError"
    assert out["error"]["message"] == "the model has an op it cannot take" and out["error"]["hint"] == "use litert-torch"


def test_network_is_refused_before_anything_is_sent(tmp_path):
    """The audit hook refuses name resolution of any non-local host: nothing leaves the machine."""
    body = "def convert():\n            import socket; socket.getaddrinfo('example.invalid', 80); return {}"
    rc, out = _run(tmp_path, body, {})
    assert rc == 1 and out["error"]["type"] == "ConnectionRefusedError"
    assert "edgeport runs offline" in out["error"]["message"]
