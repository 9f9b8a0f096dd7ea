"""A variant's outputs against the reference: metrics per output, task accuracy, flags, size ratios.

    compare(row, reference_outputs, variant_outputs, split)   # fills row.metrics, summary, task, flags
    size_ratios(rows)                                         # row.size_ratio against its fp32 file

:func:`map_outputs_by_value` guards against a converter that swapped same-shaped outputs.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from edgeport.quantize import calibration as cal
from edgeport.quantize.model import VariantRow
from edgeport.refdata import Sample
from edgeport.validate.metrics import error_metrics, is_classifier_like

def compare(row: VariantRow, ref: list[Sample], cand: list[Sample], split: cal.Split | None = None) -> None:
    """Fill ``row``'s metrics, summary, task accuracy and flags from its outputs on the held-out samples."""
    names = list(ref[0].keys())
    cand = map_outputs_by_value(names, ref, cand, row)
    worst: dict[str, Any] = {}
    for n in names:
        if any(n not in c for c in cand):
            row.flags.append(f"output {n!r} is missing")
            continue
        r = np.stack([np.asarray(s[n]) for s in ref])
        c = np.stack([np.asarray(s[n]) for s in cand])
        if c.shape != r.shape:
            if c.size == r.size:
                c = c.reshape(r.shape)
            else:
                row.flags.append(f"output {n!r} has shape {c.shape[1:]}, the reference {r.shape[1:]}")
                continue
        classifier = is_classifier_like(n, r[0])
        m = error_metrics(r, c, classifier=classifier)
        row.metrics[n] = m
        if m.get("nonfinite"):
            row.flags.append(f"{n}: {m['nonfinite']} of {m['elements']} values are NaN/Inf")
        if r.shape[0] > 1 and np.all(np.isfinite(c)):
            spread_c = float(np.max(np.ptp(c.reshape(c.shape[0], -1), axis=0)))
            spread_r = float(np.max(np.ptp(r.reshape(r.shape[0], -1), axis=0)))
            if spread_c == 0.0 and spread_r > 0.0:
                row.flags.append(f"{n}: constant output (the same value for every held-out input)")
        for key, better in (("cosine", min), ("snr_db", min), ("max_abs", max), ("top1", min), ("top5", min)):
            if key in m:
                worst[key] = better(worst[key], m[key]) if key in worst else m[key]
        if split is not None and split.has_labels and classifier and "accuracy" not in row.task:
            labels = np.asarray([i.label for i in split.holdout])
            pred = c.reshape(c.shape[0], -1, c.shape[-1])[:, 0, :].argmax(-1)
            refpred = r.reshape(r.shape[0], -1, r.shape[-1])[:, 0, :].argmax(-1)
            row.task = {"metric": "accuracy", "output": n, "accuracy": float(np.mean(pred == labels)),
                        "reference_accuracy": float(np.mean(refpred == labels)), "samples": int(labels.size)}
    row.summary = worst
    if row.flags and row.status == "ok":
        row.notes.append("flagged: " + "; ".join(row.flags))


def map_outputs_by_value(names: list[str], ref: list[Sample], cand: list[Sample], row: VariantRow) -> list[Sample]:
    """Guard against outputs swapped by a converter: among same-shaped outputs, pair each with the reference
    output it matches best (by cosine) when that pairing is clearly better than the names say."""
    if len(names) < 2 or not cand or any(set(c) != set(names) for c in cand):
        return cand
    groups: dict[tuple[int, ...], list[str]] = {}
    for n in names:
        groups.setdefault(tuple(np.asarray(ref[0][n]).shape), []).append(n)
    mapping = {n: n for n in names}
    for shape, group in groups.items():
        if len(group) < 2 or len(group) > 6:
            continue
        def cos(a: str, b: str) -> float:
            r = np.concatenate([np.ravel(s[a]) for s in ref]).astype(np.float64)
            c = np.concatenate([np.ravel(s[b]) for s in cand]).astype(np.float64)
            den = float(np.linalg.norm(r) * np.linalg.norm(c))
            return float(np.dot(r, c) / den) if den else 0.0

        score = {(a, b): cos(a, b) for a in group for b in group}
        ident = sum(score[(a, a)] for a in group)
        best = max(itertools.permutations(group), key=lambda p: sum(score[(a, b)] for a, b in zip(group, p)))
        if sum(score[(a, b)] for a, b in zip(group, best)) > ident + 0.5:
            for a, b in zip(group, best):
                mapping[a] = b
            row.notes.append(f"outputs {group} came out in another order; mapped back by value as {dict(zip(group, best))}")
    if all(k == v for k, v in mapping.items()):
        return cand
    return [{a: c[b] for a, b in mapping.items()} for c in cand]


def size_ratios(rows: list[VariantRow]) -> None:
    """Size ratios to the fp32 file a variant was made from (its parent, when that is an fp32 row of the same
    format, e.g. the litert-torch .tflite ai-edge-quantizer started from), else to the first fp32 file of its format."""
    fp32 = {r.name: r for r in rows if r.variant == "fp32" and r.size_bytes}
    for fmt in ("tflite", "onnx"):
        first = next((r for r in fp32.values() if r.format == fmt), None)
        for r in rows:
            if r.format != fmt or not r.size_bytes:
                continue
            parent = fp32.get(r.parent or "")
            base = r if r.variant == "fp32" else (parent if parent is not None and parent.format == fmt else first)
            if base is not None:
                r.size_ratio = r.size_bytes / base.size_bytes
                r.baseline = base.name
