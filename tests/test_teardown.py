"""Evening teardown: tag scoping, paging, cut-offs in the release's time zone, caps, dry runs, idempotency."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws

from smgitops import cli
from smgitops.aws import Aws, make_session
from smgitops.teardown import (
    DEFAULT_SCHEDULE,
    Outcome,
    SageMakerEndpoints,
    Schedule,
    load_schedules,
    regions_for,
    schedule_for,
    teardown,
)

ACCOUNT = "123456789012"
MANAGED = [{"Key": "managed-by", "Value": "smgitops"}]
BERLIN = Schedule(at=time(19, 30), timezone="Europe/Berlin", source="releases/dev.yaml", environment="dev",
                  endpoint="smgitops-dev", region="us-east-1")  # fmt: skip

# 2026-11-25 is winter time in Berlin (UTC+1): the 19:30 cut-off is 18:30 UTC.
BEFORE = datetime(2026, 11, 25, 18, 29, 59, tzinfo=UTC)
AFTER = datetime(2026, 11, 25, 18, 30, 0, tzinfo=UTC)

PROJECT = Path(__file__).resolve().parents[1]

# ListEndpoints answers at most 100 endpoints a page (and teardown asks for pages of 100): one endpoint more than a
# page is enough for every sweep to need the second page.
PAGE = 100
MORE_THAN_A_PAGE = PAGE + 1


def write_release(
    directory: Path, env: str, endpoint: str, at: str, tz: str, region: str = "us-east-1"
) -> Path:  # fmt: skip
    """A valid release file (the project's dev release with another name, schedule and region) in a repository
    layout that holds the data it pins."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory.parent / "data"
    if not data.exists():
        shutil.copytree(PROJECT / "data", data)
    doc = yaml.safe_load((PROJECT / "releases" / "dev.yaml").read_text())
    doc.update(environment=env, region=region, teardown={"at": at, "timezone": tz})
    doc["endpoint"]["name"] = endpoint
    path = directory / f"{env}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture()
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def sagemaker(region: str = "us-east-1") -> Any:
    # make_session: the process's shared botocore loader, as the CLI's sessions use (a session of boto3's own
    # parses SageMaker's service model again, about 0.15 s a client)
    return make_session(region).client("sagemaker")


def make_endpoints(names: list[str], tags: list[dict[str, str]] | None, region: str = "us-east-1") -> None:
    """One model and one config, then the endpoints: creating a hundred takes well under a second in-process."""
    sm = sagemaker(region)
    existing = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    if "cfg" not in existing:
        sm.create_model(
            ModelName="m", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", PrimaryContainer={"Image": "img"}
        )
        sm.create_endpoint_config(
            EndpointConfigName="cfg",
            ProductionVariants=[
                {"VariantName": "primary", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.t2.large"}
            ],
        )
    for name in names:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="cfg", Tags=tags or [])


def live_names(region: str = "us-east-1") -> set[str]:
    names: set[str] = set()
    for page in sagemaker(region).get_paginator("list_endpoints").paginate():
        names |= {e["EndpointName"] for e in page["Endpoints"]}
    return names


def clients(region: str) -> SageMakerEndpoints:
    return SageMakerEndpoints(Aws.for_region(region))


def set_status(name: str, status: str, region: str = "us-east-1") -> None:
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT][region].endpoints[name].endpoint_status = status


# ---------------------------------------------------------------------------------------------------------------
# cut-offs
# ---------------------------------------------------------------------------------------------------------------


