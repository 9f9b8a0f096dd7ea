"""The parity matrix: every artifact on every runtime that loads it, against one reference.

    report = validate_dir("out/", ValidateOptions(samples=4))
    if not report: ...            # truthy when everything passed
    report.exit_code              # 0 pass, 1 a parity failure, 3 an artifact failed to load, run or crashed

Each (artifact, runtime) pair runs in its own worker process (:mod:`edgeport.worker`): a segfault, an
abort or a hang becomes a ``crash``/``timeout`` row with the signal or the time, and the other rows
still run. This module imports numpy only; torch, ONNX Runtime and TensorFlow load in the workers.

The reference is PyTorch eager on the model reference (``--reference`` picks another runtime or an
artifact). Its own row checks it against the outputs stored in reference.npz at convert time (so a
model whose code changed since is caught), with the scale rule of :mod:`edgeport.tolerance` at no less
than the default tolerance, so float noise between two processes never fails it. When the reference
cannot run here (no torch on a device) and no inputs were asked for, the stored samples of
reference.npz and their outputs are used instead.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from edgeport.errors import InputError, UsageError
from edgeport.formats import stage
from edgeport.manifest import Artifact, Manifest
from edgeport.refdata import Sample, load_reference
from edgeport.runtimes import RUNTIMES, runtime_missing, runtimes_for
from edgeport.spec import IOSpec
from edgeport.status import ERROR, FAIL, FAILED_TO_RUN, PASS, SKIPPED
from edgeport.validate.config import ToleranceConfig, kind_of
from edgeport.data.feeds import Feeds, int_ranges_from, npz_feeds, random_feeds
from edgeport.data.images import image_feeds
from edgeport.data.samples import save_samples
from edgeport.validate.metrics import compare_samples
from edgeport.validate.results import StageResult, TargetResult, ValidationReport
from edgeport.validate.runner import RunOutcome, Runner, Target
from edgeport.validate.worst import worst_output

DEFAULT_SAMPLES = 4
DEFAULT_TIMEOUT = 300.0
STORED_REFERENCE = ("stored", "reference.npz")  # --reference values meaning "the outputs in reference.npz"
LOCALIZE_JOB = "edgeport.validate.localize:localize_job"

# ------------------------------------------------------------------------------------------ options


@dataclass
class ValidateOptions:
    """What to run and how to judge it. ``None`` means "the default" (config file, then built-in)."""

    samples: int | None = None
    seed: int = 0
    inputs_npz: str | None = None
    images: str | None = None
    resize: tuple[int, int] | None = None
    mean: str | None = None
    std: str | None = None
    reference: str | None = None  # a runtime name, an artifact name, or ARTIFACT:RUNTIME
    artifacts: list[str] | None = None
    runtimes: list[str] | None = None
    tolerances: ToleranceConfig = field(default_factory=ToleranceConfig)
    threads: int = 1
    jobs: int = 1  # workers running at once (each uses ``threads`` threads)
    timeout: float = DEFAULT_TIMEOUT
    localize: bool = False
    keep_outputs: str | None = None  # folder to keep every runtime's outputs .npz in
    progress: Callable[[str], None] | None = None


# ------------------------------------------------------------------------------------------ plan


def _stage_parent(art: Artifact, arts: dict[str, Artifact]) -> Artifact | None:
    """The artifact this one was made from; a TFLite file an ONNX->TF converter made from its own
    SavedModel counts as made from that SavedModel (PyTorch -> ONNX -> SavedModel -> TFLite)."""
    parent = arts.get(art.parent) if art.parent else None
    if art.format == "tflite" and parent is not None and parent.format == "onnx":
        sm = next((a for a in arts.values() if a.format == "saved_model" and a.parent == parent.name
                   and a.converter == art.converter and a.variant == "fp32"), None)
        if sm is not None and art.converter:
            return sm
    return parent


def _pick_reference(choice: str | None, targets: list[Target], manifest_default: str) -> Target | None:
    """The reference target from ``--reference`` (runtime, artifact or ARTIFACT:RUNTIME)."""
    want = choice or manifest_default
    art_name, _, rt = want.rpartition(":")
    if art_name and rt in RUNTIMES:
        return next((t for t in targets if t.artifact.name == art_name and t.runtime == rt), None)
    by_runtime = [t for t in targets if t.runtime == want]
    if by_runtime:
        fp32 = [t for t in by_runtime if kind_of(t.artifact.variant) == "fp32"]
        return (fp32 or by_runtime)[0]
    return next((t for t in targets if t.artifact.name == want), None)


# ------------------------------------------------------------------------------------------ main


def _feeds(opts: ValidateOptions, io: IOSpec, dims: dict[str, int], stored_inputs: list[Sample] | None) -> Feeds:
    chosen = [x for x in (opts.inputs_npz, opts.images) if x]
    if len(chosen) > 1:
        raise UsageError("--inputs-npz and --images are alternatives", "pass only one of them")
    if opts.inputs_npz:
        return npz_feeds(opts.inputs_npz, io, limit=opts.samples)
    if opts.images:
        return image_feeds(opts.images, io, limit=opts.samples, resize=opts.resize, mean=opts.mean, std=opts.std,
                           dims=dims, seed=opts.seed)
    return random_feeds(io, opts.samples or DEFAULT_SAMPLES, opts.seed, dims, int_ranges_from(stored_inputs))


def validate_dir(out: str | os.PathLike, opts: ValidateOptions | None = None) -> ValidationReport:
    """Validate every artifact in ``out/manifest.json`` (see the module doc)."""
    opts = opts or ValidateOptions()
    manifest = Manifest.load(out)
    notes: list[str] = []
    for problem in manifest.verify():
        notes.append(f"manifest check: {problem}")
    arts = list(manifest.artifacts)
    if opts.artifacts:
        unknown = [a for a in opts.artifacts if manifest.find(a) is None]
        if unknown:
            raise UsageError(f"no artifact named {', '.join(unknown)} in {manifest.root}",
                             f"choose from: {', '.join(a.name for a in arts)}")
    stored_in: list[Sample] | None = None
    stored_out: list[Sample] | None = None
    if manifest.reference.get("path") and manifest.reference_path.exists():
        try:
            stored_in, stored_out = load_reference(manifest.reference_path)
        except InputError as exc:
            notes.append(f"reference.npz unusable: {exc.message}")
    items = [(a, manifest.abspath(a)) for a in arts]
    return _validate(str(manifest.root), items, manifest.io, manifest.dims, stored_in, stored_out,
                     manifest.reference.get("runtime", "torch_eager"), opts, notes, _stored_sizes(manifest, opts, notes))


def _stored_sizes(manifest: Manifest, opts: ValidateOptions, notes: list[str]) -> SizeSamples | None:
    """The samples at other sizes of the dynamic dims recorded at convert time (edgeport.convert.sizes)."""
    info = manifest.reference.get("sizes") or {}
    if not info.get("path") or opts.samples or opts.inputs_npz or opts.images:
        return None  # user-given inputs replace the stored samples, and with them the other sizes
    path = Path(manifest.root) / info["path"]
    try:
        ins, outs = load_reference(path)
    except InputError as exc:
        notes.append(f"{info['path']} unusable, dynamic dims checked at the reference size only: {exc.message}")
        return None
    return SizeSamples(ins, outs, list(info.get("dims") or []))


@dataclass
class SizeSamples:
    inputs: list[Sample]
    outputs: list[Sample]
    dims: list[dict[str, int]]


def _check_sizes(results: dict[str, TargetResult], runnable: list[Target], ref_target: Target | None,
                 sizes: SizeSamples, runner: "Runner", opts: ValidateOptions, names: list[str]) -> None:
    """Feed every artifact that keeps the dynamic dims the samples at other sizes; one sample per comparison."""
    from edgeport.convert.sizes import dynamic_inputs

    for t in runnable:
        tr = results[t.key]
        if t is ref_target or tr.status != PASS:
            continue
        if not dynamic_inputs(t.artifact.io):
            tr.sizes = {"checked": False, "dims": sizes.dims,
                        "note": "dynamic dims fixed by the converter: checked at the reference size only"}
            continue
        outcome = runner.run(t, sizes.inputs)
        if outcome.status != "ok" or outcome.outputs is None:
            tr.status, tr.reason = FAIL, f"does not run at other sizes {sizes.dims}: {outcome.reason}"
            tr.sizes = {"checked": True, "dims": sizes.dims, "passed": False}
            continue
        tol = opts.tolerances.for_artifact(t.artifact.variant)
        failed = []
        for k, (ref, got) in enumerate(zip(sizes.outputs, outcome.outputs)):
            comps = compare_samples([ref], [got], tol, names)
            if not all(comps):
                bad = next(c for c in comps if not c)
                failed.append(f"{sizes.dims[k] if k < len(sizes.dims) else k}: output {bad.name!r} {'; '.join(bad.failures)}")
        tr.sizes = {"checked": True, "dims": sizes.dims, "passed": not failed}
        if failed:
            tr.status, tr.reason = FAIL, f"at other sizes of the dynamic dims, {failed[0]}"


@dataclass
class _Plan:
    arts: dict[str, Artifact]
    results: dict[str, TargetResult]  # every artifact x runtime, keyed "artifact/runtime"
    targets: list[Target]  # every pair with a runtime
    runnable: list[Target]  # selected and able to run here
    eligible: list[Target]  # able to run here, selected or not (candidates for the reference)


def _plan(items: list[tuple[Artifact, Path]], opts: ValidateOptions) -> _Plan:
    """Every artifact x runtime pair, with why it will not run (not selected, runtime missing, file missing)."""
    if opts.runtimes:
        unknown = [r for r in opts.runtimes if r not in RUNTIMES]
        if unknown:
            raise UsageError(f"unknown runtime {', '.join(unknown)}", f"use any of: {', '.join(RUNTIMES)}")
    plan = _Plan({a.name: a for a, _ in items}, {}, [], [], [])
    for art, path in items:
        rts = runtimes_for(art.format)
        if not rts:
            plan.results[f"{art.name}/-"] = TargetResult(art.name, art.format, art.variant, "-", SKIPPED, parent=art.parent,
                                                          reason=f"no runtime runs {art.format} artifacts")
            continue
        for rt in rts:
            t = Target(art, path, rt)
            plan.targets.append(t)
            tr = TargetResult(art.name, art.format, art.variant, rt, SKIPPED, parent=art.parent)
            plan.results[t.key] = tr
            missing = runtime_missing(rt)
            exists = art.format == "pytorch" or path.exists()
            if missing is None and exists:
                plan.eligible.append(t)
            if opts.artifacts and art.name not in opts.artifacts:
                tr.reason = "not selected (--artifact)"
            elif opts.runtimes and rt not in opts.runtimes:
                tr.reason = "not selected (--runtime)"
            elif missing is not None:
                tr.reason = missing
            elif not exists:
                tr.status, tr.reason = ERROR, f"{art.path} is missing"
            else:
                plan.runnable.append(t)
    return plan


def _validate(root: str, items: list[tuple[Artifact, Path]], io: IOSpec, dims: dict[str, int],
              stored_in: list[Sample] | None, stored_out: list[Sample] | None, default_ref: str,
              opts: ValidateOptions, notes: list[str], sizes: "SizeSamples | None" = None) -> ValidationReport:
    t_start = time.perf_counter()
    progress = opts.progress or (lambda s: None)
    plan = _plan(items, opts)
    ref_target, feeds = _reference_and_feeds(plan, io, dims, stored_in, stored_out, default_ref, opts, notes)
    with tempfile.TemporaryDirectory(prefix="edgeport-validate-") as tmpd:
        runner = Runner(Path(tmpd), opts.threads, opts.timeout, opts.keep_outputs, progress)
        outputs: dict[str, list[Sample]] = {}
        if ref_target is None:
            ref_outputs = stored_out
            ref_info = {"source": "reference.npz", "runtime": default_ref, "artifact": None, "samples": len(stored_out or [])}
        else:
            ref_outputs = _run_reference(ref_target, feeds, stored_in, stored_out, runner, plan.results, opts)
            ref_info = {"source": "run", "runtime": ref_target.runtime, "artifact": ref_target.artifact.name,
                        "backend": plan.results[ref_target.key].backend}
            if ref_outputs is not None:
                outputs[ref_target.key] = ref_outputs
        if ref_outputs is not None:
            _compare_with_reference(plan, ref_target, ref_outputs, io, feeds, runner, opts, outputs, sizes)
        else:
            for t in plan.runnable:
                if t is not ref_target:
                    plan.results[t.key].reason = "not run: the reference failed"
        results = list(plan.results.values())
        stages = _stages(plan.targets, plan.arts, outputs, ref_outputs, ref_target, opts) if ref_outputs is not None else []
        worst = worst_output(results, outputs, ref_outputs)
        localizations: list[dict[str, Any]] = []
        if opts.localize:
            localizations = _localize(results, plan.targets, plan.arts, feeds, io, ref_target, Path(tmpd), opts, notes)
    return ValidationReport(
        root=root, reference=ref_info, feeds=feeds.to_json(), results=results, stages=stages,
        localizations=localizations, tolerances=opts.tolerances.to_json(), notes=notes + feeds.notes,
        seconds=time.perf_counter() - t_start, worst=worst,
    )


def _compare_with_reference(plan: _Plan, ref_target: Target | None, ref_outputs: list[Sample], io: IOSpec, feeds: Feeds,
                            runner: Runner, opts: ValidateOptions, outputs: dict[str, list[Sample]],
                            sizes: "SizeSamples | None") -> None:
    """Run every other selected pair (``opts.jobs`` at a time) and compare its outputs with the reference's;
    each pair's outputs go into ``outputs``. Then the samples at other sizes of the dynamic dims, if any."""
    names = [s.ref_name or s.name for s in io.outputs] or list(ref_outputs[0].keys())
    others = [t for t in plan.runnable if t is not ref_target]
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        outcomes = list(pool.map(lambda t: runner.run(t, feeds.samples), others))
    for t, outcome in zip(others, outcomes):
        tr = plan.results[t.key]
        _apply_outcome(tr, outcome)
        if outcome.status == "ok" and t.artifact.format == "tflite":
            from edgeport.runtimes.tflite_delegation import delegation_in_worker

            tr.delegation = delegation_in_worker(t.path, opts.threads, opts.timeout)
        if outcome.status == "ok" and outcome.outputs is not None:
            outputs[t.key] = outcome.outputs
            tr.outputs = compare_samples(ref_outputs, outcome.outputs, opts.tolerances.for_artifact(t.artifact.variant), names)
            tr.status = PASS if all(tr.outputs) else FAIL
            tr.compared_with = "reference"
    if sizes is not None and sizes.inputs:
        _check_sizes(plan.results, others, ref_target, sizes, runner, opts, names)


