"""Where a .tflite model runs: XNNPACK delegate partitions, ops left on builtin kernels, and their cost.

    delegation_report("model.tflite")   # {"partitions": 9, "builtin_ops": {"MEAN": 9}, "delegated_ops": {...},
                                        #  "outside_share": 0.31, "note": "..."}
    op_profile("model.tflite")          # per-op time table (isolated single-op timing, see below)

Placement comes from the interpreter itself: LiteRT applies its default XNNPACK delegate when
tensors are allocated, and appends one ``DELEGATE`` node per partition after the model's own nodes
(which stay listed). A partition's nodes are found by walking back from the ``DELEGATE`` node's
outputs to its inputs through the model's graph; every node of subgraph 0 reached by no partition
runs on a builtin kernel. Ops in other subgraphs (WHILE/IF bodies) are not visible to the Python
API and are reported under ``other_subgraph_ops`` without a placement.

Timing. ai-edge-litert 2.3.0 exposes no op profiler to Python: ``Interpreter`` has none (its
``experimental_force_delegate_node_profiling`` flag only feeds a C++ profiler nothing in Python can
attach), and the ``CompiledModel`` profiler (``LiteRtCompiledModelGetProfiler`` in libLiteRt.so)
has no binding in ``CompiledModel``. So the cost is measured directly instead: each delegate
partition and each builtin-kernel op is cut out of the model into a model of its own (same weights,
same tensor shapes, fed with the real intermediate values of one full inference), timed on the
same interpreter and thread count, and the fixed cost of one ``invoke()`` (measured on an empty
model) is subtracted. ``outside_share`` is the builtin ops' part of the sum. Isolation drops cache
effects between neighbours, so ``coverage`` (sum of the parts / the whole model's time) is reported
beside it. Only numpy and a TFLite interpreter are needed (the device profile). Callers in the main
process run this in a worker (it loads the model).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import RuntimeFailure
from edgeport.tflite_fb import opcode_names, read_model

DELEGATE_OP = "DELEGATE"
DEFAULT_BUDGET_S = 10.0  # wall-clock cap on the timing part of one report
_RUNS = 30  # timed invokes per cut-out model (fewer when it is slow)
_SLICE_SECONDS = 0.15


def _interpreter(threads: int, **kwargs: Any) -> Any:
    from edgeport.runtimes.tflite import _interpreter_class, available_backends

    names = available_backends()
    if not names:
        raise RuntimeFailure("no TFLite interpreter is installed", "pip install ai-edge-litert")
    cls = _interpreter_class(names[0])
    try:
        interp = cls(num_threads=int(threads), **kwargs)
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise RuntimeFailure(f"the TFLite interpreter cannot load the model: {' '.join(str(exc).split())[:240]}",
                             "re-convert the model") from None
    return interp


# ------------------------------------------------------------------------------------------ placement


def _graph(path: Path) -> tuple[bytes, list[dict[str, Any]], dict[str, int]]:
    """(file bytes, subgraph-0 ops as {name, inputs, outputs}, op counts of the other subgraphs)."""
    buf, schema, model = read_model(path)
    names, _ = opcode_names(schema, model)
    ops: list[dict[str, Any]] = []
    other: dict[str, int] = {}
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            name = names[op.OpcodeIndex()] if op.OpcodeIndex() < len(names) else f"OPCODE_{op.OpcodeIndex()}"
            if s:
                other[name] = other.get(name, 0) + 1
                continue
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            ops.append({"name": name, "inputs": ins, "outputs": outs})
    return buf, ops, dict(sorted(other.items()))


def placement(interp: Any, ops: list[dict[str, Any]]) -> tuple[list[list[int]], list[int]]:
    """(node indices of each delegate partition, indices of the nodes left on builtin kernels)."""
    details = interp._get_ops_details()
    delegates = [d for d in details if d["op_name"] == DELEGATE_OP and int(d["index"]) >= len(ops)]
    producer = {t: i for i, op in enumerate(ops) for t in op["outputs"]}
    partitions: list[list[int]] = []
    for d in delegates:
        stop = {int(t) for t in d["inputs"]}
        seen: set[int] = set()
        todo = [int(t) for t in d["outputs"]]
        while todo:
            node = producer.get(todo.pop())
            if node is None or node in seen:
                continue
            seen.add(node)
            todo.extend(t for t in ops[node]["inputs"] if t >= 0 and t not in stop)
        partitions.append(sorted(seen))
    inside = {n for p in partitions for n in p}
    return partitions, [i for i in range(len(ops)) if i not in inside]


def _count(ops: list[dict[str, Any]], nodes: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in nodes:
        out[ops[n]["name"]] = out.get(ops[n]["name"], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


# ------------------------------------------------------------------------------------------ cut-out models


class _Cutter:
    """Builds single-op / single-partition models out of one .tflite, and feeds them real values."""

    def __init__(self, buf: bytes, ops: list[dict[str, Any]], threads: int) -> None:
        from edgeport.tflite_fb import schema_module

        self.schema = schema_module()
        self.model = self.schema.ModelT.InitFromPackedBuf(buf, 0)
        self.ops, self.threads = ops, threads
        if any((b.offset or 0) > 1 for b in self.model.buffers or []):
            raise RuntimeFailure("the model keeps its weights outside the flatbuffer", "time it as a whole")
        sg = self.model.subgraphs[0]
        self.graph_outputs = {int(t) for t in (sg.outputs if sg.outputs is not None else [])}
        keep = {0} | {int(m.buffer) for m in self.model.metadata or []}
        for other in self.model.subgraphs[1:]:
            keep |= {int(t.buffer) for t in other.tensors or []}
        self.keep_buffers = keep
        self.empty = self.schema.BufferT()
        self.values = self._full_run(buf)

    def _full_run(self, buf: bytes) -> dict[int, np.ndarray]:
        """Every tensor of subgraph 0 after one inference on seeded random inputs."""
        import warnings

        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is, here
            warnings.simplefilter("ignore", UserWarning)
            interp = _interpreter(self.threads, model_content=buf, experimental_preserve_all_tensors=True)
        rng = np.random.default_rng(0)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], _random(rng, tuple(d["shape"]), np.dtype(d["dtype"])))
        interp.invoke()
        values: dict[int, np.ndarray] = {}
        for t in {t for op in self.ops for t in op["inputs"] + op["outputs"] if t >= 0}:
            try:
                values[t] = np.array(interp.get_tensor(t))
            except ValueError:  # a tensor without data (optional or freed)
                continue
        return values

    def _const(self, t: int) -> bool:
        tensor = self.model.subgraphs[0].tensors[t]
        b = self.model.buffers[tensor.buffer] if tensor.buffer < len(self.model.buffers) else None
        return b is not None and b.data is not None and len(b.data) > 0

    def cut(self, nodes: list[int]) -> tuple[bytes, list[int]]:
        """A model holding only ``nodes`` of subgraph 0, and its input tensor indices."""
        sg = self.model.subgraphs[0]
        chosen = set(nodes)
        produced = {t for n in nodes for t in self.ops[n]["outputs"]}
        used = [t for n in nodes for t in self.ops[n]["inputs"] + self.ops[n]["outputs"] if t >= 0]
        inputs = list(dict.fromkeys(t for n in nodes for t in self.ops[n]["inputs"]
                                    if t >= 0 and t not in produced and not self._const(t) and not sg.tensors[t].isVariable))
        consumed_outside = {t for i, op in enumerate(self.ops) if i not in chosen for t in op["inputs"]}
        outputs = [t for t in dict.fromkeys(t for n in nodes for t in self.ops[n]["outputs"])
                   if t in consumed_outside or t in self.graph_outputs] or list(self.ops[nodes[-1]]["outputs"])
        new_sg = copy.copy(sg)
        new_sg.tensors = list(sg.tensors)
        for t in set(used):
            if t in self.values and not self._const(t):
                tensor = copy.copy(sg.tensors[t])
                tensor.shape, tensor.shapeSignature = list(self.values[t].shape), None
                new_sg.tensors[t] = tensor
        new_sg.operators = [sg.operators[n] for n in nodes]
        new_sg.inputs, new_sg.outputs = inputs, outputs
        keep = self.keep_buffers | {int(sg.tensors[t].buffer) for t in used}
        new = copy.copy(self.model)
        new.subgraphs = [new_sg] + list(self.model.subgraphs[1:])
        new.signatureDefs = []
        new.buffers = [b if i in keep else self.empty for i, b in enumerate(self.model.buffers)]
        return _pack(new), inputs

    def empty_model(self) -> bytes:
        """A model with no operator (input = output): what one ``invoke()`` costs by itself."""
        s = self.schema
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = [1], s.TensorType.FLOAT32, 0, "x"
        sg = s.SubGraphT()
        sg.tensors, sg.inputs, sg.outputs, sg.operators = [t], [0], [0], []
        m = s.ModelT()
        m.version, m.subgraphs, m.buffers, m.operatorCodes = 3, [sg], [s.BufferT()], []
        return _pack(m)

    def time(self, content: bytes, inputs: list[int]) -> tuple[float, bool]:
        """(median ms of one invoke, whether LiteRT delegated anything in this cut-out)."""
        interp = _interpreter(self.threads, model_content=content)
        for t in inputs:
            if t in self.values:
                interp.set_tensor(t, self.values[t])
        delegated = any(d["op_name"] == DELEGATE_OP for d in interp._get_ops_details())
        return _median_ms(interp.invoke), delegated


def _pack(model: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if np.issubdtype(dtype, np.integer) and dtype.itemsize == 1:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def _median_ms(invoke: Any, runs: int = _RUNS, seconds: float = _SLICE_SECONDS) -> float:
    invoke()
    invoke()
    times: list[int] = []
    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    while len(times) < runs:
        t0 = time.perf_counter_ns()
        invoke()
        t1 = time.perf_counter_ns()
        times.append(t1 - t0)
        if t1 > deadline and len(times) >= 5:
            break
    return float(np.median(times)) / 1e6


# ------------------------------------------------------------------------------------------ reports


def _load(path: str | Path, threads: int) -> tuple[Path, bytes, list[dict[str, Any]], dict[str, int], Any]:
    p = Path(path)
    buf, ops, other = _graph(p)
    return p, buf, ops, other, _interpreter(threads, model_path=str(p))


def delegation_report(path: str | Path, threads: int = 1, *, timing: bool = True,
                      budget_s: float = DEFAULT_BUDGET_S) -> dict[str, Any]:
    """Partitions, builtin-kernel ops and the share of time outside the delegate (see the module doc).

    Returns ``{"partitions", "builtin_ops": {name: count}, "delegated_ops": {name: count},
    "other_subgraph_ops", "outside_share" (None when not measured), "outside_ms", "inside_ms",
    "full_ms", "coverage", "invoke_overhead_ms", "method", "note"}``. ``timing=False`` skips the
    measurement; a measurement that would exceed ``budget_s`` stops and reports None with the reason.
    """
    p, buf, ops, other, interp = _load(path, threads)
    partitions, builtin = placement(interp, ops)
    out: dict[str, Any] = {
        "partitions": len(partitions), "builtin_ops": _count(ops, builtin),
        "delegated_ops": _count(ops, [n for part in partitions for n in part]),
        "partition_sizes": [len(part) for part in partitions], "other_subgraph_ops": other,
        "threads": int(threads), "outside_share": None, "outside_ms": None, "inside_ms": None, "full_ms": None,
        "coverage": None, "invoke_overhead_ms": None, "method": None, "note": "",
    }
    notes = []
    if other:
        notes.append(f"{sum(other.values())} op(s) in control-flow subgraphs are not visible to the interpreter's "
                     "Python API; their placement is unknown and their time counts with their WHILE/IF op")
    if not timing:
        out["note"] = "; ".join(notes + ["time outside the delegate not measured (timing off)"])
        return out
    try:
        _time_segments(out, p, buf, ops, partitions, builtin, interp, threads, budget_s)
    except (RuntimeFailure, RuntimeError, ValueError) as exc:
        msg = exc.message if isinstance(exc, RuntimeFailure) else " ".join(str(exc).split())[:200]
        notes.append(f"time outside the delegate unavailable: {msg}")
    else:
        notes.append("ai-edge-litert exposes no op profiler to Python; outside_share is measured on cut-out "
                     "models (each partition and builtin op timed alone, invoke overhead subtracted)")
    out["note"] = "; ".join(notes)
    return out


def _time_segments(out: dict[str, Any], p: Path, buf: bytes, ops: list[dict[str, Any]], partitions: list[list[int]],
                   builtin: list[int], interp: Any, threads: int, budget_s: float) -> None:
    start = time.perf_counter()
    full, cutter, overhead = _whole_and_overhead(interp, buf, ops, threads)
    inside = outside = 0.0
    for kind, nodes in [("in", part) for part in partitions] + [("out", [n]) for n in builtin]:
        if time.perf_counter() - start > budget_s:
            raise RuntimeFailure(f"timing {p.name}'s {len(partitions) + len(builtin)} segments takes more than "
                                 f"{budget_s:g} s", "raise the budget")
        ms = max(0.0, cutter.time(*cutter.cut(nodes))[0] - overhead)
        if kind == "in":
            inside += ms
        else:
            outside += ms
    total = inside + outside
    out.update({"outside_share": round(outside / total, 4) if total > 0 else 0.0, "outside_ms": round(outside, 6),
                "inside_ms": round(inside, 6), "full_ms": round(full, 5),
                "coverage": _coverage(total, full, overhead), "invoke_overhead_ms": round(overhead, 5),
                "method": "cut-out models timed alone"})


def _whole_and_overhead(interp: Any, buf: bytes, ops: list[dict[str, Any]], threads: int) -> tuple[float, "_Cutter", float]:
    """The whole model's median ms on seeded random inputs, the cutter for its parts, one empty invoke's ms."""
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], _random(rng, tuple(d["shape"]), np.dtype(d["dtype"])))
    full = _median_ms(interp.invoke, runs=50, seconds=1.0)
    cutter = _Cutter(buf, ops, threads)
    overhead = cutter.time(cutter.empty_model(), [])[0] if ops else 0.0
    return full, cutter, overhead


def _coverage(parts_ms: float, full_ms: float, overhead_ms: float) -> float | None:
    """Sum of the parts timed alone / the whole model's time, both without the fixed invoke cost."""
    whole = full_ms - overhead_ms
    return round(parts_ms / whole, 3) if whole > 0 else None


