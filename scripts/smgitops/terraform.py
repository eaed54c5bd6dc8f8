"""A small typed runner for the Terraform CLI.

Every Terraform call of the pipeline goes through :class:`Terraform`: one subprocess per call, output captured,
a failure raised as :class:`~smgitops.errors.ExternalError` carrying Terraform's own error text. The process
runner is injected (``runner=``) so tests can count or fake calls; :attr:`Terraform.calls` records every
sub-command with its duration.

The environment always pins ``TF_CLI_CONFIG_FILE`` to the set-up's CLI config (hashicorp/aws only from the
verified provider mirror), ``TF_IN_AUTOMATION=1``, ``TF_INPUT=0`` and ``CHECKPOINT_DISABLE=1``, and drops
``TF_CLI_ARGS*``, ``TF_DATA_DIR`` and ``TF_WORKSPACE``; callers add what their mode needs (``SSL_CERT_FILE`` for the
emulator's certificate in local mode).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import paths
from .errors import ExternalError, UserError

TERRAFORM_BIN = "terraform"


@dataclass(frozen=True)
class Completed:
    """What one Terraform process returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class ProcessRunner(Protocol):
    def __call__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed: ...


def subprocess_runner(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
    """Run a process to completion, capturing stdout and stderr as text."""
    try:
        proc = subprocess.run(
            list(args), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise UserError(f"{args[0]} not found on PATH: install Terraform >= 1.10 (see README, Set-up)") from exc
    return Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class Call:
    """One recorded Terraform invocation: the sub-command, its arguments and how long it took."""

    command: str
    args: tuple[str, ...]
    cwd: Path
    returncode: int
    seconds: float


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STALE = re.compile(r"Saved plan is stale", re.IGNORECASE)


def error_text(result: Completed) -> str:
    """Terraform's diagnostics from a failed call, without box drawing or colour codes."""
    text = _ANSI.sub("", result.stderr.strip() or result.stdout.strip())
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip("│╷╵ ").rstrip()
        lines.append(stripped)
    cleaned = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", cleaned)


class TerraformError(ExternalError):
    """A Terraform call failed; the message is Terraform's error text."""

    def __init__(self, command: str, result: Completed) -> None:
        self.command = command
        self.result = result
        super().__init__(f"terraform {command} failed (exit {result.returncode}):\n{error_text(result)}")

    @property
    def stale_plan(self) -> bool:
        return bool(_STALE.search(self.result.stderr + self.result.stdout))


def base_env(extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Terraform call: the caller's, with the pipeline's fixed settings on top."""
    env = dict(os.environ if environ is None else environ)
    # Variables that would silently change what a run means: extra CLI arguments (TF_CLI_ARGS, e.g. a
    # -refresh=false on every plan), another data directory shared between environments, another workspace.
    for name in list(env):
        if name.startswith("TF_CLI_ARGS") or name in ("TF_DATA_DIR", "TF_WORKSPACE"):
            del env[name]
    env["TF_CLI_CONFIG_FILE"] = str(paths.terraform_cli_config())
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env["CHECKPOINT_DISABLE"] = "1"  # no version check against HashiCorp's checkpoint service
    if extra:
        env.update(extra)
    return env


@dataclass
class Terraform:
    """Terraform in one working directory (``-chdir`` is not used: the process runs *in* ``workdir``)."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=base_env)
    runner: ProcessRunner = subprocess_runner
    clock: Callable[[], float] = time.monotonic
    calls: list[Call] = field(default_factory=list)
    # How long plan/apply wait for the state lock: a pull request's plan and a merge's apply may meet.
    lock_timeout: str = "120s"

    # -- plumbing -----------------------------------------------------------------------------------------------

    def run(self, command: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> Completed:
        argv = (TERRAFORM_BIN, command, *args)
        started = self.clock()
        result = self.runner(argv, cwd=self.workdir, env=self.env)
        self.calls.append(Call(command, tuple(args), self.workdir, result.returncode, self.clock() - started))
        if result.returncode not in ok_codes:
            raise TerraformError(command, result)
        return result

    def count(self, command: str) -> int:
        return sum(1 for c in self.calls if c.command == command)

    # -- sub-commands -------------------------------------------------------------------------------------------

    def init(self, *, backend_config: Sequence[str] = (), backend: bool = True) -> Completed:
        """``init`` enforcing the committed dependency lock file (``-lockfile=readonly``)."""
        args = ["-no-color", "-input=false", "-reconfigure", "-lockfile=readonly"]
        if not backend:
            args.append("-backend=false")
        args += [f"-backend-config={item}" for item in backend_config]
        return self.run("init", *args)

    def plan(
        self, *, out: Path | None = None, variables: Mapping[str, str] | None = None, destroy: bool = False
    ) -> bool:
        """``plan -detailed-exitcode``; returns True when the plan has changes."""
        args = ["-no-color", "-input=false", "-detailed-exitcode", f"-lock-timeout={self.lock_timeout}"]
        if out is not None:
            args.append(f"-out={out}")
        if destroy:
            args.append("-destroy")
        args += _var_args(variables)
        result = self.run("plan", *args, ok_codes=(0, 2))
        return result.returncode == 2

    def show_json(self, planfile: Path | None = None) -> dict[str, Any]:
        """``show -json`` of a saved plan (or of the current state when ``planfile`` is None)."""
        args = ["-no-color", "-json"]
        if planfile is not None:
            args.append(str(planfile))
        result = self.run("show", *args)
        return _parse_json(result, "show")

    def apply(self, planfile: Path | None = None, *, variables: Mapping[str, str] | None = None) -> Completed:
        """``apply`` of a saved plan; without one, ``-auto-approve`` with the given variables."""
        args = ["-no-color", "-input=false", f"-lock-timeout={self.lock_timeout}"]
        if planfile is not None:
            args.append(str(planfile))
        else:
            args.append("-auto-approve")
            args += _var_args(variables)
        return self.run("apply", *args)

    def output_json(self) -> dict[str, Any]:
        """``output -json``, unwrapped to ``{name: value}``."""
        raw = _parse_json(self.run("output", "-no-color", "-json"), "output")
        return {name: item.get("value") if isinstance(item, dict) else item for name, item in raw.items()}


def _var_args(variables: Mapping[str, str] | None) -> list[str]:
    return [f"-var={name}={value}" for name, value in sorted((variables or {}).items())]


def _parse_json(result: Completed, command: str) -> dict[str, Any]:
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ExternalError(f"terraform {command} -json printed something that is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ExternalError(f"terraform {command} -json printed {type(doc).__name__}, expected an object")
    return doc


# -- working copies -----------------------------------------------------------------------------------------------
#
# Terraform writes next to its configuration: `.terraform/` (backend settings, provider links), plan files, and in
# local mode the generated override. A root in the checkout is shared by every environment and every concurrent
# run, so Terraform never runs there: each environment gets a working copy of the root (files only, refreshed
# before every run) under `<repository>/.smgitops/work/<environment>/root/`, with its own `.terraform/`, and a
# file lock serialises runs of one environment in one checkout.

_SKIP_NAMES = {".terraform", ".terraform.tfstate.lock.info"}
_SKIP_SUFFIXES = (".tfplan", ".tfstate", ".tfstate.backup")


def _is_source(path: Path) -> bool:
    name = path.name
    return not (name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES) or name.endswith("_override.tf"))


def _source_files(source: Path) -> list[Path]:
    files: list[Path] = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(not _is_source(Path(part)) for part in rel.parts) or not path.is_file():
            continue
        files.append(rel)
    return files


@dataclass
class WorkingCopy:
    """A private copy of a Terraform root: ``source`` files mirrored into ``root`` before each run."""

    source: Path
    root: Path

    def sync(self, *, override: str | None = None) -> None:
        """Mirror the source root (dropping files deleted there); write or remove ``local_override.tf``."""
        if not self.source.is_dir():
            raise UserError(f"{self.source}: Terraform root not found")
        self.root.mkdir(parents=True, exist_ok=True)
        wanted = _source_files(self.source)
        wanted_set = set(wanted)
        for existing in _source_files(self.root):
            if existing not in wanted_set:
                (self.root / existing).unlink()
        for rel in wanted:
            src, dst = self.source / rel, self.root / rel
            data = src.read_bytes()
            if not dst.exists() or dst.read_bytes() != data:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(data)
        override_path = self.root / "local_override.tf"
        if override is None:
            override_path.unlink(missing_ok=True)
        elif not override_path.exists() or override_path.read_text(encoding="utf-8") != override:
            override_path.write_text(override, encoding="utf-8")

    def fingerprint(self, *extra: str) -> str:
        """Hash of everything ``terraform init`` depends on: the root's files (with the override) and ``extra``."""
        digest = hashlib.sha256()
        for rel in _source_files(self.root):
            digest.update(str(rel).encode() + b"\0" + (self.root / rel).read_bytes() + b"\0")
        override_path = self.root / "local_override.tf"
        if override_path.exists():
            digest.update(b"override\0" + override_path.read_bytes())
        for item in extra:
            digest.update(b"\0" + item.encode())
        return digest.hexdigest()

    def init_if_needed(self, tf: Terraform, *, backend_config: Sequence[str] = (), extra: Sequence[str] = ()) -> bool:
        """Run ``init`` unless the last successful one saw the very same inputs; True if it ran.

        ``init`` is the slowest call of a run (provider installation, backend set-up) and changes nothing when
        neither the root, the lock file nor the backend configuration changed.
        """
        inputs = [*backend_config, *extra]
        for item in backend_config:
            candidate = Path(item)
            if "=" not in item and candidate.is_file():
                inputs.append(candidate.read_text(encoding="utf-8"))
        stamp = self.root / ".terraform" / "smgitops-init.sha256"
        wanted = self.fingerprint(*inputs)
        if stamp.exists() and stamp.read_text(encoding="utf-8").strip() == wanted:
            return False
        stamp.unlink(missing_ok=True)
        tf.init(backend_config=backend_config)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(wanted + "\n", encoding="utf-8")
        return True


_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) held for the duration of the block; re-entrant in one process."""
    key = path.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    with key.open("a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