def _reference_and_feeds(plan: _Plan, io: IOSpec, dims: dict[str, int], stored_in: list[Sample] | None,
                         stored_out: list[Sample] | None, default_ref: str, opts: ValidateOptions,
                         notes: list[str]) -> tuple[Target | None, Feeds]:
    """The reference target (None: the outputs stored in reference.npz) and the inputs to run."""
    explicit_inputs = bool(opts.inputs_npz or opts.images or opts.samples)
    use_stored = (opts.reference or "").lower() in STORED_REFERENCE
    if use_stored:
        if stored_in is None or stored_out is None:
            raise UsageError("--reference stored needs the reference.npz of an edgeport output folder", "pick a runtime as --reference")
        if explicit_inputs:
            raise UsageError("--reference stored compares on the samples stored in reference.npz",
                             "drop --samples/--inputs-npz/--images, or pick a runtime as --reference")
        ref_target = None
    else:
        ref_target = _pick_reference(opts.reference, plan.eligible, default_ref)
    if opts.reference and ref_target is None and not use_stored:
        known = sorted({t.runtime for t in plan.targets} | {t.artifact.name for t in plan.targets}) + ["stored"]
        why = next((r.reason for k, r in plan.results.items() if k.split("/")[1] == opts.reference and r.reason), "")
        raise UsageError(f"--reference {opts.reference} names no runtime or artifact that can run here" + (f" ({why})" if why else ""),
                         f"choose one of: {', '.join(known)}")
    if ref_target is not None and ref_target not in plan.runnable:  # the reference runs even when not selected
        plan.runnable.insert(0, ref_target)
        plan.results[ref_target.key].reason = ""
    feeds: Feeds
    if ref_target is None:
        if explicit_inputs or stored_in is None or stored_out is None:
            why = plan.results.get(f"pytorch/{default_ref}")
            reason = why.reason if why and why.reason else f"no artifact runs on {default_ref}"
            raise UsageError(f"cannot compute reference outputs: {reason}",
                             "drop --samples/--inputs-npz/--images to use the stored samples of reference.npz, "
                             "or pick another --reference (e.g. onnxruntime)")
        feeds = Feeds(stored_in, f"reference.npz ({len(stored_in)} stored samples)", stored_out)
        if not use_stored:
            notes.append(f"reference runtime {default_ref} cannot run here ({_why_not(plan.results, default_ref)}): "
                         "using the outputs stored in reference.npz as the reference")
    else:
        feeds = _feeds(opts, io, dims, stored_in)
    return ref_target, feeds


