"""ONNX rewrites applied before onnx2tf 2.x, so that LiteRT's XNNPACK delegate runs the model fast.

Each computes what the original graph computes (the convolution rewrites drop only products with a zero
of the padding) and leaves the user's file alone: they run on onnx2tf's private copy.

- **Taps that only ever read padding are dropped.** A dilated convolution whose dilation is close to or
  larger than its input (DeepLabV3's ASPP: rates 12/24/36 on a 14x14 map at a 224x224 input) has kernel
  rows and columns that read padding at every output position. ONNX Runtime's convolution skips them;
  XNNPACK multiplies the zeros. They are cut off the kernel and the padding shrinks by as much (rate 24
  and 36 become 1x1 convolutions). Needs static spatial input sizes.
- **A sparse dilated convolution is split by output region.** When along an axis at most
  ``SPLIT_FRACTION`` of the (tap, output) products read real input (rate 12 on 14 rows: 43 %), the
  convolution becomes one convolution per kernel row (then column), each over the input rows it reads
  for the outputs it reaches, zero-padded back to the full output and summed; the tap that reaches every
  output carries the bias.
- **Large depthwise kernels are split into row bands.** XNNPACK's depthwise convolution is fast up to
  ``MAX_DEPTHWISE_TAPS`` kernel taps and 15-25x slower above (this machine, ai-edge-litert 2.3, a
  40x40x48 input: 5x5 0.08 ms, 4x7 1.1 ms, 7x7 2.0 ms, 9x9 3.2 ms; ``benchmarks/xnnpack_probe.py``). A
  depthwise convolution with more taps (ConvNeXt's 7x7) becomes the sum of depthwise convolutions over
  bands of kernel rows (7x7: 3+3+1 rows of 7), each reading the input rows its band needs (a Slice where
  its padding would be negative), the bias added once.
- **Exact GELU becomes one ``Gelu`` node.** Exporters write ``x * 0.5 * (1 + erf(x / sqrt(2)))``;
  onnx2tf 2.x turns its ``Erf`` into a polynomial of about 15 element-wise ops (ABS, SIGN on builtin
  kernels, EXP, MUL, ADD, DIV over the whole tensor: 7 ms of a 20 ms ConvNeXt). ONNX's ``Gelu``
  (opset 20; the model's opset is raised to 20 when lower) becomes TFLite's ``GELU``, one XNNPACK op.

:func:`prepare_for_xnnpack` applies them all and returns notes naming what it rewrote. onnx2tf 2.6 has
mis-converted a graph they made (an activation fused into a band sum's ADD lost the tensor a split read);
the onnx2tf 2.x backend then converts the graph without them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edgeport.convert.onnx_rewrite import (
    _attr,
    _Builder,
    _constants,
    _drop_unused_initializers,
    _Folder,
    _inp,
    _live_nodes,
    _opset,
    _static_dims,
)

MAX_DEPTHWISE_TAPS = 25  # XNNPACK's fast single-pass depthwise kernels go up to 5x5 (measured, see module doc)
INT64_MAX = 2**63 - 1
MIN_OPSET = 11  # Slice takes its sizes as inputs from opset 10 on; Pad from 11
GELU_OPSET = 20  # ONNX Gelu
SPLIT_FRACTION = 0.6  # split a dilated conv along an axis when at most this share of its products there is real


@dataclass(frozen=True)
class _Conv:
    """A 2-D convolution with a constant kernel and explicit padding."""

    node: Any
    w: np.ndarray  # [M, C / group, kh, kw]
    group: int
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    spatial: tuple[int | None, int | None]  # input H, W (None when not static)
    x: str = ""  # the input tensor (the node's, or a slice of it)
    bias: str = ""  # the bias tensor ("" for none)

    @property
    def depthwise(self) -> bool:
        return self.group > 1 and self.w.shape[1] == 1


def _read_conv(node: Any, folder: _Folder, dims: dict[str, list[int | None]]) -> _Conv | None:
    """The node's parameters when it is a 2-D Conv these rewrites can handle, else None."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return None
    w = folder.value(_inp(node, 1))
    if w is None or w.ndim != 4 or w.dtype != np.float32 or str(_attr(node, "auto_pad", "NOTSET")) != "NOTSET":
        return None
    pads = [int(p) for p in _attr(node, "pads", [0, 0, 0, 0])]
    strides = [int(s) for s in _attr(node, "strides", [1, 1])]
    dilations = [int(d) for d in _attr(node, "dilations", [1, 1])]
    kernel = [int(k) for k in _attr(node, "kernel_shape", list(w.shape[2:]))]
    if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2 or kernel != list(w.shape[2:]) or min(pads) < 0:
        return None
    shape = dims.get(node.input[0])
    spatial = (shape[2], shape[3]) if shape is not None and len(shape) == 4 else (None, None)
    return _Conv(node, w, int(_attr(node, "group", 1)), (strides[0], strides[1]), (dilations[0], dilations[1]),
                 (pads[0], pads[1], pads[2], pads[3]), spatial, node.input[0], _inp(node, 2))


