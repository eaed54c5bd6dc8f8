"""Evening teardown: ``smgitops teardown [--dry-run] [--max N] [--now ISO-8601] [--json] [--releases DIR]``.

An endpoint alive overnight is the failure this command exists to prevent: instances bill by the hour whether or
not anybody sends a request. Every scheduled run lists the endpoints of every region a release names (paginated
``ListEndpoints``), keeps only those tagged ``managed-by = smgitops`` (paginated ``ListTags``; an endpoint without
that tag is never touched, whatever its name), finds each one's release and deletes it once that release's
teardown time has passed today.

Which release an endpoint belongs to: the ``release = <environment>`` tag names the release file
``releases/<environment>.yaml``; failing that (tag missing or naming no known release) the endpoint name is
matched against the releases' ``endpoint.name``. A managed endpoint that maps to no release gets
:data:`DEFAULT_CUTOFF` (19:00 UTC). A release file that cannot be read does not stop the run: its endpoints fall
back to the default cut-off, the region it names (if its YAML can be parsed at all) is still swept, and the
report carries a warning -- a broken release file must not keep instances up.

The cut-off is ``teardown.at`` in ``teardown.timezone`` *on the current day in that zone*, computed with
``zoneinfo`` so daylight saving time moves it in UTC as it does on a wall clock. A wall time that does not exist
on a spring-forward day resolves with ``fold=0`` (02:30 in the gap means 03:30 summer time); one that happens
twice in autumn means the first of the two. Because the cut-off is *today's*, a run after local midnight judges against
the new day's cut-off: schedule the workflow for the evening hours between the cut-offs and midnight of the
releases' zones (several runs, off the hour), not for the small hours.

Decisions documented here and in the README:

* **Endpoints in ``Creating``/``Updating`` (or ``Failed``, ``OutOfService``) are deleted anyway.** DeleteEndpoint
  accepts them, a deploy still running at the cut-off would otherwise leave an endpoint up all night, and a deploy
  after the cut-off is recreated by the next morning's apply. ``Deleting`` endpoints are reported as already
  going. Should SageMaker refuse a delete (e.g. ``SystemUpdating``), the run reports it as failed and exits 1, so
  the scheduled workflow fails loudly and the next run (or a person) retries.
* **Only the endpoint is deleted**, not its endpoint configuration or models: those cost nothing, the teardown role
  may only call ``DeleteEndpoint`` on managed endpoints, and keeping them means the next ``terraform apply`` sees
  just the endpoint missing from its refreshed state and recreates it on the *same* configuration name. Until
  then ``plan`` shows the endpoint to be created and ``verify`` reports it missing: that drift is intended and is
  exactly what the morning deploy repairs.
* **Idempotent:** an endpoint deleted by somebody else between listing and deleting is reported ``gone``, not as
  an error; a second run finds nothing to do.
* **Exit code 1** when anything that should have gone is still alive after the run: the cap (``--max``) was
  reached, a delete failed, or the final listing still shows a due endpoint not in ``Deleting``. A dry run
  deletes nothing and exits 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .aws import TEARDOWN_WORKERS, Aws
from .clock import Clock, utc_now
from .errors import CheckFailed, SmgitopsError
from .naming import MANAGED_BY_TAG, MANAGED_BY_VALUE, RELEASE_TAG

if TYPE_CHECKING:
    from .release import Release

DEFAULT_REGION = "us-east-1"
DEFAULT_CUTOFF = time(19, 0)
"""Cut-off for managed endpoints whose release is unknown: 19:00 in :data:`DEFAULT_TIMEZONE`."""
DEFAULT_TIMEZONE = "UTC"


# --------------------------------------------------------------------------------------------------------------
# SageMaker wrapper
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveEndpoint:
    region: str
    name: str
    arn: str
    status: str
    created: datetime | None


class SageMakerEndpoints:
    """The SageMaker calls teardown needs, typed; one instance per region, through the teardown client
    (:data:`smgitops.aws.TEARDOWN_CONFIG`) of an injected :class:`smgitops.aws.Aws`."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self._client = aws.sagemaker_teardown
        self.region: str = self._client.meta.region_name

    def list_endpoints(self) -> Iterator[LiveEndpoint]:
        for page in self._client.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 100}):
            for ep in page.get("Endpoints", []):
                yield LiveEndpoint(
                    region=self.region,
                    name=ep["EndpointName"],
                    arn=ep["EndpointArn"],
                    status=ep["EndpointStatus"],
                    created=ep.get("CreationTime"),
                )

    def tags(self, arn: str) -> dict[str, str] | None:
        """All tags of a resource; ``None`` when it no longer exists (deleted since it was listed)."""

        def read() -> dict[str, str]:
            out: dict[str, str] = {}
            for page in self._client.get_paginator("list_tags").paginate(ResourceArn=arn):
                for tag in page.get("Tags", []):
                    out[tag["Key"]] = tag.get("Value", "")
            return out

        return self._aws.absent_as_none(read)

    def delete_endpoint(self, name: str) -> bool:
        """Delete; ``False`` when the endpoint is already gone (deleted concurrently), not an error."""
        return self._aws.absent_as_none(lambda: self._client.delete_endpoint(EndpointName=name)) is not None


