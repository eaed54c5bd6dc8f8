"""Teardown wins the evening, with real Terraform on the emulator: after today's cut-off of a release (dev:
19:30 Europe/Berlin) ``deploy`` and ``rollback`` create or keep no endpoint (exit 1, saying when it comes back,
nothing changed), and a deploy that the evening teardown overtakes is not rolled back into a new endpoint.

The cut-off is judged by an injected clock (``--now``, ``SMGITOPS_NOW``, or ``cutoff_now=``), never the wall clock;
the canary bakes on its own virtual clock (``baking()``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from smgitops.context import Context
from test_recovery import _configs, _lock
from test_rollout import Journey, baking, journey_at, sh, terraform_needed

pytestmark = [terraform_needed, pytest.mark.terraform]

ENDPOINT = "smgitops-dev"
MORNING = "2026-11-25T10:00:00+01:00"
BEFORE = "2026-11-25T19:29:00+01:00"
AFTER = "2026-11-25T19:45:00+01:00"  # dev's cut-off is 19:30 Europe/Berlin
NEXT_MORNING = "2026-11-26T08:00:00+01:00"


@pytest.fixture()
def journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Journey]:
    """v1 (one model at 100 %) trained, published and committed; nothing deployed yet."""
    with journey_at(tmp_path, monkeypatch) as j:
        yield j


@pytest.fixture()
def applied_journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Journey]:
    """v1 committed and applied in the morning, the plan after apply empty."""
    with journey_at(tmp_path, monkeypatch, applied=True) as j:
        yield j


def at(instant: str) -> Any:
    return lambda: datetime.fromisoformat(instant)


def _endpoints() -> list[str]:
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    return sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"])


def _models() -> list[str]:
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    return sorted(m["ModelName"] for m in sm.list_models()["Models"])


def _two_instances(j: Journey) -> str:
    j.edit(lambda d: d["endpoint"].update(instance_count=2))
    return j.commit("two instances")


def _revert_branches(j: Journey) -> list[str]:
    return sh(j.repo, "branch", "--list", "smgitops/rollback-*").split()


def test_deploy_after_the_cutoff_exits_1_and_creates_nothing(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smgitops import cli

    j = journey
    monkeypatch.chdir(j.repo)
    assert cli.main(["deploy", "releases/dev.yaml", "--now", AFTER]) == 1
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "cut-off" in ln]
    assert line.startswith("smgitops deploy: error: the teardown cut-off of dev (19:30 Europe/Berlin) passed at ")
    assert "2026-11-25 19:30 CET (now 19:45 CET)" in line and f"creates or keeps endpoint {ENDPOINT}" in line
    assert "comes back with the next deploy from 2026-11-26 00:00 CET on" in line
    assert line.endswith("not deployed, nothing was changed") and "Traceback" not in err
    # nothing was created: no endpoint, configuration or model; no Terraform state; no record in git
    assert _endpoints() == [] and _configs() == [] and _models() == []
    assert not (j.repo / ".smgitops" / "work" / "dev" / "root" / ".terraform").exists()
    assert _revert_branches(j) == [] and sh(j.repo, "tag", "--list") == ""

    # SMGITOPS_NOW is the same clock for a job that cannot pass options (the workflow step)
    monkeypatch.setenv("SMGITOPS_NOW", "2026-11-25T18:31:00Z")
    assert cli.main(["deploy", "releases/dev.yaml"]) == 1
    assert "(now 19:31 CET)" in capsys.readouterr().err
    assert _endpoints() == [] and _models() == []
    monkeypatch.setenv("SMGITOPS_NOW", "2026-11-25T19:45")  # no offset: refused, exit 2
    assert cli.main(["deploy", "releases/dev.yaml"]) == 2
    assert "SMGITOPS_NOW: '2026-11-25T19:45' has no UTC offset" in capsys.readouterr().err

    # a minute before the cut-off the same deploy goes ahead: the guard judges the instant, not the command
    monkeypatch.setenv("SMGITOPS_NOW", BEFORE)
    assert cli.main(["deploy", "releases/dev.yaml", "--traffic", "20"]) == 0, capsys.readouterr()
    assert _endpoints() == [ENDPOINT] and _lock(j) is None


def test_rollback_after_the_cutoff_exits_1_and_changes_nothing(
    applied_journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smgitops import cli
    from smgitops.deploy import apply_release
    from smgitops.release import load_release

    j = applied_journey
    v1 = sh(j.repo, "rev-parse", "HEAD")
    v1_config, _ = j.live()
    _two_instances(j)
    _, applied = apply_release(release := load_release(j.path), Context.for_release(release))
    assert applied.ok and applied.endpoint_config != v1_config
    live_before, configs_before = j.live(), _configs()

    monkeypatch.chdir(j.repo)
    assert cli.main(["rollback", "releases/dev.yaml", "--to", v1, "--now", AFTER]) == 1
    err = capsys.readouterr().err
    assert "smgitops rollback: error: the teardown cut-off of dev (19:30 Europe/Berlin) passed" in err
    assert "no rollback creates or keeps endpoint smgitops-dev" in err
    assert err.rstrip().endswith("not rolled back, nothing was changed")
    assert j.live() == live_before and _configs() == configs_before  # the endpoint was not touched
    assert _lock(j) is None and _revert_branches(j) == []

    # the next morning the same rollback goes ahead, onto v1's very configuration
    assert cli.main(["rollback", "releases/dev.yaml", "--to", v1, "--now", NEXT_MORNING]) == 0
    assert j.live()[0] == v1_config


def test_teardown_during_a_deploy_is_not_undone_by_its_rollback(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deploy applies before the cut-off; the evening teardown deletes the endpoint while the deploy goes on;
    the deploy fails (its endpoint is gone) and, the cut-off having passed, rolls nothing back: no endpoint for
    the night, no revert branch, the state consistent (only the endpoint to create), the lock free."""
    from smgitops import cli
    from smgitops.plan import plan_release
    from smgitops.release import load_release
    from smgitops.rollout import deploy

    j = journey
    first = deploy(j.path, traffic=20, cutoff_now=at(MORNING), **baking())
    assert first.ok, first.summary()
    v1 = sh(j.repo, "rev-parse", "HEAD")
    _two_instances(j)

    now = [datetime.fromisoformat(BEFORE)]
    torn_down: list[int] = []

    def teardown_after_apply(step: Any) -> None:
        if step.name == "apply" and step.ok:  # the endpoint serves v2; the evening arrives
            now[0] = datetime.fromisoformat(AFTER)
            torn_down.append(cli.main(["teardown", "--releases", str(j.repo / "releases"), "--now", AFTER]))

    result = deploy(j.path, traffic=20, on_step=teardown_after_apply, cutoff_now=lambda: now[0], **baking())

    assert torn_down == [0] and "deleted" in capsys.readouterr().out
    assert not result.ok and result.failed_step == "smoke", result.summary()
    rb = result.rollback or {}
    assert rb.get("cutoff") is True and rb.get("ok") is False and "branch" not in rb
    assert "the teardown cut-off of dev (19:30 Europe/Berlin) passed" in rb["error"]
    assert [s.name for s in result.steps] == ["apply", "smoke", "rollback"]
    assert "; not rolled back: the teardown cut-off" in result.summary()
    assert "ROLLBACK FAILED" not in result.summary()
    # no endpoint for the night, no revert branch, v2 not recorded good, the lock free
    assert _endpoints() == []
    assert _revert_branches(j) == []
    assert sh(j.repo, "tag", "--list", "smgitops/good/*").split() == [f"smgitops/good/dev/{v1}"]  # not {failed}
    assert _lock(j) is None
    # the state is v2's, models and configuration consistent: the plan only brings the endpoint back
    planned = plan_release(release := load_release(j.path), Context.for_release(release))
    changes = planned.summary["resources"]["changes"]
    assert changes == [{"address": "aws_sagemaker_endpoint.this", "actions": ["create"]}]

    # the next morning's deploy brings it back, as the message said
    again = deploy(j.path, traffic=20, cutoff_now=at(NEXT_MORNING), **baking())
    assert again.ok, again.summary()
    assert _endpoints() == [ENDPOINT] and again.plan_after_apply_empty and _lock(j) is None


