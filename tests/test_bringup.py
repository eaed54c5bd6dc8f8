"""Working hours: ``schedule.up`` in the release, ``smgitops bring-up`` and drift that knows the schedule.

The decisions (due, skipped and why, "down until") are judged on injected instants; the journey runs real Terraform
on the emulator: the evening teardown deletes the endpoint, the morning drift run says "down until 08:00", the
bring-up at 08:00 re-creates it on the very configuration it had, with no training, and drift passes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from smgitops.bringup import decide, next_up, scheduled_down
from smgitops.release import ServiceSchedule, load_release
from test_pricing import make_release
from test_validate import assert_reported, line_of, make_repo, problem_lines, run_cli

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------------------------------------------------------
# the release format
# ---------------------------------------------------------------------------------------------------------------

TEARDOWN_BLOCK = "  timezone: Europe/Berlin     # IANA time zone of `at`\n"


def with_schedule(release: Path, block: str) -> str:
    text = release.read_text(encoding="utf-8")
    assert text.count(TEARDOWN_BLOCK) == 1, "fixture drift: the shipped release's teardown block changed"
    text = text.replace(TEARDOWN_BLOCK, TEARDOWN_BLOCK + "\nschedule:\n" + block, 1)
    release.write_text(text, encoding="utf-8")
    return text


@pytest.fixture()
def release(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_schedule_is_typed_and_days_default_to_weekdays(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_schedule(release, '  up: "08:00"\n  days: [sun, mon, sat]\n')
    assert run_cli(capsys, str(release))[0] == 0
    assert load_release(release).schedule == ServiceSchedule(up="08:00", days=("mon", "sat", "sun"))
    with_schedule(make_repo(release.parents[2] / "other"), '  up: "07:45"\n')
    other = load_release(release.parents[2] / "other" / "releases" / "dev.yaml")
    assert other.schedule == ServiceSchedule(up="07:45", days=("mon", "tue", "wed", "thu", "fri"))
    assert load_release(Path(__file__).parents[1] / "releases" / "dev.yaml").schedule is None


@pytest.mark.parametrize(
    ("block", "anchor", "field", "reason"),
    [
        ('  up: "20:00"\n', 'up: "20:00"', "schedule.up", "must be before teardown.at '19:30'"),
        ('  up: "19:30"\n', 'up: "19:30"', "schedule.up", "must be before teardown.at"),
        ('  up: "8:00"\n', 'up: "8:00"', "schedule.up", '24-hour time "HH:MM"'),
        ("  up: 9:30\n", "up: 9:30", "schedule.up", "YAML 1.1"),
        ('  up: "08:00"\n  days: [monday]\n', "days: [monday]", "schedule.days[0]", "did you mean 'mon'"),
        ('  up: "08:00"\n  days: [mon, mon]\n', "days: [mon, mon]", "schedule.days", "more than once"),
        ('  up: "08:00"\n  days: []\n', "days: []", "schedule.days", "at least 1"),
        ('  at: "08:00"\n', 'at: "08:00"', "schedule.at", "unknown field 'at'"),
    ],
    ids=["after-teardown", "at-teardown", "no-leading-zero", "unquoted", "day-name", "twice", "no-days", "no-up"],
)
def test_a_bad_schedule_is_refused_with_file_line_and_field(
    release: Path, capsys: pytest.CaptureFixture[str], block: str, anchor: str, field: str, reason: str
) -> None:
    text = with_schedule(release, block)
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line_of(text, anchor), field, reason)
    if field == "schedule.at":
        assert_reported(err, str(release), line_of(text, "schedule:"), "schedule.up", "required field missing")
    assert len(problem_lines(err, str(release))) == (2 if field == "schedule.at" else 1)


# ---------------------------------------------------------------------------------------------------------------
# the decisions, on injected instants (2026-11-25 is a Wednesday; Berlin is UTC+1 in November)
# ---------------------------------------------------------------------------------------------------------------


def scheduled(days: list[str] = WEEKDAYS, up: str = "08:00") -> Any:
    return make_release(schedule={"up": up, "days": days})


def test_bring_up_is_due_from_up_until_the_cutoff_on_a_listed_day() -> None:
    release = scheduled()
    assert decide(release, at("2026-11-25T08:00:00+01:00")) == (
        True,
        "up at 08:00 Europe/Berlin, now 08:00, teardown at 19:30",
    )
    assert decide(release, at("2026-11-25T18:29:00Z"))[0]  # 19:29 Berlin
    assert decide(release, at("2026-11-25T07:59:00+01:00")) == (
        False,
        "not yet: up at 08:00 Europe/Berlin, now 07:59",
    )
    assert decide(release, at("2026-11-25T19:30:00+01:00")) == (
        False,
        "past today's teardown cut-off 19:30 Europe/Berlin (now 19:30); next bring-up Thu 08:00 Europe/Berlin",
    )
    assert decide(release, at("2026-11-28T10:00:00+01:00")) == (
        False,
        "sat is not a working day (schedule.days: mon-fri); next bring-up Mon 08:00 Europe/Berlin",
    )
    assert decide(scheduled(["sat"]), at("2026-11-28T10:00:00+01:00"))[0]
    assert decide(make_release(), at("2026-11-25T10:00:00+01:00")) == (
        False,
        "no schedule.up: the endpoint comes back with its next deploy",
    )


def test_the_day_and_time_are_the_teardown_zones() -> None:
    # 23:30 UTC on Friday is already Saturday 00:30 in Berlin: not a working day there
    assert decide(scheduled(up="00:15"), at("2026-11-27T23:30:00Z"))[1].startswith("sat is not a working day")
    # clocks go forward in Berlin on Sunday 2026-03-29: Monday's 08:00 is 06:00 UTC, not 07:00
    assert next_up(scheduled(), at("2026-03-27T20:00:00+01:00")) == at("2026-03-30T08:00:00+02:00")
    assert decide(scheduled(), at("2026-03-30T06:00:00Z"))[0]
    assert not decide(scheduled(), at("2026-03-30T05:59:00Z"))[0]


def test_down_until_names_the_next_bring_up_outside_working_hours_only() -> None:
    release = scheduled()
    morning = scheduled_down(release, at("2026-11-26T06:41:00Z"))  # 07:41 Berlin, Thursday
    assert morning == (
        "down until 08:00 (schedule): torn down at 19:30, brought up at 08:00 mon-fri, Europe/Berlin; now 07:41"
    )
    evening = scheduled_down(release, at("2026-11-27T20:00:00+01:00"))  # Friday evening: Monday
    assert evening is not None and evening.startswith("down until Mon 08:00 (schedule)")
    assert scheduled_down(release, at("2026-11-26T09:00:00+01:00")) is None  # working hours: absent is drift
    assert scheduled_down(make_release(), at("2026-11-26T07:00:00+01:00")) is None  # no schedule: drift
    assert scheduled_down(make_release(), at("2026-11-26T21:00:00+01:00")) is None


# ---------------------------------------------------------------------------------------------------------------
# the journey: real Terraform on the emulator
# ---------------------------------------------------------------------------------------------------------------

WED_MORNING = "2026-11-25T08:05:00+01:00"
WED_EVENING = "2026-11-25T19:45:00+01:00"
THU_EARLY = "2026-11-26T07:41:00+01:00"
THU_UP = "2026-11-26T08:00:00+01:00"
THU_WORK = "2026-11-26T09:00:00+01:00"
SAT = "2026-11-28T10:00:00+01:00"


@pytest.fixture()
def journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """v1 of the release with working hours (08:00 Monday to Friday), trained, published and committed."""
    from test_rollout import journey_at

    def working_hours(j: Any) -> None:
        j.edit(lambda doc: doc.update(schedule={"up": "08:00", "days": WEEKDAYS}))

    with journey_at(tmp_path, monkeypatch, before_v1=working_hours, variant="working-hours") as j:
        monkeypatch.chdir(j.repo)
        yield j


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and standard output (Terraform's progress goes to standard error)."""
    from smgitops.cli import main

    code = main(list(args))
    return code, capsys.readouterr().out


