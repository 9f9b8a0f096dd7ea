"""The pipeline's first steps, run in-process for converter tests: a sample's reference.npz and model.onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def prepare_sample(tmp: Path, name: str) -> dict[str, Any]:
    """reference.npz and a dynamo opset-18 model.onnx made by the pipeline's own steps; a StepJob-like dict."""
    from edgeport.convert import onnx_export, reference
    from edgeport.fsutil import install_path
    from edgeport.models import resolve_ref

    ref = resolve_ref(f"sample:{name}").to_json()
    (tmp / "s0").mkdir()
    rv = reference.run(staging=str(tmp / "s0"), out_dir=str(tmp), model=ref, io={}, dims={}, reference="",
                       options={"samples": 3})
    install_path(tmp / "s0" / "reference.npz", tmp / "reference.npz")
    (tmp / "s1").mkdir()
    ov = onnx_export.run(staging=str(tmp / "s1"), out_dir=str(tmp), model=ref, io=rv["io"], dims=rv["dims"],
                         reference=str(tmp / "reference.npz"), options={"opset": 18})
    install_path(tmp / "s1" / "model.onnx", tmp / "model.onnx")
    return {"out_dir": str(tmp), "model": ref, "io": rv["io"], "dims": rv["dims"],
            "reference": str(tmp / "reference.npz"), "parent_path": str(tmp / "model.onnx"),
            "parent_io": ov["artifacts"][0]["io"]}
