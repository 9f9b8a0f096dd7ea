"""Other sizes for dynamic dims: which sizes, and a model right at the reference size but wrong elsewhere fails."""

from __future__ import annotations

import numpy as np

from edgeport.convert import sizes
from edgeport.convert.check import parity_gate
from edgeport.refdata import save_reference
from edgeport.spec import IOSpec, TensorSpec


def test_variants_differ_from_the_reference_and_each_other():
    v = sizes.size_variants({"B": 2, "seq": 16})
    assert v == [{"B": 1, "seq": 8}, {"B": 3, "seq": 17}, {"B": 7, "seq": 35}]
    assert sizes.size_variants({"B": 1}) == [{"B": 2}, {"B": 5}]  # 1 // 2 -> 1 is the reference itself


class _Session:
    """y = 2x, except that rows past the reference batch size come out wrong (a converter bug's shape)."""

    def __init__(self, ref_batch: int) -> None:
        self.ref_batch = ref_batch

    def run(self, feed):
        y = 2.0 * feed["x"]
        if y.shape[0] > self.ref_batch:
            y = y.copy()
            y[self.ref_batch:] += 1.0
        return {"y": y}


def _reference(tmp_path, batches):
    rng = np.random.default_rng(0)
    ins = [{"x": rng.standard_normal((b, 4)).astype(np.float32)} for b in batches]
    outs = [{"y": 2.0 * i["x"]} for i in ins]
    path = tmp_path / sizes.SIZES_NAME
    save_reference(path, ins, outs)
    return str(path)


DYNAMIC = IOSpec(inputs=[TensorSpec(name="x", shape=("B", 4), dtype="float32")], outputs=[])
FIXED = IOSpec(inputs=[TensorSpec(name="x", shape=(2, 4), dtype="float32")], outputs=[])


def gate(ref, got):
    return parity_gate(ref, got, 1e-4)


def test_wrong_at_other_sizes_fails_and_says_where(tmp_path):
    path = _reference(tmp_path, [1, 3, 7])
    dims = [{"B": 1}, {"B": 3}, {"B": 7}]
    res = sizes.check(_Session(ref_batch=2), DYNAMIC, path, gate, dims)
    assert res["checked"] and not res["passed"] and res["reason"].startswith("at sizes {'B': 3}")
    ok = sizes.check(_Session(ref_batch=100), DYNAMIC, path, gate, dims)
    assert ok["checked"] and ok["passed"] and ok["worst_rel"] < 1e-6


def test_fixed_dims_are_not_checked_and_say_so(tmp_path):
    res = sizes.check(_Session(ref_batch=2), FIXED, _reference(tmp_path, [1]), gate, [{"B": 1}])
    assert not res["checked"] and res["passed"] and "fixed" in res["note"]
