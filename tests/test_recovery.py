"""Recovery with real Terraform on the emulator: a cancelled or killed deploy, a failed endpoint update, a state
lock left behind. Each scenario ends with the live endpoint on the release (or the last good one), the plan empty,
the state lock free, and no state surgery by hand.

A deploy is cancelled the way GitHub cancels a job: SIGTERM to the smgitops process (``smgitops apply`` in its own
process, the endpoint held ``Updating`` by the emulator's update delay). A lost runner is SIGKILL to the whole
process group (smgitops and Terraform).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops.context import Context
from smgitops.locks import DEFAULT_OLDER_THAN_MINUTES, LockInfo, lock_created
from smgitops.terraform import lock_info_from_error
from test_rollout import Journey, baking, journey_at, sh, terraform_needed

pytestmark = [terraform_needed, pytest.mark.terraform]

ENDPOINT = "smgitops-dev"


@pytest.fixture()
def journey(tmp_path: Path, git_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Journey]:
    """v1 (one model at 100 %) trained, published, committed and applied; the plan is empty."""
    with journey_at(tmp_path, monkeypatch, applied=True) as j:
        yield j


def _expected(j: Journey) -> str:
    from smgitops.plan import expected_config_name
    from smgitops.release import load_release

    return expected_config_name(load_release(j.path), j.stack.settings)


def _lock(j: Journey) -> LockInfo | None:
    from smgitops.aws import Aws
    from smgitops.workspace import read_lock

    return read_lock(Aws.for_region("us-east-1"), j.stack.settings, "dev")


def _plan_empty(j: Journey) -> bool:
    from smgitops.plan import plan_release
    from smgitops.release import load_release

    return plan_release(release := load_release(j.path), Context.for_release(release)).no_changes


def _configs() -> list[str]:
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    return sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])


def _configs_in_state(j: Journey) -> list[str]:
    """The endpoint configurations the environment's Terraform state in S3 holds."""
    import json

    import boto3

    settings = j.stack.settings
    body = boto3.client("s3", region_name="us-east-1").get_object(
        Bucket=settings.state_bucket, Key=settings.state_key("dev")
    )["Body"]
    state = json.loads(body.read())
    return sorted(
        instance["attributes"]["name"]
        for resource in state.get("resources", [])
        if resource["type"] == "aws_sagemaker_endpoint_configuration"
        for instance in resource["instances"]
    )


def _two_instances(j: Journey) -> str:
    j.edit(lambda d: d["endpoint"].update(instance_count=2))
    return j.commit("two instances")


