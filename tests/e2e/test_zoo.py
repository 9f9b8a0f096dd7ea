"""edgeport zoo: sample models through the process pool (with one killed worker, then a re-run) and through Ray."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from tests.conftest import run_cli

ZOO = """
[defaults]
formats = ["onnx"]
samples = 2
bench_runs = 10
bench_warmup = 2
bench_runtimes = ["onnxruntime"]

[[model]]
name = "tiny_cnn"
reference = "sample:tiny_cnn"

[[model]]
name = "victim_dynamic"
reference = "sample:dynamic"
"""
RAY_ZOO = ZOO.replace('formats = ["onnx"]', 'formats = ["torchscript", "onnx"]').replace("victim_dynamic", "dynamic") + """
[[model]]
name = "multi_io"
reference = "sample:multi_io"
"""


def _models(path):
    return {m["name"]: m for m in json.loads(path.read_text())["models"]}


def _check_passed(m):
    t = m["table"]
    assert m["exit_code"] == 0 and t["verdict"] == "pass", t["why"]
    assert t["formats_ok"] == f"{len(m['formats'])}/{len(m['formats'])}"
    assert set(t["worst_parity"]) == set(m["formats"]) and all(0 <= v < 1e-4 for v in t["worst_parity"].values()), t
    assert t["ort_p50_ms"] is not None and 0 < t["ort_p50_ms"] < 1000


def _zoo_page(out):
    """OUT/zoo.html's model rows as (name, link target or None); every link must resolve to a file."""
    html = (out / "zoo.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="model">\s*<td>(.*?)</td>', html)
    found = {}
    for cell in rows:
        m = re.fullmatch(r'<a href="([^"]+)">(.*)</a>', cell)
        name = m.group(2) if m else cell
        target = (out / unquote(m.group(1))).resolve() if m else None
        assert target is None or target.is_file(), target
        found[name] = target
    assert len(found) == len(rows)
    return found


def test_pool_isolates_a_killed_worker_and_rerun_reuses(tmp_path):
    zoo = tmp_path / "zoo.toml"
    zoo.write_text(ZOO)
    out = tmp_path / "out"
    first = tmp_path / "first.json"
    # the first worker of victim_dynamic (its reference step) is SIGKILLed; the other models must not notice
    r = run_cli("zoo", str(zoo), "-o", str(out), "--jobs", "2", "--json", str(first), "--junit", str(tmp_path / "z.xml"),
                env={"EDGEPORT_FAULT": "victim_dynamic:kill", "COLUMNS": "220"})
    assert r.code == 3, r.output
    rows = _models(first)
    _check_passed(rows["tiny_cnn"])
    victim = rows["victim_dynamic"]
    assert victim["exit_code"] == 3 and "SIGKILL" in victim["table"]["why"], victim["table"]
    assert "victim_dynamic" in r.stdout and "failed" in r.stdout  # the table says which
    junit = (tmp_path / "z.xml").read_text()
    assert junit.count("<testcase") == 2 and 'errors="1"' in junit  # victim: its onnx was not made
    page = _zoo_page(out)
    assert list(page) == ["tiny_cnn", "victim_dynamic"]
    assert page["tiny_cnn"] == (out / "tiny_cnn" / "report.html").resolve()
    model_page = page["tiny_cnn"].read_text(encoding="utf-8")  # the zoo's results are on the model's own page
    assert "Not validated yet" not in model_page and "Not benchmarked yet" not in model_page
    assert 'class="v-failed">failed<' in (out / "zoo.html").read_text(encoding="utf-8")

    second = tmp_path / "second.json"
    r2 = run_cli("zoo", str(zoo), "-o", str(out), "--jobs", "2", "--json", str(second), env={"COLUMNS": "220"})
    assert r2.code == 0, r2.output
    rows2 = _models(second)
    for name in ("tiny_cnn",):
        assert set(rows2[name]["reused"]) == {"convert", "validate", "bench"}, rows2[name]["reused"]
        assert rows2[name]["table"]["worst_parity"] == rows[name]["table"]["worst_parity"]
        assert rows2[name]["seconds"] < 5
    assert rows2["victim_dynamic"]["reused"] == []
    _check_passed(rows2["victim_dynamic"])
    page = _zoo_page(out)  # rewritten by the re-run: now every model has its page
    assert page == {n: (out / n / "report.html").resolve() for n in ("tiny_cnn", "victim_dynamic")}
    assert (out / "zoo.html").read_text(encoding="utf-8").count('class="v-pass">pass<') == 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_local_instance_matches_the_pool(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'edgeport[ray]')")
    zoo = tmp_path / "zoo.toml"
    zoo.write_text(RAY_ZOO)
    pool_json, ray_json = tmp_path / "pool.json", tmp_path / "ray.json"
    r = run_cli("zoo", str(zoo), "-o", str(tmp_path / "pool"), "--jobs", "2", "--json", str(pool_json), timeout=800)
    assert r.code == 0, r.output
    r = run_cli("zoo", str(zoo), "-o", str(tmp_path / "ray"), "--jobs", "2", "--ray", "auto", "--json", str(ray_json),
                timeout=800)
    assert r.code == 0, r.output
    assert json.loads(ray_json.read_text())["executor"] == "ray auto"
    pool, ray = _models(pool_json), _models(ray_json)
    assert list(pool) == list(ray)
    for name in pool:
        _check_passed(ray[name])
        assert ray[name]["table"]["worst_parity"] == pool[name]["table"]["worst_parity"]
        assert ray[name]["table"]["formats_ok"] == pool[name]["table"]["formats_ok"]


def test_memory_bound_fails_the_model_not_the_machine(tmp_path):
    zoo = tmp_path / "zoo.toml"
    zoo.write_text('[[model]]\nname = "tiny"\nreference = "sample:tiny_cnn"\nformats = ["onnx"]\nbench = false\n')
    report = tmp_path / "z.json"
    # 100 MB for the model's process and its workers: importing torch in the first worker passes it
    r = run_cli("zoo", str(zoo), "-o", str(tmp_path / "out"), "--max-memory-mb", "100", "--json", str(report),
                env={"COLUMNS": "220"})
    assert r.code == 3, r.output
    row = _models(report)["tiny"]
    assert row["memory_limit"].startswith("memory limit: the model's processes used")
    used = float(row["memory_limit"].split("used ")[1].split(" MB")[0])
    assert used > 100
    assert "memory limit" in r.stdout


def test_bad_zoo_file_is_one_line_exit_2_and_writes_nothing(tmp_path):
    zoo = tmp_path / "zoo.toml"
    zoo.write_text('[[model]]\nname = "a"\nreference = "sample:tiny_cnn"\nbench_runs = "many"\n')
    r = run_cli("zoo", str(zoo), "-o", str(tmp_path / "out"))
    assert r.code == 2
    assert r.stderr.strip().count("\n") == 0 and "bench_runs = 'many' has the wrong type" in r.stderr
    assert not (tmp_path / "out").exists()
    r = run_cli("zoo", str(tmp_path / "new.toml"), "--init")
    assert r.code == 0 and (tmp_path / "new.toml").read_text().startswith("# edgeport zoo file")