def op_profile(path: str | Path, threads: int = 1, top: int | None = None,
               budget_s: float = 60.0) -> dict[str, Any]:
    """Per-op time table of a .tflite: every op of subgraph 0 timed alone (see the module doc).

    Returns ``{"method", "ops": [{"op", "placement", "count", "ms", "share"}] (slowest first, per op
    type and placement), "total_ms", "full_ms", "coverage", "invoke_overhead_ms", "note"}``. ``ms``
    is per inference; ``share`` is of the sum over all ops. ``placement`` is where the whole model runs
    the op (``delegate`` or ``builtin``).
    """
    p, buf, ops, other, interp = _load(path, threads)
    _, builtin = placement(interp, ops)
    full, cutter, overhead = _whole_and_overhead(interp, buf, ops, threads)
    start = time.perf_counter()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    moved = 0
    for n, op in enumerate(ops):
        if time.perf_counter() - start > budget_s:
            raise RuntimeFailure(f"profiling {p.name}'s {len(ops)} ops takes more than {budget_s:g} s",
                                 "profile a smaller model or run without --profile")
        ms, delegated = cutter.time(*cutter.cut([n]))
        where = "builtin" if n in builtin else "delegate"
        moved += int(delegated != (where == "delegate"))
        row = rows.setdefault((op["name"], where), {"op": op["name"], "placement": where, "count": 0, "ms": 0.0})
        row["count"] += 1
        row["ms"] += max(0.0, ms - overhead)
    total = sum(r["ms"] for r in rows.values())
    table = sorted(rows.values(), key=lambda r: -r["ms"])
    for r in table:
        r["share"] = round(r["ms"] / total, 4) if total > 0 else 0.0
        r["ms"] = round(r["ms"], 5)
    notes = ["each op timed alone in a cut-out model on its real input values, invoke overhead subtracted "
             "(ai-edge-litert exposes no op profiler to Python)"]
    if moved:
        notes.append(f"{moved} op(s) are placed differently alone than in the whole model")
    if full > overhead and total > 1.15 * (full - overhead):
        notes.append("the ops alone take longer than the whole model: the delegate fuses some of them (e.g. PAD "
                     "into the next convolution) or keeps data in cache between them")
    if other:
        notes.append(f"{sum(other.values())} op(s) inside control-flow subgraphs are timed as part of their WHILE/IF op")
    return {"method": "tflite cut-out op timing", "ops": table[:top] if top else table, "op_types": len(table),
            "total_ms": round(total, 5), "full_ms": round(full, 5), "coverage": _coverage(total, full, overhead),
            "invoke_overhead_ms": round(overhead, 5), "note": "; ".join(notes)}