def test_cutoff_follows_daylight_saving_time() -> None:
    winter = BERLIN.cutoff(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    summer = BERLIN.cutoff(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert winter.astimezone(UTC) == datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
    assert summer.astimezone(UTC) == datetime(2026, 7, 1, 17, 30, tzinfo=UTC)
    # the day of the spring change (29 March 2026) already uses summer time at 19:30
    assert BERLIN.cutoff(datetime(2026, 3, 29, 12, 0, tzinfo=UTC)).astimezone(UTC).hour == 17


def test_cutoff_is_today_in_the_release_zone_not_in_utc() -> None:
    auckland = Schedule(at=time(19, 0), timezone="Pacific/Auckland", source="x")  # UTC+13 in November
    # 2026-11-25 07:00 UTC is already 20:00 on the 25th in Auckland: past that day's cut-off (06:00 UTC)
    now = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    assert auckland.cutoff(now).astimezone(UTC) == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    # 2026-11-25 12:00 UTC is 01:00 on the 26th in Auckland: the 26th's cut-off is ahead
    assert auckland.cutoff(datetime(2026, 11, 25, 12, 0, tzinfo=UTC)).astimezone(UTC) == datetime(
        2026, 11, 26, 6, 0, tzinfo=UTC
    )


def test_schedule_is_found_by_release_tag_then_by_endpoint_name_then_default() -> None:
    assert schedule_for("anything", {"release": "dev"}, [BERLIN]) == (BERLIN, "tag release=dev")
    assert schedule_for("smgitops-dev", {}, [BERLIN])[0] is BERLIN
    default, why = schedule_for("other", {"release": "qa"}, [BERLIN])
    assert default is DEFAULT_SCHEDULE and why == "release 'qa' unknown: default cut-off"
    assert DEFAULT_SCHEDULE.cutoff(AFTER).astimezone(UTC) == datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


def test_load_schedules_reads_every_release_and_warns_about_broken_ones(tmp_path: Path) -> None:
    write_release(tmp_path / "releases", "dev", "smgitops-dev", "19:30", "Europe/Berlin")
    write_release(tmp_path / "releases", "prod", "smgitops-prod", "18:00", "America/New_York")
    (tmp_path / "releases" / "broken.yaml").write_text("environment: [unclosed\n")
    schedules, warnings = load_schedules(tmp_path / "releases")
    assert {(s.environment, s.at, s.timezone) for s in schedules} == {
        ("dev", time(19, 30), "Europe/Berlin"),
        ("prod", time(18, 0), "America/New_York"),
    }
    assert len(warnings) == 1 and "broken.yaml" in warnings[0] and "default cut-off" in warnings[0]
    assert regions_for(schedules) == ["us-east-1"]
    assert regions_for([]) == ["us-east-1"]
    assert regions_for(schedules, ["eu-west-1"]) == ["eu-west-1", "us-east-1"]


# ---------------------------------------------------------------------------------------------------------------
# runs against SageMaker (moto)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_managed_endpoints_across_pages_all_go_and_the_unmanaged_ones_stay() -> None:
    managed = [f"smgitops-dev-{i:03d}" for i in range(MORE_THAN_A_PAGE)]
    make_endpoints(managed, [*MANAGED, {"Key": "release", "Value": "dev"}])
    make_endpoints(["somebody-elses"], [{"Key": "team", "Value": "x"}])
    make_endpoints(["untagged"], None)
    assert len(sagemaker().list_endpoints()["Endpoints"]) == PAGE  # one page is not everything

    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER)

    assert report.ok
    assert report.count(Outcome.DELETED) == MORE_THAN_A_PAGE
    assert report.unmanaged == 2
    assert live_names() == {"somebody-elses", "untagged"}
    assert all(e.release == "dev" and e.matched_by == "tag release=dev" for e in report.entries)

    second = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER)
    assert second.ok and second.entries == [] and second.unmanaged == 2  # idempotent: nothing left to do


@pytest.mark.usefixtures("aws")
def test_dry_run_deletes_nothing_and_lists_what_would_go() -> None:
    make_endpoints(["smgitops-dev", "smgitops-dev-2"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER, dry_run=True)
    assert report.ok
    assert [e.outcome for e in report.entries] == [Outcome.WOULD_DELETE, Outcome.WOULD_DELETE]
    assert live_names() == {"smgitops-dev", "smgitops-dev-2"}


@pytest.mark.usefixtures("aws")
def test_before_the_cutoff_nothing_goes() -> None:
    make_endpoints(["smgitops-dev"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: BEFORE)
    assert report.ok
    [entry] = report.entries
    assert entry.outcome is Outcome.KEPT
    assert entry.reason == "before cut-off 19:30 Europe/Berlin (0h00m left)"
    assert live_names() == {"smgitops-dev"}


@pytest.mark.usefixtures("aws")
def test_an_instant_in_another_zone_is_the_same_instant() -> None:
    from zoneinfo import ZoneInfo

    make_endpoints(["smgitops-dev"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    tokyo = AFTER.astimezone(ZoneInfo("Asia/Tokyo"))  # 03:30 on the 26th in Tokyo = 18:30 UTC on the 25th
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: tokyo, dry_run=True)
    assert report.now == AFTER and report.now.utcoffset() == timedelta(0)
    assert report.entries[0].outcome is Outcome.WOULD_DELETE
    assert report.entries[0].cutoff_utc == "2026-11-25T18:30:00+00:00"


@pytest.mark.usefixtures("aws")
def test_summer_time_moves_the_cutoff_an_hour_earlier_in_utc() -> None:
    make_endpoints(["smgitops-dev"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    summer = datetime(2026, 7, 1, 17, 45, tzinfo=UTC)  # 19:45 CEST: past the 19:30 cut-off
    assert teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: summer, dry_run=True).entries[0].outcome is (
        Outcome.WOULD_DELETE
    )
    winter = datetime(2026, 11, 25, 17, 45, tzinfo=UTC)  # 18:45 CET: before it
    assert teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: winter).entries[0].outcome is Outcome.KEPT


@pytest.mark.usefixtures("aws")
def test_max_caps_deletions_and_the_run_fails_until_the_rest_is_gone() -> None:
    make_endpoints([f"smgitops-dev-{i}" for i in range(5)], [*MANAGED, {"Key": "release", "Value": "dev"}])
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER, max_deletions=2)
    assert report.count(Outcome.DELETED) == 2
    assert report.count(Outcome.CAPPED) == 3
    assert all("cap reached (--max 2)" in e.reason for e in report.entries if e.outcome is Outcome.CAPPED)
    assert not report.ok and len(report.alive_after_run) == 3
    assert len(live_names()) == 3
    follow_up = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER, max_deletions=10)
    assert follow_up.ok and follow_up.count(Outcome.DELETED) == 3 and live_names() == set()


@pytest.mark.usefixtures("aws")
def test_unknown_release_gets_the_default_evening_cutoff() -> None:
    make_endpoints(["experiment-7"], [*MANAGED, {"Key": "release", "Value": "qa"}])
    at_1859 = datetime(2026, 11, 25, 18, 59, tzinfo=UTC)
    at_1900 = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    kept = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: at_1859)
    assert kept.entries[0].outcome is Outcome.KEPT and kept.entries[0].matched_by.startswith("release 'qa' unknown")
    gone = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: at_1900)
    assert gone.entries[0].outcome is Outcome.DELETED and live_names() == set()


