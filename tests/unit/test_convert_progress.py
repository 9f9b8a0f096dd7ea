"""convert's progress: the live line shows the running step, its converter, elapsed time and the stage its
worker reports; an interruption says what was kept and that a re-run resumes."""

from __future__ import annotations

import io
import time

from rich.console import Console

from edgeport.cli.convert import _ProgressPrinter, _Running
from edgeport.convert.plan import Event


def _printer(tmp_path):
    buf = io.StringIO()
    return _ProgressPrinter(Console(file=buf, width=80, force_terminal=False), tmp_path / "out"), buf


def test_finished_steps_are_lines_and_the_running_one_is_live(tmp_path):
    p, buf = _printer(tmp_path)
    logs = tmp_path / "out" / ".edgeport" / "logs"
    logs.mkdir(parents=True)
    p(Event("reference", "cached", 0.0, "torch_eager"))
    p(Event("tflite", "start", 0.0, "onnx2tf"))
    p(Event("onnx", "start", 0.0, "torch.onnx"))
    p.running[("tflite", "onnx2tf")] = ("tflite (onnx2tf)", time.time() - 42)  # started 42 s ago
    (logs / "tflite-onnx2tf.log").write_text("-- edgeport: x in y\n-- edgeport stage     3.1 s: importing onnx2tf\n"
                                             "noise\n-- edgeport stage    40.0 s: converting [red]Conv_0[/red] :abc:\n")
    first, second = _Running(p).__rich__().plain.splitlines()  # a live line per running step
    assert first.startswith("tflite (onnx2tf)  42 s") and first.endswith("converting [red]Conv_0[/red] :abc:")
    assert second == "onnx (torch.onnx)  0 s"
    assert "✓ reference (torch_eager) reused" in buf.getvalue()
    assert "> tflite (onnx2tf)" in buf.getvalue()  # not a terminal: a line instead of the live display
    assert p.interrupted_line().startswith("interrupted during tflite (onnx2tf) after 42 s, onnx (torch.onnx) after 0 s: "
                                           "kept reference in ")
    p(Event("onnx", "failed", 1.0, "torch.onnx: boom"))
    assert list(p.running) == [("tflite", "onnx2tf")]
    assert p.interrupted_line().endswith("run the same command again to resume (finished steps are reused)")


def test_interrupted_before_anything_finished(tmp_path):
    p, _ = _printer(tmp_path)
    p(Event("reference", "start"))
    assert p.interrupted_line().endswith(": nothing was kept; run the same command again to start over")
