"""Run ``edgeport validate`` or ``edgeport bench`` on another machine over SSH and bring the JSON back.

    remote = parse_ssh_url("ssh://pi@10.0.0.7:2222")
    result = run_remote(remote, "bench", "model.bundle.tar.gz", ["--runs", "200"])
    result.exit_code, result.data          # the remote command's exit code and its --json document

The remote machine needs only ``pip install edgeport[device]``. The bundle is copied with ``scp`` into a
fresh ``mktemp -d`` folder, the command runs there with ``--json`` into that folder, the JSON is copied
back and the folder removed. ``ssh``/``scp`` run with argument lists (never a local shell) in batch
mode (no password prompts); every word of the remote command line is quoted with :func:`shlex.quote`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edgeport.errors import InputError, RuntimeFailure, UsageError

DEFAULT_SSH_OPTIONS = ("BatchMode=yes", "ConnectTimeout=20", "ServerAliveInterval=15", "ServerAliveCountMax=4")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[^\n\r]*$")
COMMANDS = ("bench", "validate")


@dataclass(frozen=True)
class Remote:
    host: str
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    options: tuple[str, ...] = ()
    edgeport: str = "edgeport"  # the command (or path) that runs edgeport on the remote machine

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    @property
    def scp_destination(self) -> str:
        return self.destination

    def label(self) -> str:
        return f"ssh://{self.destination}" + (f":{self.port}" if self.port else "")

    def _common(self, port_flag: str) -> list[str]:
        args: list[str] = []
        for opt in DEFAULT_SSH_OPTIONS + tuple(self.options):
            args += ["-o", opt]
        if self.port:
            args += [port_flag, str(self.port)]
        if self.identity:
            args += ["-i", self.identity]
        return args

    def ssh_argv(self, remote_command: list[str]) -> list[str]:
        """``ssh`` argv running ``remote_command`` (each word quoted for the remote shell)."""
        return [_tool("ssh"), *self._common("-p"), "-T", "--", self.destination, " ".join(shlex.quote(w) for w in remote_command)]

    def scp_argv(self, src: str, dst: str) -> list[str]:
        return [_tool("scp"), "-q", "-B", *self._common("-P"), "--", src, dst]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise UsageError(f"--remote needs the {name} command, which is not installed here", "install an OpenSSH client (apt-get install openssh-client)")
    return found


def parse_ssh_url(url: str, *, identity: str | None = None, options: list[str] | None = None,
                  edgeport: str = "edgeport") -> Remote:
    """``ssh://[user@]host[:port]`` -> :class:`Remote` (also ``user@host`` without the scheme)."""
    text = url.strip()
    if "://" not in text:
        text = "ssh://" + text
    parts = urlsplit(text)
    hint = "write --remote ssh://user@host[:port]"
    if parts.scheme != "ssh":
        raise UsageError(f"--remote {url!r} is not an ssh:// address", hint)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.password:
        raise UsageError(f"--remote {url!r} has parts edgeport does not use (path, query or password)", hint + "; use keys, not passwords")
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--remote {url!r} has a bad port", hint) from None
    user = unquote(parts.username) if parts.username else None
    if not host or not (_HOST.match(host) or (":" in host and re.fullmatch(r"[0-9A-Fa-f:.]+", host))) or host.startswith("-"):
        raise UsageError(f"--remote {url!r} has no valid host name", hint)
    if user is not None and not _USER.match(user):
        raise UsageError(f"--remote {url!r} has an invalid user name {user!r}", hint)
    opts = tuple(options or ())
    for o in opts:
        if not _OPTION.match(o):
            raise UsageError(f"--ssh-option {o!r} is not KEY=VALUE", "write e.g. --ssh-option StrictHostKeyChecking=accept-new")
    if identity is not None and not Path(identity).is_file():
        raise InputError(f"--ssh-identity {identity} does not exist", "pass the private key file for the remote machine")
    if not edgeport or "\n" in edgeport:
        raise UsageError("--remote-edgeport is empty", "pass the remote edgeport command, e.g. ~/venv/bin/edgeport")
    return Remote(host=host, user=user, port=port, identity=identity, options=opts, edgeport=edgeport)


@dataclass
class RemoteResult:
    exit_code: int
    data: dict[str, Any] | None
    stderr: str = ""
    stdout: str = ""
    remote: dict[str, Any] = field(default_factory=dict)


def _run(argv: list[str], timeout: float, what: str, remote: Remote) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"{what} on {remote.label()} timed out after {timeout:.0f} s", "check the connection, or raise --timeout") from None


def _ssh_failure(proc: subprocess.CompletedProcess, what: str, remote: Remote) -> RuntimeFailure:
    err = " ".join((proc.stderr or proc.stdout or "").split())[-300:] or f"exit code {proc.returncode}"
    hint = "check that ssh works non-interactively: ssh -o BatchMode=yes " + (f"-p {remote.port} " if remote.port else "") + remote.destination
    return RuntimeFailure(f"{what} on {remote.label()} failed: {err}", hint)


