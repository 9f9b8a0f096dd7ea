"""The quantization sweep (every mode, image-like calibration data, report, per-layer int8 errors).

Fast tests (default suite): the guards on plain data, the one-line CLI errors, and a small real sweep on
tiny_cnn (fp16, dynamic, int8, int16x8 with an injected interpreter abort, ai-edge-quantizer dynamic and
static int8 from the float .tflite with per-op sensitivity, ONNX Runtime dynamic and QDQ).
Slow tests: the full sweep on mobile_cnn through the CLI; the full sweep and keep-float search on the trained
digits sample (``--dataset digits``) and on its outlier-channel variant, with the figures the README quotes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeport.manifest import Artifact, Manifest
from edgeport.quantize import calibration as cal
from edgeport.quantize.debug import LayerError, module_of, select_keep_float
from edgeport.quantize.sweep import EVAL_JOB, QuantizeOptions, Sweep, VariantRow, compare, parse_keep_float, parse_modes
from edgeport.quantize.tflite_variants import variant_io
from edgeport.spec import IOSpec, TensorSpec
from tests.conftest import run_cli

NORM = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _abort_job(**_: object) -> None:
    """Stands in for a variant whose kernels abort the interpreter (int16x8 models can)."""
    os.abort()


def _png_ok(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        a = np.asarray(im.convert("L"), dtype=np.float32)
    assert im.size[0] >= 300 and im.size[1] >= 200
    assert a.std() > 10, f"{path.name} looks blank"  # axes, points, bars and labels, not an empty canvas
    assert len(np.unique(a)) > 20


# ------------------------------------------------------------------------------------------------ guards (plain data)


def test_modes_and_keep_float_parsing():
    assert parse_modes("all") == ("fp16", "dynamic", "int8", "int16x8", "aeq-dynamic", "aeq-weight-int8", "aeq-weight-int4",
                                  "aeq-int8", "aeq-int16x8", "ort-dynamic", "ort-qdq")
    assert parse_modes("int8,fp16,qdq") == ("fp16", "int8", "ort-qdq")
    assert parse_modes("aeq-static,ort-dynamic,aeq-w4") == ("aeq-weight-int4", "aeq-int8", "ort-dynamic")
    assert parse_keep_float("3") == 3 and parse_keep_float("features.3, node_Conv_1") == ("features.3", "node_Conv_1")
    from edgeport.errors import UsageError

    with pytest.raises(UsageError):
        parse_modes("int4")
    with pytest.raises(UsageError):
        parse_keep_float("0")


def test_reordered_and_renamed_tflite_io_is_mapped_back():
    parent = IOSpec(inputs=[TensorSpec("image", (1, 8, 8, 3), "float32", "NHWC", (0, 2, 3, 1), "image"),
                            TensorSpec("features", (1, 4), "float32", ref_name="features")],
                    outputs=[TensorSpec("logits", (1, 10), ref_name="logits"), TensorSpec("embedding", (1, 16), ref_name="embedding")])
    # no signature; the converter renamed the tensors and put them in another order, int8 inputs
    info = {"signatures": {},
            "inputs": [{"index": 0, "name": "serving_default_features:0", "shape": [1, 4], "dtype": "int8"},
                       {"index": 1, "name": "serving_default_image:0", "shape": [1, 8, 8, 3], "dtype": "int8"}],
            "outputs": [{"index": 7, "name": "StatefulPartitionedCall:1", "shape": [1, 16], "dtype": "int8"},
                        {"index": 9, "name": "StatefulPartitionedCall:0", "shape": [1, 10], "dtype": "int8"}]}
    io, notes = variant_io(parent, info)
    assert [(t.name, t.ref_name, t.dtype) for t in io.inputs] == [("serving_default_image:0", "image", "int8"),
                                                                  ("serving_default_features:0", "features", "int8")]
    assert io.inputs[0].perm == (0, 2, 3, 1)
    assert [(t.name, t.ref_name) for t in io.outputs] == [("StatefulPartitionedCall:0", "logits"), ("StatefulPartitionedCall:1", "embedding")]
    assert any("moved input" in n for n in notes)
    # with a signature, the signature keys are used whatever the tensor order
    info["signatures"] = {"serving_default": {"inputs": {"image": 1, "features": 0}, "outputs": {"logits": 9, "embedding": 7}}}
    io, _ = variant_io(parent, info)
    assert [t.name for t in io.inputs] == ["image", "features"] and [t.name for t in io.outputs] == ["logits", "embedding"]


def test_swapped_outputs_nan_and_constant_outputs_are_caught():
    rng = np.random.default_rng(0)
    ref = [{"a": rng.standard_normal((1, 10)).astype(np.float32), "b": rng.standard_normal((1, 10)).astype(np.float32)}
           for _ in range(6)]
    swapped = [{"a": r["b"] + 0.01, "b": r["a"] + 0.01} for r in ref]
    row = VariantRow(name="x", variant="int8", format="tflite", runtime="tflite")
    compare(row, ref, swapped)
    assert row.summary["cosine"] > 0.99 and any("mapped back by value" in n for n in row.notes)
    bad = [{"a": np.full((1, 10), np.nan, np.float32), "b": np.ones((1, 10), np.float32)} for _ in ref]
    row = VariantRow(name="y", variant="int8", format="tflite", runtime="tflite")
    compare(row, ref, bad)
    assert any("NaN" in f for f in row.flags) and any("constant output" in f for f in row.flags)


def test_module_names_from_dynamo_metadata_and_legacy_node_names():
    meta = {"pkg.torch.onnx.name_scopes": "['', 'features', 'features.1', 'features.1.0', 'features.1.0.1', 'bn']",
            "pkg.torch.onnx.class_hierarchy": "['M', 'torch.nn.Sequential', 'X', 'ConvBNAct', 'torch.nn.BatchNorm2d', 'aten.bn']",
            "pkg.onnxscript.rewriter.rule_name": "FuseBatchNormIntoConv"}
    assert module_of("node_Conv_3", meta) == ("features.1.0", "ConvBNAct")  # conv+BN folded: the block holding both
    assert module_of("/features/features.0/features.0.0/Conv", {}) == ("features.0.0", "")


def test_keep_float_selection():
    layers = [LayerError(tensor=f"t{i}", op="CONV_2D", snr_db=20.0 + i, rmse_scale=0.3, mse=0.1, mean_abs=0.1, max_abs=1.0,
                         scale=0.1, zero_point=0, elements=10, module=f"features.{i}.conv", onnx_nodes=[f"node_{i}"])
              for i in range(5)]
    assert select_keep_float(layers, 2) == (["t0", "t1"], [])
    assert select_keep_float(layers, ("features.3", "node_1", "nope")) == (["t3", "t1"], ["nope"])


# ------------------------------------------------------------------------------------------------ CLI errors


def _fake_out(tmp_path: Path, with_saved_model: bool) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"onnx")
    io = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), "float32", "NCHW", ref_name="image")],
                outputs=[TensorSpec("logits", (1, 10), ref_name="logits")])
    arts = [Artifact(name="onnx", format="onnx", path="model.onnx", io=io)]
    if with_saved_model:
        (out / "saved_model").mkdir()
        (out / "saved_model" / "saved_model.pb").write_bytes(b"pb")
        arts.append(Artifact(name="saved_model", format="saved_model", path="saved_model", io=io, parent="onnx"))
    Manifest(root=out, source="sample:tiny_cnn", io=io, artifacts=arts).save()
    return out


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    out = _fake_out(tmp_path, with_saved_model=False)
    r = run_cli("quantize", str(out), "--modes", "int8", "--random-calibration")
    assert r.code == 2 and "--to saved_model" in r.stderr and "Traceback" not in r.output, r.output
    (tmp_path / "b").mkdir()
    out2 = _fake_out(tmp_path / "b", with_saved_model=True)
    r = run_cli("quantize", str(out2), "--modes", "int8", "--calibration", str(tmp_path / "no-such-folder"))
    assert r.code == 2 and "no-such-folder" in r.stderr and "Traceback" not in r.output, r.output
    r = run_cli("quantize", str(out2), "--modes", "int8")
    assert r.code == 2 and "--random-calibration" in r.stderr, r.output
    r = run_cli("quantize", str(out2), "--modes", "fp16", "--keep-float", "2", "--random-calibration")
    assert r.code == 2 and "int8" in r.stderr, r.output
    np.save(tmp_path / "wrong.npy", np.zeros((10, 3, 9, 9), np.float32))
    r = run_cli("quantize", str(out2), "--modes", "int8", "--calibration", str(tmp_path / "wrong.npy"))
    assert r.code == 2 and "(1, 3, 9, 9)" in r.stderr, r.output
    assert len([line for line in r.stderr.strip().splitlines() if line.strip()]) == 1


# ------------------------------------------------------------------------------------------------ tiny_cnn, real sweep


class _CrashingInt16(Sweep):
    """A sweep whose int16x8 evaluation aborts the worker process, as a broken int16 kernel would."""

    def _worker(self, target, kwargs, log):  # type: ignore[override]
        if target == EVAL_JOB and str(kwargs.get("path", "")).endswith("int16x8.tflite"):
            target = "tests.e2e.test_quantize:_abort_job"
        return super()._worker(target, kwargs, log)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant-tiny")
    out = root / "out"
    r = run_cli("convert", "sample:tiny_cnn", "--to", "onnx,saved_model", "-o", str(out), timeout=900)
    assert r.code == 0, r.output
    paths = cal.write_synthetic_images(root / "images", 60, size=(32, 32), seed=3)
    (root / "labels.csv").write_text("image,label\n" + "".join(f"{p.name},{k % 10}\n" for k, p in enumerate(paths)))
    opts = QuantizeOptions(modes=parse_modes("fp16,dynamic,int8,int16x8,aeq-dynamic,aeq-int8,ort-dynamic,ort-qdq"),
                           calibration=cal.CalibrationOptions(source=str(root / "images"), samples=40, holdout=16,
                                                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                                              labels=str(root / "labels.csv")),
                           keep_float=1, latency_runs=50)
    report = _CrashingInt16(out, opts).run()
    return out, report


def test_tiny_sweep_rows(tiny):
    out, report = tiny
    print("sweep timings:", {k: round(v, 1) for k, v in report.timings.items()}, round(report.seconds, 1))
    by = {r.variant: r for r in report.rows}
    assert set(by) == {"fp32", "fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat", "aeq-dynamic-int8", "aeq-int8",
                       "ort-dynamic-int8", "ort-qdq-int8"}
    assert [r.format for r in report.rows if r.variant == "fp32"] == ["tflite", "onnx"]
    crashed = by["int16x8"]
    assert crashed.status == "crash" and crashed.stage == "run" and "SIGABRT" in crashed.reason
    for r in report.rows:
        if r is crashed:
            continue
        assert r.status == "ok", (r.name, r.reason)
        assert r.size_bytes > 0 and r.size_ratio is not None and r.latency["p50"] > 0
        assert {"cosine", "snr_db", "max_abs", "top1", "top5"} <= set(r.summary), r.summary
        assert not r.flags, r.flags
        assert r.task["metric"] == "accuracy" and r.task["samples"] == 16 and 0.0 <= r.task["accuracy"] <= 1.0
    assert by["fp16"].summary["cosine"] > 0.999 and by["int8"].summary["cosine"] > 0.9
    assert by["int8"].size_ratio < 0.5
    assert report.data["holdout_samples"] == 16 and report.data["calibration_samples"] == 40
    assert report.exit_code == 0


def test_tiny_sweep_manifest_and_files(tiny):
    out, report = tiny
    m = Manifest.load(out)
    assert m.verify() == []
    variants = {a.variant: a for a in m.artifacts if a.path.startswith("quant/")}
    # convert made no .tflite here, so the sweep made the fp32 baseline from the SavedModel too
    assert set(variants) == {"fp32", "fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat", "aeq-dynamic-int8", "aeq-int8",
                             "ort-dynamic-int8", "ort-qdq-int8"}
    assert variants["int8"].parent == "saved_model" and variants["ort-qdq-int8"].parent == "onnx"
    # ai-edge-quantizer starts from the float .tflite (here the baseline the sweep made), not from the SavedModel
    assert variants["aeq-int8"].parent == variants["fp32"].name and variants["aeq-int8"].converter == "ai-edge-quantizer"
    assert variants["int8"].format == "tflite" and variants["ort-qdq-int8"].format == "onnx"
    assert variants["int16x8"].checks["quantize"]["status"] == "crash"  # the file is complete; running it crashed
    assert variants["int8"].io.inputs[0].perm == (0, 2, 3, 1)  # the SavedModel's NHWC layout, mapped back
    for key in ("json", "html", "scatter", "sizes"):
        assert (out / report.files[key]).is_file()
    data = json.loads((out / report.files["json"]).read_text())
    assert data["schema"] == "edgeport.quantize/1" and len(data["rows"]) == 11
    for row in data["rows"]:  # XNNPACK placement of every .tflite that ran
        if row["format"] == "tflite" and row["status"] == "ok":
            assert row["delegation"]["partitions"] >= 1 and isinstance(row["delegation"]["builtin_ops"], dict), row
    assert data["recommendation"]["floor"]["max_accuracy_drop"] == 0.01  # labels given, no floor asked: 1 point
    html = (out / report.files["html"]).read_text()
    assert "accuracy_vs_latency.png" in html and "sizes.png" in html and "int8-keepfloat" in html
    assert html.index('id="recommendation"') < html.index("<h2>Variants</h2>")  # the page opens with the decision
    assert "Per-op sensitivity, isolated" in html
    _png_ok(out / report.files["scatter"])
    _png_ok(out / report.files["sizes"])


def test_tiny_layers_are_named_after_the_onnx_graph(tiny):
    import onnx

    out, report = tiny
    nodes = {n.name for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert report.layers and report.layer_info["status"] == "ok"
    top = report.layers[:5]
    assert all(layer["onnx_nodes"] and set(layer["onnx_nodes"]) <= nodes for layer in top), top
    assert all(layer["module"] for layer in top)
    assert report.keep_float["tensors"] == [report.layers[0]["tensor"]]
    by = {r.variant: r for r in report.rows}
    assert by["int8-keepfloat"].ops.get("DEQUANTIZE", 0) > by["int8"].ops.get("DEQUANTIZE", 0)


def test_tiny_aeq_variants_and_isolated_sensitivity(tiny):
    import onnx

    out, report = tiny
    by = {r.variant: r for r in report.rows}
    dyn, static = by["aeq-dynamic-int8"], by["aeq-int8"]
    for r in (dyn, static):
        assert r.ok and r.converter == "ai-edge-quantizer" and r.size_ratio < 0.6, (r.name, r.reason, r.size_ratio)
        assert r.summary["cosine"] > 0.9 and r.latency["p50"] > 0
    assert static.options["recipe"] == "static" and static.options["activation_bits"] == 8
    assert dyn.summary["snr_db"] > static.summary["snr_db"]  # float activations lose less than int8 ones
    sens = report.sensitivity
    assert sens["status"] == "ok" and sens["mode"] == "aeq-int8" and sens["samples"] == 16
    layers = sens["layers"]
    assert [x["rank"] for x in layers] == list(range(1, len(layers) + 1)) and len(layers) >= 4
    snrs = [x["only"]["snr_db"] for x in layers]
    assert snrs == sorted(snrs) and all(isinstance(v, float) and v < 200 for v in snrs)
    # each op quantized alone does less damage than all of them together
    assert min(snrs) >= sens["full"]["snr_db"] - 0.5
    nodes = {n.name for n in onnx.load(str(out / "model.onnx")).graph.node}
    convs = [x for x in layers if x["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert convs and all(x["onnx_nodes"] and set(x["onnx_nodes"]) <= nodes and x["module"] for x in convs), convs


def test_tiny_console_table(tiny):
    from rich.console import Console

    from edgeport.quantize.report import render_console

    _, report = tiny
    console = Console(record=True, width=200)
    render_console(report, console)
    text = console.export_text()
    for word in ("LiteRT int8", "ORT ort-qdq-int8", "crash", "SNR dB", "p50 ms", "kept in float", "LiteRT aeq-int8",
                 "most sensitive ops, isolated"):
        assert word in text


# ------------------------------------------------------------------------------------------------ mobile_cnn, the check


@pytest.mark.slow
def test_mobile_cnn_full_sweep(tmp_path):
    import onnx

    import sample_models

    out = tmp_path / "out"
    r = run_cli("convert", "sample:mobile_cnn", "--to", "onnx,saved_model,tflite", "-o", str(out), timeout=1800)
    assert r.code == 0, r.output
    cal.write_synthetic_images(tmp_path / "images", 164, size=(96, 96), seed=0)
    r = run_cli("quantize", str(out), "--modes", "fp16,dynamic,int8,int16x8,ort-dynamic,ort-qdq", "--calibration",
                str(tmp_path / "images"), *NORM, "--keep-float", "3", "--json", str(tmp_path / "report.json"), timeout=1800,
                env={"COLUMNS": "220"})
    assert r.code == 0, r.output
    data = json.loads((tmp_path / "report.json").read_text())
    rows = {(x["format"], x["variant"]): x for x in data["rows"]}
    want = {("tflite", v) for v in ("fp32", "fp16", "dynamic-int8", "int8", "int16x8", "int8-keepfloat")}
    want |= {("onnx", v) for v in ("fp32", "ort-dynamic-int8", "ort-qdq-int8")}
    want |= {("tflite", v) for v in ("int8-float-ops", "int8-rewrite", "int8-io")}  # int8 remedies: XNNPACK cuts plain int8
    assert set(rows) == want
    for key, row in rows.items():
        assert row["status"] in ("ok", "crash"), (key, row["reason"])
        assert row["size_bytes"] > 0
        if row["status"] == "ok":
            assert row["latency_ms"]["p50"] > 0 and {"cosine", "snr_db", "max_abs", "top1", "top5"} <= set(row["summary"])
    assert rows[("tflite", "int8")]["status"] == "ok"
    assert rows[("tflite", "int8")]["size_ratio"] <= 0.35
    assert data["data"]["calibration_samples"] == 100 and data["data"]["holdout_samples"] == 64
    for line in ("LiteRT int8", "ORT ort-qdq-int8", "SNR dB"):
        assert line in r.stdout
    _png_ok(out / data["files"]["scatter"])
    _png_ok(out / data["files"]["sizes"])
    # the ranking names real layers: ONNX nodes of model.onnx and modules of the PyTorch model
    nodes = {n.name for n in onnx.load(str(out / "model.onnx")).graph.node}
    module_names = {n for n, _ in sample_models.build("mobile_cnn")[0].named_modules()}
    top = data["layers"][:5]
    assert len(top) == 5
    for layer in top:
        assert layer["onnx_nodes"] and set(layer["onnx_nodes"]) <= nodes, layer
        assert layer["module"] in module_names, layer
    kept = data["keep_float"]
    assert kept["tensors"] == [x["tensor"] for x in data["layers"][:3]]
    kf, int8 = rows[("tflite", "int8-keepfloat")], rows[("tflite", "int8")]
    assert kf["status"] == "ok" and kf["ops"].get("DEQUANTIZE", 0) > int8["ops"].get("DEQUANTIZE", 0)  # float islands
    # On this random-weight model the int8 error is spread over ~100 layers and, on held-out inputs, dominated by
    # activations overflowing their calibrated ranges (report: ~85 layers), so keeping 3 layers in float moves the
    # SNR by a tenth of a dB either way (SavedModel from onnx2tf 1.29: 13.6 -> 13.9; from onnx2tf 2.x: 13.64 ->
    # 13.56). That keeping the right layers in float recovers accuracy is checked where one layer really is the
    # problem: test_outlier_layer_is_found_first_and_float_recovers_it. Here: the float islands cost no more
    # than noise.
    assert kf["summary"]["snr_db"] > int8["summary"]["snr_db"] - 0.5, (kf["summary"], int8["summary"])


def test_dataset_and_floor_cli_errors(tmp_path):
    out = _fake_out(tmp_path, with_saved_model=True)
    cases = [
        (["--modes", "int8", "--dataset", "digits", "--calibration", "x.npz"], "--dataset"),
        (["--modes", "int8", "--random-calibration", "--max-accuracy-drop", "0.5%"], "aeq-int8"),
        (["--modes", "aeq-int8", "--random-calibration", "--max-accuracy-drop", "2"], "2%"),
        (["--modes", "bogus"], "aeq-int8"),
    ]
    for args, word in cases:
        r = run_cli("quantize", str(out), *args)
        assert r.code == 2 and word in r.stderr and "Traceback" not in r.output, (args, r.output)
        assert len([line for line in r.stderr.strip().splitlines() if line.strip()]) == 1, r.stderr
    assert not (out / "quant").exists()


# ------------------------------------------------------------------------------------------------ trained digits: the decision


def _digits_sweep(tmp_path: Path, sample: str, *extra: str) -> tuple[dict, object]:
    pytest.importorskip("sklearn")
    out = tmp_path / "out"
    r = run_cli("convert", f"sample:{sample}", "--to", "onnx,saved_model,tflite", "-o", str(out), timeout=1800)
    assert r.code == 0, r.output
    r = run_cli("quantize", str(out), "--dataset", "digits", "--max-accuracy-drop", "0.5%", "--json", str(tmp_path / "r.json"),
                *extra, timeout=1800, env={"COLUMNS": "220"})
    assert r.code == 0, r.output
    return json.loads((tmp_path / "r.json").read_text()), r


@pytest.mark.slow
def test_digits_cnn_full_sweep_meets_the_targets(tmp_path):
    data, r = _digits_sweep(tmp_path, "digits_cnn")
    print("digits_cnn sweep:", round(data["seconds"], 1), "s;", data["recommendation"]["line"])
    rows = {x["variant"]: x for x in data["rows"] if x["format"] == "tflite"}
    ort = {x["variant"]: x for x in data["rows"] if x["format"] == "onnx"}
    for x in data["rows"]:
        print(f"  {x['name']:28s} {x['size_bytes']:7d} B  p50 {x['latency_ms'].get('p50', float('nan')):.4f} ms  "
              f"SNR {x['summary'].get('snr_db', float('nan')):6.1f} dB  acc {x['task'].get('accuracy', float('nan')):.4f}  "
              f"partitions {x['delegation'].get('partitions')}")
    assert {"fp32", "fp16", "dynamic-int8", "int8", "int16x8", "aeq-dynamic-int8", "aeq-weight-int8", "aeq-weight-int4",
            "aeq-int8", "aeq-int16x8"} <= set(rows) and {"fp32", "ort-dynamic-int8", "ort-qdq-int8"} <= set(ort)
    assert data["data"]["holdout_samples"] >= 480 and data["data"]["labels"]
    fp32 = rows["fp32"]["task"]
    assert fp32["reference_accuracy"] >= 0.95 and fp32["accuracy"] >= 0.95
    for x in data["rows"]:
        assert x["status"] == "ok", (x["name"], x["reason"])
        assert x["size_bytes"] > 0 and x["latency_ms"]["p50"] > 0 and "snr_db" in x["summary"] and "accuracy" in x["task"]
        if x["format"] == "tflite":
            assert x["delegation"]["partitions"] >= 1
    ref = fp32["reference_accuracy"]
    for v in ("int8", "aeq-int8"):  # full int8 within 1.0 point
        assert rows[v]["task"]["accuracy"] >= ref - 0.01, (v, rows[v]["task"])
    search = data["search"]
    chosen = search["steps"][search["chosen"]]
    assert chosen["meets"] and chosen["accuracy"] >= ref - 0.005  # the search's variant: within 0.5 point
    rec = data["recommendation"]
    assert rec["smallest"]["accuracy"] >= ref - 0.005 and rec["fastest"]["accuracy"] >= ref - 0.005
    assert data["seconds"] <= 180 or os.cpu_count() and os.getloadavg()[0] > 2 * os.cpu_count(), data["timings"]
    assert "Recommended (" in r.stdout


@pytest.mark.slow
def test_outlier_layer_is_found_first_and_float_recovers_it(tmp_path):
    data, r = _digits_sweep(tmp_path, "digits_outlier", "--modes", "int8,aeq-int8")
    sens, search = data["sensitivity"], data["search"]
    print("outlier ranking:", [(x["rank"], x.get("module"), x["op"], round(x["only"]["snr_db"], 1)) for x in sens["layers"][:4]])
    for st in search["steps"]:
        print("  step", st["float_ops"], round(st["snr_db"], 2), "dB", round(st["accuracy"], 4), st["size_bytes"], st["latency_ms"])
    # the stem conv writes the 100x channel, the depthwise conv reads it: both rank above every other op
    assert {x.get("module") for x in sens["layers"][:2]} == {"features.0", "features.1"}
    assert sens["layers"][0]["only"]["snr_db"] < sens["layers"][2]["only"]["snr_db"] - 6
    steps = search["steps"]
    plain, chosen = steps[0], steps[search["chosen"]]
    assert 1 <= chosen["float_ops"] <= 3
    noise = lambda snr: 10 ** (-snr / 10)  # noqa: E731 - error power relative to the signal
    recovered = 1 - noise(chosen["snr_db"]) / noise(plain["snr_db"])
    print(f"plain int8 {plain['snr_db']:.1f} dB -> {chosen['float_ops']} op(s) float {chosen['snr_db']:.1f} dB: "
          f"{recovered:.1%} of the int8 error power removed")
    assert recovered >= 0.5
    ref = chosen["reference_accuracy"]
    assert plain["accuracy"] < ref - 0.02 and chosen["accuracy"] >= ref - 0.005
    rows = {x["variant"]: x for x in data["rows"]}
    sel = rows["aeq-int8-selective"]
    assert sel["status"] == "ok" and sel["options"]["float_layers"] == chosen["float_layers"]
    assert sel["task"]["accuracy"] >= ref - 0.005
    assert data["recommendation"]["smallest"]["name"] == sel["name"]


# ------------------------------------------------------------------------------------------------ int8 remedies


@pytest.mark.slow
def test_mobile_cnn_int8_remedies_join_the_pieces(tmp_path):
    """The plain int8 mobile_cnn is cut into pieces by HARD_SWISH / hard-sigmoid ops XNNPACK has no int8 kernel for;
    the remedies chosen from its delegation report run as one piece (or fewer), and the verdict names the numbers."""
    out = tmp_path / "out"
    r = run_cli("convert", "sample:mobile_cnn", "--to", "onnx,saved_model", "-o", str(out), timeout=1800)
    assert r.code == 0, r.output
    cal.write_synthetic_images(tmp_path / "images", 96, size=(96, 96), seed=0)
    opts = QuantizeOptions(modes=("int8",), layers=False, latency_runs=100,
                           calibration=cal.CalibrationOptions(source=str(tmp_path / "images"), samples=64, holdout=32,
                                                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)))
    report = Sweep(out, opts).run()
    by = {r.variant: r for r in report.rows}
    int8 = by["int8"]
    assert int8.ok and int8.delegation["partitions"] > 5 and int8.delegation["builtin_ops"].get("HARD_SWISH", 0) > 0
    assert [x["variant"] for x in report.remedies["remedies"]] == ["int8-float-ops", "int8-rewrite", "int8-io"]
    for variant in ("int8-float-ops", "int8-rewrite"):
        row = by[variant]
        assert row.ok, (variant, row.reason)
        assert row.delegation["partitions"] < int8.delegation["partitions"], (variant, row.delegation)
        assert "HARD_SWISH" not in row.delegation["builtin_ops"], row.delegation
        assert row.summary["cosine"] > 0.8 and row.latency["p50"] > 0
    assert by["int8-rewrite"].options["rewritten"] == {"HardSwish": 17, "HardSigmoid": 8}
    assert by["int8-io"].ok and by["int8-io"].io.inputs[0].dtype == "int8"
    speed = report.int8_speed
    assert speed["fp32"] == "tflite-fp32" and {t["variant"] for t in speed["tried"]} >= {"int8", "int8-float-ops", "int8-rewrite"}
    # the verdict times fp32 and every int8 file in turns in one worker; the sweep's own p50s stay beside them
    assert speed["method"] == "interleaved" and speed["ratio"] == pytest.approx(speed["best_ms"] / speed["fp32_ms"], rel=1e-3)
    for t in speed["tried"]:
        assert t["latency_ms"] > 0 and t["sweep_latency_ms"] == by[t["variant"]].latency["p50"], t
    assert min(t["ratio"] for t in speed["tried"]) == speed["ratio"]
    if not speed["met"]:  # then the report names, op by op, what keeps int8 slower
        assert speed["ops"] and {"CONV_2D", "DEPTHWISE_CONV_2D"} <= {d["op"] for d in speed["ops"]}
        assert speed["ops"][0]["extra_ms"] > 0
    data = json.loads((out / report.files["json"]).read_text())
    assert data["int8_speed"]["best"] == speed["best"] and data["remedies"]["source"] == "tflite-int8"
    html = (out / report.files["html"]).read_text()
    assert 'id="int8-speed"' in html and "int8-rewrite" in html
    m = Manifest.load(out)
    assert m.verify() == [] and {"int8-float-ops", "int8-rewrite", "int8-io"} <= {a.variant for a in m.artifacts}
