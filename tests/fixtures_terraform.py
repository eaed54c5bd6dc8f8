"""Terraform / local-mode fixtures: scratch repositories holding the project's roots, and a local stack.

* ``make_scratch_repo(dest)``: copies ``releases/``, ``data/``, ``terraform/``, ``bootstrap/`` into ``dest`` and
  makes it a git repository with one commit (callers set the git identity: the ``git_identity`` fixture).
* ``edit_release(path, mutate)``: change a release file through its parsed mapping.
* ``CountingRunner``: a Terraform process runner that records every call (``.commands``), for asserting how
  many ``init``/``plan``/``apply`` a flow costs.
* ``local_stack(tmp)``: an emulator with ``bootstrap/`` applied (set-up delays off, so each apply takes seconds)
  and the process environment pointed at it; yields a :class:`LocalStack`. The process's emulator is bootstrapped
  once and restored to that snapshot for each stack (``private=True`` for an emulator of the test's own).
* ``scratch_repo`` (function): a scratch repository in ``tmp_path``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops.settings import ENV_VARS, Settings
from smgitops.terraform import Completed, subprocess_runner

ROOT = Path(__file__).resolve().parents[1]
REPO_DIRS = ("releases", "data", "terraform", "bootstrap")
_IGNORE = shutil.ignore_patterns(".terraform", "*_override.tf", "*.tfstate*", "*.tfplan", "__pycache__")


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def make_scratch_repo(dest: Path, source: Path = ROOT) -> Path:
    """A fresh git repository with the project's release files, data and Terraform roots, committed."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in REPO_DIRS:
        shutil.copytree(source / name, dest / name, ignore=_IGNORE)
    (dest / ".gitignore").write_text("/out/\n/.smgitops/\n*_override.tf\n.terraform/\n", encoding="utf-8")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", ".")
    git(dest, "commit", "-q", "-m", "scratch repository")
    return dest


def edit_release(path: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite a release file after ``mutate`` changed its mapping (comments are not kept)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(doc)
    path.write_text(yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False), encoding="utf-8")