def delegation_job(*, path: str, threads: int = 1) -> dict[str, Any]:
    """Worker entry (``edgeport.runtimes.tflite_delegation:delegation_job``) for :func:`delegation_or_reason`."""
    return delegation_or_reason(path, threads)


def summary_line(report: dict[str, Any]) -> str:
    """``9 XNNPACK partitions; builtin kernels: MEAN x9, MUL x16; 31% of the time outside the delegate``."""
    parts = [f"{report.get('partitions', 0)} XNNPACK partition{'s' if report.get('partitions') != 1 else ''}"]
    builtin = report.get("builtin_ops") or {}
    parts.append("builtin kernels: " + (", ".join(f"{k} x{v}" for k, v in builtin.items()) if builtin else "none"))
    share = report.get("outside_share")
    if share is not None:
        parts.append(f"{share * 100:.0f}% of the time outside the delegate")
    return "; ".join(parts)


def delegation_or_reason(path: str | Path, threads: int = 1) -> dict[str, Any]:
    """:func:`delegation_report`, or ``{"error": one line}`` when the model cannot be loaded or read."""
    from edgeport.errors import EdgeportError

    try:
        return delegation_report(path, threads)
    except EdgeportError as exc:
        return {"error": exc.one_line()}


def delegation_in_worker(path: str | Path, threads: int = 1, timeout: float = 300.0) -> dict[str, Any]:
    """:func:`delegation_or_reason` run in a worker process (for callers in the main process)."""
    from edgeport.worker import run_in_worker

    res = run_in_worker("edgeport.runtimes.tflite_delegation:delegation_job", {"path": str(path), "threads": int(threads)},
                        timeout=timeout)
    if not res.ok:
        err = res.user_error()
        return {"error": err.one_line() if err is not None else f"the delegation report failed: {res.reason()}"}
    return dict(res.value)
