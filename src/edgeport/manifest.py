"""OUT/manifest.json: what was made, from what, by which tool, in which layout.

The manifest is the contract between ``convert`` and everything after it (``validate``, ``bench``,
``quantize``, ``bundle``, a device). It is written last and atomically: if it exists, every file it
names was complete when it was written, and :meth:`Manifest.verify` proves they still are.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeport import __version__
from edgeport.errors import ManifestError
from edgeport.fsutil import atomic_write_json, sha256_path
from edgeport.spec import IOSpec

SCHEMA = "edgeport.manifest/1"
MANIFEST_NAME = "manifest.json"
REFERENCE_NAME = "reference.npz"


@dataclass
class Artifact:
    """One converted model file (or folder) in the output directory."""

    name: str  # unique key in this manifest, e.g. "onnx", "tflite", "tflite-int8"
    format: str  # a name in edgeport.formats.FORMATS
    path: str  # relative to the output directory, posix
    sha256: str = ""
    size_bytes: int = 0
    converter: str = ""  # e.g. "torch.onnx(dynamo)", "onnx2tf", "litert-torch"
    options: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    parent: str | None = None  # artifact name this was made from ("pytorch" for the model itself)
    variant: str = "fp32"  # fp32, fp16, dynamic-int8, int8, int16x8, ...
    io: IOSpec = field(default_factory=IOSpec)
    ops: dict[str, int] = field(default_factory=dict)  # operator -> count (tflite, onnx)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cache_key: str = ""
    checks: dict[str, Any] = field(default_factory=dict)  # post-conversion checks: ops, flex, parity
    data_files: dict[str, str] = field(default_factory=dict)  # ONNX external data beside ``path``: relative path -> sha256

    def to_json(self) -> dict[str, Any]:
        extra = {"data_files": dict(self.data_files)} if self.data_files else {}
        return {
            "name": self.name, "format": self.format, "path": self.path, "sha256": self.sha256,
            "size_bytes": self.size_bytes, "converter": self.converter, "options": self.options,
            "tools": self.tools, "parent": self.parent, "variant": self.variant, "io": self.io.to_json(),
            "ops": self.ops, "notes": self.notes, "seconds": round(self.seconds, 3), "cache_key": self.cache_key,
            "checks": self.checks, **extra,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Artifact":
        try:
            return Artifact(
                name=str(d["name"]), format=str(d["format"]), path=str(d["path"]), sha256=str(d.get("sha256", "")),
                size_bytes=int(d.get("size_bytes", 0)), converter=str(d.get("converter", "")),
                options=dict(d.get("options", {})), tools=dict(d.get("tools", {})), parent=d.get("parent"),
                variant=str(d.get("variant", "fp32")), io=IOSpec.from_json(d.get("io", {})),
                ops=dict(d.get("ops", {})), notes=list(d.get("notes", [])), seconds=float(d.get("seconds", 0.0)),
                cache_key=str(d.get("cache_key", "")), checks=dict(d.get("checks", {})),
                data_files={str(k): str(v) for k, v in dict(d.get("data_files", {})).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ManifestError(f"malformed artifact entry in manifest: {exc}", "re-run edgeport convert") from None


@dataclass
class Attempt:
    """One converter path tried for a target format, kept or rejected, and why."""

    target: str
    converter: str
    status: str  # edgeport.status: kept, rejected, error, crash, timeout, skipped
    reason: str = ""
    seconds: float = 0.0
    artifact: str | None = None
    log_tail: str = ""
    latency_ms: float | None = None  # 1-thread p50 measured when auto chose among passing candidates

    def to_json(self) -> dict[str, Any]:
        d = {"target": self.target, "converter": self.converter, "status": self.status, "reason": self.reason,
             "seconds": round(self.seconds, 3), "artifact": self.artifact}
        if self.latency_ms is not None:
            d["latency_ms"] = round(self.latency_ms, 4)
        if self.log_tail:
            d["log_tail"] = self.log_tail[-2000:]
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Attempt":
        return Attempt(target=str(d.get("target", "")), converter=str(d.get("converter", "")),
                       status=str(d.get("status", "")), reason=str(d.get("reason", "")),
                       seconds=float(d.get("seconds", 0.0)), artifact=d.get("artifact"), log_tail=str(d.get("log_tail", "")),
                       latency_ms=float(d["latency_ms"]) if isinstance(d.get("latency_ms"), (int, float)) else None)


@dataclass
class Manifest:
    root: Path
    source: str = ""  # the MODEL reference as given
    source_sha256: str = ""
    io: IOSpec = field(default_factory=IOSpec)  # the PyTorch model's inputs and outputs (reference layout)
    dims: dict[str, int] = field(default_factory=dict)  # sizes used for dynamic dims in the reference
    reference: dict[str, Any] = field(default_factory=dict)  # {"path", "sha256", "runtime", "samples"}
    artifacts: list[Artifact] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)
    created: str = ""
    edgeport_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ access
    def artifact(self, name: str) -> Artifact:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise ManifestError(f"no artifact named {name!r} in {self.root / MANIFEST_NAME}",
                            f"choose one of: {', '.join(a.name for a in self.artifacts) or '(none)'}")

    def find(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def put(self, art: Artifact) -> None:
        self.artifacts = [a for a in self.artifacts if a.name != art.name] + [art]

    def abspath(self, art: Artifact | str) -> Path:
        rel = art.path if isinstance(art, Artifact) else art
        p = (self.root / rel).resolve()
        root = self.root.resolve()
        if p != root and root not in p.parents:
            raise ManifestError(f"manifest path {rel!r} points outside {self.root}", "re-create the manifest with edgeport convert")
        return p

    @property
    def reference_path(self) -> Path:
        return self.abspath(self.reference.get("path", REFERENCE_NAME))

    # ------------------------------------------------------------------ io
    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "edgeport_version": self.edgeport_version,
            "created": self.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {"source": self.source, "source_sha256": self.source_sha256, "io": self.io.to_json(), "dims": self.dims},
            "reference": self.reference,
            "artifacts": [a.to_json() for a in self.artifacts],
            "attempts": [a.to_json() for a in self.attempts],
            "tools": self.tools,
            "extra": self.extra,
        }

    def save(self) -> Path:
        """Write manifest.json atomically. Call after every file it names is complete."""
        path = self.root / MANIFEST_NAME
        atomic_write_json(path, self.to_json())
        return path

    @staticmethod
    def load(root: str | os.PathLike) -> "Manifest":
        root = Path(root)
        path = root / MANIFEST_NAME if root.is_dir() or not root.suffix == ".json" else root
        if path.name == MANIFEST_NAME:
            root = path.parent
        if not root.exists():
            raise ManifestError(f"{root} does not exist", "pass the output folder of edgeport convert")
        if not path.is_file():
            partial = any(root.glob(".staging-*")) if root.is_dir() else False
            why = " (an interrupted convert left it incomplete)" if partial else ""
            raise ManifestError(f"no manifest.json in {root}{why}", "run edgeport convert MODEL -o " + str(root) + " first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ManifestError(f"{path} is not valid JSON: {str(exc)[:120]}", "re-run edgeport convert to re-create it") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ManifestError(f"{path} is not an edgeport manifest (schema {got!r}, expected {SCHEMA!r})",
                                "re-run edgeport convert to re-create it")
        try:
            model = data.get("model", {})
            m = Manifest(
                root=root,
                source=str(model.get("source", "")),
                source_sha256=str(model.get("source_sha256", "")),
                io=IOSpec.from_json(model.get("io", {})),
                dims={str(k): int(v) for k, v in dict(model.get("dims", {})).items()},
                reference=dict(data.get("reference", {})),
                artifacts=[Artifact.from_json(a) for a in data.get("artifacts", [])],
                attempts=[Attempt.from_json(a) for a in data.get("attempts", [])],
                tools=dict(data.get("tools", {})),
                created=str(data.get("created", "")),
                edgeport_version=str(data.get("edgeport_version", "")),
                extra=dict(data.get("extra", {})),
            )
        except ManifestError:
            raise
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ManifestError(f"{path} is malformed: {exc}", "re-run edgeport convert to re-create it") from None
        names = [a.name for a in m.artifacts]
        if len(set(names)) != len(names):
            raise ManifestError(f"{path} lists an artifact name twice", "re-run edgeport convert to re-create it")
        for a in m.artifacts:
            m.abspath(a)  # rejects paths escaping the folder
            for rel in a.data_files:
                m.abspath(rel)
        return m

    def verify(self, names: list[str] | None = None) -> list[str]:
        """Return problems: missing files or sha256 mismatches (empty when everything matches)."""
        problems = []
        for a in self.artifacts:
            if (names is not None and a.name not in names) or a.format == "pytorch":
                continue
            p = self.abspath(a)
            if not p.exists():
                problems.append(f"{a.name}: {a.path} is missing")
            elif a.sha256 and sha256_path(p) != a.sha256:
                problems.append(f"{a.name}: {a.path} does not match its sha256 (modified after convert)")
            for rel, digest in a.data_files.items():
                dp = self.abspath(rel)
                if not dp.is_file():
                    problems.append(f"{a.name}: its external data file {rel} is missing")
                elif sha256_path(dp) != digest:
                    problems.append(f"{a.name}: its external data file {rel} does not match its sha256 (modified after convert)")
        if self.reference.get("path"):
            rp = self.reference_path
            if not rp.exists():
                problems.append(f"reference: {self.reference['path']} is missing")
            elif self.reference.get("sha256") and sha256_path(rp) != self.reference["sha256"]:
                problems.append(f"reference: {self.reference['path']} does not match its sha256")
        return problems
