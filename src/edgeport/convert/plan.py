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
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from edgeport import __version__
from edgeport.convert import CONVERTERS, TARGETS
from edgeport.convert.base import StepJob
from edgeport.errors import ConversionError, EdgeportError, OutputError, UsageError
from edgeport.fsutil import atomic_write_json, install_path, path_size, sha256_path, staging_dir
from edgeport.manifest import MANIFEST_NAME, REFERENCE_NAME, Artifact, Attempt, Manifest
from edgeport.models import ModelRef
from edgeport.spec import IOSpec
from edgeport.worker import run_in_worker

STATE_DIR = ".edgeport"
CACHE_NAME = "cache.json"
TFLITE_CONVERTERS = ("litert-torch", "onnx2tf", "onnx-tf")
SAVED_MODEL_CONVERTERS = ("onnx2tf", "onnx-tf")


@dataclass(frozen=True)
class ConvertOptions:
    targets: tuple[str, ...] = ("torchscript", "onnx")
    converter: str = "auto"  # auto, or a comma list of converter names
    opset: int = 18
    legacy_exporter: bool = False
    script: bool = False
    keep_layout: bool = False
    allow_flex: bool = False
    samples: int = 3
    rtol: float = 1e-4  # parity gate for tflite/saved_model candidates (relative to the output's max magnitude)
    timeout: float = 1800.0
    use_cache: bool = True


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


def _converter_order(targets: tuple[str, ...], converter: str, torch_source: bool, onnx_tf_installed: bool) -> dict[str, list[str]]:
    """Which converters to try, in order, for saved_model and tflite."""
    order: dict[str, list[str]] = {}
    if converter == "auto":
        if "saved_model" in targets:
            order["saved_model"] = ["onnx2tf"] + (["onnx-tf"] if onnx_tf_installed else [])
        if "tflite" in targets:
            tfl = ["onnx2tf", "litert-torch"] if "saved_model" in targets else ["litert-torch", "onnx2tf"]
            if not torch_source:
                tfl = [c for c in tfl if c != "litert-torch"]
            order["tflite"] = tfl + (["onnx-tf"] if onnx_tf_installed else [])
        return order
    names = [c.strip() for c in converter.split(",") if c.strip()]
    for n in names:
        if n not in TFLITE_CONVERTERS:
            raise UsageError(f"unknown converter {n!r}", f"use auto or one of: {', '.join(TFLITE_CONVERTERS)}")
        if n == "litert-torch" and not torch_source:
            raise UsageError("litert-torch converts from PyTorch, but the source is an ONNX file", "use --converter onnx2tf or auto")
    if "saved_model" in targets:
        sm = [n for n in names if n in SAVED_MODEL_CONVERTERS]
        if not sm:
            raise UsageError(f"--converter {converter} makes no SavedModel", "add onnx2tf or onnx-tf, or use --converter auto")
        order["saved_model"] = sm
    if "tflite" in targets:
        order["tflite"] = names
    return order