def _why_not(results: dict[str, TargetResult], runtime: str) -> str:
    for k, r in results.items():
        if k.endswith("/" + runtime) and r.reason:
            return r.reason
    return "no artifact for it"


def _apply_outcome(tr: TargetResult, outcome: RunOutcome) -> None:
    tr.seconds = outcome.seconds
    tr.backend = outcome.backend
    tr.latency_ms = outcome.latency_ms
    if outcome.status != "ok":
        tr.status = outcome.status if outcome.status in FAILED_TO_RUN else ERROR
        tr.reason = outcome.reason
        tr.log_tail = outcome.log_tail


def _run_reference(t: Target, feeds: Feeds, stored_in: list[Sample] | None, stored_out: list[Sample] | None,
                   runner: Runner, results: dict[str, TargetResult], opts: ValidateOptions) -> list[Sample] | None:
    """Run the reference on the feeds (plus the stored samples, to check it against reference.npz)."""
    tr = results[t.key]
    tr.role = "reference"
    check_in, check_out = (feeds.samples, feeds.stored_outputs) if feeds.stored_outputs else (stored_in, stored_out)
    extra = [] if feeds.stored_outputs or not check_in else list(check_in)
    outcome = runner.run(t, feeds.samples + extra)
    _apply_outcome(tr, outcome)
    if outcome.status != "ok" or outcome.outputs is None:
        if outcome.user_error is not None:
            tr.reason = outcome.user_error.one_line()
        return None
    ref_outputs = outcome.outputs[: len(feeds.samples)]
    if check_out is not None and check_in is not None:
        got = outcome.outputs[len(feeds.samples):] if extra else ref_outputs
        names = list(check_out[0].keys())
        try:
            tr.outputs = compare_samples(check_out, got, opts.tolerances.for_reference_check(t.artifact.variant), names)
        except (KeyError, ValueError) as exc:
            tr.outputs = []
            tr.reason = f"cannot compare with reference.npz: {exc}"
        tr.compared_with = "reference.npz (stored at convert time)"
        tr.status = PASS if all(tr.outputs) else FAIL
        if tr.status == FAIL:
            tr.reason = "the reference no longer reproduces reference.npz (did the model code or weights change since convert?)"
    else:
        tr.status = PASS
        tr.compared_with = "itself (no stored outputs to check against)"
        tr.reason = "the reference (no stored outputs to check it against)"
    return ref_outputs