def run_remote(remote: Remote, command: str, bundle: str | os.PathLike, args: list[str] | None = None,
               timeout: float = 3600.0) -> RemoteResult:
    """Copy ``bundle`` to ``remote``, run ``edgeport COMMAND BUNDLE --json ... ARGS`` there, return its JSON."""
    if command not in COMMANDS:
        raise UsageError(f"cannot run {command!r} remotely", f"use one of: {', '.join(COMMANDS)}")
    bundle = Path(bundle)
    if not bundle.is_file():
        raise InputError(f"{bundle} does not exist", "make it with edgeport bundle OUT -o FILE")
    setup = _run(remote.ssh_argv(["mktemp", "-d", "/tmp/edgeport-remote-XXXXXXXX"]), 120, "creating a work folder", remote)
    if setup.returncode != 0:
        raise _ssh_failure(setup, "creating a work folder", remote)
    workdir = (setup.stdout.strip().splitlines() or [""])[-1].strip()
    if not re.fullmatch(r"/tmp/edgeport-remote-[A-Za-z0-9]+", workdir):
        raise RuntimeFailure(f"unexpected answer from mktemp on {remote.label()}: {workdir[:80]!r}",
                             "the remote machine needs a POSIX shell with mktemp")
    try:
        remote_bundle = f"{workdir}/model.bundle.tar.gz"
        remote_json = f"{workdir}/result.json"
        # an absolute local path: scp would take a relative "name:with.colon" for host:path
        put = _run(remote.scp_argv(str(bundle.resolve()), f"{remote.scp_destination}:{remote_bundle}"), timeout, "copying the bundle", remote)
        if put.returncode != 0:
            raise _ssh_failure(put, "copying the bundle", remote)
        cmd = [*shlex.split(remote.edgeport), command, remote_bundle, "--json", remote_json, *(args or [])]
        ran = _run(remote.ssh_argv(["env", "COLUMNS=160", *cmd]), timeout, f"edgeport {command}", remote)
        if ran.returncode == 255:
            raise _ssh_failure(ran, f"edgeport {command}", remote)
        if ran.returncode == 127:
            raise RuntimeFailure(f"edgeport is not installed on {remote.label()} (ran {remote.edgeport!r})",
                                 "pip install 'edgeport[device]' there, or pass --remote-edgeport /path/to/edgeport")
        with tempfile.TemporaryDirectory(prefix="edgeport-remote-") as tmp:
            local = Path(tmp) / "result.json"
            got = _run(remote.scp_argv(f"{remote.scp_destination}:{remote_json}", str(local)), 300, "copying the results back", remote)
            data = None
            if got.returncode == 0 and local.is_file():
                try:
                    data = json.loads(local.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = None
        if data is None:
            last = " ".join((ran.stderr or ran.stdout or "").strip().splitlines()[-1:])[:300]
            if ran.returncode == 2:  # the remote edgeport refused its input: keep the bad-input exit code
                raise InputError(f"edgeport {command} on {remote.label()} refused the input: {last.removeprefix('error: ')}",
                                 "fix the options or the bundle as the message says")
            raise RuntimeFailure(f"edgeport {command} on {remote.label()} wrote no results (exit {ran.returncode})" + (f": {last}" if last else ""),
                                 "run it there by hand to see why")
        return RemoteResult(exit_code=ran.returncode, data=data, stderr=ran.stderr, stdout=ran.stdout,
                            remote={"url": remote.label(), "edgeport": remote.edgeport, "command": command,
                                    "exit_code": ran.returncode})
    finally:
        try:
            _run(remote.ssh_argv(["rm", "-rf", "--", workdir]), 60, "removing the work folder", remote)
        except RuntimeFailure:
            pass  # a leftover temporary folder on the device is not worth failing the run for


def bench_remote(target: str | os.PathLike, remote: Remote, opts: Any) -> Any:
    """``edgeport bench`` on ``remote``: bundle TARGET if it is a folder, run there, return a local BenchReport.

    ``opts`` is a :class:`edgeport.bench.runner.BenchOptions`; the gate and the reports are made locally.
    """
    from edgeport.bench.runner import BenchReport
    from edgeport.bundle import is_bundle, pack

    target = Path(target)
    if opts.inputs:
        raise UsageError("--input cannot be used with --remote", "bench a convert output folder or a bundle remotely")
    if not target.exists():
        raise InputError(f"{target} does not exist", "pass an edgeport convert output folder or a bundle")
    args = ["--threads", ",".join(str(t) for t in opts.threads), "--warmup", str(opts.warmup), "--timeout", str(opts.timeout), "--quiet"]
    args += ["--seconds", str(opts.seconds)] if opts.seconds else ["--runs", str(opts.runs)]
    args += ["--profile", "--profile-top", str(opts.profile)] if opts.profile else []
    for a in opts.artifacts or []:
        args += ["--artifact", a]
    for rt in opts.runtimes or []:
        args += ["--runtime", rt]
    with tempfile.TemporaryDirectory(prefix="edgeport-remote-") as tmp:
        if is_bundle(target):
            bundle = target
        elif target.is_dir() or target.name == "manifest.json":
            bundle = Path(tmp) / "model.bundle.tar.gz"
            pack(target if target.is_dir() else target.parent, bundle, opts.artifacts)
        else:
            raise UsageError(f"--remote needs a convert output folder or a bundle, not {target.name}",
                             "run edgeport bundle OUT -o model.bundle.tar.gz first")
        if opts.progress:
            opts.progress(f"running edgeport bench on {remote.label()}")
        result = run_remote(remote, "bench", bundle, args, timeout=max(600.0, opts.timeout * 20))
    report = BenchReport.from_json(result.data, f"the JSON from {remote.label()}")
    report.remote = result.remote
    return report