def bring_up(capsys: pytest.CaptureFixture[str], now: str) -> tuple[int, dict[str, Any]]:
    """``bring-up`` of every release in ./releases: dev's entry (prod has no schedule.up: skipped)."""
    code, out = cli(capsys, "bring-up", "--now", now, "--json")
    entries = {e["release"]: e for e in json.loads(out)["releases"]}
    assert entries.keys() == {"releases/dev.yaml", "releases/prod.yaml"}
    prod = entries["releases/prod.yaml"]
    assert (prod["action"], prod["reason"]) == (
        "skipped",
        "no schedule.up: the endpoint comes back with its next deploy",
    )
    return code, entries["releases/dev.yaml"]


@pytest.mark.terraform
def test_teardown_then_down_until_then_bring_up_with_no_training(
    journey: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    j = journey
    trained = len(j.trainings)

    code, first = bring_up(capsys, WED_MORNING)  # nothing deployed yet: the bring-up creates it
    assert code == 0 and first["action"] == "brought up" and first["plan_after_apply_empty"], first
    config, weights = j.live()
    assert first["endpoint_config"] == config and weights == {"primary": 100.0}
    code, again = bring_up(capsys, WED_MORNING)
    assert (code, again["action"], again["endpoint_config"]) == (0, "already up", config), again

    code, out = cli(capsys, "teardown", "--now", WED_EVENING)
    assert code == 0 and "smgitops-dev" in out
    assert _endpoints() == []

    code, out = cli(capsys, "verify", "releases/dev.yaml", "--now", THU_EARLY)
    assert code == 0, out
    assert "smgitops-dev: down until 08:00 (schedule)" in out and "drift:" not in out
    code, out = cli(capsys, "verify", "releases/dev.yaml", "--now", THU_WORK, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["missing"] and doc["down_until"] is None
    assert "endpoint smgitops-dev does not exist" in doc["problems"]  # in working hours, absent is drift

    code, early = bring_up(capsys, THU_EARLY)
    assert (code, early["action"]) == (0, "skipped") and early["reason"].startswith("not yet: up at 08:00")
    assert _endpoints() == []

    code, morning = bring_up(capsys, THU_UP)
    assert code == 0 and morning["action"] == "brought up", morning
    assert morning["endpoint_config"] == config and morning["plan_after_apply_empty"]
    assert j.live() == (config, {"primary": 100.0})
    assert len(j.trainings) == trained  # the published digests, no training

    code, out = cli(capsys, "verify", "releases/dev.yaml", "--now", THU_WORK)
    assert code == 0 and "live endpoint matches the release" in out, out

    code, weekend = bring_up(capsys, SAT)
    assert (code, weekend["action"]) == (0, "skipped") and weekend["reason"].startswith("sat is not a working day")


@pytest.mark.terraform
def test_bring_up_refuses_an_unpublished_digest_and_changes_nothing(
    journey: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "ab" * 32
    journey.edit(lambda d: [m.update(artifact_sha256=missing) for m in d["models"].values()])
    journey.commit("a digest nobody published")
    journey.trainings.clear()

    code, entry = bring_up(capsys, WED_MORNING)
    assert code == 1 and entry["action"] == "failed" and not entry["ok"], entry
    (problem,) = entry["problems"]
    assert "not brought up" in problem and f"sha256={missing} missing" in problem and "never trains" in problem
    assert _endpoints() == [] and journey.trainings == []


@pytest.mark.terraform
def test_bring_up_serves_the_last_good_revision_not_one_that_never_passed_a_canary(
    journey: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release whose canary failed stays on the branch until its revert is merged: the morning must bring back
    the revision that last passed, not the failed one."""
    from test_rollout import sh

    j = journey
    v1 = sh(j.repo, "rev-parse", "HEAD")
    sh(j.repo, "tag", f"smgitops/good/dev/{v1}")  # what a passed canary records
    code, first = bring_up(capsys, WED_MORNING)
    assert code == 0 and first["action"] == "brought up" and "serving" not in first["reason"], first
    good_config = j.live()[0]
    assert cli(capsys, "teardown", "--now", WED_EVENING)[0] == 0 and _endpoints() == []

    j.edit(lambda d: d["endpoint"].update(instance_count=2))  # merged; its deploy's canary failed (no good tag)
    failed = j.commit("two instances")
    code, morning = bring_up(capsys, THU_UP)
    assert code == 0 and morning["action"] == "brought up" and morning["plan_after_apply_empty"], morning
    assert f"releases/dev.yaml at {failed[:8]} has not passed a canary in dev" in morning["reason"]
    assert f"serving its last good revision {v1[:8]}" in morning["reason"]
    assert j.live()[0] == good_config == morning["endpoint_config"]


def _endpoints() -> list[str]:
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    return sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"])


def test_due_starts_only_the_environments_due_now(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow's gate (no AWS call): a matrix of the releases due now, for the jobs with the apply role."""
    from smgitops.cli import main

    with_schedule(release, '  up: "08:00"\n')
    monkeypatch.chdir(release.parents[1])
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert main(["bring-up", "--due", "--github-output", "--now", "2026-11-25T08:30:00+01:00"]) == 0
    out, err = capsys.readouterr()
    assert out == '[{"release":"releases/dev.yaml","environment":"dev"}]\n'
    assert err == "releases/dev.yaml: due: up at 08:00 Europe/Berlin, now 08:30, teardown at 19:30\n"
    assert main(["bring-up", "--due", "--github-output", "--now", "2026-11-25T07:30:00+01:00"]) == 0
    out, err = capsys.readouterr()
    assert out == "[]\n" and "releases/dev.yaml: not due: not yet: up at 08:00" in err
    assert output.read_text().splitlines() == [
        'matrix=[{"release":"releases/dev.yaml","environment":"dev"}]',
        "any=true",
        "matrix=[]",
        "any=false",
    ]
    assert main(["bring-up", "--github-output"]) == 2
    assert "--github-output goes with --due" in capsys.readouterr().err


@pytest.mark.terraform
def test_the_scheduled_deploy_workflow_brings_up_only_the_due_environment(tmp_path: Path) -> None:
    """deploy.yml on a schedule event, run step by step on the emulator: the push jobs are skipped, the due job
    (no AWS credentials) picks dev (working hours all day) and not prod (no schedule.up), and dev's job brings the
    endpoint up with dev's apply role and no training."""
    from datetime import UTC, datetime

    from conftest import SUITE_NOW
    from fixtures_terraform import local_stack
    from iam_judge import AccountPolicies, judge_recorded
    from smgitops.artifacts import publish_release, store_for
    from smgitops.context import Context
    from smgitops.training import train_release
    from support.actions_runner import Event, Runner, explain, only, run_git
    from test_workflows import _IGNORE, IDENTITY, REPOSITORY, ROLE_VARIABLES, SEED_DIRS, SEED_FILES, TOKEN, _edit

    # the due job reads the runner's real clock (only steps with credentials get SMGITOPS_NOW): dev is in its
    # working hours all day but the minute from its 23:59 UTC cut-off to midnight
    if datetime.now(UTC).strftime("%H:%M") == "23:59":
        pytest.skip("the one minute of the day outside dev's working hours")
    root = Path(__file__).resolve().parents[1]
    seed = tmp_path / "seed"
    for name in SEED_DIRS:
        shutil.copytree(root / name, seed / name, ignore=_IGNORE)
    for name in SEED_FILES:
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, seed / name)
    (seed / ".gitignore").write_text("/.venv\n/.venv-tools\n/.smgitops/\n/out/\n")
    _edit(
        seed / "releases" / "dev.yaml",
        lambda d: d.update(
            teardown={"at": "23:59", "timezone": "UTC"}, schedule={"up": "00:00", "days": [*WEEKDAYS, "sat", "sun"]}
        ),
    )
    run_git(seed, "init", "-q", "-b", "main")
    run_git(seed, "add", ".")
    run_git(seed, "commit", "-q", "-m", "dev: working hours", env=IDENTITY)
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    head = run_git(seed, "rev-parse", "HEAD")

    with local_stack(tmp_path, repo_root=seed) as stack:
        dev = load_release(seed / "releases" / "dev.yaml")
        built = train_release(dev, list(dev.served_models()), tmp_path / "out")  # as deploy.yml published them
        assert (
            publish_release(dev, store_for(dev, Context.for_release(dev)), artifact_dir=tmp_path / "out").ok and built
        )
        (outputs_file,) = stack.local_dir.glob("*/outputs.json")
        outputs = json.loads(outputs_file.read_text())
        roles = AccountPolicies.role_arns(outputs)
        settings = {k: v for k, v in stack.settings_env().items() if k != "SMGITOPS_EXECUTION_ROLE_ARN"}
        runner = Runner(
            origin=origin,
            tmp=tmp_path / "runs",
            aws_env={
                **stack.emulator.env(),
                "SMGITOPS_LOCAL_DIR": str(stack.local_dir),
                "SMGITOPS_NOW": SUITE_NOW,
            },
            variables={
                **settings,
                **{var: roles[label] for var, label in ROLE_VARIABLES.items()},
                "SMGITOPS_EXECUTION_ROLE_ARNS": json.dumps(
                    {env: stack.settings.execution_role_for(env) for env in ("dev", "prod")}
                ),
                "SMGITOPS_AWS_REGION": "us-east-1",
                "SMGITOPS_APP_CLIENT_ID": "",
            },
            environment_variables={env: {"SMGITOPS_APPLY_ROLE_ARN": roles[f"apply-{env}"]} for env in ("dev", "prod")},
            api_url="http://127.0.0.1:9",  # no GitHub API call: nothing is recorded
            repository=REPOSITORY,
            token=TOKEN,
            iam_log=stack.admin,
        )
        stack.admin.start_iam_log()
        results = runner.run("deploy.yml", Event("schedule", {"schedule": "23,53 4-9 * * *"}, head, "refs/heads/main"))
        # every AWS call of the bring-up, judged against the policy of dev's apply role (tests/iam_judge.py)
        import boto3

        verdict = judge_recorded(
            AccountPolicies.read(boto3.session.Session(region_name="us-east-1"), outputs),
            runner.iam_records,
            runner.role_keys,
        )

    assert {job: [r.result for r in runs] for job, runs in results.items()} == {
        "changes": ["skipped"],
        "deploy": ["skipped"],
        "retire": ["skipped"],
        "record": ["skipped"],
        "due": ["success"],
        "bringup": ["success"],
    }, explain(results)
    due = only(results, "due")
    assert due.roles == [] and json.loads(due.outputs["matrix"]) == [
        {"release": "releases/dev.yaml", "environment": "dev"}
    ]
    assert "releases/prod.yaml: not due: no schedule.up" in due.steps[-1].output
    up = only(results, "bringup")
    assert up.environment == "dev" and up.roles == [roles["apply-dev"]]
    last = up.steps[-1].output
    assert "releases/dev.yaml: brought up (ok): endpoint smgitops-dev" in last and "no training" in last, last
    assert not verdict.problems, "\n".join(verdict.problems[:20])
    per_role = verdict.summary()["per_role"]
    assert set(per_role) == {"apply-dev"} and per_role["apply-dev"]["calls"] > 0
    assert per_role["apply-dev"]["allowed"] == per_role["apply-dev"]["calls"], per_role