@pytest.mark.usefixtures("aws")
def test_creating_and_updating_endpoints_are_deleted_deleting_ones_left_alone() -> None:
    make_endpoints(["ep-creating", "ep-updating", "ep-deleting"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    set_status("ep-creating", "Creating")
    set_status("ep-updating", "Updating")
    set_status("ep-deleting", "Deleting")
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER)
    by_name = {e.endpoint: e for e in report.entries}
    assert by_name["ep-creating"].outcome is Outcome.DELETED and "(was Creating)" in by_name["ep-creating"].reason
    assert by_name["ep-updating"].outcome is Outcome.DELETED
    assert by_name["ep-deleting"].outcome is Outcome.DELETING
    assert report.ok  # an endpoint in Deleting is on its way out, not alive
    assert live_names() == {"ep-deleting"}


@pytest.mark.usefixtures("aws")
def test_endpoint_deleted_concurrently_is_not_an_error() -> None:
    make_endpoints(["ep-a", "ep-b"], [*MANAGED, {"Key": "release", "Value": "dev"}])

    class Racing(SageMakerEndpoints):
        def delete_endpoint(self, name: str) -> bool:
            sagemaker().delete_endpoint(EndpointName=name)  # somebody else was quicker
            return super().delete_endpoint(name)

    report = teardown(lambda r: Racing(Aws.for_region(r)), ["us-east-1"], [BERLIN],
                      clock=lambda: AFTER)  # fmt: skip
    assert report.ok
    assert [e.outcome for e in report.entries] == [Outcome.GONE, Outcome.GONE]
    assert live_names() == set()


@pytest.mark.usefixtures("aws")
def test_a_refused_delete_fails_the_run_and_names_the_endpoint() -> None:
    make_endpoints(["ep-stuck", "ep-fine"], [*MANAGED, {"Key": "release", "Value": "dev"}])

    class Refusing(SageMakerEndpoints):
        def delete_endpoint(self, name: str) -> bool:
            if name == "ep-stuck":
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": "Endpoint is in SystemUpdating"}},
                    "DeleteEndpoint",
                )
            return super().delete_endpoint(name)

    report = teardown(lambda r: Refusing(Aws.for_region(r)), ["us-east-1"], [BERLIN],
                      clock=lambda: AFTER)  # fmt: skip
    by_name = {e.endpoint: e for e in report.entries}
    assert by_name["ep-stuck"].outcome is Outcome.FAILED and "SystemUpdating" in by_name["ep-stuck"].reason
    assert by_name["ep-fine"].outcome is Outcome.DELETED
    assert not report.ok and report.alive_after_run == ["us-east-1/ep-stuck"]


@pytest.mark.usefixtures("aws")
def test_every_region_a_release_names_is_swept() -> None:
    make_endpoints(["smgitops-dev"], [*MANAGED, {"Key": "release", "Value": "dev"}], region="us-east-1")
    make_endpoints(["smgitops-prod"], [*MANAGED, {"Key": "release", "Value": "prod"}], region="eu-west-1")
    prod = Schedule(at=time(18, 0), timezone="Europe/Dublin", source="releases/prod.yaml", environment="prod",
                    endpoint="smgitops-prod", region="eu-west-1")  # fmt: skip
    report = teardown(clients, regions_for([BERLIN, prod]), [BERLIN, prod], clock=lambda: AFTER)
    assert report.ok and {(e.region, e.outcome) for e in report.entries} == {
        ("us-east-1", Outcome.DELETED),
        ("eu-west-1", Outcome.DELETED),
    }
    assert live_names("us-east-1") == set() and live_names("eu-west-1") == set()


