"""A small typed runner for the Terraform CLI.

Every Terraform call of the pipeline goes through :class:`Terraform`: one subprocess per call, output captured
and, for the long sub-commands (plan, apply, ...), Terraform's progress (its stdout) echoed line by line on stderr as
it comes (``[apply] ...``; ``SMGITOPS_PROGRESS=quiet`` turns that off; stdout stays free for JSON), a failure raised
as :class:`~smgitops.errors.ExternalError` carrying Terraform's own error text. The process
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
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from . import paths, tfprovider
from .errors import ExternalError, SmgitopsError, UserError

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


class Interrupted(SmgitopsError):
    """SIGINT or SIGTERM arrived while Terraform ran: it was passed on, and Terraform has exited since.

    Terraform stops gracefully on the first interrupt: the operations in flight finish, the state is written and
    the state lock released. A second signal is passed on as well (Terraform then exits at once)."""

    exit_code = 130

    def __init__(self, command: str, signum: int, returncode: int, count: int = 1) -> None:
        self.command = command
        self.signum = signum
        self.returncode = returncode
        self.count = count  # signals passed on; from the second, Terraform exits without finishing
        self.signal_name = signal.Signals(signum).name
        super().__init__(
            f"{self.signal_name} during terraform {command}: passed to Terraform ({count}x), which exited {returncode}"
        )


_FORWARDED = (signal.SIGINT, signal.SIGTERM)


# Sub-commands whose progress is streamed while they run: the long ones, whose output a person follows. ``init`` says
# only that it initialised; ``show -json`` and ``output -json`` are data, parsed afterwards. Only stdout is echoed:
# Terraform writes its diagnostics to stderr, and a failure reports them once, translated where it can be (an
# environment fault is one line, see :mod:`smgitops.envfaults`).
STREAMED = frozenset({"plan", "apply", "import", "destroy", "refresh"})


def stderr_echo(args: Sequence[str]) -> Callable[[str], None] | None:
    """Where a call's progress is echoed as it comes: stderr, each line under the sub-command's name
    (``[apply] aws_sagemaker_endpoint.this: Modifying...``); None for data sub-commands or when
    ``SMGITOPS_PROGRESS=quiet``. stdout stays free for a command's JSON."""
    from .console import quiet, say

    command = args[1] if len(args) > 1 else ""
    if command not in STREAMED or quiet():
        return None
    return lambda line: say(line, label=command)


def _pump(stream: Any, into: list[str], echo: Callable[[str], None] | None) -> None:
    """Read ``stream`` to its end line by line, keeping every line and echoing it at once."""
    try:
        for line in stream:
            into.append(line)
            if echo is not None:
                text = _ANSI.sub("", line.rstrip("\r\n"))
                with contextlib.suppress(Exception):  # a closed stderr must not lose Terraform's result
                    echo(text)
    finally:
        stream.close()


_DEFAULT_ECHO: Any = object()


def subprocess_runner(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    echo: Callable[[str], None] | None = _DEFAULT_ECHO,
) -> Completed:
    """Run a process to completion, capturing stdout and stderr as text, and echoing each line of its stdout as it
    comes (``echo``; by default :func:`stderr_echo`: stderr, under the sub-command's name).

    SIGINT and SIGTERM received meanwhile are passed to the process (its own session, so a terminal's Ctrl-C
    reaches it once, from here) and waited for; then :class:`Interrupted` is raised. Terraform interrupted this
    way finishes what it is doing, writes its state and releases the state lock instead of being orphaned."""
    if echo is _DEFAULT_ECHO:
        echo = stderr_echo(args)
    try:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise UserError(f"{args[0]} not found on PATH: install Terraform >= 1.10 (see README, Set-up)") from exc
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _FORWARDED:
            previous[sig] = signal.signal(sig, forward)
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, out, echo), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, None), daemon=True),
    ]
    try:
        for reader in readers:
            reader.start()
        proc.wait()  # signals arriving meanwhile run ``forward`` (here, in the main thread) and the wait goes on
        for reader in readers:
            reader.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise Interrupted(args[1] if len(args) > 1 else args[0], received[0], proc.returncode, len(received))
    return Completed(tuple(args), proc.returncode, "".join(out), "".join(err))


