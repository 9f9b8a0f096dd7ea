"""Worker step: run the source model once to fix its IO spec and write reference.npz.

The reference holds S samples: sample 0 is the factory's own example input when it gave one,
the rest are seeded random inputs from the input specs. Outputs come from PyTorch eager (or ONNX
Runtime when the source is an .onnx file). Declared dynamic dimensions are probed: the model runs a
second time with every dynamic size changed, which both proves it accepts other sizes and tells which
output dimensions follow which input dimension. Output names follow :mod:`edgeport.forward_io`
(dict keys and field names kept, nested paths joined with ``.``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeport.convert.base import tool_versions
from edgeport.data.feeds import int_ranges_from
from edgeport.errors import ModelError, UsageError
from edgeport.forward_io import call_forward, named_outputs
from edgeport.models import ModelRef, load_model, make_feed, resolve_input_specs
from edgeport.refdata import save_reference
from edgeport.spec import IOSpec, TensorSpec, default_layout


def _run_torch(module, feed: dict[str, np.ndarray], declared: list[str] | None) -> list[tuple[str, np.ndarray]]:
    """Run forward on ``feed`` (inputs bound by :func:`edgeport.forward_io.call_forward`), outputs named."""
    import torch

    names = list(feed)
    arrays = [feed[n] for n in names]
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    try:
        with torch.no_grad():
            out = call_forward(module, names, tensors)
    except Exception as exc:  # noqa: BLE001 - the user's forward failed on these inputs
        shapes = ", ".join(f"{tuple(a.shape)}:{a.dtype}" for a in arrays)
        msg = " ".join(str(exc).split())[:200]
        raise ModelError(f"the model's forward failed on inputs [{shapes}]: {type(exc).__name__}: {msg}",
                         "check the --input shapes and dtypes against what forward expects") from None
    return [(n, v.detach().cpu().float().numpy() if v.dtype == torch.bfloat16 else v.detach().cpu().numpy())
            for n, v in named_outputs(out, declared)]


def _check_finite(outputs: list[tuple[str, np.ndarray]], k: int) -> None:
    for n, v in outputs:
        if v.dtype.kind in "fc" and not np.isfinite(v).all():
            bad = "NaN" if np.isnan(v).any() else "Inf"
            raise ModelError(f"the model's output {n!r} contains {bad} on sample {k}",
                             "fix the model (or its weights) so it produces finite outputs; parity cannot be checked on NaN")


def run(*, staging: str, out_dir: str, model: dict, io: dict, dims: dict, reference: str,
        parent_path: str | None = None, parent_io: dict | None = None, options: dict | None = None) -> dict:
    options = options or {}
    samples = int(options.get("samples", 3))
    ref = ModelRef.from_json(model)
    if ref.kind == "onnx":
        return _run_onnx(ref, staging, samples, options)
    loaded = load_model(model)
    specs, dims, example = resolve_input_specs(loaded, ref)
    declared = loaded.output_names

    feeds = []
    int_ranges = {}
    if example is not None:
        feeds.append({s.name: np.asarray(a) for s, a in zip(specs, example)})
        int_ranges = int_ranges_from(feeds)
    while len(feeds) < samples:
        feeds.append(make_feed(specs, dims, seed=ref.seed + 1000 + len(feeds), int_ranges=int_ranges))
    feeds = feeds[:max(samples, 1)]

    outputs = []
    for k, feed in enumerate(feeds):
        out = _run_torch(loaded.module, {s.name: feed[s.name] for s in specs}, declared)
        _check_finite(out, k)
        outputs.append(out)
    names = [n for n, _ in outputs[0]]
    if len(set(names)) != len(names):
        raise ModelError(f"the model's outputs have duplicate names {names}", "give each output a distinct name")

    out_shapes: list[list] = [list(v.shape) for _, v in outputs[0]]
    dynamic = sorted({d for s in specs for d in s.shape if isinstance(d, str)})
    if dynamic:
        out_shapes = _probe_dynamic(loaded.module, specs, dims, declared, out_shapes, ref.seed, int_ranges)

    in_specs = [s.with_(ref_name=s.name) for s in specs]
    out_specs = []
    for (n, v), shape in zip(outputs[0], out_shapes):
        layout = default_layout(v.ndim) if v.ndim == 4 and v.dtype.kind == "f" else None
        out_specs.append(TensorSpec(name=n, shape=tuple(shape), dtype=str(v.dtype), layout=layout, ref_name=n))
    save_reference(Path(staging) / "reference.npz", feeds, [dict(o) for o in outputs])
    result = {
        "io": IOSpec(inputs=in_specs, outputs=out_specs).to_json(),
        "dims": dims,
        "samples": len(feeds),
        "runtime": "torch_eager",
        "tools": tool_versions("torch", "numpy"),
    }
    if dynamic:
        result.update(_other_sizes(loaded.module, specs, {d: dims[d] for d in dynamic}, declared, staging, ref.seed,
                                   int_ranges))
    return result


def _other_sizes(module, specs, dims, declared, staging, seed, int_ranges) -> dict:
    """Samples at other sizes of the dynamic dims (reference-sizes.npz; see edgeport.convert.sizes)."""
    from edgeport.convert import sizes

    def run_one(feed):
        out = _run_torch(module, {s.name: feed[s.name] for s in specs}, declared)
        return {n: v for n, v in out}

    ins, outs, used, notes = sizes.record(run_one, lambda d, k: make_feed(specs, d, seed=k, int_ranges=int_ranges),
                                          dims, seed)
    if ins:
        save_reference(Path(staging) / sizes.SIZES_NAME, ins, outs)
    return {"sizes": used, "sizes_notes": notes}


def _probe_dynamic(module, specs, dims, declared, shapes, seed, int_ranges):
    """Run with every dynamic size changed; output dims that follow a size get its name."""
    alt = {d: v + 1 for d, v in dims.items()}
    feed = make_feed(specs, alt, seed=seed + 99, int_ranges=int_ranges)
    try:
        out2 = _run_torch(module, {s.name: feed[s.name] for s in specs}, declared)
    except ModelError as exc:
        raise ModelError(f"the model does not accept other sizes for its dynamic dimensions {sorted(dims)}: {exc.message}",
                         "use a fixed size (a number instead of a letter) in --input") from None
    named = []
    for shape, (_, v2) in zip(shapes, out2):
        if len(shape) != v2.ndim:
            raise ModelError("the model's output rank changes with the input size", "make output ranks independent of input sizes")
        dims_out = []
        for a, b in zip(shape, v2.shape):
            if a == b:
                dims_out.append(int(a))
                continue
            match = next((d for d in dims if dims[d] == a and alt[d] == b), None)
            if match is None:
                # a derived size (e.g. seq*2): keep it dynamic under a derived name
                match = next((f"{d}_derived" for d in dims if dims[d] and a % dims[d] == 0 and b % alt[d] == 0 and a // dims[d] == b // alt[d]), "dyn")
            dims_out.append(match)
        named.append(dims_out)
    return named


def ort_message(exc: BaseException, limit: int = 240) -> str:
    """ONNX Runtime's error without its boilerplate (error codes, file paths, C++ source locations)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : ", "", text)
    text = re.sub(r"Load model from \S+ failed:", "", text)
    text = re.sub(r"/onnxruntime_src/\S+:\d+ ", "", text)
    text = re.sub(r"\S+\(\S*\) \[with [^\]]*\]", "", text)
    text = re.sub(r"(onnxruntime::)?\S+::\S+\([^)]*\)( const)? ", "", text)
    text = re.sub(r"^(void|int|bool) ", "", text.strip())
    return text[:limit] or type(exc).__name__