def _stages(targets: list[Target], arts: dict[str, Artifact], outputs: dict[str, list[Sample]],
            ref_outputs: list[Sample], ref_target: Target | None, opts: ValidateOptions) -> list[StageResult]:
    """Error added by each conversion step: each artifact (first runtime that ran it) against its parent's."""
    primary: dict[str, str] = {}
    for t in targets:
        if t.key in outputs and t.artifact.name not in primary:
            primary[t.artifact.name] = t.key
    if ref_target is not None:
        primary[ref_target.artifact.name] = ref_target.key
    stages = []
    for name, key in primary.items():
        art = arts[name]
        parent = _stage_parent(art, arts)
        seen = {name}
        while parent is not None and parent.name not in primary and parent.name not in seen:  # skip what did not run
            seen.add(parent.name)
            parent = _stage_parent(parent, arts)
        if parent is None or parent.name not in primary:
            continue
        pkey = primary[parent.name]
        tol = opts.tolerances.for_artifact(art.variant)
        vs_parent = compare_samples(outputs[pkey], outputs[key], tol)
        vs_ref = {c.name: c for c in compare_samples(ref_outputs, outputs[key], tol)}
        parent_vs_ref = {c.name: c for c in compare_samples(ref_outputs, outputs[pkey], tol)}
        st = StageResult(parent.name, name, pkey.split("/")[1], key.split("/")[1])
        for c in vs_parent:
            st.outputs[c.name] = {
                "added_max_abs": c.metrics.get("max_abs"),
                "added_max_rel": c.metrics.get("max_rel"),
                "added_cosine": c.metrics.get("cosine"),
                "total_max_abs": vs_ref[c.name].metrics.get("max_abs") if c.name in vs_ref else None,
                "parent_total_max_abs": parent_vs_ref[c.name].metrics.get("max_abs") if c.name in parent_vs_ref else None,
            }
        stages.append(st)
    stages.sort(key=lambda s: (stage(arts[s.artifact].format), s.artifact))
    return stages