def live_taps(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int) -> tuple[int, int]:
    """First and last kernel tap (along one axis) that reads a real input value at some output position.

    Tap ``j`` at output ``y`` reads input ``y * stride - pad_begin + j * dilation``; a tap is live when that
    index lies in ``[0, size)`` for at least one ``y``. Returns ``(0, kernel - 1)`` when all are live and
    ``(-1, -1)`` when none is (an output of size 0)."""
    out = (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1
    live = [j for j in range(kernel)
            if any(0 <= y * stride - pad_begin + j * dilation < size for y in range(max(0, out)))]
    return (live[0], live[-1]) if live else (-1, -1)


def _trim(conv: _Conv) -> tuple[_Conv, str] | None:
    """``conv`` without the kernel rows/columns that only read padding, or None when there are none."""
    if None in conv.spatial:
        return None
    w, pads = conv.w, list(conv.pads)
    for axis in (0, 1):
        k = w.shape[2 + axis]
        first, last = live_taps(int(conv.spatial[axis]), k, conv.strides[axis], conv.dilations[axis],
                                pads[axis], pads[2 + axis])
        if first < 0 or (first, last) == (0, k - 1):
            continue
        begin, end = pads[axis] - first * conv.dilations[axis], pads[2 + axis] - (k - 1 - last) * conv.dilations[axis]
        if begin < 0 or end < 0:  # the dead taps are not all in the padding's reach: leave this axis alone
            continue
        pads[axis], pads[2 + axis] = begin, end
        w = w[:, :, first:last + 1] if axis == 0 else w[:, :, :, first:last + 1]
    if w.shape == conv.w.shape:
        return None
    trimmed = replace(conv, w=np.ascontiguousarray(w), pads=(pads[0], pads[1], pads[2], pads[3]))
    how = (f"kernel {conv.w.shape[2]}x{conv.w.shape[3]} -> {w.shape[2]}x{w.shape[3]} (dilation "
           f"{'x'.join(map(str, conv.dilations))} on a {'x'.join(map(str, conv.spatial))} input: the rest reads "
           "only padding)")
    return trimmed, how


def row_bands(kh: int, kw: int, max_taps: int = MAX_DEPTHWISE_TAPS) -> list[tuple[int, int]]:
    """Kernel row ranges ``[r0, r1)`` of at most ``max_taps`` taps each (one band, the whole kernel, when it
    fits or when a single row already has more taps than that)."""
    rows = max_taps // kw
    if kh * kw <= max_taps or not rows:
        return [(0, kh)]
    return [(r0, min(kh, r0 + rows)) for r0 in range(0, kh, rows)]


def _tap_ranges(conv: _Conv, axis: int) -> tuple[int, list[tuple[int, int]]]:
    """The output size along ``axis`` and, per kernel tap, the output range ``[y0, y1)`` where it reads real
    input (``(0, 0)``: nowhere). The range is contiguous: the read index grows with the output index."""
    n, k = int(conv.spatial[axis]), conv.w.shape[2 + axis]
    s, d, begin, end = conv.strides[axis], conv.dilations[axis], conv.pads[axis], conv.pads[2 + axis]
    out = (n + begin + end - d * (k - 1) - 1) // s + 1
    ranges = []
    for j in range(k):
        ys = [y for y in range(out) if 0 <= y * s - begin + j * d < n]
        ranges.append((ys[0], ys[-1] + 1) if ys else (0, 0))
    return out, ranges


def _split_axis(conv: _Conv) -> int | None:
    """The axis along which a dilated convolution reads real input in at most SPLIT_FRACTION of its
    (tap, output position) pairs, with one tap reaching every output position (it carries the bias)."""
    if None in conv.spatial:
        return None
    for axis in (0, 1):
        if conv.dilations[axis] == 1 or conv.w.shape[2 + axis] == 1:
            continue
        out, ranges = _tap_ranges(conv, axis)
        if (0, out) in ranges and sum(y1 - y0 for y0, y1 in ranges) <= SPLIT_FRACTION * out * len(ranges):
            return axis
    return None


def _emit_split(conv: _Conv, axis: int, b: _Builder, output: str) -> None:
    """``conv`` as one convolution per kernel tap along ``axis``, each over the input it reads for the outputs
    it reaches, zero-padded back to the full output and summed."""
    out, ranges = _tap_ranges(conv, axis)
    s, d, begin = conv.strides[axis], conv.dilations[axis], conv.pads[axis]
    full = ranges.index((0, out))
    parts: list[str] = []
    for j, (y0, y1) in enumerate(ranges):
        if y1 <= y0:
            continue
        start = y0 * s - begin + j * d
        x = b.op1("Slice", [conv.x, b.ints(start), b.ints(start + (y1 - y0 - 1) * s + 1), b.ints(2 + axis)],
                  f"a{axis}t{j}_in")
        w = conv.w[:, :, j:j + 1] if axis == 0 else conv.w[:, :, :, j:j + 1]
        pads = list(conv.pads)
        pads[axis], pads[2 + axis] = 0, 0
        spatial = list(conv.spatial)
        spatial[axis] = (y1 - y0 - 1) * s + 1
        piece = replace(conv, w=np.ascontiguousarray(w), pads=(pads[0], pads[1], pads[2], pads[3]),
                        spatial=(spatial[0], spatial[1]), x=x, bias=conv.bias if j == full else "")
        y = b.name(f"a{axis}t{j}_out")
        _emit(piece, b, y)
        if (y0, y1) != (0, out):
            widths = [0] * 8
            widths[2 + axis], widths[6 + axis] = y0, out - y1
            y = b.op1("Pad", [y, b.ints(*widths)], f"a{axis}t{j}_pad")
        parts.append(y)
    _sum(parts, b, output, f"a{axis}_sum")


def _sum(parts: list[str], b: _Builder, output: str, tag: str) -> None:
    if len(parts) == 1:
        b.op1("Identity", parts, tag, output=output)
        return
    acc = parts[0]
    for k, p in enumerate(parts[1:], 1):
        acc = b.op1("Add", [acc, p], f"{tag}{k}", output=output if k == len(parts) - 1 else None)


def _emit(conv: _Conv, b: _Builder, output: str) -> None:
    """The convolution as one Conv node, split by output region (:func:`_split_axis`), or as the sum of one
    Conv per row band for a large depthwise kernel."""
    axis = _split_axis(conv)
    if axis is not None:
        _emit_split(conv, axis, b, output)
        return
    w = conv.w
    kh, kw = w.shape[2:]
    bands = row_bands(kh, kw) if conv.depthwise else [(0, kh)]
    top, left, bottom, right = conv.pads
    dil = conv.dilations[0]
    parts: list[str] = []
    for k, (r0, r1) in enumerate(bands):
        x, pt, pb = conv.x, top - r0 * dil, bottom - (kh - r1) * dil
        if pt < 0 or pb < 0:  # rows this band never reads: slice them off instead of a negative padding
            x = b.op1("Slice", [x, b.ints(max(0, -pt)), b.ints(pb if pb < 0 else INT64_MAX), b.ints(2)], f"rows{k}")
        wk = w if len(bands) == 1 else w[:, :, r0:r1]
        ins = [x, b.const(f"w{k}", np.ascontiguousarray(wk))] + ([conv.bias] if conv.bias and k == 0 else [])
        parts.append(b.op1("Conv", ins, f"conv{k}", output=output if len(bands) == 1 else None, group=conv.group,
                           strides=list(conv.strides), dilations=list(conv.dilations), kernel_shape=[r1 - r0, kw],
                           pads=[max(0, pt), left, max(0, pb), right]))
    if len(parts) > 1:
        _sum(parts, b, output, "sum")


def prepare_for_xnnpack(model: Any) -> tuple[Any, list[str]]:
    """The model with its convolutions and exact GELUs rewritten for XNNPACK (see the module doc), and notes
    saying what was rewritten.

    ``model`` (an ``onnx.ModelProto``) is not modified; a rewritten copy is returned (the same object when
    nothing applies)."""
    import onnx

    if _opset(model) < MIN_OPSET or not any(n.op_type in ("Conv", "Erf") for n in model.graph.node):
        return model, []
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    consts = _constants(graph)
    taken = {n.name for n in graph.node} | {o for n in graph.node for o in n.output} | set(consts) | \
        {i.name for i in graph.input}
    conv_notes = _rewrite_convs(out, consts, taken)
    gelus = _fuse_gelus(graph, consts, taken)
    if not conv_notes and not gelus:
        return model, []
    notes = list(conv_notes)
    if gelus:
        notes.append(f"{gelus} exact GELU{'s' if gelus > 1 else ''} (x * 0.5 * (1 + erf(x / sqrt(2)))) fused into "
                     "ONNX Gelu, one TFLite GELU op instead of onnx2tf's erf polynomial")
        if _opset(out) < GELU_OPSET:
            for o in out.opset_import:
                if o.domain in ("", "ai.onnx"):
                    o.version = GELU_OPSET
            notes[-1] += f" (opset raised from {_opset(model)} to {GELU_OPSET}, where Gelu exists)"
    _drop_unused_initializers(graph)
    return out, notes


def _rewrite_convs(model: Any, consts: dict[str, np.ndarray], taken: set[str]) -> list[str]:
    """Rewrite ``model``'s convolutions in place (see :func:`_plan`); returns a note per rewritten one."""
    graph = model.graph
    if not any(n.op_type == "Conv" for n in graph.node):
        return []
    dims = _static_dims(model)
    folder = _Folder(graph, consts, dims)
    new_nodes: list[Any] = []
    notes: list[str] = []
    for node in graph.node:
        conv = _read_conv(node, folder, dims)
        change = _plan(conv) if conv is not None else None
        if change is None:
            new_nodes.append(node)
            continue
        conv, what = change
        b = _Builder(node.name or f"conv_{len(new_nodes)}", taken)
        _emit(conv, b, node.output[0])
        new_nodes.extend(b.nodes)
        graph.initializer.extend(b.inits)
        notes.append(f"Conv {node.name or node.output[0]!r}: {what}")
    if notes:
        del graph.node[:]
        graph.node.extend(_live_nodes(graph, new_nodes))
    return notes


def _scalar(consts: dict[str, np.ndarray], name: str) -> float | None:
    v = consts.get(name)
    return float(v.reshape(-1)[0]) if v is not None and v.size == 1 and v.dtype.kind == "f" else None


def _other(node: Any, name: str) -> str | None:
    """The input of a two-input node that is not ``name`` (None when both or neither are)."""
    ins = list(node.input)
    if len(ins) != 2 or ins.count(name) != 1:
        return None
    return ins[1] if ins[0] == name else ins[0]


def _match_gelu(erf: Any, producer: dict[str, Any], consumers: dict[str, list[Any]], consts: dict[str, np.ndarray],
                outputs: set[str]) -> tuple[str, str, list[Any]] | None:
    """(x, the GELU's output, the nodes it replaces) when ``erf`` is the Erf of an exact GELU, else None.

    Matches ``(1 + erf(x / sqrt2))`` multiplied by 0.5 and by x in either order (or by ``x * 0.5``), ``x / sqrt2``
    written as a Div or as a Mul by 1/sqrt2, and either operand order of every Add/Mul."""
    scale = producer.get(erf.input[0])
    if scale is None or scale.op_type not in ("Div", "Mul") or len(scale.input) != 2:
        return None
    x, c = scale.input
    if scale.op_type == "Mul" and _scalar(consts, x) is not None:
        x, c = c, x
    k = _scalar(consts, c)
    want = np.sqrt(2.0) if scale.op_type == "Div" else 1 / np.sqrt(2.0)
    if k is None or abs(k - want) > 1e-6 * want:
        return None
    chain, cur, seen = [scale, erf], erf.output[0], {"add1": False, "half": False, "x": False}
    while True:
        nxt = consumers.get(cur, [])
        if len(nxt) != 1 or cur in outputs or nxt[0].op_type not in ("Add", "Mul"):
            return None
        node = nxt[0]
        other = _other(node, cur)
        if other is None:
            return None
        chain.append(node)
        value = _scalar(consts, other)
        if node.op_type == "Add" and value is not None and abs(value - 1) < 1e-6 and not seen["add1"]:
            seen["add1"] = True
        elif not seen["add1"] or node.op_type != "Mul":  # 0.5 and x multiply (1 + erf), never erf alone
            return None
        elif value is not None and abs(value - 0.5) < 1e-7 and not seen["half"]:
            seen["half"] = True
        elif not seen["x"] and (other == x or _is_half_of(other, x, producer, consumers, consts, seen, chain)):
            seen["x"] = True
        else:
            return None
        if all(seen.values()):
            return x, node.output[0], chain
        cur = node.output[0]


def _is_half_of(name: str, x: str, producer: dict[str, Any], consumers: dict[str, list[Any]],
                consts: dict[str, np.ndarray], seen: dict[str, bool], chain: list[Any]) -> bool:
    """Whether ``name`` is ``x * 0.5`` read only by the GELU (then it joins ``chain``)."""
    node = producer.get(name)
    if node is None or node.op_type != "Mul" or seen["half"] or len(consumers.get(name, [])) != 1:
        return False
    other = _other(node, x)
    value = _scalar(consts, other) if other is not None else None
    if value is None or abs(value - 0.5) >= 1e-7:
        return False
    seen["half"] = True
    chain.append(node)
    return True


def _fuse_gelus(graph: Any, consts: dict[str, np.ndarray], taken: set[str]) -> int:
    """Replace every exact-GELU subgraph of ``graph`` by one ``Gelu`` node, in place; returns how many."""
    from onnx import helper

    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    replaced: dict[int, Any] = {}  # id of the node a Gelu takes the place of -> the Gelu
    dropped: set[int] = set()
    for erf in [n for n in graph.node if n.op_type == "Erf" and n.domain in ("", "ai.onnx")]:
        found = _match_gelu(erf, producer, consumers, consts, outputs)
        if found is None or any(id(n) in dropped for n in found[2]):
            continue
        x, y, chain = found
        b = _Builder(erf.name or y, taken)
        final = next(n for n in chain if n.output[0] == y)  # the Gelu takes its place in the node order
        replaced[id(final)] = helper.make_node("Gelu", [x], [y], name=b.name("gelu"))
        dropped.update(id(n) for n in chain)
    if not replaced:
        return 0
    kept = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped or id(n) in replaced]
    del graph.node[:]
    graph.node.extend(kept)
    return len(replaced)