# --------------------------------------------------------------------------------------------------------------
# Schedules: which cut-off applies to which endpoint
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    at: time
    timezone: str
    source: str  # the release file, or "default"
    environment: str | None = None
    endpoint: str | None = None
    region: str | None = None

    def cutoff(self, now: datetime) -> datetime:
        """Today's cut-off (today in the schedule's zone) as an aware datetime."""
        zone = ZoneInfo(self.timezone)
        local_day = now.astimezone(zone).date()
        return datetime.combine(local_day, self.at, tzinfo=zone)

    def describe(self) -> str:
        return f"{self.at:%H:%M} {self.timezone}"


DEFAULT_SCHEDULE = Schedule(at=DEFAULT_CUTOFF, timezone=DEFAULT_TIMEZONE, source="default")


# --------------------------------------------------------------------------------------------------------------
# Teardown wins the evening: no deploy or rollback brings an endpoint back after the cut-off
# --------------------------------------------------------------------------------------------------------------


class AfterCutoff(CheckFailed):
    """A deploy or rollback asked for after today's teardown cut-off of its release: refused, nothing changed."""


@dataclass(frozen=True)
class CutoffGuard:
    """Today's cut-off of one release, judged by an injected clock (``--now`` / ``SMGITOPS_NOW``, :mod:`.clock`).

    ``deploy`` and ``rollback`` check it before anything changes, again under the environment's lock right before
    Terraform applies, and a deploy's automatic rollback checks it before rolling back: after the cut-off no apply
    creates the endpoint or keeps it alive (the evening teardown deletes it). The cut-off is *today's*, as for
    teardown: from local midnight on, deploys run again.
    """

    schedule: Schedule
    clock: Clock
    command: str
    endpoint: str

    @classmethod
    def for_release(cls, release: Release, clock: Clock, command: str) -> CutoffGuard:
        schedule = Schedule(
            at=_parse_hhmm(release.teardown.at),
            timezone=release.teardown.timezone,
            source=str(release.path),
            environment=release.environment,
            endpoint=release.endpoint.name,
            region=release.region,
        )
        return cls(schedule, clock, command, release.endpoint.name)

    def passed(self) -> str | None:
        """None before today's cut-off; after it, the sentence saying so and when the endpoint comes back."""
        now = self.clock()
        cutoff = self.schedule.cutoff(now)
        if now < cutoff:
            return None
        zone = ZoneInfo(self.schedule.timezone)
        morning = datetime.combine(cutoff.date() + timedelta(days=1), time(0, 0), tzinfo=zone)
        return (
            f"the teardown cut-off of {self.schedule.environment} ({self.schedule.describe()}) passed at "
            f"{cutoff:%Y-%m-%d %H:%M %Z} (now {now.astimezone(zone):%H:%M %Z}): after it no {self.command} creates "
            f"or keeps endpoint {self.endpoint} (the evening teardown deletes it). It comes back with the next "
            f"deploy from {morning:%Y-%m-%d %H:%M %Z} on: the next push, or re-run this job in the morning"
        )

    def check(self, what: str = "nothing was changed") -> None:
        """Raise :class:`AfterCutoff` (exit 1) after the cut-off; ``what`` says what was (not) done."""
        reason = self.passed()
        if reason is not None:
            raise AfterCutoff(f"{reason}; {what}")