def _start_apply(j: Journey) -> subprocess.Popen[str]:
    """``smgitops apply --auto-approve`` in its own process group (as a runner starts a job's step)."""
    return subprocess.Popen(
        [sys.executable, "-m", "smgitops.cli", "apply", "releases/dev.yaml", "--auto-approve"],
        cwd=j.repo,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_updating(proc: subprocess.Popen[str], timeout: float = 180.0) -> None:
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Updating":
            return
        if proc.poll() is not None:
            raise AssertionError(f"apply ended before the endpoint was Updating: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError("the endpoint never became Updating")


def test_sigterm_while_updating_is_passed_to_terraform_and_says_what_next(journey: Journey) -> None:
    from smgitops.deploy import apply_release
    from smgitops.release import load_release

    j = journey
    v1_config, _ = j.live()
    _two_instances(j)
    j.stack.admin.set_update_delay(3600)  # Updating until the emulator clock moves on
    proc = _start_apply(j)
    _wait_updating(proc)
    os.kill(proc.pid, signal.SIGTERM)  # smgitops only: it must pass the signal on to Terraform
    signalled = time.monotonic()
    j.stack.admin.advance_clock(3600)  # the update in flight completes; Terraform's waiter sees it next poll
    _, err = proc.communicate(timeout=240)
    print(f"\nSIGTERM while Updating: smgitops exited {proc.returncode} {time.monotonic() - signalled:.1f} s later")

    assert proc.returncode == 130, err
    (line,) = [ln for ln in err.splitlines() if "cancelled by SIGTERM" in ln]
    assert "during terraform apply" in line and "state lock released" in line
    assert "smgitops deploy releases/dev.yaml" in line and "Traceback" not in err
    assert f"is InService on configuration {_expected(j)} (the release's)" in line
    assert _lock(j) is None  # Terraform released it on the way out

    # The next run converges: nothing adopted by hand, the old configuration pruned, the plan empty.
    j.stack.admin.set_update_delay(0)
    _, applied = apply_release(release := load_release(j.path), Context.for_release(release))
    assert applied.ok and applied.plan_after_apply_empty
    assert j.live()[0] == _expected(j) != v1_config
    assert _configs() == [_expected(j)]
    assert _plan_empty(j) and _lock(j) is None


def test_unlock_refuses_locks_younger_than_the_deploy_jobs_timeout() -> None:
    """A lock younger than the deploy job's timeout may belong to a run still going: unlock's default waits it out."""
    workflow = yaml.safe_load((Path(__file__).resolve().parents[1] / ".github/workflows/deploy.yml").read_text())
    timeouts = [job.get("timeout-minutes", 360) for job in workflow["jobs"].values() if "deploy" in str(job)]
    assert DEFAULT_OLDER_THAN_MINUTES >= max(timeouts)


def test_lock_error_parsing() -> None:
    text = (
        "Error: Error acquiring the state lock\n\nError message: operation error DynamoDB: PutItem\nLock Info:\n"
        "  ID:        4f0c7b3e-1111-2222-3333-444455556666\n  Path:      b/smgitops/dev.tfstate\n"
        "  Operation: OperationTypeApply\n  Who:       runner@host\n  Version:   1.11.4\n"
        "  Created:   2026-11-30 15:40:01.123456789 +0000 UTC\n  Info:      \n"
    )
    lock = lock_info_from_error(text)
    assert lock == LockInfo(
        "4f0c7b3e-1111-2222-3333-444455556666",
        "apply",
        "runner@host",
        "2026-11-30 15:40:01.123456789 +0000 UTC",
        "b/smgitops/dev.tfstate",
    )
    assert lock_info_from_error("Error: something else") is None
    created = lock_created(lock)
    assert created is not None and created.isoformat() == "2026-11-30T15:40:01.123456+00:00"
    json_form = LockInfo("x", "apply", "w", "2026-11-30T15:40:01.123456789Z")  # as written in the lock itself
    assert lock_created(json_form) == created


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Terraform runs in its own session, so a process-group kill would miss it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_everything(proc: subprocess.Popen[str]) -> None:
    """A lost runner: smgitops, Terraform and its provider die at once, nobody cleans up."""
    victims = [proc.pid, *_descendants(proc.pid)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=30)


def test_sigkill_while_updating_leaves_a_lock_then_unlock_and_the_next_deploy_adopts(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smgitops import cli
    from smgitops.rollout import deploy

    j = journey
    v1_config, _ = j.live()
    failed_sha = _two_instances(j)
    j.stack.admin.set_update_delay(3600)
    proc = _start_apply(j)
    _wait_updating(proc)
    _kill_everything(proc)
    j.stack.admin.advance_clock(3600)  # the update SageMaker had accepted completes without anyone watching
    j.stack.admin.set_update_delay(0)
    expected = _expected(j)
    assert j.live()[0] == expected  # live on the new configuration, which the state may not know
    # Terraform persists a snapshot of a long apply's state (an update 20 s or more after the first): on a loaded
    # machine the new configuration may have reached the state before the kill, and then there is nothing to adopt.
    persisted = expected in _configs_in_state(j)
    held = _lock(j)
    assert held is not None and held.operation == "apply"

    # A deploy meanwhile: waits a bounded time naming the holder, then exit 2, nothing changed, no rollback.
    monkeypatch.chdir(j.repo)
    monkeypatch.setenv("SMGITOPS_LOCK_TIMEOUT", "1s")  # waited out in full: the dead run never releases it
    started = time.monotonic()
    assert cli.main(["deploy", "releases/dev.yaml"]) == 2
    waited = time.monotonic() - started
    err = capsys.readouterr().err
    with capsys.disabled():
        print(f"\ndeploy under a dead run's lock (SMGITOPS_LOCK_TIMEOUT=1s): exit 2 after {waited:.1f} s")
    assert f"waiting up to 1s for the Terraform state lock, held by {held.who} since {held.created}" in err
    assert f"lock ID {held.id}" in err and "smgitops unlock dev" in err
    assert "ROLLBACK" not in err and "rolled back" not in err
    assert sh(j.repo, "branch", "--list", "smgitops/rollback-*") == ""
    assert j.live()[0] == expected

    # unlock refuses a lock younger than the job timeout, then releases it when told the run is dead
    assert cli.main(["unlock", "dev"]) == 2
    err = capsys.readouterr().err
    assert f"younger than {DEFAULT_OLDER_THAN_MINUTES:g} min" in err and "--older-than 0" in err
    assert _lock(j) == held
    assert cli.main(["unlock", "dev", "--older-than", "0"]) == 0
    assert f"released the state lock held by {held.who}" in capsys.readouterr().out
    assert _lock(j) is None

    # The endpoint looks right, but the state does not know what serves: verify (the drift check) is not green.
    verified = cli.main(["verify", "releases/dev.yaml"])
    out, err = capsys.readouterr()
    assert verified == 1, err
    assert "the Terraform state does not match AWS: aws_sagemaker_endpoint.this (update outside Terraform)" in out, err

    # The next deploy adopts what the killed run created, converges, and prunes the configuration it replaced.
    result = deploy(j.path, traffic=20, **baking())
    assert result.ok, result.summary()
    err = capsys.readouterr().err
    if not persisted:
        adopted = f"adopted {expected} into aws_sagemaker_endpoint_configuration.this" in err
        assert adopted or f"pruned {v1_config}" in err, err[-4000:]
    assert result.plan_after_apply_empty and j.live()[0] == expected
    assert result.recorded_good == f"smgitops/good/dev/{failed_sha}"
    assert _configs() == [expected]
    assert _plan_empty(j) and _lock(j) is None


def test_a_run_killed_between_writing_the_state_and_its_digest_is_repaired_by_unlock(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Terraform writes the state to S3, then its MD5 to DynamoDB; a runner lost between the two leaves its lock
    and a stale digest, and every Terraform command then fails. ``unlock`` releases the dead run's lock and sets
    the digest to the state's (S3 holds the newer state); the state is not touched."""
    import hashlib
    import json as json_

    import boto3

    j = journey
    settings = j.stack.settings
    key = settings.state_key("dev")
    s3 = boto3.client("s3", region_name="us-east-1")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    state = s3.get_object(Bucket=settings.state_bucket, Key=key)["Body"].read()
    digest_key = {"LockID": {"S": f"{settings.state_bucket}/{key}-md5"}}
    stored = ddb.get_item(TableName=settings.lock_table, Key=digest_key)["Item"]["Digest"]["S"]
    assert stored == hashlib.md5(state).hexdigest()  # the layout Terraform's S3 backend writes

    # The dead run: its digest is the state before its last write, its lock is three hours old.
    stale = hashlib.md5(b"the state before the dead run's last write").hexdigest()
    ddb.put_item(TableName=settings.lock_table, Item={**digest_key, "Digest": {"S": stale}})
    dead = {
        "ID": "5c1d1d1e-0000-4000-8000-00000000dead",
        "Operation": "OperationTypeApply",
        "Who": "runner@lost-host",
        "Version": "1.11.0",
        "Created": "2026-11-30T09:00:00.000000000Z",
        "Path": f"{settings.state_bucket}/{key}",
        "Info": "",
    }
    ddb.put_item(
        TableName=settings.lock_table,
        Item={"LockID": {"S": f"{settings.state_bucket}/{key}"}, "Info": {"S": json_.dumps(dead)}},
    )
    s3.put_object(Bucket=settings.state_bucket, Key=f"{key}.tflock", Body=json_.dumps(dead).encode())
    monkeypatch.chdir(j.repo)
    from smgitops import cli

    assert cli.main(["unlock", "dev", "--older-than", "0"]) == 0
    out = capsys.readouterr().out
    assert "released the state lock held by runner@lost-host" in out, out
    assert f"repaired the state digest {settings.state_bucket}/{key}-md5 was {stale}" in out, out
    assert ddb.get_item(TableName=settings.lock_table, Key=digest_key)["Item"]["Digest"]["S"] == stored
    assert s3.get_object(Bucket=settings.state_bucket, Key=key)["Body"].read() == state  # the state untouched
    assert _lock(j) is None and _plan_empty(j)

    # Without unlock, Terraform fails; smgitops names the cause and the command that repairs it (exit 2).
    ddb.put_item(TableName=settings.lock_table, Item={**digest_key, "Digest": {"S": stale}})
    assert cli.main(["verify", "releases/dev.yaml"]) == 2
    err = capsys.readouterr().err
    assert "the state in S3 does not match its digest in DynamoDB" in err, err
    assert "run smgitops unlock dev" in err and "Calculated checksum: " + stored in err, err
    assert cli.main(["unlock", "dev"]) == 0  # no lock held: the digest alone is repaired
    out = capsys.readouterr().out
    assert "the state lock is free" in out and f"was {stale}, the state in S3 is {stored}" in out, out
    assert cli.main(["unlock", "dev"]) == 0 and "repaired" not in capsys.readouterr().out  # nothing left to do
    assert cli.main(["verify", "releases/dev.yaml"]) == 0


@pytest.mark.parametrize("lost", ["DynamoDB_20120810.PutItem", "s3:PUT .tflock"])
def test_a_lost_answer_to_terraforms_own_lock_request_does_not_strand_the_state(
    journey: Journey, lost: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock request reaches AWS, its answer is lost, the SDK retries and finds the lock it has just taken.
    Terraform alone waits out the lock timeout and leaves that lock behind; smgitops recognises its own lock
    (this host and user, taken during this command, free when the command started), releases it and runs again."""
    j = journey
    monkeypatch.setenv("SMGITOPS_LOCK_TIMEOUT", "1s")  # Terraform waits it out for the lock it holds itself
    dropped_before = _dropped_logged(j)
    retried_before = j.stack.admin.stats()["retried_after_answer"]
    j.stack.admin.drop_next_response(lost)
    assert _plan_empty(j)
    err = capsys.readouterr().err
    assert "took the state lock itself" in err and "released it and ran terraform plan again" in err
    assert _lock(j) is None
    assert j.stack.admin.stats()["responses_to_drop"] == 0  # the answer was lost indeed
    assert _dropped_logged(j) > dropped_before  # and the emulator's log says so
    # The SDK's retry of a request already served is seen, counted and logged with the earlier attempt's fate.
    assert j.stack.admin.stats()["retried_after_answer"] > retried_before
    log = j.stack.emulator.log_path.read_text(encoding="utf-8", errors="replace")
    assert "the attempt before was served, its answer dropped on purpose" in log, log[-3000:]


def _dropped_logged(j: Journey) -> int:
    log = j.stack.emulator.log_path.read_text(encoding="utf-8", errors="replace")
    return log.count("connection dropped before the answer reached the client: ")


def test_failed_update_keeps_the_serving_configuration_and_merging_the_revert_converges_in_one_deploy(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smgitops import cli
    from smgitops.rollout import deploy

    j = journey
    v1 = sh(j.repo, "rev-parse", "HEAD")
    v1_config, _ = j.live()
    failed = _two_instances(j)
    v2_config = _expected(j)
    j.stack.admin.fail_next_update(ENDPOINT, "Unable to provision requested ML compute capacity.")
    seen: dict[str, Any] = {}

    def at_apply(step: Any) -> None:
        if step.name == "apply":  # the update failed: what exists and serves before any rollback
            seen["configs"], seen["live"] = _configs(), j.live()[0]

    result = deploy(j.path, traffic=20, on_step=at_apply, **baking())

    assert not result.ok and result.failed_step == "apply", result.summary()
    assert "Unable to provision" in result.reason
    assert seen["live"] == v1_config and v1_config in seen["configs"]  # the serving configuration was not deleted
    rb = result.rollback or {}
    assert rb.get("ok") and rb["to"] == v1 and rb["plan_after_apply_empty"] is True
    assert j.live()[0] == v1_config
    assert _configs() == [v1_config]  # the configuration that never served is pruned
    branch = rb["branch"]
    assert branch == f"smgitops/rollback-dev-{failed[:8]}"

    # Merging the revert branch (the documented recovery) converges in one deploy: no update is needed, and the
    # old FailureReason on exactly the release's configuration is a note, not drift.
    sh(j.repo, "merge", "-q", "--ff-only", branch)
    merged = sh(j.repo, "rev-parse", "HEAD")
    again = deploy(j.path, traffic=20, **baking())
    assert again.ok, again.summary()
    assert again.rollback is None and again.recorded_good == f"smgitops/good/dev/{merged}"
    assert again.endpoint_config == v1_config and again.plan_after_apply_empty
    assert sh(j.repo, "branch", "--list", "smgitops/rollback-*").split() == [branch]
    monkeypatch.chdir(j.repo)
    assert cli.main(["verify", "releases/dev.yaml"]) == 0
    out = capsys.readouterr().out
    assert "an earlier update failed (Unable to provision" in out and "matches the release" in out
    assert j.live()[0] == v1_config != v2_config
    assert _plan_empty(j) and _lock(j) is None


def test_a_reviewed_plan_whose_update_fails_stops_before_deleting_the_serving_configuration(
    journey: Journey,
) -> None:
    from smgitops.deploy import apply_plan, apply_release
    from smgitops.errors import SmgitopsError
    from smgitops.plan import plan_release
    from smgitops.release import load_release

    j = journey
    v1_config, _ = j.live()
    _two_instances(j)
    release = load_release(j.path)
    planned = plan_release(release, Context.for_release(release))  # the reviewed plan replaces the configuration
    assert planned.summary["resources"]["replace"] >= 1, planned.summary
    j.stack.admin.fail_next_update(ENDPOINT, "Model container failed the ping health check.")

    with pytest.raises(SmgitopsError) as failed:
        apply_plan(release := load_release(j.path), Context.for_release(release), plan_file=planned.plan_file)
    message = str(failed.value)
    assert f"still serves {v1_config}" in message and "ping health check" in message
    assert j.live()[0] == v1_config and v1_config in _configs()  # Terraform did not delete what serves

    # Trying again (the capacity came back) converges; Terraform removes the old configuration only now.
    _, applied = apply_release(release := load_release(j.path), Context.for_release(release))
    assert applied.ok and applied.plan_after_apply_empty
    assert j.live()[0] == _expected(j) and _configs() == [_expected(j)]
    assert _plan_empty(j) and _lock(j) is None


def test_an_endpoint_rename_shows_replaced_downtime_and_leaves_nothing_behind(
    journey: Journey, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from smgitops.deploy import apply_release
    from smgitops.plan import fallback_markdown, plan_release, print_summary
    from smgitops.release import load_release

    j = journey
    j.edit(lambda d: d["endpoint"].update(name="smgitops-blue-dev"))
    j.commit("rename the endpoint")
    summary = plan_release(release := load_release(j.path), Context.for_release(release)).summary

    assert summary["endpoint_change"] == {
        "before": ENDPOINT,
        "after": "smgitops-blue-dev",
        "replaced": True,
        "downtime": True,
    }
    assert [v["weight_before"] for v in summary["variants"]] == [100]  # not "(none) →": the old endpoint's
    print_summary(summary)
    out = capsys.readouterr().out
    assert f"endpoint {ENDPOINT} → smgitops-blue-dev: replaced: downtime" in out
    assert "replaced: downtime" in fallback_markdown(summary)

    _, applied = apply_release(release := load_release(j.path), Context.for_release(release))
    assert applied.ok and applied.plan_after_apply_empty
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["smgitops-blue-dev"]
    assert _configs() == [_expected(j)] and _expected(j).startswith("smgitops-blue-dev-")
    assert _plan_empty(j) and _lock(j) is None


_CHILD = """
import signal, sys, time
got = []
def note(signum, frame):
    got.append(signal.Signals(signum).name)
    open(sys.argv[1], "a").write(got[-1] + "\\n")
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
open(sys.argv[1], "a").write("ready\\n")
deadline = time.monotonic() + 20
while len(got) < int(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(3 if got else 0)
"""


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGINT", "SIGTERM"]])
def test_the_runner_passes_each_signal_on_and_waits_for_the_child(tmp_path: Path, signals: list[str]) -> None:
    """GitHub cancels with SIGINT, then SIGTERM: each reaches the child (Terraform), which is waited for."""
    import threading

    from smgitops.terraform import Interrupted, subprocess_runner

    log = tmp_path / "child.log"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)

    def send() -> None:
        deadline = time.monotonic() + 20
        while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.02)
        for name in signals:
            os.kill(os.getpid(), getattr(signal, name))  # to this process: the runner's handler passes it on
            time.sleep(0.3)

    sender = threading.Thread(target=send)
    sender.start()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        subprocess_runner([sys.executable, str(script), str(log), str(len(signals))], cwd=tmp_path, env=os.environ)
    sender.join()
    assert log.read_text().split() == ["ready", *signals]  # the child got every signal, in order
    assert caught.value.signal_name == signals[0] and caught.value.count == len(signals)
    assert caught.value.returncode == 3  # its own exit: it was waited for, not abandoned
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are restored


def test_a_refresh_that_reads_an_absent_value_back_empty_is_not_drift() -> None:
    """Provider 3.39 stores attributes it was never given as null and reads them back from AWS as {} or [] (an
    alarm's actions and dimensions, tags under default_tags): that is not drift; any real change still is."""
    from smgitops.recovery import drifted_attributes

    state = {"alarm_name": "smgitops-dev/primary/5xx-rate", "tags": None, "alarm_actions": None, "threshold": 0.01}
    read_back = {**state, "tags": {}, "alarm_actions": [], "dimensions": {}}
    assert drifted_attributes(state, read_back) == []
    assert drifted_attributes(state, {**read_back, "threshold": 0.5}) == ["threshold"]
    assert drifted_attributes(state, {**read_back, "tags": {"release": "prod"}}) == ["tags"]
    assert drifted_attributes({"tags": {"release": "dev"}}, {"tags": {}}) == ["tags"]  # removed outside Terraform
