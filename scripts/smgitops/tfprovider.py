"""One AWS provider process for all of a run's Terraform commands (local mode by default).

Terraform starts the AWS provider afresh for every command that needs it (``plan``, ``apply``, ``show -json``,
``import``): a 177 MB program that builds the schemas of every resource type of provider 3.39 before it answers,
about 1 s of CPU each time; a deploy runs four such commands, the demo and the test suite hundreds. Terraform can
instead attach to a provider already running: the provider's ``-debug`` mode serves on a local socket and prints a
``TF_REATTACH_PROVIDERS`` value, which Terraform honours in place of starting one. The same binary (the one ``init``
installed from the verified mirror into the working copy) then serves every command of the process that has the
same environment, which is the provider's configuration (credentials, CA bundle, endpoints): a different
environment gets a provider of its own. smgitops' own settings and pytest's name of the running test are left out of
that comparison (the provider reads neither), except the settings that decide how a provider is started.

``SMGITOPS_SHARED_PROVIDER=1`` turns it on, ``=0`` off; unset, it is on in local mode (``AWS_ENDPOINT_URL`` set: the
emulator) and off against AWS, where each Terraform command starts its own provider as Terraform does by default.

What differs from a provider Terraform starts itself, and how it is handled:

* Terraform does not stop an attached provider: :class:`ProviderHost` stops its providers when the process exits,
  and keeps at most :data:`MAX_PROVIDERS` (the least recently used is stopped first).
* Terraform asks the provider to stop its work when it is interrupted (SIGINT, SIGTERM); a provider asked once
  is not used again (:meth:`ProviderHost.discard`).
* A provider that cannot start, or dies, is never a failure of the run: the command runs with a provider of its
  own, as without sharing.

Terraform attaches to a :mod:`smgitops.tfrelay` in front of the provider when gRPC is installed (the ``local``
extra): each Terraform process then asks for provider 3.39's schema once, not once per provider instance it makes.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import queue
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import paths, tfrelay
from .errors import UserError
from .tfrelay import SchemaRelay

REATTACH_VAR = "TF_REATTACH_PROVIDERS"
SHARED_PROVIDER_VAR = "SMGITOPS_SHARED_PROVIDER"
TRACE_VAR = "SMGITOPS_TRACE"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/aws"
# The sub-commands that start the provider (schemas, refresh, changes); init, output, state and force-unlock do not.
PROVIDER_COMMANDS = frozenset({"plan", "apply", "show", "import", "refresh", "destroy", "validate", "console"})
MAX_PROVIDERS = 2
# Provider 3.39 prints its reattach address within about a second; a loaded 2-core runner may take several.
START_TIMEOUT = 60.0


def sharing_wanted(env: Mapping[str, str]) -> bool:
    """Whether Terraform commands with ``env`` attach to a shared provider. Both settings of sharing are checked
    here, in the command's own thread (the provider may then start in another)."""
    tfrelay.relay_asked(env)
    value = env.get(SHARED_PROVIDER_VAR, "")
    if value not in ("", "0", "1"):
        raise UserError(f"{SHARED_PROVIDER_VAR}={value!r}: expected 1 (one provider per run) or 0 (one per command)")
    if REATTACH_VAR in env:  # the caller attaches Terraform to a provider of its own choosing
        return False
    return value == "1" if value else bool(env.get("AWS_ENDPOINT_URL"))


# A resource or data source block of the AWS provider: its type's name.
_AWS_TYPE = re.compile(r'^\s*(?:resource|data)\s+"(aws_[a-z0-9_]+)"', re.MULTILINE)


def _family(type_name: str) -> str:
    """``aws_sagemaker_endpoint`` -> ``aws_sagemaker_``; a one-word type (``aws_region``) is its own family."""
    service, sep, _ = type_name[len("aws_") :].partition("_")
    return f"aws_{service}{sep}"


def schema_families(workdir: Path) -> frozenset[str]:
    """The service families of every AWS resource and data source type in ``workdir``'s configuration and in the
    tool's own roots (bootstrap/ and terraform/ share a provider in local mode): what the schema relay answers."""
    return _families_in(workdir) | _tool_families(paths.tool_home())


def _families_in(root: Path) -> frozenset[str]:
    found: set[str] = set()
    for tf in sorted(root.glob("*.tf")):
        found.update(_family(name) for name in _AWS_TYPE.findall(tf.read_text(encoding="utf-8")))
    return frozenset(found)