@dataclass(frozen=True)
class Call:
    """One recorded Terraform invocation: the sub-command, its arguments and how long it took."""

    command: str
    args: tuple[str, ...]
    cwd: Path
    returncode: int
    seconds: float


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Sub-commands that take the state lock (``state`` covers ``state rm``/``mv``; ``state list`` does not lock but
# a lock error cannot come from it either; ``state pull``, which only reads, is not even asked who holds it).
_LOCKING = frozenset({"plan", "apply", "import", "state", "refresh", "destroy"})
_STALE = re.compile(r"Saved plan is stale", re.IGNORECASE)
# Terraform's S3 backend when the state's MD5 in DynamoDB is not the state's (after its ~10 s of re-reads).
_STALE_DIGEST = re.compile(r"state data in S3 does not have the expected content")


def error_text(result: Completed) -> str:
    """Terraform's diagnostics from a failed call, without box drawing or colour codes."""
    text = _ANSI.sub("", result.stderr.strip() or result.stdout.strip())
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip("│╷╵ ").rstrip()
        lines.append(stripped)
    cleaned = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", cleaned)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a Terraform state lock (the fields Terraform writes into the lock)."""

    id: str
    operation: str
    who: str
    created: str
    path: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LockInfo:
        return cls(
            id=str(doc.get("ID", "")),
            operation=str(doc.get("Operation", "")).removeprefix("OperationType").lower(),
            who=str(doc.get("Who", "")),
            created=str(doc.get("Created", "")),
            path=str(doc.get("Path", "")),
        )

    def describe(self) -> str:
        who, since, op = self.who or "unknown", self.created or "unknown", self.operation or "unknown"
        return f"held by {who} since {since} ({op}, lock ID {self.id})"


_FRACTION = re.compile(r"(\.\d+)")


def lock_created(lock: LockInfo) -> datetime | None:
    """When the lock was taken: Terraform writes RFC 3339 (``2026-11-30T15:40:01.123456789Z``) in the lock, and
    Go's default layout (``2026-11-30 15:40:01.123456789 +0000 UTC``) in its messages."""
    text = _FRACTION.sub(lambda m: m.group(1)[:7], lock.created.strip())  # Python parses at most microseconds
    text = text.removesuffix(" UTC").replace("Z", "+00:00")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC)
        except ValueError:
            continue
    return None


