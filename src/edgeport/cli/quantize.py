"""``edgeport quantize``: make quantized variants, measure size/speed/accuracy, find the layers that break int8.

The keep-float search (``--max-accuracy-drop 0.5%`` / ``--min-snr DB``) runs over ai-edge-quantizer's aeq-int8.
Exit codes: 0 the sweep ran (a variant that crashed or failed is a row of the report, not a failure of the
command), 2 bad input (no SavedModel/ONNX model in OUT, unreadable or mis-shaped calibration data), 3 no
quantized variant could be made and measured, or the reference failed. Imports only typer at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

MODES_HELP = ("Comma list of: fp16, dynamic, int8, int16x8 (TFLiteConverter, from the SavedModel); aeq-dynamic, "
              "aeq-weight-int8, aeq-weight-int4, aeq-int8, aeq-int16x8 (ai-edge-quantizer, from the float .tflite); "
              "ort-dynamic, ort-qdq (ONNX Runtime, from the ONNX model); or all, tflite, aeq, ort. When XNNPACK cuts "
              "int8 into pieces, int8-float-ops, int8-rewrite and int8-io are tried too and measured like the rest.")


def quantize(
    output: Path = typer.Argument(..., help="An output folder of edgeport convert (with saved_model/ and/or model.onnx).",
                                  show_default=False),
    modes: str = typer.Option("all", "--modes", "-m", help=MODES_HELP),
    calibration: Optional[str] = typer.Option(None, "--calibration", "-c", help="Calibration data: a folder of images, an .npz/.npy of inputs (PyTorch layout), or module:function / file.py:function yielding feeds."),
    calibration_samples: int = typer.Option(100, "--calibration-samples", min=1, max=100_000, help="Samples used to calibrate int8 ranges."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="A labelled data set that ships with a package (digits: see edgeport samples): calibration data AND labels in one; calibration and held-out samples are disjoint."),
    holdout_samples: Optional[int] = typer.Option(None, "--holdout-samples", min=1, max=100_000, help="Held-out samples (never used to calibrate) that accuracy is measured on. Default 64; with --dataset, every sample not used to calibrate."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Separate held-out data (same forms as --calibration); default: split off the calibration data."),
    random_calibration: bool = typer.Option(False, "--random-calibration", help="Calibrate on seeded random inputs when there is no data (the report warns: results will not reflect real inputs)."),
    resize: Optional[str] = typer.Option(None, "--resize", help="Images: resize to HxW (default: the model's input size)."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Images: per-channel mean after pixel scaling, e.g. 0.485,0.456,0.406."),
    std: Optional[str] = typer.Option(None, "--std", help="Images: per-channel std, e.g. 0.229,0.224,0.225."),
    pixel_scale: float = typer.Option(1.0 / 255.0, "--pixel-scale", help="Images: multiply 0..255 pixels by this before mean/std."),
    bgr: bool = typer.Option(False, "--bgr", help="Images: feed channels in BGR order."),
    calibration_layout: Optional[str] = typer.Option(None, "--calibration-layout", help="Layout of .npz/.npy arrays when it differs from the PyTorch model's (e.g. NHWC); for images, the layout of the model's image input."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Class labels of the data (.npy/.txt one per sample, or .csv image,label): adds task accuracy."),
    io_dtype: str = typer.Option("float", "--io-dtype", help="Full-int8 model inputs/outputs: float, int8 or uint8."),
    keep_float: Optional[str] = typer.Option(None, "--keep-float", help="Also make an int8 variant with the N worst layers (or these comma-separated layers: tensor, ONNX node or PyTorch module names) left in float."),
    no_layers: bool = typer.Option(False, "--no-layers", help="Skip the per-layer int8 error analysis."),
    max_accuracy_drop: Optional[str] = typer.Option(None, "--max-accuracy-drop", help="Accuracy floor, e.g. 0.5%: search for the fewest ops kept in float (greedy from the most sensitive) so aeq-int8 stays within it; the report recommends the variants meeting it (default floor: 1 point with labels)."),
    min_snr: Optional[float] = typer.Option(None, "--min-snr", help="Output SNR floor in dB (alone or with --max-accuracy-drop) for the search and the recommendation (default without labels: 20)."),
    max_float: int = typer.Option(10, "--max-float", min=1, max=10_000, help="The search keeps at most this many ops in float."),
    rank_by: str = typer.Option("snr_db", "--rank-by", help="Per-layer ranking: snr_db (lowest first), rmse_scale, mse, mean_abs or max_abs."),
    latency_runs: int = typer.Option(200, "--latency-runs", min=1, max=100_000, help="Timed runs per variant (capped at 3 s)."),
    reference: str = typer.Option("auto", "--reference", help="Reference for accuracy: auto (PyTorch if installed, else the fp32 ONNX model), torch or onnx."),
    seed: int = typer.Option(0, "--seed", help="Seed for shuffling the data split (and random data)."),
    timeout: float = typer.Option(900.0, "--timeout", min=1.0, help="Seconds per conversion or evaluation step before it is killed."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report JSON here (it is always written to OUT/quant/report.json)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the table."),
) -> None:
    """Quantize the converted model every way, then compare size, latency and accuracy of every variant."""
    from edgeport.cli.common import console, err_console
    from edgeport.quantize.report import render_console
    from edgeport.quantize.sweep import sweep

    _check_choices(rank_by=rank_by, reference=reference, io_dtype=io_dtype, json_out=json_out, calibration=calibration,
                   random_calibration=random_calibration, dataset=dataset, labels=labels)
    copts = _calibration_options(
        calibration=calibration, calibration_samples=calibration_samples, holdout_samples=holdout_samples,
        eval_data=eval_data, resize=resize, mean=mean, std=std, pixel_scale=pixel_scale, bgr=bgr,
        calibration_layout=calibration_layout, labels=labels, random_calibration=random_calibration, seed=seed,
        dataset=dataset)
    opts = _quantize_options(copts, modes=modes, io_dtype=io_dtype, keep_float=keep_float, layers=not no_layers,
                             rank_by=rank_by, latency_runs=latency_runs, reference=reference, timeout=timeout,
                             max_accuracy_drop=max_accuracy_drop, min_snr=min_snr, max_float=max_float)
    progress = None if quiet else (lambda msg: err_console.print(msg, style="dim", markup=False, highlight=False))
    report = sweep(output, opts, progress)
    render_console(report, console)
    if json_out:
        _write_json(json_out, report)
    from edgeport.report.state import after_command

    after_command("quantize", output)  # OUT/report.html, with OUT/quant/report.json
    raise typer.Exit(report.exit_code)


def _check_choices(*, rank_by: str, reference: str, io_dtype: str, json_out: Optional[Path], calibration: Optional[str],
                   random_calibration: bool, dataset: Optional[str], labels: Optional[Path]) -> None:
    """The choices and combinations the sweep refuses, checked before any work (UsageError, exit 2)."""
    from edgeport.errors import UsageError
    from edgeport.quantize.debug import RANK_KEYS

    if rank_by not in RANK_KEYS:
        raise UsageError(f"--rank-by {rank_by!r} is not one of {', '.join(RANK_KEYS)}", "use --rank-by snr_db or rmse_scale")
    if reference not in ("auto", "torch", "onnx"):
        raise UsageError(f"--reference {reference!r} is not auto, torch or onnx", "use --reference auto")
    if io_dtype not in ("float", "int8", "uint8"):
        raise UsageError(f"--io-dtype {io_dtype!r} is not float, int8 or uint8", "use --io-dtype float")
    if json_out is not None:
        from edgeport.fsutil import check_writable

        check_writable(json_out, "--json")  # before the sweep, not after
    if calibration and random_calibration:
        raise UsageError("--calibration and --random-calibration both given", "use one of them")
    if dataset and (calibration or random_calibration or labels):
        raise UsageError("--dataset gives the data and its labels", "drop --calibration/--random-calibration/--labels, or drop --dataset")


def _calibration_options(*, calibration: Optional[str], calibration_samples: int, holdout_samples: Optional[int],
                         eval_data: Optional[str], resize: Optional[str], mean: Optional[str], std: Optional[str],
                         pixel_scale: float, bgr: bool, calibration_layout: Optional[str], labels: Optional[Path],
                         random_calibration: bool, seed: int, dataset: Optional[str]) -> Any:
    from edgeport.data.images import parse_floats, parse_resize
    from edgeport.data.layout import parse_layout
    from edgeport.quantize.calibration import MAX_SAMPLES, CalibrationOptions

    if holdout_samples is None:
        holdout_samples = MAX_SAMPLES if dataset else 64
    return CalibrationOptions(
        source=calibration, samples=calibration_samples, holdout=holdout_samples, eval_source=eval_data,
        resize=parse_resize(resize), mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"), pixel_scale=pixel_scale,
        bgr=bgr, data_layout=parse_layout(calibration_layout), labels=str(labels) if labels else None,
        allow_random=random_calibration, seed=seed, dataset=dataset)


def _quantize_options(copts: Any, *, modes: str, io_dtype: str, keep_float: Optional[str], layers: bool, rank_by: str,
                      latency_runs: int, reference: str, timeout: float, max_accuracy_drop: Optional[str],
                      min_snr: Optional[float], max_float: int) -> Any:
    from edgeport.quantize.sweep import QuantizeOptions, parse_accuracy_drop, parse_keep_float, parse_modes

    return QuantizeOptions(modes=parse_modes(modes), calibration=copts, io_dtype=io_dtype, keep_float=parse_keep_float(keep_float),
                           layers=layers, rank_by=rank_by, latency_runs=latency_runs, reference=reference, timeout=timeout,
                           max_accuracy_drop=parse_accuracy_drop(max_accuracy_drop), min_snr=min_snr, max_float=max_float)


def _write_json(path: Path, report: Any) -> None:
    from edgeport.fsutil import atomic_write_json

    try:
        atomic_write_json(path, report.to_json())
    except OSError as exc:
        from edgeport.errors import OutputError

        raise OutputError(f"cannot write --json {path}: {exc.strerror or exc}", "choose a writable path") from None
