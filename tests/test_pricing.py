"""Cost estimate until the evening teardown: time zones, the cut-off, variants that bill without traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from smgitops import pricing
from smgitops.release import Release, release_from_mapping
from smgitops.release_checks import DEFAULT_ALLOWED_INSTANCE_TYPES


def make_release(
    *,
    at: str = "19:30",
    tz: str = "Europe/Berlin",
    weights: tuple[int, ...] = (100,),
    count: int = 1,
    itype: str = "ml.t2.large",
    region: str = "us-east-1",
    schedule: dict[str, Any] | None = None,
) -> Release:
    doc: dict[str, Any] = {
        "environment": "dev",
        "region": region,
        "image": "1.2-1-cpu-py3",
        "endpoint": {
            "name": "smgitops-dev",
            "instance_type": itype,
            "instance_count": count,
            "data_capture": {"enabled": True, "sampling_percentage": 100},
        },
        "teardown": {"at": at, "timezone": tz},
        "models": {
            "m": {
                "data": {"path": "data/x.csv", "sha256": "0" * 64},
                "estimator": "e",
                "params": {},
                "seed": 1,
                "artifact_sha256": "a" * 64,
            }
        },
        "variants": [{"name": f"v{i}", "model": "m", "weight": w} for i, w in enumerate(weights)],
        "canary": {"bake_minutes": 10, "min_invocations": 50, "max_error_rate": 0.01, "max_p99_latency_ms": 300},
    }
    if schedule is not None:
        doc["schedule"] = schedule
    return release_from_mapping(doc, Path("releases/dev.yaml"))


PRICE = pricing.price_table()["instance_types"]["ml.t2.large"]["usd_per_hour"]


def test_hours_until_the_local_teardown_time() -> None:
    # 14:30 UTC is 15:30 in Berlin (CET, +01:00) on 25 November: 4 hours to 19:30.
    cost = pricing.estimate_cost(make_release(), datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert cost["hours"] == 4.0
    assert cost["instance_hours"] == 4.0
    assert cost["usd"] == round(4.0 * PRICE, 2)
    assert cost["until"] == "2026-11-25T19:30+01:00"
    assert cost["from"] == "2026-11-25T15:30+01:00"
    assert cost["past_teardown"] is False


def test_the_same_instant_in_another_zone_gives_other_hours() -> None:
    now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    # New York is at 09:30 (-05:00): 10 hours to 19:30 there.
    assert pricing.estimate_cost(make_release(tz="America/New_York"), now)["hours"] == 10.0
    # Tokyo is at 23:30 (+09:00): its 19:30 has passed.
    tokyo = pricing.estimate_cost(make_release(tz="Asia/Tokyo"), now)
    assert tokyo["hours"] == 0 and tokyo["usd"] == 0 and tokyo["past_teardown"] is True


def test_now_given_in_any_offset_is_the_same_instant() -> None:
    release = make_release()
    utc = pricing.estimate_cost(release, datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    india = pricing.estimate_cost(
        release, datetime(2026, 11, 25, 20, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    )
    assert utc["hours"] == india["hours"] == 4.0


def test_past_the_cut_off_costs_nothing() -> None:
    release = make_release(at="19:30")
    assert pricing.estimate_cost(release, datetime(2026, 11, 25, 18, 30, tzinfo=UTC))["usd"] == 0  # 19:30 Berlin
    late = pricing.estimate_cost(release, datetime(2026, 11, 25, 22, 59, tzinfo=UTC))
    assert late["hours"] == 0 and late["instance_hours"] == 0


def test_the_local_date_decides_which_day_s_cut_off() -> None:
    # 23:30 UTC on the 25th is 00:30 on the 26th in Berlin: the cut-off is the 26th's 19:30, 19 hours away.
    cost = pricing.estimate_cost(make_release(), datetime(2026, 11, 25, 23, 30, tzinfo=UTC))
    assert cost["until"].startswith("2026-11-26T19:30")
    assert cost["hours"] == 19.0


def test_a_day_when_the_clocks_go_back_has_an_extra_hour() -> None:
    # Europe/Berlin leaves summer time on 25 October 2026 at 03:00 (+02:00 -> +01:00).
    # From 00:30 local (+02:00, 22:30 UTC the day before) to 19:30 local (+01:00) is 20 hours, not 19.
    now = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)
    cost = pricing.estimate_cost(make_release(), now)
    assert cost["hours"] == 20.0


def test_every_variant_bills_its_instances_even_at_weight_zero() -> None:
    now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    promoted = pricing.estimate_cost(make_release(weights=(0, 100), count=2), now)
    assert promoted["variants"] == 2 and promoted["variants_serving"] == 1
    assert promoted["instance_hours"] == 4.0 * 2 * 2
    assert promoted["usd"] == round(16 * PRICE, 2)


def test_an_instance_type_without_a_hosting_price_says_so() -> None:
    cost = pricing.estimate_cost(make_release(itype="ml.m5.large"), datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert cost["usd"] is None and cost["instance_hours"] == 4.0
    assert "no price for ml.m5.large" in cost["note"]
    other = pricing.estimate_cost(make_release(region="eu-west-1"), datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert other["usd"] is None and "eu-west-1" in other["note"]


def test_the_price_table_states_its_date_and_source() -> None:
    table = pricing.price_table()
    assert table["as_of"] and table["source"].startswith("https://aws.amazon.com/")
    # every type the default allowlist lets a release use has a price, and nothing a release cannot use is listed
    assert set(table["instance_types"]) == set(DEFAULT_ALLOWED_INSTANCE_TYPES)
    assert all(entry["usd_per_hour"] > 0 for entry in table["instance_types"].values())
    for entry in table["instance_types"].values():
        assert "confirmed" in entry and entry["note"]


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        pricing.estimate_cost(make_release(), datetime(2026, 11, 25, 14, 30))


# ---------------------------------------------------------------------------------------------------------------
# Per day and per month: what a change costs, whatever the hour the pull request is opened
# ---------------------------------------------------------------------------------------------------------------


def test_a_canary_doubles_the_daily_cost_at_any_hour_of_the_day() -> None:
    base, canary = make_release(weights=(100,)), make_release(weights=(90, 10))
    morning = pricing.compare_cost(canary, base, datetime(2026, 11, 25, 5, 0, tzinfo=UTC))  # 06:00 Berlin
    evening = pricing.compare_cost(canary, base, datetime(2026, 11, 25, 19, 0, tzinfo=UTC))  # 20:00, after 19:30
    for cost in (morning, evening):
        # no schedule.up: a working day from 08:00 to the 19:30 teardown, Monday to Friday, is assumed
        assert cost["new"]["day"] == {
            "up": "08:00",
            "down": "19:30",
            "timezone": "Europe/Berlin",
            "hours": 11.5,
            "days_per_week": 5,
            "assumed": True,
        }
        assert cost["new"]["usd_per_day"] == round(11.5 * 2 * PRICE, 2)
        assert cost["base"]["usd_per_day"] == round(11.5 * PRICE, 2)
        assert cost["delta"]["usd_per_day"] == round(11.5 * PRICE, 2)  # the canary's own instance
        assert cost["new"]["usd_per_month"] == round(11.5 * 2 * PRICE * 5 * 52 / 12, 2)
        assert cost["delta"]["usd_per_month"] == round(11.5 * PRICE * 5 * 52 / 12, 2)
        assert cost["delta"]["usd_per_day"] > 0 and cost["delta"]["usd_per_month"] > 0
    # only what is left of today depends on the hour
    assert morning["today"]["hours"] == 13.5 and evening["today"]["hours"] == 0


def test_the_service_day_follows_schedule_up_and_its_days() -> None:
    release = make_release(weights=(100,), count=2, schedule={"up": "07:00", "days": ["sat", "mon", "tue", "wed"]})
    cost = pricing.running_cost(release)
    assert cost["day"]["up"] == "07:00" and cost["day"]["hours"] == 12.5 and not cost["day"]["assumed"]
    assert cost["day"]["days_per_week"] == 4 and cost["days_per_month"] == 4 * 52 / 12
    assert cost["instances"] == 2 and cost["usd_per_day"] == round(12.5 * 2 * PRICE, 2)
    # schedule.up without days: Monday to Friday, the schema's default
    weekdays = pricing.running_cost(make_release(schedule={"up": "09:30"}))["day"]
    assert weekdays == {
        "up": "09:30",
        "down": "19:30",
        "timezone": "Europe/Berlin",
        "hours": 10.0,
        "days_per_week": 5,
        "assumed": False,
    }
    # no schedule.up: 08:00 stands in, and the comment says it was assumed
    assumed = pricing.running_cost(make_release())["day"]
    assert assumed["up"] == "08:00" and assumed["hours"] == 11.5 and assumed["assumed"]


def test_without_a_base_or_a_price_the_change_is_unknown_not_zero() -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    first = pricing.compare_cost(make_release(), None, now)
    assert first["base"] is None and first["delta"] == {"usd_per_day": None, "usd_per_month": None}
    unpriced = pricing.compare_cost(make_release(itype="ml.m5.large"), make_release(), now)
    assert unpriced["new"]["usd_per_day"] is None and unpriced["delta"]["usd_per_day"] is None