def local_lock_owner() -> str:
    """The ``Who`` Terraform writes into a lock it takes from this process: ``user@hostname``."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = os.environ.get("USER", "")
    return f"{user}@{socket.gethostname()}"


def _own_lost_lock(lock: LockInfo, began: datetime) -> bool:
    """A lock this host and user took after ``began`` (the command's start, the lock then free): the command's own.
    The state is also serialised per checkout by the workspace's file lock, so no other run of this checkout took it.
    """
    created = lock_created(lock)
    return lock.who == local_lock_owner() and created is not None and created >= began - timedelta(seconds=1)


_LOCK_ERROR = re.compile(r"Error acquiring the state lock", re.IGNORECASE)
_LOCK_FIELD = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*?)\s*$", re.MULTILINE)


def lock_info_from_error(text: str) -> LockInfo | None:
    """The ``Lock Info:`` block of Terraform's "Error acquiring the state lock" message, if there is one."""
    if not _LOCK_ERROR.search(text):
        return None
    block = text[text.find("Lock Info:") :] if "Lock Info:" in text else ""
    fields = {m.group(1): m.group(2) for m in _LOCK_FIELD.finditer(_ANSI.sub("", block).replace("│", ""))}
    return LockInfo.from_doc(fields)


class StateLocked(UserError):
    """The state lock stayed held by another run for the whole ``-lock-timeout``: nothing was changed (exit 2)."""

    def __init__(self, lock: LockInfo | None, waited: str, unlock_hint: str) -> None:
        self.lock = lock
        held = lock.describe() if lock is not None else "held by another run"
        super().__init__(
            f"the Terraform state lock is {held}; waited {waited}, nothing was changed. If that run is still "
            f"going, let it finish and run this again; if it was cancelled or its runner was lost, release the "
            f"lock with: {unlock_hint}"
        )


class StaleStateDigest(UserError):
    """The state in S3 does not match its digest in DynamoDB: a run died between writing the two (exit 2)."""

    def __init__(self, command: str, unlock_hint: str, result: Completed) -> None:
        self.result = result
        super().__init__(
            f"terraform {command}: the state in S3 does not match its digest in DynamoDB; a run was killed between "
            f"writing the state and its digest, and nothing was changed. Once no run is going, run {unlock_hint}: "
            f"it releases a dead run's lock and sets the digest to the state's.\n{error_text(result)}"
        )


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
    # Terraform and the AWS provider are Go programs that start, build the provider's schemas and exit: collecting
    # garbage four times less often saves about a tenth of their CPU (measured over a deploy journey) for a few tens
    # of MB more memory. A GOGC the caller set is kept.
    env.setdefault("GOGC", "400")
    if extra:
        env.update(extra)
    return env


DEFAULT_LOCK_TIMEOUT = "120s"
_DURATION = re.compile(r"[0-9]{1,5}(s|m)")


def lock_timeout_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``SMGITOPS_LOCK_TIMEOUT`` (``90s``, ``5m``) or 120 s: how long a command waits for the state lock."""
    value = (os.environ if environ is None else environ).get("SMGITOPS_LOCK_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_LOCK_TIMEOUT
    if not _DURATION.fullmatch(value):
        raise UserError(f"SMGITOPS_LOCK_TIMEOUT={value!r}: give seconds or minutes, e.g. 120s or 5m")
    return value


@dataclass
class Terraform:
    """Terraform in one working directory (``-chdir`` is not used: the process runs *in* ``workdir``)."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=base_env)
    runner: ProcessRunner = subprocess_runner
    clock: Callable[[], float] = time.monotonic
    calls: list[Call] = field(default_factory=list)
    # How long plan/apply wait for the state lock: a pull request's plan and a merge's apply may meet.
    lock_timeout: str = field(default_factory=lambda: lock_timeout_from_env())
    # Asked before a command that takes the state lock: who holds it now (None when free). Set by the workspace.
    lock_probe: Callable[[], LockInfo | None] | None = None
    # Releases a lock by its ID (set by the workspace: both the S3 lock file and the DynamoDB item, each if it
    # carries that ID); without one, ``terraform force-unlock``.
    lock_release: Callable[[LockInfo], None] | None = None
    # The command that releases a lock left behind by a dead run, named in the lock error.
    unlock_hint: str = "terraform force-unlock LOCK_ID (in the working copy)"
    # Where waiting for a held lock is announced (stderr by default).
    notify: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr, flush=True))

    # -- plumbing -----------------------------------------------------------------------------------------------

    def run(self, command: str, *args: str, ok_codes: tuple[int, ...] = (0,), _again: bool = False) -> Completed:
        argv = (TERRAFORM_BIN, command, *args)
        locking = command in _LOCKING and "-lock=false" not in args and (command, *args[:1]) != ("state", "pull")
        free_before = True
        if locking and self.lock_probe is not None:
            holder = self.lock_probe()
            free_before = holder is None
            if holder is not None:
                self.notify(f"waiting up to {self.lock_timeout} for the Terraform state lock, {holder.describe()}")
        began = datetime.now(UTC)
        started = self.clock()
        shared = tfprovider.command_env(command, self.workdir, self.env)
        try:
            result = self.runner(argv, cwd=self.workdir, env=self.env if shared is None else shared)
        except Interrupted:
            if shared is not None:  # Terraform asked the provider to stop: none of its work is to be trusted now
                tfprovider.HOST.discard(shared[tfprovider.REATTACH_VAR])
            raise
        self.calls.append(Call(command, tuple(args), self.workdir, result.returncode, self.clock() - started))
        if result.returncode not in ok_codes:
            from .envfaults import terraform_fault  # AWS unreachable, credentials, a missing bootstrap resource

            fault = terraform_fault(command, result, self.env)
            if fault is not None:
                raise fault
            if locking and _LOCK_ERROR.search(result.stderr + result.stdout):
                lock = lock_info_from_error(result.stderr + result.stdout)
                if not _again and free_before and lock is not None and _own_lost_lock(lock, began):
                    # The lock request reached AWS but its answer was lost; the SDK's retry then found the lock
                    # this very command had taken, and Terraform waited for itself. Nobody else holds it.
                    self.notify(
                        f"terraform {command} took the state lock itself (lock ID {lock.id}, {lock.created}) and then "
                        "waited for it: the answer to its lock request was lost and the retry found the lock taken; "
                        f"released it and ran terraform {command} again"
                    )
                    if self.lock_release is not None:
                        self.lock_release(lock)
                    else:
                        self.force_unlock(lock.id)
                    return self.run(command, *args, ok_codes=ok_codes, _again=True)
                raise StateLocked(
                    lock, self.lock_timeout, self.unlock_hint.replace("LOCK_ID", lock.id if lock else "LOCK_ID")
                )
            if _STALE_DIGEST.search(result.stderr + result.stdout) and "LOCK_ID" not in self.unlock_hint:
                raise StaleStateDigest(command, self.unlock_hint, result)
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
        self,
        *,
        out: Path | None = None,
        variables: Mapping[str, str] | None = None,
        destroy: bool = False,
        lock: bool = True,
    ) -> bool:
        """``plan -detailed-exitcode``; returns True when the plan has changes. ``lock=False`` reads the state
        without taking its lock (``-lock=false``): a read-only plan, which credentials without write access need."""
        args = ["-no-color", "-input=false", "-detailed-exitcode"]
        args.append(f"-lock-timeout={self.lock_timeout}" if lock else "-lock=false")
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
        return _parse_json(result, "show -json")

    def apply(self, planfile: Path | None = None, *, variables: Mapping[str, str] | None = None) -> Completed:
        """``apply`` of a saved plan; without one, ``-auto-approve`` with the given variables."""
        args = ["-no-color", "-input=false", f"-lock-timeout={self.lock_timeout}"]
        if planfile is not None:
            args.append(str(planfile))
        else:
            args.append("-auto-approve")
            args += _var_args(variables)
        return self.run("apply", *args)

    def import_(self, address: str, resource_id: str, *, variables: Mapping[str, str] | None = None) -> Completed:
        """``import`` of an existing remote object into ``address`` (which must not be in the state yet)."""
        args = ["-no-color", "-input=false", f"-lock-timeout={self.lock_timeout}", *_var_args(variables)]
        return self.run("import", *args, address, resource_id)

    def state_list(self) -> list[str]:
        """Addresses in the state (``state list``)."""
        return [line.strip() for line in self.run("state", "list").stdout.splitlines() if line.strip()]

    def state_rm(self, *addresses: str) -> Completed:
        """Forget ``addresses`` (the remote objects stay as they are)."""
        return self.run("state", "rm", f"-lock-timeout={self.lock_timeout}", *addresses)

    def state_pull(self) -> dict[str, Any]:
        """The raw state (``state pull``): read from the backend without starting a provider, unlike ``show -json``."""
        return _parse_json(self.run("state", "pull"), "state pull")

    def force_unlock(self, lock_id: str) -> Completed:
        """``force-unlock -force`` of the lock with this ID (both the S3 lock file and the DynamoDB item)."""
        return self.run("force-unlock", "-force", lock_id)

    def output_json(self) -> dict[str, Any]:
        """``output -json``, unwrapped to ``{name: value}``."""
        raw = _parse_json(self.run("output", "-no-color", "-json"), "output -json")
        return {name: item.get("value") if isinstance(item, dict) else item for name, item in raw.items()}


def _var_args(variables: Mapping[str, str] | None) -> list[str]:
    return [f"-var={name}={value}" for name, value in sorted((variables or {}).items())]


def _parse_json(result: Completed, command: str) -> dict[str, Any]:
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ExternalError(f"terraform {command} printed something that is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ExternalError(f"terraform {command} printed {type(doc).__name__}, expected an object")
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