def _plan(conv: _Conv) -> tuple[_Conv, str] | None:
    """What to do with one convolution: (the convolution to emit, a phrase saying why), or None."""
    what: list[str] = []
    trimmed = _trim(conv)
    if trimmed is not None:
        conv, how = trimmed
        what.append(how)
    axis = _split_axis(conv)
    if axis is not None:
        out, ranges = _tap_ranges(conv, axis)
        share = sum(y1 - y0 for y0, y1 in ranges) / (out * len(ranges))
        what.append(f"split into one convolution per kernel {('row', 'column')[axis]}, each over the outputs it "
                    f"reaches (dilation {conv.dilations[axis]} on {conv.spatial[axis]} "
                    f"{('rows', 'columns')[axis]}: {share:.0%} of the products read real input)")
    kh, kw = conv.w.shape[2:]
    bands = row_bands(kh, kw) if conv.depthwise and axis is None else [(0, kh)]
    if len(bands) > 1:
        what.append(f"depthwise {kh}x{kw} kernel split into {len(bands)} row bands of "
                    f"{'+'.join(str(r1 - r0) for r0, r1 in bands)} rows (XNNPACK's depthwise kernels are fast up "
                    f"to {MAX_DEPTHWISE_TAPS} taps)")
    return (conv, "; ".join(what)) if what else None