class Pipeline:
    def __init__(self, ref: ModelRef, out: Path, options: ConvertOptions, on_event: Callable[[Event], None] | None = None):
        self.ref = ref
        self.out = Path(out).expanduser().absolute()  # workers run in their own folder
        self.opts = options
        self.on_event = on_event or (lambda e: None)
        self.cache: dict[str, Any] = {}
        self.attempts: list[Attempt] = []
        self.artifacts: list[Artifact] = []
        self.failed: list[Attempt] = []
        self.parity_failed: list[str] = []

    # ------------------------------------------------------------------ folder
    def _prepare_out(self) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise OutputError(f"output path {out} exists and is a file", "choose a folder with -o")
        if out.is_dir():
            entries = [p.name for p in out.iterdir()]
            ours = STATE_DIR in entries or MANIFEST_NAME in entries
            if entries and not ours:
                raise OutputError(f"output folder {out} is not empty and was not made by edgeport",
                                  "choose a new or empty folder with -o; edgeport never overwrites other files")
        try:
            (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
            probe = out / STATE_DIR / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except PermissionError:
            raise OutputError(f"output folder {out} is not writable", "choose a writable folder with -o") from None
        except OSError as exc:
            raise OutputError(f"cannot write to {out}: {exc.strerror or exc}", "choose another folder with -o, or free space") from None
        cache_file = out / STATE_DIR / CACHE_NAME
        if cache_file.exists():
            try:
                self.cache = json.loads(cache_file.read_text())
                if not isinstance(self.cache, dict):
                    self.cache = {}
            except (ValueError, OSError):
                self.cache = {}
        for stale in out.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        path = self.out / STATE_DIR / "lock"
        fh = open(path, "w")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(f"another edgeport convert is writing to {self.out}", "wait for it to finish, or use another -o") from None
            yield
        finally:
            fh.close()

    def _save_cache(self) -> None:
        atomic_write_json(self.out / STATE_DIR / CACHE_NAME, self.cache)

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
        if hit and ref_file.exists() and sha256_path(ref_file) == hit["sha256"]:
            self.on_event(Event("reference", "cached", 0.0, hit.get("runtime", "")))
            return IOSpec.from_json(hit["io"]), hit["dims"], hit
        self.on_event(Event("reference", "start"))
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
        value["key"] = key
        self.cache[key] = value
        self._save_cache()
        self.on_event(Event("reference", "done", res.seconds, value.get("runtime", "")))
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
                self.on_event(Event(step, "cached", 0.0, converter))
                return arts, Attempt(target=step, converter=converter, status="kept", reason="reused from cache",
                                     artifact=arts[0].name if arts else None)
        self.on_event(Event(step, "start", 0.0, converter))
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
                status = {"crash": "crashed", "timeout": "timeout"}.get(res.status, "failed")
                att = Attempt(target=step, converter=converter, status=status, reason=res.reason(), seconds=res.seconds,
                              log_tail=res.log_tail)
                self.on_event(Event(step, "failed", res.seconds, f"{converter}: {res.reason()}"))
                return [], att
            arts = [Artifact.from_json(a) for a in res.value.get("artifacts", [])]
            checks: dict[str, dict] = {}
            for a in arts:
                if a.format in ("tflite", "saved_model"):
                    ok, check = self._check(staging / a.path, a)
                    checks[a.name] = check
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
        self.cache[key] = {"artifacts": [a.to_json() for a in installed]}
        self._save_cache()
        self.on_event(Event(step, "done", res.seconds, converter))
        return installed, Attempt(target=step, converter=converter, status="kept", seconds=res.seconds,
                                  artifact=installed[0].name if installed else None)

    def _check(self, path: Path, art: Artifact) -> tuple[bool, dict]:
        res = run_in_worker("edgeport.convert.check:run", {
            "path": str(path), "format": art.format, "io": art.io.to_json(), "reference": str(self.out / REFERENCE_NAME),
            "allow_flex": self.opts.allow_flex, "rtol": self.opts.rtol,
        }, timeout=min(self.opts.timeout, 600), log_path=self.out / STATE_DIR / "logs" / f"check-{art.name}.log")
        if not res.ok:
            return False, {"passed": False, "status": res.status, "reason": f"running the converted model failed: {res.reason()}"}
        value = dict(res.value)
        value.setdefault("status", "ok")
        return bool(value.get("passed")), value

    # ------------------------------------------------------------------ main
    def run(self) -> ConvertResult:
        for t in self.opts.targets:
            if t not in TARGETS:
                raise UsageError(f"unknown format {t!r} in --to", f"use any of: {', '.join(TARGETS)}")
        torch_source = self.ref.is_torch
        if not torch_source and "torchscript" in self.opts.targets:
            raise UsageError("cannot make TorchScript from an ONNX file", "drop torchscript from --to")
        order = _converter_order(self.opts.targets, self.opts.converter, torch_source, _onnx_tf_installed())
        created = not self.out.exists()
        try:
            self._prepare_out()
            with self._lock():
                (self.out / MANIFEST_NAME).unlink(missing_ok=True)
                try:
                    return self._run(order)
                except OSError as exc:  # writing into OUT failed: a full disk, a quota, a read-only remount
                    raise OutputError(f"cannot write to {self.out}: {exc.strerror or exc}",
                                      "free space (or choose another folder with -o) and run the same command again") from None
        except EdgeportError as exc:
            # Bad input: leave nothing behind in a folder this run created.
            if created and exc.exit_code == 2 and self.out.is_dir():
                shutil.rmtree(self.out, ignore_errors=True)
            raise
        except BaseException:
            if created and self.out.is_dir() and not (self.out / MANIFEST_NAME).exists() and not _has_artifacts(self.out):
                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _run(self, order: dict[str, list[str]]) -> ConvertResult:
        with staging_dir(self.out) as staging:
            io, dims, refinfo = self._reference(staging)
        manifest = Manifest(root=self.out, source=self.ref.ref, source_sha256=self.ref.sha256, io=io, dims=dims)
        manifest.reference = {"path": REFERENCE_NAME, "sha256": refinfo["sha256"], "runtime": refinfo.get("runtime", "torch_eager"),
                              "samples": refinfo.get("samples", 1)}
        tools = dict(refinfo.get("tools", {}))
        if self.ref.is_torch:
            manifest.put(Artifact(name="pytorch", format="pytorch", path="", converter="source", parent=None,
                                  options={"model": self.ref.to_json()}, io=io, tools=dict(refinfo.get("tools", {}))))
        targets = self.opts.targets
        need_onnx = "onnx" in targets or any(c in ("onnx2tf", "onnx-tf") for cs in order.values() for c in cs)
        onnx_art: Artifact | None = None
        if "torchscript" in targets:
            arts, att = self._convert("torchscript", "torchscript", CONVERTERS["torchscript"]["entry"], None, io, dims,
                                      {"script": self.opts.script}, {"torchscript": "model.pt"})
            self._record(manifest, arts, att)
        if need_onnx:
            if self.ref.is_torch:
                arts, att = self._convert("onnx", "torch.onnx", CONVERTERS["torch.onnx"]["entry"], None, io, dims,
                                          {"opset": self.opts.opset, "legacy": self.opts.legacy_exporter}, {"onnx": "model.onnx"})
            else:
                arts, att = self._copy_onnx(io)
            self._record(manifest, arts, att)
            onnx_art = next((a for a in arts if a.format == "onnx"), None)
        # TensorFlow targets
        kept: dict[str, Artifact] = {}
        ran: dict[str, list[Artifact]] = {}
        for target in ("saved_model", "tflite"):
            if target not in targets:
                continue
            explicit = self.opts.converter != "auto"
            for conv in order.get(target, []):
                if target in kept and not explicit:
                    break
                if conv in ran:
                    arts = ran[conv]
                else:
                    spec = CONVERTERS[conv]
                    parent = onnx_art if spec["from"] == "onnx" else None
                    if spec["from"] == "onnx" and parent is None:
                        att = Attempt(target=target, converter=conv, status="skipped", reason="no ONNX model to start from")
                        self.attempts.append(att)
                        continue
                    conv_targets = [t for t in spec["targets"] if t in targets and t not in kept]
                    options = {"targets": conv_targets, "keep_layout": self.opts.keep_layout, "allow_flex": self.opts.allow_flex}
                    multi = explicit and len(order.get("tflite", [])) > 1
                    names = {"saved_model": "saved_model" if not multi else f"saved_model.{conv}",
                             "tflite": "model.tflite" if not multi else f"model.{conv}.tflite"}
                    arts, att = self._convert(target, conv, spec["entry"], parent, io, dims, options, names)
                    ran[conv] = arts
                    if not arts:
                        self.attempts.append(att)
                        continue
                    self.attempts.append(att)
                art = next((a for a in arts if a.format == target), None)
                if art is None:
                    continue
                check = art.checks
                passed = bool(check.get("passed"))
                if passed:
                    if explicit and len(order.get(target, [])) > 1:
                        art.name = f"{target}.{conv}"
                    kept.setdefault(target, art)
                    manifest.put(art)
                    continue
                reason = check.get("reason") or "failed its checks"
                flex = check.get("flex_ops") or check.get("custom_ops")
                if explicit:
                    if flex and not self.opts.allow_flex:
                        self._reject(manifest, art, target, conv, reason)
                        self.failed.append(self.attempts[-1])
                    elif check.get("status", "ok") != "ok" or check.get("parity") is None:
                        self._reject(manifest, art, target, conv, reason)
                        self.failed.append(self.attempts[-1])
                    else:
                        art.notes.append(f"parity check failed: {reason}")
                        manifest.put(art)
                        self.parity_failed.append(art.name)
                        kept.setdefault(target, art)
                else:
                    self._reject(manifest, art, target, conv, reason)
            if target not in kept and not any(a.target == target and a in self.failed for a in self.attempts):
                tried = [a for a in self.attempts if a.target == target]
                summary = "; ".join(f"{a.converter}: {a.reason}" for a in tried) or "no converter applies"
                failure = Attempt(target=target, converter=self.opts.converter, status="failed", reason=summary)
                self.failed.append(failure)
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
            if a.status in ("failed", "crashed", "timeout") and a.target in ("torchscript", "onnx") and a not in self.failed:
                self.failed.append(a)
        return ConvertResult(manifest=manifest, failed=self.failed, parity_failed=self.parity_failed)

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
        self.on_event(Event(target, "rejected", 0.0, f"{conv}: {reason}"))

    def _record(self, manifest: Manifest, arts: list[Artifact], att: Attempt) -> None:
        self.attempts.append(att)
        for a in arts:
            manifest.put(a)

    def _copy_onnx(self, io: IOSpec) -> tuple[list[Artifact], Attempt]:
        """The user's .onnx is copied into the folder (never converted in place)."""
        from edgeport.convert.base import tool_versions

        dst = self.out / "model.onnx"
        if not (dst.exists() and sha256_path(dst) == self.ref.sha256):
            with staging_dir(self.out) as staging:
                shutil.copyfile(self.ref.path, staging / "model.onnx")
                install_path(staging / "model.onnx", dst)
        art = Artifact(name="onnx", format="onnx", path="model.onnx", sha256=sha256_path(dst), size_bytes=path_size(dst),
                       converter="copy", parent=None, io=io, tools=tool_versions("onnx"),
                       notes=[f"copied from {self.ref.path}"])
        return [art], Attempt(target="onnx", converter="copy", status="kept", artifact="onnx")


def _has_artifacts(out: Path) -> bool:
    return any(p.name not in (STATE_DIR,) and not p.name.startswith(".staging-") for p in out.iterdir())


def _onnx_tf_installed() -> bool:
    from edgeport.backends import isolated_status

    try:
        return bool(isolated_status("onnx-tf").get("installed"))
    except Exception:  # noqa: BLE001 - a broken backend folder counts as not installed, and says so on use
        return False


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return sha256_path(path)
    except OSError:
        return None


def convert(ref: ModelRef, out: str | os.PathLike, options: ConvertOptions,
            on_event: Callable[[Event], None] | None = None) -> ConvertResult:
    """Convert ``ref`` into ``out``; see the module docstring."""
    return Pipeline(ref, Path(out), options, on_event).run()


