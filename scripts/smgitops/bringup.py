"""Working hours: ``smgitops bring-up [RELEASE...] [--releases DIR] [--now ISO-8601] [--json]``.

The evening teardown deletes every managed endpoint; a release with ``schedule.up`` comes back the next working
morning without anybody pushing. The deploy workflow's scheduled run calls ``bring-up`` per environment with that
environment's apply role. For each release:

* **due** when today (in ``teardown.timezone``) is one of ``schedule.days``, ``schedule.up`` has come and the
  teardown cut-off (``teardown.at``) has not: the release file as committed is applied (plan + apply + verify +
  "plan after apply is empty", :func:`smgitops.deploy.apply_release`, as a rollback to HEAD would) with the
  digests already published -- **no training**; a missing archive stops it (exit 1, "publish first"), other bytes
  under a key too (exit 2). An endpoint already up is verified, not applied again, so the workflow may run several
  times a morning. After the cut-off nothing is applied (:class:`smgitops.teardown.CutoffGuard`).
* **skipped**, with the reason, otherwise: no ``schedule.up``, not a listed day, before ``up``, past the cut-off.

``--now`` (else ``SMGITOPS_NOW``, else the real clock: :func:`smgitops.clock.cutoff_clock`) is the instant judged.
``--due`` decides only (no AWS call): the releases due now, one line each; with ``--github-output`` also
``matrix=[{"release", "environment"}]`` and ``any=true|false``, so the workflow starts an environment's job (and asks
its reviewers) only when that environment's release is due.

:func:`scheduled_down` is what ``smgitops verify`` (the drift workflow) asks: is an absent endpoint down on schedule
(outside its working hours), so "down until HH:MM (schedule)" and not drift?
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .clock import Clock
from .errors import SmgitopsError
from .release import WEEKDAYS

if TYPE_CHECKING:
    from .context import Context
    from .release import Release

# -- the clock of working hours ------------------------------------------------------------------------------------


def _hhmm(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


def _days(release: Release) -> str:
    assert release.schedule is not None
    days = release.schedule.days
    if days == WEEKDAYS[:5]:
        return "mon-fri"
    if days == WEEKDAYS:
        return "every day"
    return ", ".join(days)


@dataclass(frozen=True)
class WorkingDay:
    """A release's working hours as they stand at ``now``, all in its teardown's zone."""

    now: datetime
    up: datetime | None  # today's schedule.up; None without a schedule
    cutoff: datetime  # today's teardown.at
    listed: bool  # today is one of schedule.days (False without a schedule)

    @property
    def in_hours(self) -> bool:
        return self.up is not None and self.listed and self.up <= self.now < self.cutoff


def working_day(release: Release, now: datetime) -> WorkingDay:
    zone = ZoneInfo(release.teardown.timezone)
    local = now.astimezone(zone)
    cutoff = datetime.combine(local.date(), _hhmm(release.teardown.at), tzinfo=zone)
    if release.schedule is None:
        return WorkingDay(local, None, cutoff, False)
    up = datetime.combine(local.date(), _hhmm(release.schedule.up), tzinfo=zone)
    return WorkingDay(local, up, cutoff, WEEKDAYS[local.weekday()] in release.schedule.days)


def next_up(release: Release, now: datetime) -> datetime | None:
    """The first ``schedule.up`` at or after ``now`` on a listed day (in the teardown's zone); None without one."""
    if release.schedule is None:
        return None
    zone = ZoneInfo(release.teardown.timezone)
    local = now.astimezone(zone)
    at = _hhmm(release.schedule.up)
    for ahead in range(8):
        day = local.date() + timedelta(days=ahead)
        candidate = datetime.combine(day, at, tzinfo=zone)
        if WEEKDAYS[day.weekday()] in release.schedule.days and candidate >= local:
            return candidate
    return None  # unreachable: days lists at least one weekday


def _when(instant: datetime, now: datetime) -> str:
    """``08:00`` today, ``Thu 08:00`` within the week ahead."""
    if instant.date() == now.date():
        return f"{instant:%H:%M}"
    return f"{WEEKDAYS[instant.weekday()].capitalize()} {instant:%H:%M}"


def scheduled_down(release: Release, now: datetime) -> str | None:
    """Why an absent endpoint of ``release`` is down on schedule at ``now`` ("down until 08:00 (schedule) ..."), or
    None when it should serve: inside working hours, or the release has no ``schedule.up`` (its endpoint comes back
    only with a deploy, so an absent one is drift)."""
    day = working_day(release, now)
    if release.schedule is None or day.in_hours:
        return None
    upcoming = next_up(release, now)
    assert upcoming is not None
    return (
        f"down until {_when(upcoming, day.now)} (schedule): torn down at {release.teardown.at}, brought up at "
        f"{release.schedule.up} {_days(release)}, {release.teardown.timezone}; now {_when(day.now, day.now)}"
    )


def decide(release: Release, now: datetime) -> tuple[bool, str]:
    """``(due, why)``: whether the bring-up applies ``release`` at ``now``, and the reason either way."""
    day = working_day(release, now)
    zone = release.teardown.timezone
    if release.schedule is None or day.up is None:
        return False, "no schedule.up: the endpoint comes back with its next deploy"
    upcoming = next_up(release, now)
    later = f"; next bring-up {_when(upcoming, day.now)} {zone}" if upcoming is not None else ""
    if not day.listed:
        weekday = WEEKDAYS[day.now.weekday()]
        return False, f"{weekday} is not a working day (schedule.days: {_days(release)}){later}"
    if day.now < day.up:
        return False, f"not yet: up at {release.schedule.up} {zone}, now {day.now:%H:%M}"
    if day.now >= day.cutoff:
        return False, f"past today's teardown cut-off {release.teardown.at} {zone} (now {day.now:%H:%M}){later}"
    return True, f"up at {release.schedule.up} {zone}, now {day.now:%H:%M}, teardown at {release.teardown.at}"


# -- the bring-up ---------------------------------------------------------------------------------------------------


def serving_release(release: Release) -> tuple[Release, str]:
    """What a bring-up serves: the release file as of its environment's newest revision recorded good (the tag a
    passed canary leaves), with a note when that is not the file on the branch. A release whose latest revision
    failed its canary (its revert pull request still open) must not come back in the morning; one that never
    passed a canary is not brought up in its place either. Without any good revision (or outside a git
    repository) the file is served as it is, and the note says so."""
    from .git import Git
    from .plan import release_label
    from .rollout import recorded_good, release_at

    env = release.environment
    try:
        git = Git.for_path(release.path)
        relpath = git.relpath(release.path)
        head = git.head()
        good = recorded_good(git, env, relpath, [head, *git.ancestors(head)])
        if good is not None:
            current = git.blob_id(head, relpath) if git.is_clean(relpath) else None
            if git.blob_id(good.sha, relpath) == current:
                return release, ""
            note = (
                f"{relpath} at {head[:8]} has not passed a canary in {env}: serving its last good revision "
                f"{good.sha[:8]}, {good.how}; a deploy of the branch tries the newer one"
            )
            return release_at(git, release.path, good.sha), note
    except SmgitopsError:
        pass
    return release, f"no revision of {release_label(release)} is recorded good in {env}: serving the file as it is"


@dataclass
class Entry:
    release: str
    endpoint: str
    action: str  # "brought up", "already up", "skipped", "failed"
    reason: str
    ok: bool = True
    endpoint_config: str | None = None
    plan_after_apply_empty: bool | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int = 0


def bring_up(release: Release, ctx: Context, now: Clock, *, timeout: float | None = None) -> Entry:
    """Decide for ``release`` at ``now()``; when due, apply it with the published digests (no training) and
    verify, or verify an endpoint already up. Errors of the release (a missing archive, the cut-off passing during
    the apply) are an entry that failed, with the error's exit code."""
    from .artifacts import ArtifactStore, require_servable
    from .deploy import DEFAULT_TIMEOUT, apply_release, verify_release
    from .plan import release_label
    from .recovery import Cancelled
    from .teardown import CutoffGuard

    label = release_label(release)
    entry = Entry(label, release.endpoint.name, "skipped", "")
    due, entry.reason = decide(release, now())
    if not due:
        return entry
    started = _time.monotonic()
    ctx = ctx.bound_to(release)
    wait = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        if ctx.aws.describe_endpoint(release.endpoint.name) is not None:
            verified = verify_release(
                release, ctx, timeout=wait, store=ArtifactStore(ctx.aws, ctx.settings.artifact_bucket)
            )
            entry.action, entry.ok = "already up", verified.ok
            entry.endpoint_config, entry.problems = verified.config_name, list(verified.problems)
            if not verified.ok:
                entry.exit_code = 1
                entry.reason += "; the live endpoint differs from the release (drift): a deploy applies it"
            return entry
        guard = CutoffGuard.for_release(release, now, "bring-up")
        guard.check("not brought up, nothing was changed")
        release, note = serving_release(release)  # the schedule and cut-off above are the branch's
        if note:
            entry.reason += f"; {note}"
        ctx = ctx.bound_to(release)
        require_servable(
            release,
            ArtifactStore(ctx.aws, ctx.settings.artifact_bucket),
            f"{label}: not brought up",
            "A bring-up serves the digests already published and never trains: publish them (the deploy "
            "workflow does) first.",
        )
        _, applied = apply_release(release, ctx, verify_timeout=wait, guard=guard)
    except Cancelled:
        raise
    except SmgitopsError as exc:
        entry.action, entry.ok, entry.exit_code = "failed", False, exc.exit_code
        entry.problems = [str(exc)]
        entry.seconds = round(_time.monotonic() - started, 3)
        return entry
    verify = applied.verify
    entry.action, entry.ok = "brought up", applied.ok
    entry.endpoint_config = applied.endpoint_config
    entry.plan_after_apply_empty = applied.plan_after_apply_empty
    entry.problems = list(verify.problems) if verify is not None else []
    entry.problems += [f"plan after apply not empty: {'/'.join(d['actions'])} {d['address']}" for d in applied.drift]
    entry.exit_code = 0 if applied.ok else 1
    entry.seconds = round(_time.monotonic() - started, 3)
    return entry