@functools.cache
def _tool_families(home: Path) -> frozenset[str]:
    """The families of the tool's own roots, read once per process (they are the installed tool's files); a
    working copy is read on each call, since its sync may have changed it."""
    return _families_in(home / "terraform") | _families_in(home / "bootstrap")


def _pruning_wanted(env: Mapping[str, str]) -> bool:
    """Whether the relay answers only the configuration's service families: in local mode, whose state only these
    roots made (see :mod:`smgitops.tfrelay`)."""
    return bool(env.get("AWS_ENDPOINT_URL")) and tfrelay.relay_asked(env)


def provider_binary(workdir: Path) -> Path | None:
    """The AWS provider ``terraform init`` installed into ``workdir`` (``None`` before init)."""
    base = workdir / ".terraform" / "providers" / PROVIDER_ADDRESS
    found = sorted(base.glob("*/*/terraform-provider-aws*"))
    return found[-1].resolve() if found else None


@dataclass
class _Provider:
    proc: subprocess.Popen[str]
    reattach: str
    relay: SchemaRelay | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def _reattach_value(line: str) -> str | None:
    """The value of a ``TF_REATTACH_PROVIDERS='...'`` line that names the AWS provider, else ``None``."""
    if f"{REATTACH_VAR}='" not in line:
        return None
    value = line.split(f"{REATTACH_VAR}='", 1)[1].rsplit("'", 1)[0]
    try:
        return value if PROVIDER_ADDRESS in json.loads(value) else None
    except ValueError:
        return None


def _relayed(reattach: str, relay: SchemaRelay) -> str:
    """The reattach value that sends Terraform to ``relay`` instead of the provider's own socket."""
    value = json.loads(reattach)
    value[PROVIDER_ADDRESS]["Addr"] = {"Network": "unix", "String": relay.socket}
    return json.dumps(value)


