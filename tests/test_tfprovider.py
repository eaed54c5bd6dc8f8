"""One AWS provider per run (smgitops.tfprovider): in local mode Terraform attaches to it instead of starting one."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smgitops import tfprovider, tfrelay
from smgitops.errors import UserError
from smgitops.terraform import Completed, Interrupted, Terraform, subprocess_runner

pytestmark = pytest.mark.terraform


@dataclass
class EnvRecorder:
    """Runs Terraform for real and keeps, per call, the sub-command and the reattach value it was given."""

    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def __call__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
        self.calls.append((args[1], env.get(tfprovider.REATTACH_VAR)))
        return subprocess_runner(args, cwd=cwd, env=env)


@dataclass
class Bootstrap:
    root: Path
    variables: dict[str, str]

    def terraform(self, runner: EnvRecorder, **extra: str) -> Terraform:
        from smgitops.localmode import emulator_from_env, terraform_env

        return Terraform(self.root, env={**terraform_env(emulator_from_env(None), None), **extra}, runner=runner)


@pytest.fixture()
def bootstrap(tmp_path: Path) -> Iterator[Bootstrap]:
    """The bootstrap/ working copy local mode applied to the emulator (initialised, with its local state)."""
    from fixtures_terraform import local_stack

    with local_stack(tmp_path) as stack:
        (applied,) = stack.local_dir.glob("*/applied.json")
        variables = json.loads(applied.read_text())["variables"]
        yield Bootstrap(applied.parent / "bootstrap", variables)
    tfprovider.HOST.stop_all()


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_local_mode_commands_share_one_provider_which_does_their_work(bootstrap: Bootstrap) -> None:
    runner = EnvRecorder()
    tf = bootstrap.terraform(runner)
    tfprovider.HOST.stop_all()
    started = tfprovider.HOST.started

    assert tf.plan(lock=False, variables=bootstrap.variables) is False  # bootstrapped: nothing to change
    (reattach,) = {value for _, value in runner.calls}
    assert reattach is not None
    pid = tfprovider.pid_of(reattach)
    assert pid is not None and tfprovider.HOST.started == started + 1
    before = _cpu_ticks(pid)
    assert "resources" in json.dumps(tf.show_json())
    assert tf.plan(lock=False, variables=bootstrap.variables) is False
    # the same provider served all three (Terraform started none: the shared one did the schema and refresh work)
    assert {value for _, value in runner.calls} == {reattach}
    assert tfprovider.HOST.started == started + 1
    assert _cpu_ticks(pid) > before

    # commands that need no provider are run as they are
    tf.output_json()
    assert runner.calls[-1] == ("output", None)

    # another environment is another provider configuration (credentials, endpoints): a provider of its own
    other = bootstrap.terraform(runner, AWS_ACCESS_KEY_ID="another-key")
    other.show_json()
    assert runner.calls[-1][1] not in (None, reattach) and tfprovider.HOST.started == started + 2

    # what the provider never reads does not make another: smgitops' own settings, pytest's current test name
    same = bootstrap.terraform(runner, SMGITOPS_LOCAL_DIR="/elsewhere", PYTEST_CURRENT_TEST="another (call)")
    same.show_json()
    assert runner.calls[-1][1] == reattach and tfprovider.HOST.started == started + 2
    # but the settings that decide how a provider is started do
    unrelayed = bootstrap.terraform(runner, SMGITOPS_SCHEMA_RELAY="0")
    unrelayed.show_json()
    assert runner.calls[-1][1] not in (None, reattach) and tfprovider.HOST.started == started + 3


def test_the_schema_relay_gives_each_terraform_process_one_schema_and_the_same_plan(
    bootstrap: Bootstrap, tmp_path: Path
) -> None:
    runner = EnvRecorder()
    relayed, direct = bootstrap.terraform(runner), bootstrap.terraform(runner, SMGITOPS_SCHEMA_RELAY="0")
    tfprovider.HOST.stop_all()
    # a change to plan: another environment in bootstrap/'s variables (roles, policies)
    variables = {**bootstrap.variables, "environments": json.dumps(["dev", "prod", "staging"])}
    plans = {}
    for name, tf in (("relayed", relayed), ("direct", direct)):
        plan_file = tmp_path / f"{name}.tfplan"
        assert tf.plan(out=plan_file, lock=False, variables=variables) is True
        plans[name] = tf.show_json(plan_file)["resource_changes"]
    (relayed_reattach,) = {value for command, value in runner.calls[:2]}
    (direct_reattach,) = {value for command, value in runner.calls[2:]}
    relay = tfprovider.HOST.relay_of(relayed_reattach)
    assert relay is not None and tfprovider.HOST.relay_of(direct_reattach) is None
    # Terraform attaches to the relay's socket; the process it names is still the provider
    assert json.loads(relayed_reattach)[tfprovider.PROVIDER_ADDRESS]["Addr"]["String"] == relay.socket
    assert tfprovider.pid_of(relayed_reattach) is not None
    # two Terraform processes: one schema answer each (a plan alone asks three times without the relay), and the
    # provider built it once
    assert (relay.schema_answers, relay.schema_fetches) == (2, 1)
    # local mode: only the services of the roots' types (bootstrap/ and terraform/ share the provider)
    assert relay.families is not None and relay.left_out > 500
    assert {"aws_iam_", "aws_kms_", "aws_s3_", "aws_dynamodb_", "aws_sagemaker_", "aws_cloudwatch_"} <= relay.families
    assert not any(family.startswith(("aws_ec2", "aws_instance", "aws_lambda")) for family in relay.families)
    # and the plans are the same, change for change
    assert plans["relayed"] == plans["direct"] and any(c["change"]["actions"] != ["no-op"] for c in plans["direct"])

    assert tfrelay.schema_optional(b"\x0a\x00") == b"\x0a\x00\x32\x02\x10\x01"
    with pytest.raises(UserError, match=r"SMGITOPS_SCHEMA_RELAY='on': expected 1 .* or 0") as caught:
        tfrelay.relay_asked({"SMGITOPS_SCHEMA_RELAY": "on"})
    assert caught.value.exit_code == 2
    # refused where sharing is decided, in the command's thread, before a provider starts in another
    with pytest.raises(UserError, match="SMGITOPS_SCHEMA_RELAY='on'"):
        tfprovider.warm(relayed.workdir, {**relayed.env, "SMGITOPS_SCHEMA_RELAY": "on"})


EXITS_WITH_A_STREAM_OPEN = """
import json, sys, time
from pathlib import Path
import grpc
from smgitops import tfprovider
root, env = sys.argv[1], json.loads(sys.argv[2])
reattach = tfprovider.HOST.reattach(Path(root), env)
relay = tfprovider.HOST.relay_of(reattach)
channel = grpc.insecure_channel(f"unix:{relay.socket}")
stream = channel.unary_stream("/plugin.GRPCStdio/StreamStdio")(b"")  # the provider never ends it
time.sleep(1)
print(tfprovider.pid_of(reattach), flush=True)
"""


def test_a_command_exits_while_a_stream_through_the_relay_is_open(bootstrap: Bootstrap) -> None:
    """Terraform holds go-plugin's stdio stream open while attached; the provider never ends it. A command whose
    relay still relays such a stream when it exits must exit (and stop its provider), not wait for the stream."""
    import subprocess
    import sys

    tf = bootstrap.terraform(EnvRecorder())
    proc = subprocess.run(
        [sys.executable, "-c", EXITS_WITH_A_STREAM_OPEN, str(tf.workdir), json.dumps(tf.env)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[0])
    with pytest.raises(ProcessLookupError):  # stopped at exit with its relay
        os.kill(pid, 0)


def test_a_stream_whose_caller_is_already_gone_is_cancelled_at_once() -> None:
    cancelled: list[bool] = []

    class Call:
        def cancel(self) -> None:
            cancelled.append(True)

    class Ended:  # gRPC's context of an RPC that already terminated: add_callback registers nothing
        def add_callback(self, callback: object) -> bool:
            return False

    class Live:
        def __init__(self) -> None:
            self.callbacks: list[object] = []

        def add_callback(self, callback: object) -> bool:
            self.callbacks.append(callback)
            return True

    call = Call()
    assert tfrelay._ended_with(Ended(), call) is call and cancelled == [True]
    live = Live()
    assert tfrelay._ended_with(live, call) is call and cancelled == [True] and live.callbacks == [call.cancel]


def _entry(field: int, key: str, value: bytes) -> bytes:
    body = b"\x0a" + bytes([len(key)]) + key.encode() + b"\x12" + bytes([len(value)]) + value
    return bytes([field << 3 | 2, len(body)]) + body


def test_the_relay_leaves_out_only_other_services_types() -> None:
    provider = b"\x0a\x03\x10\x01\x00"  # field 1 (the provider's own schema), kept whatever it holds
    answer = (
        provider
        + _entry(2, "aws_sagemaker_model", b"\x08\x01")
        + _entry(2, "aws_instance", b"\x08\x02")
        + _entry(3, "aws_iam_policy_document", b"\x08\x03")
        + _entry(3, "aws_ami", b"\x08\x04")
        + b"\x22\x00"  # field 4 (diagnostics), kept
    )
    kept, left_out = tfrelay.only_families(answer, {"aws_sagemaker_", "aws_iam_"})
    assert left_out == 2
    assert kept == (
        provider
        + _entry(2, "aws_sagemaker_model", b"\x08\x01")
        + _entry(3, "aws_iam_policy_document", b"\x08\x03")
        + b"\x22\x00"
    )
    assert tfrelay.only_families(answer, {"aws_"}) == (answer, 0)
    assert tfprovider._family("aws_sagemaker_endpoint_configuration") == "aws_sagemaker_"
    assert tfprovider._family("aws_region") == "aws_region"


def test_sharing_is_off_when_asked_and_against_aws(bootstrap: Bootstrap) -> None:
    runner = EnvRecorder()
    started = tfprovider.HOST.started
    bootstrap.terraform(runner, SMGITOPS_SHARED_PROVIDER="0").show_json()
    assert runner.calls == [("show", None)] and tfprovider.HOST.started == started

    assert tfprovider.sharing_wanted({}) is False  # against AWS: Terraform starts its provider per command
    assert tfprovider.sharing_wanted({"SMGITOPS_SHARED_PROVIDER": "1"}) is True
    assert tfprovider.sharing_wanted({"AWS_ENDPOINT_URL": "https://127.0.0.1:1"}) is True
    # a reattach value the caller set is the caller's: smgitops starts nothing beside it
    assert tfprovider.sharing_wanted({"AWS_ENDPOINT_URL": "https://x", "TF_REATTACH_PROVIDERS": "{}"}) is False


def test_a_bad_setting_is_refused_naming_the_variable() -> None:
    with pytest.raises(UserError, match=r"SMGITOPS_SHARED_PROVIDER='yes': expected 1 .* or 0") as caught:
        tfprovider.sharing_wanted({"SMGITOPS_SHARED_PROVIDER": "yes"})
    assert caught.value.exit_code == 2


def test_an_interrupted_command_stops_the_provider_it_used(bootstrap: Bootstrap) -> None:
    seen: list[str] = []

    def interrupted(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
        seen.append(env[tfprovider.REATTACH_VAR])
        raise Interrupted(args[1], signal.SIGTERM, 1)

    from smgitops.localmode import emulator_from_env, terraform_env

    tf = Terraform(bootstrap.root, env=terraform_env(emulator_from_env(None), None), runner=interrupted)
    with pytest.raises(Interrupted):
        tf.show_json()
    (reattach,) = seen
    pid = tfprovider.pid_of(reattach)
    assert pid is not None
    # stopped and reaped: Terraform asked it to stop its work, so no later command is given it
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    runner = EnvRecorder()
    bootstrap.terraform(runner).show_json()
    assert runner.calls[-1][1] not in (None, reattach)


def test_only_a_reattach_line_naming_the_aws_provider_is_taken() -> None:
    value = '{"registry.terraform.io/hashicorp/aws":{"Protocol":"grpc","Pid":7,"Addr":{"String":"/s"}}}'
    assert tfprovider._reattach_value(f"\tTF_REATTACH_PROVIDERS='{value}'\n") == value
    assert tfprovider.pid_of(value) == 7
    other = '{"registry.terraform.io/hashicorp/null":{"Pid":7}}'
    assert tfprovider._reattach_value(f"TF_REATTACH_PROVIDERS='{other}'") is None
    assert tfprovider._reattach_value("TF_REATTACH_PROVIDERS='{not json'") is None
    assert tfprovider._reattach_value('{"@level":"debug","@message":"plugin address"}') is None


def test_warm_starts_the_provider_in_the_background_and_the_first_command_attaches_to_it(
    bootstrap: Bootstrap, tmp_path: Path
) -> None:
    runner = EnvRecorder()
    trace = tmp_path / "trace.log"
    tf = bootstrap.terraform(runner, SMGITOPS_TRACE=str(trace))
    tfprovider.HOST.stop_all()
    started = tfprovider.HOST.started

    before = time.time()
    thread = tfprovider.warm(tf.workdir, tf.env)
    assert thread is not None
    thread.join(timeout=tfprovider.START_TIMEOUT)
    assert tfprovider.HOST.started == started + 1 and runner.calls == []  # up before any Terraform process
    # the start is traced as a process Terraform needs: START END provider start
    ((begin, end, *what),) = [line.split() for line in trace.read_text().splitlines()]
    assert what == ["provider", "start"] and before <= float(begin) <= float(end) <= time.time()

    tf.show_json()
    ((command, reattach),) = runner.calls
    assert command == "show" and reattach is not None
    assert tfprovider.HOST.started == started + 1  # the show attached to the warmed provider, started none

    # nothing to warm before init installed the provider, nor with sharing off
    assert tfprovider.warm(tmp_path, tf.env) is None
    assert tfprovider.warm(tf.workdir, {**tf.env, "SMGITOPS_SHARED_PROVIDER": "0"}) is None
    assert tfprovider.HOST.started == started + 1


def test_a_commands_workspace_warms_the_provider_its_terraform_will_use(tmp_path: Path, git_identity: object) -> None:
    from fixtures_terraform import local_stack, make_scratch_repo
    from smgitops.context import Context
    from smgitops.release import load_release

    repo = make_scratch_repo(tmp_path / "repo")
    release = load_release(repo / "releases" / "dev.yaml")
    with local_stack(tmp_path) as _stack:
        Context.for_release(release).workspace(release).prepare()  # terraform init: the provider is installed
        tfprovider.HOST.stop_all()
        started = tfprovider.HOST.started

        ws = Context.for_release(release).workspace(release)  # a new command's context: warms, runs no Terraform
        deadline = time.monotonic() + tfprovider.START_TIMEOUT
        while tfprovider.HOST.started == started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tfprovider.HOST.started == started + 1 and ws.terraform.calls == []  # started by the warm-up
        reattach = tfprovider.HOST.reattach(ws.terraform.workdir, ws.terraform.env)  # what its first plan gets
        assert reattach is not None and tfprovider.HOST.started == started + 1  # the warmed one, not a second
    tfprovider.HOST.stop_all()