def _run_onnx(ref: ModelRef, staging: str, samples: int, options: dict) -> dict:
    """Reference for an .onnx source: ONNX Runtime on the file itself (a copy is never needed: read-only)."""
    import onnx
    import onnxruntime as ort

    from edgeport.onnx_data import external_files

    try:
        proto = onnx.load(ref.path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{ref.path} is not a readable ONNX model: {type(exc).__name__}: {str(exc)[:120]}",
                         "re-export it with torch.onnx.export") from None
    external_files(ref.path, proto)  # data files must sit inside the model's folder; ONNX Runtime reads them there
    init_names = {i.name for i in proto.graph.initializer}
    user = {s["name"]: TensorSpec.from_json(s) for s in (ref.inputs or [])}
    specs: list[TensorSpec] = []
    from onnx import helper

    for vi in proto.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        dtype = str(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or f"d{j}")
                      for j, d in enumerate(tt.shape.dim))
        shape = tuple(s if isinstance(s, int) else "".join(c for c in s if c.isalnum() or c == "_").replace("x", "_") or "dyn" for s in shape)
        if any(d.HasField("dim_value") and d.dim_value == 0 for d in tt.shape.dim) and vi.name not in user:
            raise UsageError(f"ONNX input {vi.name!r} has a zero-size dimension", f"give a real size with --input {vi.name}:SHAPE")
        if vi.name in user:
            shape, dtype = user[vi.name].shape, user[vi.name].dtype
        specs.append(TensorSpec(name=vi.name, shape=shape, dtype=dtype, layout=default_layout(len(shape)) if dtype.startswith("float") else None, ref_name=vi.name))
    if ref.inputs and not user.keys() & {s.name for s in specs}:
        given = [TensorSpec.from_json(s) for s in ref.inputs]
        if len(given) != len(specs):
            raise UsageError(f"{len(given)} --input given but the model has {len(specs)} inputs", f"inputs: {[s.name for s in specs]}")
        specs = [s.with_(shape=g.shape, dtype=g.dtype) for s, g in zip(specs, given)]
    dims = {d: 2 for s in specs for d in s.shape if isinstance(d, str)}
    try:
        sess = ort.InferenceSession(ref.path, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"ONNX Runtime cannot load {Path(ref.path).name}: {ort_message(exc)}",
                         "check the model with onnx.checker, or re-export it") from None
    feeds, outputs = [], []
    for k in range(samples):
        feed = make_feed(specs, dims, seed=ref.seed + 1000 + k)
        try:
            res = sess.run(None, feed)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"ONNX Runtime failed to run {Path(ref.path).name}: {ort_message(exc)}",
                             "check --input shapes and dtypes") from None
        out = [(o.name, np.asarray(v)) for o, v in zip(sess.get_outputs(), res)]
        _check_finite(out, k)
        feeds.append(feed)
        outputs.append(out)
    out_specs = [TensorSpec(name=n, shape=tuple(v.shape), dtype=str(v.dtype), ref_name=n) for n, v in outputs[0]]
    save_reference(Path(staging) / "reference.npz", feeds, [dict(o) for o in outputs])
    return {"io": IOSpec(inputs=specs, outputs=out_specs).to_json(), "dims": dims, "samples": len(feeds),
            "runtime": "onnxruntime", "tools": tool_versions("onnxruntime", "onnx", "numpy")}


