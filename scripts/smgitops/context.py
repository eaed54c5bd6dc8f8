"""The context of one command: what its stages share, built once by the command and handed down.

A command builds one :class:`Context` (``Context.for_release(release, ...)``, or ``Context(...)`` when the release is
only known further down, as for ``deploy`` and ``rollback``, which bind it with :meth:`Context.bound_to`) and passes
it to the stages instead of ``settings=``, ``session=``, ``runner=``, ``clock=``, ``sleep=`` and ``env=`` lists:

* ``env``: the environment to read (None: the process's);
* ``settings``: resolved at most once, on first use (:func:`smgitops.localmode.resolve_settings`: the
  ``SMGITOPS_*`` variables, or in local mode the outputs of ``bootstrap/`` on the emulator);
* ``aws``: one :class:`smgitops.aws.Aws` on one session, made on first use, with ``sleep`` for its waits;
* ``clock`` (wall time, the canary's), ``sleep``, ``monotonic`` (durations, waits), ``runner`` (Terraform's
  processes);
* ``workspace(release)``: the release's :class:`smgitops.workspace.Workspace`, made once per release file.

Tests build one with the parts they inject (a recording runner, virtual time, given settings).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import Clock, Sleep, real_sleep, utc_now
from .terraform import ProcessRunner, subprocess_runner

if TYPE_CHECKING:
    from .aws import Aws
    from .release import Release
    from .settings import Settings
    from .workspace import Workspace

Monotonic = Callable[[], float]


@dataclass(eq=False)
class Context:
    """What a command's stages share (see the module docstring). ``settings`` and ``aws`` may be given (tests);
    otherwise they are made on first use, once."""

    region: str | None = None
    repo_root: Path | None = None
    env: Mapping[str, str] | None = None
    runner: ProcessRunner = subprocess_runner
    clock: Clock = utc_now
    sleep: Sleep = real_sleep
    monotonic: Monotonic = time.monotonic
    given_settings: Settings | None = field(default=None, repr=False)
    given_aws: Aws | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, init=False, repr=False)
    _aws: Aws | None = field(default=None, init=False, repr=False)
    _workspaces: dict[Path, Workspace] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    @classmethod
    def for_release(
        cls,
        release: Release,
        *,
        env: Mapping[str, str] | None = None,
        runner: ProcessRunner = subprocess_runner,
        clock: Clock = utc_now,
        sleep: Sleep = real_sleep,
        monotonic: Monotonic = time.monotonic,
        settings: Settings | None = None,
        aws: Aws | None = None,
    ) -> Context:
        """The context of a command about ``release`` (its region and repository)."""
        return cls(
            release.region,
            release.repo_root,
            env,
            runner,
            clock,
            sleep,
            monotonic,
            given_settings=settings,
            given_aws=aws,
        )

    def bound_to(self, release: Release) -> Context:
        """This context for ``release``: itself when it is of the same region and repository (or not bound yet, the
        first time), else a copy with the same injected parts and settings and AWS of its own."""
        if self.region is None:
            with self._lock:
                if self.region is None:
                    self.region, self.repo_root = release.region, release.repo_root
                    return self
        if self.region == release.region and self.repo_root == release.repo_root:
            return self
        return dataclasses.replace(
            self, region=release.region, repo_root=release.repo_root, given_settings=None, given_aws=None
        )

    def with_clock(self, clock: Clock) -> Context:
        """This context with another wall clock (the demo's canary bakes in virtual time), sharing its settings,
        AWS adapter and workspaces."""
        twin = dataclasses.replace(self, clock=clock, given_settings=self.settings, given_aws=self.aws)
        twin._workspaces, twin._lock = self._workspaces, self._lock
        return twin

    def _region(self) -> str:
        if self.region is None:
            raise RuntimeError("this context is not bound to a release yet (Context.bound_to)")
        return self.region

    @property
    def aws(self) -> Aws:
        """The AWS adapter of this command: one session, made on first use."""
        if self.given_aws is not None:
            return self.given_aws
        with self._lock:
            if self._aws is None:
                from .aws import Aws, make_session

                self._aws = Aws(make_session(self._region()), sleep=self.sleep)
            return self._aws

    @property
    def settings(self) -> Settings:
        """The run's settings, resolved on first use and only then."""
        if self.given_settings is not None:
            return self.given_settings
        with self._lock:
            if self._settings is None:
                from .localmode import resolve_settings

                self._settings = resolve_settings(self._region(), self.repo_root, self.env, connect=lambda: self.aws)
            return self._settings

    @property
    def artifact_bucket(self) -> str:
        """Only the artifact bucket (``publish`` needs nothing else): ``SMGITOPS_ARTIFACT_BUCKET``, or in local mode
        the settings' when that variable is not set (:func:`smgitops.localmode.artifact_bucket`)."""
        from .localmode import artifact_bucket

        return artifact_bucket(self._region(), self.repo_root, self.env, resolve=lambda: self.settings)

    def workspace(self, release: Release) -> Workspace:
        """The workspace of ``release``'s environment, made once per release file (in local mode bootstrapping the
        emulator on first use, through :attr:`settings`)."""
        key = release.path.resolve()
        with self._lock:
            found = self._workspaces.get(key)
            if found is None:
                from .workspace import Workspace

                Workspace.warm_provider(release, self.env)  # its start overlaps resolving the settings
                found = Workspace.create(release, self.settings, lambda: self.aws, runner=self.runner, env=self.env)
                self._workspaces[key] = found
            return found
