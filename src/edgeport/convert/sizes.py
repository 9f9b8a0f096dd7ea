"""Dynamic dimensions, checked at other sizes than the reference's.

A dimension the user marked dynamic (``--input x:Nx3x224x224``, ``B``, ``seq``) must still compute the
right thing at other sizes in every artifact that keeps it dynamic. The reference step therefore records
extra samples at a few other sizes (``reference-sizes.npz``, same layout as reference.npz, numpy only),
made by the source model itself; the convert gate and ``edgeport validate`` feed them to each artifact
whose inputs keep those dimensions dynamic, and say so where a converter fixed them.

Sizes tried for a dimension of reference size v: ``max(1, v // 2)``, ``v + 1`` and ``2 v + 3`` (all
dynamic dims change together). A size the source model refuses is left out with a note.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from edgeport.refdata import Sample, load_reference
from edgeport.spec import IOSpec

SIZES_NAME = "reference-sizes.npz"


def size_variants(dims: dict[str, int]) -> list[dict[str, int]]:
    """Other sizes for the dynamic dims ``{name: reference size}``, distinct from the reference and each other."""
    out: list[dict[str, int]] = []
    for rule in (lambda v: max(1, v // 2), lambda v: v + 1, lambda v: 2 * v + 3):
        cand = {d: int(rule(int(v))) for d, v in dims.items()}
        if cand != dims and cand not in out:
            out.append(cand)
    return out


def record(run: Callable[[Sample], Sample], make: Callable[[dict[str, int], int], Sample], dims: dict[str, int],
           seed: int) -> tuple[list[Sample], list[Sample], list[dict[str, int]], list[str]]:
    """Run the source model at each size variant: (inputs, outputs, sizes used, notes)."""
    from edgeport.errors import EdgeportError

    inputs, outputs, used, notes = [], [], [], []
    for k, sizes in enumerate(size_variants(dims)):
        feed = make(sizes, seed + 500 + k)
        try:
            out = run(feed)
        except EdgeportError as exc:
            notes.append(f"the source model refuses sizes {sizes}: {exc.message}")
            continue
        inputs.append(feed)
        outputs.append(out)
        used.append(sizes)
    return inputs, outputs, used, notes


def dynamic_inputs(io: IOSpec) -> bool:
    """Does the artifact keep some input dimension dynamic?"""
    return any(isinstance(d, str) or (isinstance(d, int) and d < 0) for t in io.inputs for d in t.shape)


def check(session: Any, io: IOSpec, path: str, gate: Callable[[Sequence[Sample], Sequence[Sample]], tuple[dict, list[str]]],
          sizes: Sequence[dict[str, int]]) -> dict[str, Any]:
    """Run the size samples through ``session`` and gate them like the reference samples.

    Returns ``{"sizes": [...], "checked": bool, "passed": bool, "worst_rel", "reason", "note"}``.
    """
    if not dynamic_inputs(io):
        return {"sizes": list(sizes), "checked": False, "passed": True, "worst_rel": None, "reason": "",
                "note": "the converter fixed every dimension to the reference sizes: not checked at other sizes"}
    ins, outs = load_reference(path)
    got = []
    try:
        for feed in ins:
            got.append(session.run(feed))
    except Exception as exc:  # noqa: BLE001 - a runtime that refuses a size is the finding
        msg = " ".join(str(getattr(exc, "message", exc)).split())[:200]
        return {"sizes": list(sizes), "checked": True, "passed": False, "worst_rel": None,
                "reason": f"does not run at other sizes of its dynamic dimensions: {msg}", "note": ""}
    worst, reason = 0.0, ""
    for k, (ref, out) in enumerate(zip(outs, got)):  # one sample at a time: shapes differ between sizes
        parity, reasons = gate([ref], [out])
        worst = max([worst, *(p["rel"] for p in parity.values())])
        if reasons and not reason:
            where = sizes[k] if k < len(sizes) else k
            reason = f"at sizes {where}: {reasons[0]}"
    return {"sizes": list(sizes), "checked": True, "passed": not reason, "worst_rel": worst, "reason": reason, "note": ""}