# ------------------------------------------------------------------------------------------ localize


def _localize(rows: list[TargetResult], targets: list[Target], arts: dict[str, Artifact], feeds: Feeds, io: IOSpec,
              ref_target: Target | None, tmp: Path, opts: ValidateOptions, notes: list[str]) -> list[dict[str, Any]]:
    """Run divergence localization for failing ONNX (vs PyTorch) and TFLite (vs ONNX Runtime) rows, and for an
    ONNX or TFLite row whose parent has the same format (two files: vs the first)."""
    from edgeport.worker import run_in_worker

    failing = [r for r in rows if r.status == FAIL and r.role == "candidate"]
    if not failing:
        notes.append("--localize: nothing to localize, every artifact that ran is within tolerance")
        return []
    if importlib.util.find_spec("onnx") is None or runtime_missing("onnxruntime"):
        notes.append("--localize needs the onnx and onnxruntime packages (pip install onnx onnxruntime)")
        return []
    by_name = {t.artifact.name: t for t in targets}
    torch_art = next((a for a in arts.values() if a.format == "pytorch"), None)
    feed_path = tmp / "localize-feed.npz"
    save_samples(feed_path, feeds.samples[:1])
    found: list[dict[str, Any]] = []
    done: set[tuple[str, str]] = set()
    for r in failing:
        art = arts[r.artifact]
        tol = opts.tolerances.resolve(art.variant, r.outputs[0].name if r.outputs else "")
        job: dict[str, Any] = {"feed": str(feed_path), "atol": tol.atol, "rtol": tol.rtol}
        parent = arts.get(art.parent) if art.parent else None
        if parent is not None and parent.format == art.format and art.format in ("onnx", "tflite") and parent.name in by_name:
            pair = (parent.name, art.name)  # two graphs of one format (validate A.onnx B.onnx): tensor by tensor
            job.update(mode=f"{art.format}-{art.format}", reference=str(by_name[parent.name].path), reference_io=parent.io.to_json(),
                       candidate=str(by_name[art.name].path), candidate_io=art.io.to_json())
        elif art.format == "onnx":
            if torch_art is None or runtime_missing("torch_eager"):
                notes.append(f"--localize {art.name}: needs PyTorch and the model reference to compare against")
                continue
            pair = (torch_art.name, art.name)
            job.update(mode="pytorch-onnx", onnx=str(by_name[art.name].path), onnx_io=art.io.to_json(),
                       model=torch_art.options.get("model"), ref_io=io.to_json())
        elif art.format == "tflite":
            onnx_art = _ancestor(art, arts, "onnx")
            if onnx_art is None or onnx_art.name not in by_name:
                notes.append(f"--localize {art.name}: no ONNX model in the manifest to compare the TFLite model with")
                continue
            pair = (onnx_art.name, art.name)
            job.update(mode="onnx-tflite", onnx=str(by_name[onnx_art.name].path), onnx_io=onnx_art.io.to_json(),
                       tflite=str(by_name[art.name].path), tflite_io=art.io.to_json(), ref_io=io.to_json())
        else:
            notes.append(f"--localize: {art.format} artifacts ({art.name}) are not localized; ONNX and TFLite are")
            continue
        if pair in done:
            continue
        done.add(pair)
        if opts.progress:
            opts.progress(f"localizing {pair[0]} vs {pair[1]}")
        res = run_in_worker(LOCALIZE_JOB, job, timeout=max(opts.timeout, 600.0))
        if res.ok:
            entry = dict(res.value or {})
        else:
            entry = {"mode": job["mode"], "found": False, "error": res.reason()}
        entry.update(reference=pair[0], candidate=pair[1])
        found.append(entry)
    return found