def _parse_hhmm(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


def load_schedules(releases_dir: Path | None) -> tuple[list[Schedule], list[str]]:
    """Every release file's schedule; unreadable ones become warnings (their endpoints get the default)."""
    import yaml

    from .release import load_release

    schedules: list[Schedule] = []
    warnings: list[str] = []
    if releases_dir is None or not releases_dir.is_dir():
        return schedules, warnings
    for path in sorted([*releases_dir.glob("*.yaml"), *releases_dir.glob("*.yml")]):
        try:
            release = load_release(path)
            at = _parse_hhmm(release.teardown.at)
            ZoneInfo(release.teardown.timezone)
        except (SmgitopsError, yaml.YAMLError, KeyError, TypeError, ValueError, OSError, ZoneInfoNotFoundError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.append(f"{path}: unreadable ({first_line}); its endpoints get the default cut-off")
            region = _region_named(path)
            if region:  # still swept: a file that fails validation must not hide its region's endpoints
                schedules.append(Schedule(DEFAULT_CUTOFF, DEFAULT_TIMEZONE, source=str(path), region=region))
            continue
        schedules.append(
            Schedule(
                at=at,
                timezone=release.teardown.timezone,
                source=str(path),
                environment=release.environment,
                endpoint=release.endpoint.name,
                region=release.region,
            )
        )
    return schedules, warnings


def _region_named(path: Path) -> str | None:
    """The ``region`` a release file names, read leniently (the file may fail validation); None if unreadable.

    Its schedule has neither environment nor endpoint, so it matches no endpoint: the region's managed endpoints
    fall back to the default cut-off, as for any unknown release. Hostile text costs little here too: a file over
    the size limit or outside the pre-scan's bounds is not read, and the loader keeps the same bounds."""
    import yaml

    from .release_checks import MAX_FILE_BYTES
    from .yamlbounds import BoundedLoader, prescan

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
        if prescan(text) is not None:
            return None
        doc = yaml.load(text, Loader=BoundedLoader)  # safe: BoundedLoader is a SafeLoader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    region = doc.get("region") if isinstance(doc, dict) else None
    return region.strip() if isinstance(region, str) and region.strip() else None


def schedule_for(name: str, tags: dict[str, str], schedules: Iterable[Schedule]) -> tuple[Schedule, str]:
    """The schedule of an endpoint and how it was found."""
    schedules = list(schedules)
    env = tags.get(RELEASE_TAG)
    if env:
        for s in schedules:
            if s.environment == env:
                return s, f"tag release={env}"
    for s in schedules:
        if s.endpoint == name:
            return s, f"endpoint name of {s.source}"
    return DEFAULT_SCHEDULE, "no release: default cut-off" if not env else f"release {env!r} unknown: default cut-off"


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    DELETED = "deleted"
    WOULD_DELETE = "would delete"
    GONE = "gone"  # deleted concurrently: not an error
    DELETING = "already deleting"
    KEPT = "kept"  # before the cut-off
    CAPPED = "skipped"  # due, but --max was reached
    FAILED = "failed"


@dataclass
class Entry:
    region: str
    endpoint: str
    status: str
    release: str
    matched_by: str
    cutoff: str  # local cut-off, ISO
    cutoff_utc: str
    outcome: Outcome
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outcome": str(self.outcome)}


@dataclass
class TeardownReport:
    now: datetime
    dry_run: bool
    max_deletions: int | None
    regions: list[str]
    entries: list[Entry] = field(default_factory=list)
    unmanaged: int = 0
    warnings: list[str] = field(default_factory=list)
    alive_after_run: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.entries if e.outcome is outcome)

    @property
    def ok(self) -> bool:
        if self.dry_run:
            return True
        return not self.alive_after_run and not any(e.outcome in (Outcome.CAPPED, Outcome.FAILED) for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "max": self.max_deletions,
            "regions": self.regions,
            "counts": {str(o): self.count(o) for o in Outcome},
            "unmanaged_ignored": self.unmanaged,
            "alive_after_run": self.alive_after_run,
            "warnings": self.warnings,
            "endpoints": [e.to_dict() for e in self.entries],
        }


def regions_for(schedules: Iterable[Schedule], extra: Iterable[str] = ()) -> list[str]:
    regions = {s.region for s in schedules if s.region} | set(extra)
    return sorted(regions) or [DEFAULT_REGION]


def teardown(
    clients: Callable[[str], SageMakerEndpoints],
    regions: Iterable[str],
    schedules: list[Schedule],
    *,
    clock: Clock = utc_now,
    dry_run: bool = False,
    max_deletions: int | None = None,
    warnings: Iterable[str] = (),
    workers: int = TEARDOWN_WORKERS,
) -> TeardownReport:
    from botocore.exceptions import BotoCoreError, ClientError

    now = clock().astimezone(UTC)
    report = TeardownReport(
        now=now, dry_run=dry_run, max_deletions=max_deletions, regions=list(regions), warnings=list(warnings)
    )
    due: dict[tuple[str, str], Entry] = {}
    planned = 0
    for region in report.regions:
        sm = clients(region)
        listed = list(sm.list_endpoints())
        # One ListTags per endpoint, then one DeleteEndpoint per due one: each phase with a bounded number of
        # requests in flight (a sweep of 1,000 endpoints is 2,000 calls plus the listing pages).
        with ThreadPoolExecutor(max_workers=workers) as pool:
            all_tags = list(pool.map(sm.tags, [ep.arn for ep in listed]))
        deletes: list[tuple[LiveEndpoint, Entry, str]] = []
        for ep, tags in zip(listed, all_tags, strict=True):
            if tags is None:  # deleted between listing and tagging: nothing left to do
                continue
            if tags.get(MANAGED_BY_TAG) != MANAGED_BY_VALUE:
                report.unmanaged += 1
                continue
            schedule, matched_by = schedule_for(ep.name, tags, schedules)
            cutoff = schedule.cutoff(now)
            entry = Entry(
                region=region,
                endpoint=ep.name,
                status=ep.status,
                release=schedule.environment or tags.get(RELEASE_TAG, "") or "-",
                matched_by=matched_by,
                cutoff=cutoff.isoformat(),
                cutoff_utc=cutoff.astimezone(UTC).isoformat(),
                outcome=Outcome.KEPT,
                reason="",
            )
            report.entries.append(entry)
            if now < cutoff:
                entry.reason = f"before cut-off {schedule.describe()} ({_until(cutoff - now)} left)"
                continue
            passed = f"past cut-off {schedule.describe()}"
            if ep.status == "Deleting":
                entry.outcome, entry.reason = Outcome.DELETING, f"{passed}; DeleteEndpoint already running"
                continue
            due[(region, ep.name)] = entry
            if dry_run:
                entry.outcome, entry.reason = Outcome.WOULD_DELETE, f"{passed} (dry run)"
                continue
            if max_deletions is not None and planned >= max_deletions:  # in listing order, as a person would
                entry.outcome, entry.reason = Outcome.CAPPED, f"{passed}; cap reached (--max {max_deletions})"
                continue
            planned += 1
            deletes.append((ep, entry, passed))

        def delete(item: tuple[LiveEndpoint, Entry, str], sm: SageMakerEndpoints = sm) -> None:
            ep, entry, passed = item
            try:
                deleted = sm.delete_endpoint(ep.name)
            except (ClientError, BotoCoreError) as exc:  # reported, and the run fails (exit 1)
                entry.outcome, entry.reason = Outcome.FAILED, f"{passed}; delete failed: {exc}"
                return
            in_flight = f" (was {ep.status})" if ep.status not in ("InService",) else ""
            if deleted:
                entry.outcome, entry.reason = Outcome.DELETED, f"{passed}{in_flight}"
            else:
                entry.outcome, entry.reason = Outcome.GONE, f"{passed}; already deleted by someone else"

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(delete, deletes))
    if not dry_run and due:
        # Trust, but look: anything due that is still listed (and not Deleting) is alive after the run.
        for region in report.regions:
            for ep in clients(region).list_endpoints():
                if (region, ep.name) in due and ep.status != "Deleting":
                    report.alive_after_run.append(f"{region}/{ep.name}")
    return report