def test_an_apply_that_ends_after_the_cutoff_leaves_no_endpoint(journey: Journey) -> None:
    """The deploy checks the cut-off before it applies (under the environment's lock) and again when the apply ends:
    an apply that began before the cut-off and ended after it deletes its endpoint, as the teardown would. With both
    checks, the teardown and a deploy need no shared lock: in any interleaving no endpoint is left for the night."""
    from smgitops.plan import plan_release
    from smgitops.release import load_release
    from smgitops.rollout import deploy
    from smgitops.teardown import AfterCutoff

    asked: list[str] = []

    def evening_arrives_during_the_apply() -> datetime:  # 19:29 until the endpoint exists, then 19:45
        exists = ENDPOINT in _endpoints()
        asked.append("after" if exists else "before")
        return datetime.fromisoformat(AFTER if exists else BEFORE)

    with pytest.raises(AfterCutoff) as stopped:
        deploy(journey.path, traffic=20, cutoff_now=evening_arrives_during_the_apply, **baking())
    message = str(stopped.value)
    assert "the apply ended after the cut-off: endpoint smgitops-dev deleted, as the evening teardown does" in message
    assert asked[0] == "before" and asked[-1] == "after"
    assert _endpoints() == []
    assert _revert_branches(journey) == [] and _lock(journey) is None
    release = load_release(journey.path)
    changes = plan_release(release, Context.for_release(release)).summary["resources"]["changes"]
    assert changes == [{"address": "aws_sagemaker_endpoint.this", "actions": ["create"]}]