def _ancestor(art: Artifact, arts: dict[str, Artifact], fmt: str) -> Artifact | None:
    seen = set()
    cur: Artifact | None = arts.get(art.parent) if art.parent else None
    while cur is not None and cur.name not in seen:
        if cur.format == fmt:
            return cur
        seen.add(cur.name)
        cur = arts.get(cur.parent) if cur.parent else None
    return next((a for a in arts.values() if a.format == fmt and kind_of(a.variant) == "fp32"), None)


# ------------------------------------------------------------------------------------------ two files


def validate_files(a: str | os.PathLike, b: str | os.PathLike, opts: ValidateOptions | None = None) -> ValidationReport:
    """Compare model file ``b`` against model file ``a`` (the reference), without a manifest."""
    from edgeport.validate.pair import describe_pair

    opts = opts or ValidateOptions()
    pa, pb = Path(a), Path(b)
    for p in (pa, pb):
        if not p.exists():
            raise InputError(f"{p} does not exist", "check the path")
    shown = f"{pa} vs {pb}"
    pa, pb = pa.resolve(), pb.resolve()  # workers start in a temporary folder
    art_a, art_b, io, dims, notes = describe_pair(pa, pb, opts)
    if opts.reference:
        notes.append("--reference is ignored with two files: the first file is the reference")
        opts = ValidateOptions(**{**opts.__dict__, "reference": None})
    ref_runtime = runtimes_for(art_a.format)[0]
    items = [(art_a, pa), (art_b, pb)]
    return _validate(shown, items, io, dims, None, None, f"{art_a.name}:{ref_runtime}", opts, notes)
