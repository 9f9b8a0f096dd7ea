"""The output folder's lock: a convert refused by it leaves the holder's folder exactly as it was.

Two converts started at once may both see no folder yet; the one refused by the lock must not then
"clean up a folder it created", nor remove staging folders, nor read a cache that is being written.
"""

from __future__ import annotations


import pytest

from edgeport.convert.plan import ConvertOptions, Pipeline
from edgeport.errors import OutputError
from edgeport.models import resolve_ref
from edgeport.outdir import lock as folder_lock


def test_a_refused_convert_that_saw_no_folder_removes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    held = []
    real_prepare = Pipeline._prepare_out

    def other_run_wins(self) -> None:  # the other convert creates OUT and takes its lock in between
        lock = folder_lock(out)
        lock.__enter__()
        held.append(lock)
        (out / ".staging-other").mkdir()
        (out / ".edgeport" / "cache.json").write_text("{}")
        real_prepare(self)

    monkeypatch.setattr(Pipeline, "_prepare_out", other_run_wins)
    pipe = Pipeline(resolve_ref("sample:tiny_cnn"), out, ConvertOptions(targets=("onnx",)))
    try:
        with pytest.raises(OutputError) as exc:
            pipe.run()
    finally:
        for lock in held:
            lock.__exit__(None, None, None)
    assert "another edgeport command is writing to" in exc.value.one_line() and str(out) in exc.value.one_line()
    assert exc.value.exit_code == 2
    assert (out / ".staging-other").is_dir() and (out / ".edgeport" / "cache.json").read_text() == "{}"