@pytest.mark.usefixtures("aws")
def test_a_release_file_that_fails_validation_still_has_its_region_swept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    releases = tmp_path / "releases"
    write_release(releases, "dev", "smgitops-dev", "19:30", "Europe/Berlin")
    prod = write_release(releases, "prod", "smgitops-prod", "20:00", "Europe/Dublin", region="eu-west-1")
    prod.write_text(prod.read_text().replace("at: '20:00'", "at: '25:61'"))  # invalid: the whole file is refused
    make_endpoints(["smgitops-prod"], [*MANAGED, {"Key": "release", "Value": "prod"}], region="eu-west-1")

    # 19:30 UTC: past the 19:00 UTC default cut-off that the endpoints of an unreadable release get
    assert cli.main(["teardown", "--releases", str(releases), "--json", "--now", "2026-11-25T19:30:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "eu-west-1" in doc["regions"]
    assert [(e["endpoint"], e["outcome"]) for e in doc["endpoints"] if e["region"] == "eu-west-1"] == [
        ("smgitops-prod", "deleted")
    ]
    assert any("prod.yaml" in w for w in doc["warnings"])
    assert live_names("eu-west-1") == set()


# ---------------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_cli_json_report_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    releases = tmp_path / "releases"
    write_release(releases, "dev", "smgitops-dev", "19:30", "Europe/Berlin")
    make_endpoints([f"smgitops-dev-{i}" for i in range(3)], [*MANAGED, {"Key": "release", "Value": "dev"}])
    make_endpoints(["unmanaged"], None)
    base = ["teardown", "--releases", str(releases), "--json"]

    assert cli.main([*base, "--now", "2026-11-25T19:29:00+01:00"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["kept"] == 3 and doc["unmanaged_ignored"] == 1

    assert cli.main([*base, "--now", "2026-11-25T18:31:00Z", "--max", "1"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["deleted"] == 1 and doc["counts"]["skipped"] == 2 and len(doc["alive_after_run"]) == 2

    assert cli.main([*base, "--now", "2026-11-25T18:31:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["deleted"] == 2 and doc["alive_after_run"] == []
    assert live_names() == {"unmanaged"}

    assert cli.main(["teardown", "--releases", str(releases), "--now", "2026-11-25T18:31:00"]) == 2
    assert "has no UTC offset" in capsys.readouterr().err
    assert cli.main(["teardown", "--releases", str(tmp_path / "missing")]) == 2


# ---------------------------------------------------------------------------------------------------------------
# through the emulator's HTTP API (real paging over the wire, real endpoint state transitions)
# ---------------------------------------------------------------------------------------------------------------


def test_teardown_over_the_emulator_pages_through_the_endpoints_and_deletes_a_creating_one(
    emulator: Any, emulator_admin: Any
) -> None:
    managed = [f"smgitops-dev-{i:03d}" for i in range(MORE_THAN_A_PAGE)]
    make_endpoints(managed, [*MANAGED, {"Key": "release", "Value": "dev"}])
    make_endpoints(["not-ours"], [{"Key": "managed-by", "Value": "someone-else"}])
    emulator_admin.set_update_delay(3600)  # the next endpoint stays Creating (emulator clock)
    make_endpoints(["smgitops-dev-late"], [*MANAGED, {"Key": "release", "Value": "dev"}])
    assert sagemaker().describe_endpoint(EndpointName="smgitops-dev-late")["EndpointStatus"] == "Creating"

    listed, due = len(managed) + 2, len(managed) + 1  # with not-ours and the late one
    dry = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER, dry_run=True)
    assert dry.count(Outcome.WOULD_DELETE) == due and len(live_names()) == listed

    before = emulator_admin.stats()["aws_requests"]
    report = teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER)
    requests = emulator_admin.stats()["aws_requests"] - before
    assert report.ok and report.count(Outcome.DELETED) == due and report.unmanaged == 1
    assert live_names() == {"not-ours"}
    # one ListTags per listed endpoint, one DeleteEndpoint per due one, and a few listing pages (the sweep, then
    # the check that all went): at most 3 requests per endpoint, as the teardown promises
    assert listed + due < requests <= listed + due + 4 <= 3 * listed, requests
    assert [e.endpoint for e in report.entries] == sorted(managed) + ["smgitops-dev-late"]  # listing order kept
    assert teardown(clients, ["us-east-1"], [BERLIN], clock=lambda: AFTER).entries == []