def _upstream_socket(reattach: str) -> str | None:
    """The provider's own Unix socket, from its reattach value (``None``: not a Unix socket)."""
    try:
        addr = json.loads(reattach)[PROVIDER_ADDRESS]["Addr"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(addr["String"]) if addr.get("Network") == "unix" else None


def _trace(env: Mapping[str, str], started: float) -> None:
    """With ``SMGITOPS_TRACE=FILE``, append the provider's start as ``START END provider start`` (seconds since the
    epoch): it is a process Terraform needs, started here instead of by Terraform, and a profile of a command
    counts it with the Terraform processes rather than with the command's own work."""
    trace = env.get(TRACE_VAR, "")
    if trace:
        with contextlib.suppress(OSError), open(trace, "a", encoding="utf-8") as out:
            out.write(f"{started:.6f} {time.time():.6f} provider start\n")


def _start(binary: Path, env: Mapping[str, str], families: frozenset[str] | None = None) -> _Provider | None:
    started = time.time()
    try:
        proc = subprocess.Popen(
            [str(binary), "-debug"],
            cwd=tempfile.gettempdir(),  # the roots give the provider no relative paths; no working copy is held
            env={k: v for k, v in env.items() if k != REATTACH_VAR},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches Terraform (through smgitops), never the provider
        )
    except OSError:
        return None
    handed: queue.Queue[str | None] = queue.Queue(maxsize=1)

    def pump() -> None:
        """Hands over the reattach value (None: the provider ended without one), then reads the provider's output
        until it exits, so that it never blocks on a full pipe."""
        assert proc.stdout is not None
        waiting = True
        for line in proc.stdout:
            value = _reattach_value(line) if waiting else None
            if value is not None:
                handed.put(value)
                waiting = False
        if waiting:
            handed.put(None)

    threading.Thread(target=pump, daemon=True, name="aws-provider-output").start()
    relay = tfrelay.relay_asked(env) and tfrelay.available()  # imports gRPC while the provider starts
    try:
        reattach = handed.get(timeout=START_TIMEOUT)
    except queue.Empty:
        reattach = None
    provider = _Provider(proc, reattach or "")
    if reattach is None:
        provider.stop()
        return None
    upstream = _upstream_socket(reattach)
    if upstream is not None and relay:
        provider.relay = tfrelay.start(upstream, families)
        if provider.relay is not None:
            provider.reattach = _relayed(reattach, provider.relay)
    _trace(env, started)
    return provider


# Variables that are no part of a provider's configuration: the reattach value itself, smgitops' own settings
# (except those that decide how the provider is started: sharing, the schema relay, the trace) and pytest's name of
# the running test. A process whose commands differ only in these (the tests of one pytest worker, each with its own
# SMGITOPS_LOCAL_DIR and PYTEST_CURRENT_TEST) keeps one provider; any other difference (an AWS_* variable, the CA
# bundle, HOME, a proxy) still gets a provider of its own.
_NOT_THE_PROVIDERS = re.compile(
    rf"^(?:{REATTACH_VAR}|PYTEST_CURRENT_TEST|SMGITOPS_(?!SHARED_PROVIDER$|SCHEMA_RELAY$|TRACE$)[A-Z0-9_]*)$"
)


class ProviderHost:
    """The providers this process started, by binary and environment."""

    def __init__(self) -> None:
        self._live: dict[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], _Provider] = {}
        self._lock = threading.Lock()
        self.started = 0  # providers started (each costs a provider start, as one Terraform command would)

    @staticmethod
    def _key(
        binary: Path, env: Mapping[str, str], families: frozenset[str] | None
    ) -> tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]:
        environment = tuple(sorted((k, v) for k, v in env.items() if not _NOT_THE_PROVIDERS.match(k)))
        return str(binary), environment, tuple(sorted(families or ()))

    def reattach(self, workdir: Path, env: Mapping[str, str]) -> str | None:
        """The ``TF_REATTACH_PROVIDERS`` value for a command in ``workdir`` with ``env``; ``None``: let Terraform
        start its own provider (not initialised yet, or the provider would not start)."""
        binary = provider_binary(workdir)
        if binary is None:
            return None
        families = schema_families(workdir) if _pruning_wanted(env) else None
        key = self._key(binary, env, families)
        with self._lock:
            provider = self._live.pop(key, None)
            if provider is None or not provider.alive():
                provider = _start(binary, env, families)
                if provider is None:
                    return None
                self.started += 1
            self._live[key] = provider  # most recently used last
            while len(self._live) > MAX_PROVIDERS:
                self._live.pop(next(iter(self._live))).stop()
            return provider.reattach

    def discard(self, reattach: str) -> None:
        """Stop the provider with this reattach value: Terraform asked it to stop (an interrupted command)."""
        with self._lock:
            for key, provider in list(self._live.items()):
                if provider.reattach == reattach:
                    del self._live[key]
                    provider.stop()

    def relay_of(self, reattach: str) -> SchemaRelay | None:
        """The schema relay behind a reattach value this host handed out (for tests and diagnostics)."""
        with self._lock:
            return next((p.relay for p in self._live.values() if p.reattach == reattach), None)

    def stop_all(self) -> None:
        with self._lock:
            while self._live:
                self._live.popitem()[1].stop()


HOST = ProviderHost()
atexit.register(HOST.stop_all)


def command_env(command: str, workdir: Path, env: Mapping[str, str]) -> dict[str, str] | None:
    """``env`` with the shared provider's reattach value when ``command`` needs the provider and sharing is on;
    ``None`` when the command runs as Terraform runs it by default."""
    if command not in PROVIDER_COMMANDS or not sharing_wanted(env):
        return None
    reattach = HOST.reattach(workdir, env)
    if reattach is None:
        return None
    return {**env, REATTACH_VAR: reattach}


def warm(workdir: Path, env: Mapping[str, str]) -> threading.Thread | None:
    """Start the shared provider for Terraform commands in ``workdir`` with ``env`` now, in the background, so
    that its start (about half a second of a core) overlaps the command's own work before its first Terraform
    process (settings, AWS checks, preparing the working copy) instead of delaying that process. The command's
    first Terraform process attaches to it as usual (:meth:`ProviderHost.reattach` waits for a start under way).
    Nothing happens when sharing is off, or before ``init`` installed the provider; a provider that does not
    start is no failure (the command's Terraform processes then start their own)."""
    if not sharing_wanted(env) or provider_binary(workdir) is None:
        return None
    wanted = dict(env)
    thread = threading.Thread(target=HOST.reattach, args=(workdir, wanted), daemon=True, name="aws-provider-warm")
    thread.start()
    return thread


def pid_of(reattach: str) -> int | None:
    """The process ID a reattach value names (for tests and diagnostics)."""
    try:
        entry = json.loads(reattach)[PROVIDER_ADDRESS]
        return int(entry["Pid"])
    except (ValueError, KeyError, TypeError):
        return None