class _NoAliasDumper(yaml.SafeDumper):
    """Release files refuse anchors and aliases: write shared values out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass
class CountingRunner:
    """Runs Terraform for real and records each call's sub-command and arguments."""

    commands: list[tuple[str, ...]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __call__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
        self.commands.append(tuple(args[1:]))
        started = time.monotonic()
        try:
            return subprocess_runner(args, cwd=cwd, env=env)
        finally:
            self.seconds.append(time.monotonic() - started)

    def count(self, command: str) -> int:
        return sum(1 for c in self.commands if c and c[0] == command)

    def reset(self) -> None:
        self.commands.clear()
        self.seconds.clear()

    def timings(self) -> list[tuple[str, float]]:
        return [(c[0] if c else "", round(t, 2)) for c, t in zip(self.commands, self.seconds, strict=True)]


@dataclass
class LocalStack:
    emulator: Any  # smgitops.emulator.server.Emulator
    settings: Settings
    env: dict[str, str]
    local_dir: Path

    @property
    def admin(self) -> Any:
        return self.emulator.admin

    def settings_env(self, environment: str = "dev") -> dict[str, str]:
        """The settings as the ``SMGITOPS_*`` variables CI sets for a job of ``environment`` (the execution role is
        a per-environment variable)."""
        values = {var: getattr(self.settings, name) for name, var in ENV_VARS.items()}
        values[ENV_VARS["execution_role_arn"]] = self.settings.execution_role_for(environment)
        return values


# One emulator per test process with bootstrap/ applied once (real Terraform), kept as the snapshot "bootstrapped";
# each local_stack restores that snapshot and a copy of the bootstrap's local state instead of bootstrapping again.
_SHARED: dict[str, Any] = {}
BOOTSTRAPPED = "bootstrapped"


def _point_at(mp: pytest.MonkeyPatch, server: Any, local_dir: Path) -> dict[str, str]:
    env = server.env()
    for key, value in env.items():
        mp.setenv(key, value)
    for var in ENV_VARS.values():
        mp.delenv(var, raising=False)
    mp.setenv("SMGITOPS_LOCAL_DIR", str(local_dir))  # bootstrap state beside the test, not in .cache
    return dict(env)


def _bootstrapped_emulator() -> tuple[Any, Path]:
    """This process's shared emulator and the local directory of its bootstrap, started on first use."""
    if "server" not in _SHARED:
        from smgitops.emulator.server import Emulator
        from smgitops.localmode import ensure_bootstrap

        server = Emulator(tls=True)
        server.start()
        atexit.register(server.stop)
        base = Path(tempfile.mkdtemp(prefix="smgitops-bootstrapped-"))
        atexit.register(shutil.rmtree, base, True)
        with pytest.MonkeyPatch.context() as mp:
            _point_at(mp, server, base / "local")
            server.admin.set_update_delay(0)
            ensure_bootstrap(region="us-east-1", repo_root=ROOT)
        server.admin.snapshot(BOOTSTRAPPED)
        _SHARED.update(server=server, local=base / "local")
    return _SHARED["server"], _SHARED["local"]


def keep_snapshot(stack: LocalStack, name: str) -> None:
    """Keep the shared emulator's whole state as it is now under ``name``, with a copy of the stack's local state:
    a later ``local_stack(..., snapshot=name)`` in this process starts from exactly there (for a set-up several
    tests share, such as a release already applied, built once by real Terraform instead of once per test)."""
    server, _ = _bootstrapped_emulator()
    if stack.emulator is not server:
        raise ValueError("only the shared emulator keeps snapshots for later stacks")
    kept = Path(tempfile.mkdtemp(prefix=f"smgitops-snapshot-{name}-")) / "local"
    atexit.register(shutil.rmtree, kept.parent, True)
    shutil.copytree(stack.local_dir, kept, symlinks=True)
    server.admin.snapshot(name)
    _SHARED.setdefault("kept", {})[name] = kept


def kept_snapshot(name: str) -> bool:
    """Whether this process kept a snapshot of that name (``keep_snapshot``)."""
    return name in _SHARED.get("kept", {})


@contextmanager
def local_stack(
    tmp: Path,
    repo_root: Path = ROOT,
    *,
    runner: Any = subprocess_runner,
    private: bool = False,
    snapshot: str = BOOTSTRAPPED,
) -> Iterator[LocalStack]:
    """An emulator with ``bootstrap/`` applied, and this process's environment pointed at it.

    By default the process's shared emulator, restored to its bootstrapped snapshot (everything an earlier test
    created is gone) with a fresh copy of the bootstrap's local state in ``tmp``: what a private emulator would
    be, without a bootstrap apply per test. ``snapshot`` names another one this process kept (``keep_snapshot``).
    ``private=True`` (or a runner other than the real one, to count the bootstrap's Terraform calls) starts a
    private emulator and applies ``bootstrap/`` to it."""
    from fixtures_emulator import start_emulator
    from smgitops.localmode import ensure_bootstrap

    local_dir = tmp / "local"
    if private or runner is not subprocess_runner:
        with start_emulator() as server, pytest.MonkeyPatch.context() as mp:
            _point_at(mp, server, local_dir)
            # Terraform's provider polls a Creating/Updating endpoint every 30 s: make transitions complete at once.
            server.admin.set_update_delay(0)
            settings = ensure_bootstrap(region="us-east-1", repo_root=repo_root, runner=runner)
            yield LocalStack(server, settings, dict(os.environ), local_dir)
        return
    server, bootstrapped_local = _bootstrapped_emulator()
    kept = bootstrapped_local if snapshot == BOOTSTRAPPED else _SHARED["kept"][snapshot]
    server.admin.restore(snapshot)  # as kept: update delay 0, no faults; bootstrapped: no endpoints
    shutil.copytree(kept, local_dir, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, server, local_dir)
        settings = ensure_bootstrap(region="us-east-1", repo_root=repo_root, runner=runner)
        yield LocalStack(server, settings, dict(os.environ), local_dir)


@pytest.fixture()
def scratch_repo(tmp_path: Path, git_identity: dict[str, str]) -> Path:
    return make_scratch_repo(tmp_path / "repo")
