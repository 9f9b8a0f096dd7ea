"""The convert pipeline: reference -> torchscript / onnx -> saved_model / tflite.

Runs in the CLI process and imports neither torch nor TensorFlow: every step runs in a worker
(:mod:`edgeport.worker`), so a converter that crashes, hangs or runs out of memory is a recorded
attempt, not a dead command. Finished artifacts are keyed by a content hash of everything that made
them (source, weights, inputs, options, parent artifact, edgeport version): a re-run reuses them.

Output folder safety: edgeport only writes into an empty or new folder, or one it made before
(marked by ``.edgeport/``). Files are built in a staging folder inside it and renamed into place;
manifest.json is removed when a run starts and written last, so a folder without a manifest is an
unfinished run that the next run completes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from edgeport import __version__, outdir
from edgeport.convert import CONVERTERS, Converter, tf_converters
from edgeport.convert.base import StepJob
from edgeport.convert.options import ConvertOptions
from edgeport.convert.sizes import SIZES_NAME
from edgeport.errors import ConversionError, EdgeportError, OutputError, UsageError
from edgeport.formats import label, targets
from edgeport.fsutil import atomic_write_json, install_path, path_size, sha256_path, staging_dir
from edgeport.manifest import MANIFEST_NAME, REFERENCE_NAME, Artifact, Attempt, Manifest
from edgeport.models import ModelRef
from edgeport.outdir import STATE_DIR
from edgeport.status import CRASH, ERROR, FAILED_TO_RUN, TIMEOUT
from edgeport.spec import IOSpec
from edgeport.worker import run_in_worker

CACHE_NAME = "cache.json"
SELECT = ("fastest", "first")
# Steps from PyTorch that run at once (each a worker process): one per core, at most 3 (TorchScript, ONNX and
# a PyTorch -> TFLite candidate). On 2 cores a third would slow the ONNX export, which the rest waits for.
PARALLEL_STEPS = max(1, min(3, os.cpu_count() or 1))
LATENCY_WARMUP = 5  # untimed runs per candidate when auto picks the fastest .tflite
LATENCY_SECONDS = 0.5  # then timed runs for this long (thousands for a small model, ~20 for a ResNet-18)
LATENCY_TIE = 0.03  # candidates within 3 % of the fastest count as tied: the one earlier in auto order is kept  # timed runs per candidate when auto picks the fastest .tflite (after 20 warm-up runs)


@dataclass
class Event:
    step: str
    status: str  # start, done, cached, failed, rejected
    seconds: float = 0.0
    detail: str = ""


@dataclass
class ConvertResult:
    manifest: Manifest
    failed: list[Attempt] = field(default_factory=list)
    parity_failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 3
        if self.parity_failed:
            return 1
        return 0


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _tf_names() -> list[str]:
    return [c.name for c in CONVERTERS.values() if c.tf_targets]


def _converter_order(targets: tuple[str, ...], converter: str, torch_source: bool,
                     available: Callable[[Converter], bool] = lambda c: True) -> dict[str, list[str]]:
    """Which converters to try, in order, for saved_model and tflite (derived from the registry).

    auto: every converter with an auto priority that can start from the source and is usable here,
    fast tier first (see :func:`edgeport.convert.tf_converters`).
    """
    order: dict[str, list[str]] = {}
    if converter == "auto":
        for target in ("saved_model", "tflite"):
            if target in targets:
                order[target] = [c.name for c in tf_converters(target) if c.auto is not None
                                 and (torch_source or c.source != "pytorch") and available(c)]
        return order
    names = [c.strip() for c in converter.split(",") if c.strip()]
    for n in names:
        if n not in _tf_names():
            raise UsageError(f"unknown converter {n!r}", f"use auto or one of: {', '.join(_tf_names())}")
        if CONVERTERS[n].source == "pytorch" and not torch_source:
            raise UsageError(f"{n} converts from PyTorch, but the source is an ONNX file", "use --converter onnx2tf or auto")
        if CONVERTERS[n].env and not available(CONVERTERS[n]):  # named explicitly: fail before any work, in one line
            from edgeport.backends import python_for

            python_for(CONVERTERS[n].env)
    for target in ("saved_model", "tflite"):
        if target not in targets:
            continue
        order[target] = [n for n in names if target in CONVERTERS[n].targets]
        if not order[target]:
            makers = ", ".join(c.name for c in tf_converters(target))
            raise UsageError(f"--converter {converter} makes no {label(target)}", f"add one of {makers}, or use --converter auto")
    return order


class Pipeline:
    def __init__(self, ref: ModelRef, out: Path, options: ConvertOptions, on_event: Callable[[Event], None] | None = None):
        self.ref = ref
        self.out = Path(out).expanduser().absolute()  # workers run in their own folder
        self.opts = options
        self.on_event = on_event or (lambda e: None)
        self.cache: dict[str, Any] = {}
        self._cache_lock = threading.RLock()
        self._event_lock = threading.Lock()
        self.prefetched: dict[str, Future] = {}  # converter -> its run started early, in a thread
        self.names: dict[str, dict[str, str]] = {}  # converter -> {format: final file name}
        self.refinfo: dict[str, Any] = {}
        self.attempts: list[Attempt] = []
        self.artifacts: list[Artifact] = []
        self.failed: list[Attempt] = []
        self.parity_failed: list[str] = []
        self._refused = False  # OUT's lock is held by another run: the folder is not this run's to clean up

    # ------------------------------------------------------------------ folder
    def _prepare_out(self) -> None:
        outdir.check_out(self.out)
        outdir.ensure_writable(self.out)

    def _load_state(self) -> None:
        """The cache and the cleanup of interrupted runs; only under the lock (another run may be writing)."""
        cache_file = self.out / STATE_DIR / CACHE_NAME
        if cache_file.exists():
            try:
                self.cache = json.loads(cache_file.read_text())
                if not isinstance(self.cache, dict):
                    self.cache = {}
            except (ValueError, OSError):
                self.cache = {}
        outdir.remove_stale_staging(self.out)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            with outdir.lock(self.out):
                yield
        except outdir.LockRefused:
            self._refused = True
            raise

    def _save_cache(self) -> None:
        with self._cache_lock:  # steps run in threads (see _run); the JSON dump must not see a dict mid-change
            atomic_write_json(self.out / STATE_DIR / CACHE_NAME, self.cache)

    def _event(self, e: Event) -> None:
        with self._event_lock:
            self.on_event(e)

    # ------------------------------------------------------------------ steps
    def _worker(self, step: str, entry: str, job: StepJob):
        log = self.out / STATE_DIR / "logs" / f"{step}.log"
        if log.exists():
            log.unlink()
        return run_in_worker(entry, job.to_kwargs(), timeout=self.opts.timeout, log_path=log)

    def _reference(self, staging: Path) -> tuple[IOSpec, dict[str, int], dict]:
        ref_json = self.ref.to_json()
        key = _key("reference", __version__, ref_json.get("sha256"), ref_json.get("weights_sha256"), ref_json.get("inputs"),
                   _file_digest(self.ref.inputs_npz), self.ref.seed, self.opts.samples, self.ref.kind, self.ref.attr)
        ref_file = self.out / REFERENCE_NAME
        hit = self.cache.get(key) if self.opts.use_cache else None
        sizes_file = self.out / SIZES_NAME
        if hit and ref_file.exists() and sha256_path(ref_file) == hit["sha256"] and (
                not hit.get("sizes_sha256") or (sizes_file.exists() and sha256_path(sizes_file) == hit["sizes_sha256"])):
            self._event(Event("reference", "cached", 0.0, hit.get("runtime", "")))
            return IOSpec.from_json(hit["io"]), hit["dims"], hit
        self._event(Event("reference", "start"))
        job = StepJob(staging=str(staging), out_dir=str(self.out), model=ref_json, io={}, dims={}, reference="",
                      options={"samples": self.opts.samples})
        res = self._worker("reference", "edgeport.convert.reference:run", job)
        if not res.ok:
            user = res.user_error()
            if user is not None:
                raise user
            raise ConversionError(f"running the source model failed: {res.reason()}", f"see {self.out / STATE_DIR / 'logs' / 'reference.log'}")
        value = res.value
        install_path(staging / "reference.npz", ref_file)
        value["sha256"] = sha256_path(ref_file)
        if (staging / SIZES_NAME).is_file():  # samples at other sizes of the dynamic dims (edgeport.convert.sizes)
            install_path(staging / SIZES_NAME, sizes_file)
            value["sizes_sha256"] = sha256_path(sizes_file)
        else:
            sizes_file.unlink(missing_ok=True)
        value["key"] = key
        self.cache[key] = value
        self._save_cache()
        self._event(Event("reference", "done", res.seconds, value.get("runtime", "")))
        return IOSpec.from_json(value["io"]), value["dims"], value

    def _convert(self, step: str, converter: str, entry: str, parent: Artifact | None, io: IOSpec, dims: dict,
                 options: dict, final_names: dict[str, str]) -> tuple[list[Artifact], Attempt]:
        """Run one converter; install its artifacts under final names. Returns (artifacts, attempt)."""
        parent_sha = parent.sha256 if parent else self.ref.sha256
        key = _key(step, converter, __version__, parent_sha, self.ref.weights_sha256, io.to_json(), dims, options,
                   self.ref.to_json().get("inputs"))
        hit = self.cache.get(key) if self.opts.use_cache else None
        if hit:
            arts = [Artifact.from_json(a) for a in hit["artifacts"]]
            if all((self.out / a.path).exists() and sha256_path(self.out / a.path) == a.sha256 for a in arts):
                for d in hit.get("dropped", []):
                    self.dropped[(converter, d["format"])] = d["reason"]
                self._event(Event(step, "cached", 0.0, converter))
                if not arts and hit.get("dropped"):
                    return [], Attempt(target=step, converter=converter, status="rejected",
                                       reason=f"{hit['dropped'][0]['reason']} (measured by an earlier identical run)")
                return arts, Attempt(target=step, converter=converter, status="kept", reason="reused from cache",
                                     artifact=arts[0].name if arts else None)
        self._event(Event(step, "start", 0.0, converter))
        with staging_dir(self.out) as staging:
            job = StepJob(staging=str(staging), out_dir=str(self.out), model={**self.ref.to_json()}, io=io.to_json(),
                          dims=dims, reference=str(self.out / REFERENCE_NAME),
                          parent_path=str(self.out / parent.path) if parent else None,
                          parent_io=parent.io.to_json() if parent else None, options=options)
            res = self._worker(f"{step}-{converter}", entry, job)
            if not res.ok:
                user = res.user_error()
                if user is not None and user.exit_code == 2:
                    raise user
                status = res.status if res.status in (CRASH, TIMEOUT) else ERROR
                att = Attempt(target=step, converter=converter, status=status, reason=res.reason(), seconds=res.seconds,
                              log_tail=res.log_tail)
                self._event(Event(step, "failed", res.seconds, f"{converter}: {res.reason()}"))
                return [], att
            arts = [Artifact.from_json(a) for a in res.value.get("artifacts", [])]
            gated = [a for a in arts if a.format in ("tflite", "saved_model")]
            with ThreadPoolExecutor(max_workers=max(1, len(gated))) as pool:  # a SavedModel's check imports TF
                for a, (_ok, check) in zip(gated, pool.map(lambda a: self._check(staging / a.path, a), gated)):
                    a.checks = check
            installed = []
            for a in arts:
                final_rel = final_names.get(a.format, a.path)
                install_path(staging / a.path, self.out / final_rel)
                a.path = final_rel
                a.sha256 = sha256_path(self.out / final_rel)
                a.size_bytes = path_size(self.out / final_rel)
                a.seconds = res.seconds
                a.cache_key = key
                a.parent = a.parent or (parent.name if parent else "pytorch")
                installed.append(a)
        with self._cache_lock:
            self.cache[key] = {"artifacts": [a.to_json() for a in installed]}
            self._save_cache()
        self._event(Event(step, "done", res.seconds, converter))
        return installed, Attempt(target=step, converter=converter, status="kept", seconds=res.seconds,
                                  artifact=installed[0].name if installed else None)

    def _check(self, path: Path, art: Artifact) -> tuple[bool, dict]:
        res = run_in_worker("edgeport.convert.check:run", {
            "path": str(path), "format": art.format, "io": art.io.to_json(), "reference": str(self.out / REFERENCE_NAME),
            "allow_flex": self.opts.allow_flex, "rtol": self.opts.rtol, **self._sizes_job(),
        }, timeout=min(self.opts.timeout, 600), log_path=self.out / STATE_DIR / "logs" / f"check-{art.name}-{art.converter}.log")
        if not res.ok:
            return False, {"passed": False, "status": res.status, "reason": f"running the converted model failed: {res.reason()}"}
        value = dict(res.value)
        value.setdefault("status", "ok")
        return bool(value.get("passed")), value

    def _sizes_job(self) -> dict[str, Any]:
        sizes_file = self.out / SIZES_NAME
        dims = self.refinfo.get("sizes") or []
        return {"sizes": str(sizes_file), "size_dims": dims} if dims and sizes_file.is_file() else {}

    # ------------------------------------------------------------------ main
    def run(self) -> ConvertResult:
        for t in self.opts.targets:
            if t not in targets():
                raise UsageError(f"unknown format {t!r} in --to", f"use any of: {', '.join(targets())}")
        torch_source = self.ref.is_torch
        if not torch_source and "torchscript" in self.opts.targets:
            raise UsageError("cannot make TorchScript from an ONNX file", "drop torchscript from --to")
        if self.opts.select not in SELECT:
            raise UsageError(f"unknown --select {self.opts.select!r}", f"use one of: {', '.join(SELECT)}")
        self.unavailable: dict[str, str] = {}
        self.dropped: dict[tuple[str, str], str] = {}  # (converter, format) -> why a passing result was not kept
        order = _converter_order(self.opts.targets, self.opts.converter, torch_source, self._available)
        created = not self.out.exists()
        try:
            self._prepare_out()
            with self._lock():
                self._load_state()
                (self.out / MANIFEST_NAME).unlink(missing_ok=True)
                try:
                    return self._run(order)
                except OSError as exc:  # writing into OUT failed: a full disk, a quota, a read-only remount
                    raise OutputError(f"cannot write to {self.out}: {exc.strerror or exc}",
                                      "free space (or choose another folder with -o) and run the same command again") from None
        except EdgeportError as exc:
            # Bad input: leave nothing behind in a folder this run created.
            # A run refused by the lock owns nothing: the folder is the other run's.
            if created and not self._refused and exc.exit_code == 2 and self.out.is_dir():
                shutil.rmtree(self.out, ignore_errors=True)
            raise
        except BaseException:
            if created and not self._refused and self.out.is_dir() and not (self.out / MANIFEST_NAME).exists() and not outdir.has_artifacts(self.out):
                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _run(self, order: dict[str, list[str]]) -> ConvertResult:
        with staging_dir(self.out) as staging:
            io, dims, refinfo = self._reference(staging)
        self.refinfo = refinfo
        manifest = Manifest(root=self.out, source=self.ref.ref, source_sha256=self.ref.sha256, io=io, dims=dims)
        manifest.reference = {"path": REFERENCE_NAME, "sha256": refinfo["sha256"], "runtime": refinfo.get("runtime", "torch_eager"),
                              "samples": refinfo.get("samples", 1)}
        if refinfo.get("sizes_sha256"):
            manifest.reference["sizes"] = {"path": SIZES_NAME, "sha256": refinfo["sizes_sha256"], "dims": refinfo.get("sizes", [])}
        tools = dict(refinfo.get("tools", {}))
        if self.ref.is_torch:
            manifest.put(Artifact(name="pytorch", format="pytorch", path="", converter="source", parent=None,
                                  options={"model": self.ref.to_json()}, io=io, tools=dict(refinfo.get("tools", {}))))
        targets = self.opts.targets
        need_onnx = "onnx" in targets or any(CONVERTERS[c].needs_onnx for cs in order.values() for c in cs)
        onnx_art: Artifact | None = None
        self.names = self._final_names(order)
        # Steps that start from PyTorch do not wait for each other: TorchScript, ONNX and a PyTorch -> TFLite
        # candidate that will run anyway go to threads (each step is a worker process of its own).
        with ThreadPoolExecutor(max_workers=PARALLEL_STEPS, thread_name_prefix="edgeport-step") as pool:
            ts = pool.submit(self._convert, "torchscript", "torchscript", CONVERTERS["torchscript"].entry, None, io, dims,
                             {"script": self.opts.script}, {"torchscript": "model.pt"}) if "torchscript" in targets else None
            onnx_f = None
            if need_onnx and self.ref.is_torch:
                onnx_f = pool.submit(self._convert, "onnx", "torch.onnx", CONVERTERS["torch.onnx"].entry, None, io, dims,
                                     {"opset": self.opts.opset, "legacy": self.opts.legacy_exporter}, {"onnx": "model.onnx"})
            for conv in self._prefetchable(order):
                self.prefetched[conv] = pool.submit(self._convert, "tflite", conv, CONVERTERS[conv].entry, None, io, dims,
                                                    self._options(["tflite"]), self.names[conv])
            if ts is not None:
                self._record(manifest, *ts.result())
            if need_onnx:
                arts, att = onnx_f.result() if onnx_f is not None else self._copy_onnx(io)
                self._record(manifest, arts, att)
                onnx_art = next((a for a in arts if a.format == "onnx"), None)
            self._tf_targets(manifest, order, onnx_art, io, dims)
        for a in self.attempts:
            if a.status == "kept" and a.artifact and manifest.find(a.artifact) is None:
                a.status = "rejected"
        manifest.attempts = self.attempts
        for a in manifest.artifacts:
            tools.update(a.tools)
        manifest.tools = tools
        manifest.save()
        # failures of the torch steps are recorded as attempts with non-kept status
        for a in self.attempts:
            if a.status in FAILED_TO_RUN and a.target in ("torchscript", "onnx") and a not in self.failed:
                self.failed.append(a)
        return ConvertResult(manifest=manifest, failed=self.failed, parity_failed=self.parity_failed)

    # ------------------------------------------------------------------ TF targets
    def _available(self, conv: Converter) -> bool:
        """Usable here? A converter in a managed environment that is not built is skipped by auto, saying why."""
        if not conv.env:
            return True
        from edgeport.backends import isolated_status

        try:
            st = isolated_status(conv.env)
        except Exception as exc:  # noqa: BLE001 - a broken backend folder counts as not installed, and says so
            st = {"installed": False, "detail": str(exc)}
        if not st.get("installed"):
            self.unavailable[conv.name] = f"{st.get('detail') or 'not installed'}: run edgeport backends install {conv.env}"
        return bool(st.get("installed"))

    def _options(self, want: list[str]) -> dict[str, Any]:
        return {"targets": want, "keep_layout": self.opts.keep_layout, "allow_flex": self.opts.allow_flex,
                "rtol": self.opts.rtol}

    def _final_names(self, order: dict[str, list[str]]) -> dict[str, dict[str, str]]:
        """File names per converter: candidates that are compared side by side get their converter's name."""
        tfl = order.get("tflite", [])
        if self.opts.converter != "auto":
            multi = len(tfl) > 1
            return {c: {"saved_model": f"saved_model.{c}" if multi else "saved_model",
                        "tflite": f"model.{c}.tflite" if multi else "model.tflite"} for c in CONVERTERS}
        fast = [c for c in tfl if CONVERTERS[c].fast]
        compete = self.opts.select == "fastest" and len(fast) > 1
        return {c: {"saved_model": "saved_model", "tflite": f"model.{c}.tflite" if compete and c in fast else "model.tflite"}
                for c in CONVERTERS}

    def _prefetchable(self, order: dict[str, list[str]]) -> list[str]:
        """PyTorch -> TFLite converters that will run whatever the ONNX path gives: started right away."""
        tfl = order.get("tflite", [])
        if self.opts.converter != "auto":
            return [c for c in tfl if CONVERTERS[c].source == "pytorch"]
        fast = [c for c in tfl if CONVERTERS[c].fast]
        if self.opts.select != "fastest" or len(fast) < 2:
            return [c for c in fast[:1] if CONVERTERS[c].source == "pytorch"]
        return [c for c in fast if CONVERTERS[c].source == "pytorch"]

    def _candidate(self, conv: str, target: str, want: list[str], names: dict[str, str], ran: dict[str, list[Artifact]],
                   onnx_art: Artifact | None, io: IOSpec, dims: dict) -> Artifact | None:
        """Run ``conv`` once (its result serves every target it made) and return its ``target`` artifact."""
        if conv not in ran:
            spec = CONVERTERS[conv]
            parent = onnx_art if spec.needs_onnx else None
            if spec.needs_onnx and parent is None:
                self.attempts.append(Attempt(target=target, converter=conv, status="skipped",
                                             reason="no ONNX model to start from"))
                ran[conv] = []
                return None
            if conv in self.prefetched:
                arts, att = self.prefetched.pop(conv).result()
            else:
                arts, att = self._convert(target, conv, spec.entry, parent, io, dims, self._options(want), names)
            ran[conv] = arts
            self.attempts.append(att)
            made = next((a for a in arts if a.format == target), None)
            if arts and made is None and att.status == "kept":  # it made the other format only: say why here
                why = next((n for a in arts for n in a.notes if "made no" in n), f"{conv} made no {target}")
                att.status, att.reason, att.artifact = ERROR, why, None
            if made is not None:
                att.artifact = made.name
            return made
        art = next((a for a in ran[conv] if a.format == target), None)
        done = any(a.converter == conv and a.target == target and a.status == "rejected" for a in self.attempts)
        if art is None and (conv, target) in self.dropped and not done:  # a re-run: an identical run measured it
            self.attempts.append(Attempt(target=target, converter=conv, status="rejected",
                                         reason=f"{self.dropped[(conv, target)]} (measured by an earlier identical run)"))
        elif art is None and ran[conv]:
            why = next((n for a in ran[conv] for n in a.notes if "made no" in n), f"{conv} made no {target}")
            self.attempts.append(Attempt(target=target, converter=conv, status=ERROR, reason=why))
        return art

    def _tf_targets(self, manifest: Manifest, order: dict[str, list[str]], onnx_art: Artifact | None, io: IOSpec,
                    dims: dict) -> None:
        ran: dict[str, list[Artifact]] = {}
        kept: dict[str, Artifact] = {}
        for target in ("saved_model", "tflite"):
            if target not in self.opts.targets:
                continue
            if self.opts.converter != "auto":
                self._explicit(manifest, target, order, ran, kept, onnx_art, io, dims)
            else:
                self._auto(manifest, target, order, ran, kept, onnx_art, io, dims)
            fast_missing = [c for c in self.unavailable if target in CONVERTERS[c].targets and CONVERTERS[c].fast]
            for conv in self.unavailable:  # say why a converter that would have been tried was not
                if target in CONVERTERS[conv].targets and (target not in kept or conv in fast_missing):
                    self.attempts.append(Attempt(target=target, converter=conv, status="skipped",
                                                 reason=self.unavailable[conv]))
            if target not in kept and not any(a.target == target and a in self.failed for a in self.attempts):
                tried = [a for a in self.attempts if a.target == target]
                summary = "; ".join(f"{a.converter}: {a.reason}" for a in tried) or "no converter applies"
                self.failed.append(Attempt(target=target, converter=self.opts.converter, status=ERROR, reason=summary))

    def _auto(self, manifest: Manifest, target: str, order: dict[str, list[str]], ran: dict[str, list[Artifact]],
              kept: dict[str, Artifact], onnx_art: Artifact | None, io: IOSpec, dims: dict) -> None:
        """Fast tier first; among its passing .tflite files keep the fastest (``select``), else the first that passes."""
        cands = order.get(target, [])
        fast_tfl = [c for c in order.get("tflite", []) if CONVERTERS[c].fast]
        compete = self.opts.select == "fastest" and len(fast_tfl) > 1
        for tier in ([c for c in cands if CONVERTERS[c].fast], [c for c in cands if not CONVERTERS[c].fast]):
            passing: list[tuple[str, Artifact]] = []
            for conv in tier:
                spec = CONVERTERS[conv]
                want = [t for t in spec.tf_targets if t in self.opts.targets and t not in kept] if spec.fast else [target]
                art = self._candidate(conv, target, want, self.names[conv], ran, onnx_art, io, dims)
                if art is None:
                    continue
                if not art.checks.get("passed"):
                    self._reject(manifest, art, target, conv, art.checks.get("reason") or "failed its checks")
                    continue
                passing.append((conv, art))
                if not (target == "tflite" and compete and spec.fast):
                    break
            if passing:
                passing = self._keep_dynamic(passing)
                conv, art = self._fastest(passing) if len(passing) > 1 else passing[0]
                if art.path != "model.tflite" and target == "tflite":
                    self._rename(art, "model.tflite")
                if not any(a.target == target and a.converter == conv and a.status == "kept" for a in self.attempts):
                    self.attempts.append(Attempt(target=target, converter=conv, status="kept", artifact=art.name,
                                                 reason=f"made in the same run as its {'SavedModel' if target == 'tflite' else '.tflite'}"))
                kept[target] = art
                manifest.put(art)
                return

    def _explicit(self, manifest: Manifest, target: str, order: dict[str, list[str]], ran: dict[str, list[Artifact]],
                  kept: dict[str, Artifact], onnx_art: Artifact | None, io: IOSpec, dims: dict) -> None:
        """Every named converter runs; each passing result is kept as its own artifact."""
        for conv in order.get(target, []):
            want = [t for t in CONVERTERS[conv].tf_targets if t in self.opts.targets and t not in kept]
            art = self._candidate(conv, target, want, self.names[conv], ran, onnx_art, io, dims)
            if art is None:
                continue
            check = art.checks
            if check.get("passed"):
                if len(order.get(target, [])) > 1:
                    art.name = f"{target}.{conv}"
                kept.setdefault(target, art)
                manifest.put(art)
                continue
            reason = check.get("reason") or "failed its checks"
            flex = check.get("flex_ops") or check.get("custom_ops")
            if (flex and not self.opts.allow_flex) or check.get("status", "ok") != "ok" or check.get("parity") is None:
                self._reject(manifest, art, target, conv, reason)
                self.failed.append(self.attempts[-1])
            else:
                art.notes.append(f"parity check failed: {reason}")
                manifest.put(art)
                self.parity_failed.append(art.name)
                kept.setdefault(target, art)

    def _keep_dynamic(self, passing: list[tuple[str, Artifact]]) -> list[tuple[str, Artifact]]:
        """A candidate that keeps the user's dynamic dims (and passed at other sizes) beats one that fixed them."""
        dynamic = [(c, a) for c, a in passing if (a.checks.get("sizes") or {}).get("checked")]
        if not dynamic or len(dynamic) == len(passing):
            return passing
        keeper = dynamic[0][0]
        for conv, art in passing:
            if (conv, art) in dynamic:
                continue
            why = (f"passed, but fixes the dynamic dimensions to the reference sizes; {keeper} keeps them dynamic "
                   "(and passed at other sizes)")
            self._drop(conv, art, why)
            att = next((a for a in self.attempts if a.target == art.format and a.converter == conv), None)
            if att is None:
                att = Attempt(target=art.format, converter=conv, status="rejected")
                self.attempts.append(att)
            att.status, att.reason, att.artifact = "rejected", why, None
        return dynamic

    def _fastest(self, passing: list[tuple[str, Artifact]]) -> tuple[str, Artifact]:
        """Measure each passing .tflite at 1 thread (same feed, same timing loop as ``edgeport bench``, for
        LATENCY_SECONDS after LATENCY_WARMUP runs); keep the fastest."""
        from edgeport.refdata import load_reference
        from edgeport.data.samples import save_samples

        feeds = self.out / STATE_DIR / "latency-feed.npz"
        save_samples(feeds, load_reference(self.out / REFERENCE_NAME)[0][:1])
        p50: dict[str, float] = {}
        for conv, art in passing:
            res = run_in_worker("edgeport.bench.latency:bench_job", {
                "runtime": "tflite", "path": str(self.out / art.path), "io": art.io.to_json(), "feeds": str(feeds),
                "threads": 1, "warmup": LATENCY_WARMUP, "seconds": LATENCY_SECONDS, "placement": False}, timeout=300,
                env={"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"},
                log_path=self.out / STATE_DIR / "logs" / f"latency-{conv}.log")
            if res.ok:
                p50[conv] = float(res.value["latency_ms"]["p50"])
            self._event(Event("tflite", "measured", res.seconds,
                                f"{conv}: p50 {p50[conv]:.3f} ms" if conv in p50 else f"{conv}: {res.reason()}"))
        feeds.unlink(missing_ok=True)
        timed = [(c, a) for c, a in passing if c in p50] or passing[:1]
        best_conv, best = min(timed, key=lambda ca: p50.get(ca[0], float("inf")))
        first_conv, first = timed[0]  # in auto order; kept unless another is clearly faster than timing noise
        if best_conv in p50 and first_conv in p50 and p50[first_conv] <= p50[best_conv] * (1 + LATENCY_TIE):
            best_conv, best = first_conv, first
        summary = ", ".join(f"{c} p50 {v:.3f} ms" for c, v in sorted(p50.items(), key=lambda kv: kv[1]))
        for conv, art in passing:
            att = next((a for a in self.attempts if a.target == "tflite" and a.converter == conv), None)
            if att is None:  # it ran for the SavedModel and made the .tflite in the same run
                att = Attempt(target="tflite", converter=conv, status="kept", artifact=art.name)
                self.attempts.append(att)
            att.latency_ms = p50.get(conv)
            if conv == best_conv:
                art.notes.append(f"auto kept the fastest passing .tflite (1 thread): {summary}")
                att.reason = f"fastest of the passing candidates: {summary}"
                continue
            if conv not in p50 or best_conv not in p50:
                why = "passed, but its latency could not be measured"
            elif p50[conv] < p50[best_conv]:
                why = (f"passed; p50 {p50[conv]:.3f} ms is within {LATENCY_TIE:.0%} of {best_conv}'s "
                       f"{p50[best_conv]:.3f} ms, and {best_conv} comes first in auto order")
            else:
                why = f"passed, but slower: p50 {p50[conv]:.3f} ms against {p50[best_conv]:.3f} ms for {best_conv}"
            self._drop(conv, art, why)
            att.status, att.reason, att.artifact = "rejected", why, None
        return best_conv, best

    def _drop(self, conv: str, art: Artifact, why: str) -> None:
        """Remove a candidate that passed but was not kept; its cache entry remembers why, so a re-run skips it."""
        self.dropped[(conv, art.format)] = why
        p = self.out / art.path
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()
        entry = self.cache.get(art.cache_key)
        if entry is not None:
            entry["artifacts"] = [a for a in entry["artifacts"] if a.get("path") != art.path]
            entry.setdefault("dropped", []).append({"format": art.format, "reason": why})
            self._save_cache()

    def _rename(self, art: Artifact, rel: str) -> None:
        """Move a kept candidate to its final name; its cache entry follows it."""
        old = art.path
        install_path(self.out / old, self.out / rel)
        art.path = rel
        entry = self.cache.get(art.cache_key)
        if entry is not None:
            for a in entry["artifacts"]:
                if a.get("path") == old:
                    a["path"] = rel
            self._save_cache()

    def _reject(self, manifest: Manifest, art: Artifact, target: str, conv: str, reason: str) -> None:
        """A candidate that failed its checks: removed from the folder, recorded with the reason."""
        p = self.out / art.path
        if manifest.find(art.name) is None or manifest.find(art.name).path != art.path:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        for a in self.attempts:
            if a.target == target and a.converter == conv and a.status == "kept":
                a.status, a.reason = "rejected", reason
                break
        else:
            self.attempts.append(Attempt(target=target, converter=conv, status="rejected", reason=reason))
        self._event(Event(target, "rejected", 0.0, f"{conv}: {reason}"))

    def _record(self, manifest: Manifest, arts: list[Artifact], att: Attempt) -> None:
        self.attempts.append(att)
        for a in arts:
            manifest.put(a)

    def _copy_onnx(self, io: IOSpec) -> tuple[list[Artifact], Attempt]:
        """The user's .onnx is copied into the folder (never converted in place). External data files
        (checked to stay inside the model's folder) go under model.onnx.data/, the copy's locations
        pointing there; the manifest records each with its sha256."""
        from edgeport.convert.base import tool_versions
        from edgeport.onnx_data import DATA_DIR, copy_with_data

        dst = self.out / "model.onnx"
        rels: list[str] = []
        if not (dst.exists() and sha256_path(dst) == self.ref.sha256 and not (self.out / DATA_DIR).exists()):
            with staging_dir(self.out) as staging:
                written = copy_with_data(self.ref.path, staging, "model.onnx", data_dir=DATA_DIR)
                if len(written) > 1:
                    install_path(staging / DATA_DIR, self.out / DATA_DIR)
                elif (self.out / DATA_DIR).is_dir():
                    shutil.rmtree(self.out / DATA_DIR)
                rels = [w.relative_to(staging).as_posix() for w in written[1:]]
                install_path(staging / "model.onnx", dst)
        data = {rel: sha256_path(self.out / rel) for rel in rels}
        notes = [f"copied from {self.ref.path}"]
        if data:
            notes.append(f"external data copied into {DATA_DIR}/: {', '.join(sorted(data))}")
        art = Artifact(name="onnx", format="onnx", path="model.onnx", sha256=sha256_path(dst),
                       size_bytes=path_size(dst) + sum(path_size(self.out / r) for r in data),
                       converter="copy", parent=None, io=io, tools=tool_versions("onnx"), notes=notes, data_files=data)
        return [art], Attempt(target="onnx", converter="copy", status="kept", artifact="onnx")


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return sha256_path(path)
    except OSError:
        return None


def convert(ref: ModelRef, out: str | os.PathLike, options: ConvertOptions,
            on_event: Callable[[Event], None] | None = None) -> ConvertResult:
    """Convert ``ref`` into ``out``; see the module docstring. Ctrl-C stops every step's worker at once."""
    from edgeport.worker import stop_workers_on_ctrl_c

    with stop_workers_on_ctrl_c():
        return Pipeline(ref, Path(out), options, on_event).run()


