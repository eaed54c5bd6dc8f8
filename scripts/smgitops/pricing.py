"""What a release costs until its evening teardown: the cost line of the pull-request comment.

A SageMaker endpoint bills every instance it runs, per second, from creation to deletion, whether or not it gets
traffic. Each production variant of an endpoint configuration runs its own ``initial_instance_count``
instances of the configuration's instance type; a variant with weight 0 receives no requests but its instances
are provisioned and billed all the same. So::

    instance-hours = hours from now until today's teardown time × instance_count × number of variants
    cost           = instance-hours × on-demand price per instance-hour

"Today" is the release's time zone's today; when the teardown time has already passed there, the estimate is 0
(the scheduled teardown deletes the endpoint at its next run). Hours are computed on UTC instants, so a day on
which the clocks change is as long as it really is.

What a change costs does not depend on the hour a pull request is opened, so :func:`running_cost` states it per
day and per month: a service day runs from the release's ``schedule.up`` (when it has one) to ``teardown.at``; a
release without ``schedule.up`` comes up with its deploy, so a working day from :data:`DEFAULT_DAY_START` is
assumed and said so (``assumed``). A month is the service days of the week (``schedule.days``, which default
to Monday to Friday) times 52/12 weeks. :func:`compare_cost` sets a release against its base (the release on the
target branch).

Prices come from the committed table ``smgitops/data/prices.json`` (date, source and confidence stated there).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import UserError
from .release import Release


@cache
def price_table() -> dict[str, Any]:
    """The committed price table (package data)."""
    text = resources.files("smgitops").joinpath("data/prices.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def teardown_instant(release: Release, now: datetime) -> datetime:
    """Today's teardown time of ``release`` (today in its time zone), as an aware datetime in that zone."""
    try:
        zone = ZoneInfo(release.teardown.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UserError(f"{release.path}: teardown.timezone: unknown time zone {release.teardown.timezone!r}") from exc
    try:
        hours, minutes = (int(part) for part in release.teardown.at.split(":"))
    except ValueError as exc:
        raise UserError(f"{release.path}: teardown.at: {release.teardown.at!r} is not HH:MM") from exc
    local_today = now.astimezone(zone).date()
    return datetime(local_today.year, local_today.month, local_today.day, hours, minutes, tzinfo=zone)


def estimate_cost(release: Release, now: datetime) -> dict[str, Any]:
    """Instance-hours and on-demand cost of ``release``'s endpoint from ``now`` until today's teardown.

    ``now`` must be time-zone aware. The result is the breakdown the PR comment shows; ``usd`` is None when the
    price table has no price for the instance type (its ``note`` says why).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("estimate_cost needs an aware datetime (with a time zone)")
    until = teardown_instant(release, now)
    remaining = until.astimezone(ZoneInfo("UTC")) - now.astimezone(ZoneInfo("UTC"))
    hours = max(remaining, timedelta(0)).total_seconds() / 3600

    variants = len(release.variants)
    serving = sum(1 for v in release.variants if v.weight > 0)
    count = release.endpoint.instance_count
    instance_hours = hours * count * variants

    table = price_table()
    itype = release.endpoint.instance_type
    entry = table.get("instance_types", {}).get(itype) if release.region == table.get("region") else None
    price = entry.get("usd_per_hour") if entry else None
    if entry is None:
        note = f"no price for {itype} in {release.region} in the price table"
    else:
        note = str(entry.get("note", ""))
    usd = None if price is None else round(instance_hours * float(price), 2)

    return {
        "instance_type": itype,
        "instance_count": count,
        "variants": variants,
        "variants_serving": serving,
        "from": now.astimezone(until.tzinfo).isoformat(timespec="minutes"),
        "until": until.isoformat(timespec="minutes"),
        "timezone": release.teardown.timezone,
        "teardown_at": release.teardown.at,
        "past_teardown": remaining <= timedelta(0),
        "hours": round(hours, 2),
        "instance_hours": round(instance_hours, 2),
        "usd_per_instance_hour": price,
        "usd": usd,
        "currency": table.get("currency", "USD"),
        "price_confirmed": bool(entry.get("confirmed")) if entry else False,
        "price_source": table.get("source"),
        "price_as_of": table.get("as_of"),
        "note": note,
    }


DEFAULT_DAY_START = "08:00"
DEFAULT_DAYS_PER_WEEK = 5
WEEKS_PER_MONTH = 52 / 12


def _hhmm_minutes(text: str) -> int | None:
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        return None
    return int(hours) * 60 + int(minutes)


def service_day(release: Release) -> dict[str, Any]:
    """The daily service window of ``release``: ``up``, ``down`` ("HH:MM" local), ``hours``, ``days_per_week`` and
    ``assumed`` (True when the release sets no ``schedule.up`` and :data:`DEFAULT_DAY_START` stands in)."""
    schedule = release.schedule
    assumed = schedule is None
    start = DEFAULT_DAY_START if schedule is None else schedule.up
    begin, end = _hhmm_minutes(start) or 0, _hhmm_minutes(release.teardown.at) or 0
    per_week = DEFAULT_DAYS_PER_WEEK if schedule is None else len(schedule.days)
    return {
        "up": start,
        "down": release.teardown.at,
        "timezone": release.teardown.timezone,
        "hours": round(max(end - begin, 0) / 60, 2),
        "days_per_week": min(per_week, 7),
        "assumed": assumed,
    }


def running_cost(release: Release) -> dict[str, Any]:
    """What ``release``'s endpoint costs per service day and per month (on-demand; ``usd_*`` None without a price).

    Every variant bills its instances, traffic or not: ``instances`` counts them all, ``serving`` those with
    weight > 0."""
    day = service_day(release)
    instances = release.endpoint.instance_count * len(release.variants)
    table = price_table()
    entry = (
        table.get("instance_types", {}).get(release.endpoint.instance_type)
        if release.region == table.get("region")
        else None
    )
    price = entry.get("usd_per_hour") if entry else None
    raw_day = None if price is None else day["hours"] * instances * float(price)
    per_day = None if raw_day is None else round(raw_day, 2)
    days_per_month = day["days_per_week"] * WEEKS_PER_MONTH
    return {
        "instance_type": release.endpoint.instance_type,
        "instances": instances,
        "variants": len(release.variants),
        "serving": sum(1 for v in release.variants if v.weight > 0),
        "day": day,
        "days_per_month": days_per_month,
        "usd_per_instance_hour": price,
        "usd_per_day": per_day,
        "usd_per_month": None if raw_day is None else round(raw_day * days_per_month, 2),
    }


def compare_cost(release: Release, base: Release | None, now: datetime) -> dict[str, Any]:
    """The cost line of a pull request: ``new`` and ``base`` running costs (``base`` None without a base release),
    the change per day and per month, and ``today`` (:func:`estimate_cost`: hours until today's teardown)."""
    new = running_cost(release)
    old = running_cost(base) if base is not None else None
    delta: dict[str, float | None] = {"usd_per_day": None, "usd_per_month": None}
    if old is not None and new["usd_per_day"] is not None and old["usd_per_day"] is not None:
        # from the unrounded figures: two rounded costs would differ by a cent from the rounded difference
        def raw(cost: dict[str, Any]) -> float:
            return float(cost["day"]["hours"]) * int(cost["instances"]) * float(cost["usd_per_instance_hour"])

        per_day = raw(new) - raw(old)
        delta = {
            "usd_per_day": round(per_day, 2),
            "usd_per_month": round(raw(new) * new["days_per_month"] - raw(old) * old["days_per_month"], 2),
        }
    return {"new": new, "base": old, "delta": delta, "today": estimate_cost(release, now)}