def _until(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --------------------------------------------------------------------------------------------------------------
# Output and CLI
# --------------------------------------------------------------------------------------------------------------

_STYLE = {
    Outcome.DELETED: "green",
    Outcome.WOULD_DELETE: "cyan",
    Outcome.GONE: "dim",
    Outcome.DELETING: "dim",
    Outcome.KEPT: "white",
    Outcome.CAPPED: "yellow",
    Outcome.FAILED: "bold red",
}


def render(report: TeardownReport, console: Any = None) -> None:
    from rich.table import Table

    from .console import make_console

    console = console or make_console()
    table = Table(
        title=f"teardown{' (dry run)' if report.dry_run else ''} at {report.now:%Y-%m-%d %H:%M} UTC",
        caption=f"regions: {', '.join(report.regions)}; unmanaged endpoints ignored: {report.unmanaged}",
    )
    for col in ("region", "endpoint", "status", "release", "cut-off (UTC)", "outcome", "why"):
        table.add_column(col)
    for e in report.entries:
        table.add_row(
            e.region,
            e.endpoint,
            e.status,
            e.release,
            e.cutoff_utc[11:16],
            f"[{_STYLE[e.outcome]}]{e.outcome}[/]",
            e.reason,
        )
    console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    counts = ", ".join(f"{report.count(o)} {o}" for o in Outcome if report.count(o))
    console.print(f"summary: {counts or 'no managed endpoints'}")
    if report.alive_after_run:
        console.print(f"[bold red]still alive after the run:[/] {', '.join(report.alive_after_run)}")
