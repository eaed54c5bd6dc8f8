"""The release journey with real Terraform against the emulator, in a scratch git repository.

bootstrap → train → publish → plan + apply dev → verify → plan shows no changes; a commit adding a second model
at 10 % (trained and published) → plan (weights before → after) → apply → verify; ``git revert`` of that commit
→ apply → the endpoint is back on the very same configuration name. After every apply the plan is empty.

One emulator for the module and one ``terraform init`` per environment for the whole journey: ``init`` only runs
again when the root, the lock file or the backend configuration changes. Unit tests of the pieces (settings,
the Terraform runner, working copies, the plan summary) come last and need neither Terraform nor the emulator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures_terraform import CountingRunner, LocalStack, edit_release, git, local_stack, make_scratch_repo
from smgitops import cli, naming
from smgitops.context import Context
from smgitops.deploy import apply_plan, apply_release
from smgitops.errors import CheckFailed, ExternalError, UserError
from smgitops.localmode import ensure_bootstrap
from smgitops.plan import plan_release
from smgitops.release import Release, load_release

IDENTITY = {
    "GIT_AUTHOR_NAME": "smgitops tests",
    "GIT_AUTHOR_EMAIL": "tests@smgitops.invalid",
    "GIT_COMMITTER_NAME": "smgitops tests",
    "GIT_COMMITTER_EMAIL": "tests@smgitops.invalid",
}
CANARY_MODEL = "cancer-logreg-c01"


@dataclass
class Journey:
    stack: LocalStack
    repo: Path
    runner: CountingRunner

    @property
    def release_path(self) -> Path:
        return self.repo / "releases" / "dev.yaml"

    def release(self) -> Release:
        return load_release(self.release_path)

    def expected_config(self, release: Release) -> str:
        s = self.stack.settings
        return naming.endpoint_config_name(release, artifact_bucket=s.artifact_bucket, kms_key_arn=s.kms_key_arn)


def _train(release_path: Path, model_id: str) -> str:
    """Train one model for real (``smgitops train --write``, its own process), which pins its digest in the file."""
    proc = subprocess.run(
        [sys.executable, "-m", "smgitops.cli", "train", str(release_path), "--model", model_id, "--write", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (trained,) = json.loads(proc.stdout)["models"]
    digest: str = trained["digest"]
    assert load_release(release_path).models[model_id].artifact_sha256 == digest
    return digest


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    tmp = tmp_path_factory.mktemp("journey")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in IDENTITY.items():
            mp.setenv(key, value)
        # Terraform starts its own AWS provider for each command, as against AWS (smgitops.tfprovider): this
        # journey (bootstrap, plan, publish, apply, verify, the plan after apply) is the production path; the other
        # Terraform tests run with local mode's shared provider.
        mp.setenv("SMGITOPS_SHARED_PROVIDER", "0")
        repo = make_scratch_repo(tmp / "repo")
        runner = CountingRunner()
        with local_stack(tmp, repo, runner=runner) as stack:
            yield Journey(stack, repo, runner)


@pytest.fixture()
def shared_provider(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests after the journey check what smgitops does around Terraform (stale plans, failed updates,
    unpublished archives), not how Terraform starts its provider: they run with local mode's shared provider, as
    the other Terraform tests do."""
    monkeypatch.setenv("SMGITOPS_SHARED_PROVIDER", "1")


def _publish(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli.main(["publish", str(path), "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


@pytest.mark.terraform
def test_release_journey(journey: Journey, capsys: pytest.CaptureFixture[str]) -> None:
    j, runner = journey, journey.runner
    assert runner.count("apply") == 1 and runner.count("init") == 1  # bootstrap/, applied to the emulator
    runner.reset()

    # -- v1: one model, 100 % ---------------------------------------------------------------------------------------
    _train(j.release_path, "cancer-logreg")  # the shipped release pins this digest already: nothing to write
    git(j.repo, "commit", "-q", "--allow-empty", "-am", "dev: serve cancer-logreg")
    assert _publish(j.release_path, capsys)["published"] == 1

    v1 = j.release()
    planned = plan_release(v1, Context.for_release(v1, runner=runner))
    s = planned.summary
    assert s["endpoint_config"] == {"before": None, "after": j.expected_config(v1)}
    assert [(v["name"], v["weight_before"], v["weight_after"]) for v in s["variants"]] == [("primary", None, 100)]
    assert [m["id"] for m in s["models_added"]] == ["cancer-logreg"] and s["models_removed"] == []
    assert not s["no_changes"] and s["resources"]["destroy"] == 0

    applies_before_hook: list[int] = []  # while_applying is called as Terraform's apply starts, once
    applied = apply_plan(
        v1,
        Context.for_release(v1, runner=runner),
        while_applying=lambda: applies_before_hook.append(runner.count("apply")),
    )
    assert applies_before_hook == [runner.count("apply") - 1]
    assert applied.ok and applied.verify is not None and applied.verify.ok, applied.as_dict()
    assert applied.plan_after_apply_empty
    config_v1 = applied.endpoint_config
    assert config_v1 == j.expected_config(v1)

    capsys.readouterr()
    assert cli.main(["plan", str(j.release_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["no_changes"] and again["resources"]["changes"] == []
    assert again["endpoint_config"] == {"before": config_v1, "after": config_v1}
    assert [(v["weight_before"], v["weight_after"]) for v in again["variants"]] == [(100, 100)]

    # -- canary: a second model at 10 % -----------------------------------------------------------------------------
    def add_canary(doc: dict[str, Any]) -> None:
        base = json.loads(json.dumps(doc["models"]["cancer-logreg"]))
        base["params"] = {"C": 0.1, "max_iter": 1000}
        del base["artifact_sha256"]  # a new model has no digest until `train --write` pins it
        doc["models"][CANARY_MODEL] = base
        doc["variants"] = [
            {"name": "primary", "model": "cancer-logreg", "weight": 90},
            {"name": "canary", "model": CANARY_MODEL, "weight": 10},
        ]

    edit_release(j.release_path, add_canary)
    canary_digest = _train(j.release_path, CANARY_MODEL)
    git(j.repo, "commit", "-qam", "dev: canary cancer-logreg-c01 at 10 %")
    published = _publish(j.release_path, capsys)
    assert (published["published"], published["already_present"]) == (1, 1)

    summary_file, markdown_file = j.repo / "out" / "plan.json", j.repo / "out" / "plan.md"
    assert cli.main(["plan", str(j.release_path), "--report", str(summary_file), "--markdown", str(markdown_file)]) == 0
    canary = j.release()
    s = json.loads(summary_file.read_text())
    assert s["endpoint_config"] == {"before": config_v1, "after": j.expected_config(canary)}
    assert [(v["name"], v["model"], v["weight_before"], v["weight_after"]) for v in s["variants"]] == [
        ("primary", "cancer-logreg", 100, 90),
        ("canary", CANARY_MODEL, None, 10),
    ]
    assert s["models_added"] == [
        {
            "id": CANARY_MODEL,
            "digest": canary_digest,
            "name": naming.model_name(CANARY_MODEL, canary.environment, canary_digest),
        }
    ]
    assert s["resources"]["replace"] == 1  # the endpoint configuration, created before the old one goes
    assert "aws_sagemaker_endpoint_configuration.this" in {c["address"] for c in s["resources"]["changes"]}
    markdown = markdown_file.read_text()
    assert "smgitops-dev" in markdown and "canary" in markdown and config_v1 in markdown
    capsys.readouterr()

    assert cli.main(["apply", str(j.release_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["plan_after_apply_empty"]
    assert result["endpoint_config"] == j.expected_config(canary) != config_v1
    assert cli.main(["verify", str(j.release_path), "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert [(v["name"], v["weight"]) for v in live["variants"]] == [("primary", 90.0), ("canary", 10.0)]

    # -- revert: back on the very same configuration ----------------------------------------------------------------
    git(j.repo, "revert", "--no-edit", "HEAD")
    reverted = j.release()
    assert CANARY_MODEL not in reverted.models
    planned, applied = apply_release(reverted, Context.for_release(reverted, runner=runner))
    assert [m["id"] for m in planned.summary["models_removed"]] == [CANARY_MODEL]
    assert [(v["name"], v["weight_before"], v["weight_after"]) for v in planned.summary["variants"]] == [
        ("primary", 90, 100),
        ("canary", 10, None),
    ]
    assert applied.ok and applied.plan_after_apply_empty
    assert applied.endpoint_config == config_v1

    # One init for the environment over the whole journey: later runs (the CLI's included) reuse the working copy.
    assert runner.count("init") == 1
    assert runner.count("apply") == 2  # the CLI's apply ran through its own runner


@pytest.mark.terraform
def test_bootstrap_is_reused(journey: Journey) -> None:
    runner = CountingRunner()
    settings = ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner)
    assert settings == journey.stack.settings
    assert runner.commands == []
    # checked once per process: the settings a command resolves again cost no AWS call
    before = journey.stack.admin.stats()["aws_requests"]
    assert ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner) == settings
    assert journey.stack.admin.stats()["aws_requests"] == before and runner.commands == []


@pytest.mark.terraform
def test_bootstrap_change_is_applied_again(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CountingRunner()
    with monkeypatch.context() as mp:
        mp.setenv("GITHUB_REPOSITORY", "example-org/models")  # the trust policies pin the repository
        assert ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner) == journey.stack.settings
        assert [c[0] for c in runner.commands] == ["apply", "output"]  # incremental: same state, no re-init
        runner.reset()
        ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner)
        assert runner.commands == []
    ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner)  # back as the module had it
    assert runner.count("apply") == 1


@pytest.mark.terraform
def test_unpublished_artifacts_are_planned_read_only_and_refused_by_apply(
    journey: Journey, shared_provider: None, tmp_path: Path
) -> None:
    """A pull request plans before the merge publishes: the plan lists what is missing, takes no state lock, and
    apply refuses to point a model at an archive that is not in the store."""
    from smgitops.deploy import apply_plan

    path = tmp_path / "releases" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(journey.release_path.read_text())
    for name in ("data", "terraform"):
        shutil.copytree(journey.repo / name, tmp_path / name, ignore=shutil.ignore_patterns(".terraform"))

    def unpublished(doc: dict[str, Any]) -> None:
        doc["models"]["cancer-logreg"]["artifact_sha256"] = "e" * 64

    edit_release(path, unpublished)
    runner = CountingRunner()
    release = load_release(path)
    planned = plan_release(release, Context.for_release(release, runner=runner), lock=False)
    [missing] = planned.summary["artifacts_to_publish"]
    assert missing["id"] == "cancer-logreg" and missing["digest"] == "e" * 64
    [plan_call] = [c for c in runner.commands if c[0] == "plan"]
    assert "-lock=false" in plan_call and not any(a.startswith("-lock-timeout") for a in plan_call)
    runner.reset()

    def fail() -> None:
        raise AssertionError("while_applying called for an apply that was refused")

    with pytest.raises(CheckFailed, match="Publish first") as info:
        apply_plan(
            release, Context.for_release(release, runner=runner), plan_file=planned.plan_file, while_applying=fail
        )
    assert f"artifact sha256={'e' * 64} missing" in str(info.value)
    assert runner.count("apply") == 0  # refused before Terraform applied anything (or started what goes beside it)

    # Other bytes under the key: the plan (which reads the store while Terraform plans) is refused, none is kept.
    from smgitops.artifacts import ArtifactMismatch
    from smgitops.plan import meta_path

    ctx = Context.for_release(release, runner=runner)
    ctx.aws.s3.put_object(Bucket=ctx.settings.artifact_bucket, Key=missing["key"], Body=b"other", IfNoneMatch="*")
    with pytest.raises(ArtifactMismatch, match="not planned: .*cancer-logreg"):
        plan_release(release, ctx, lock=False)
    assert not planned.plan_file.exists() and not meta_path(planned.plan_file).exists()


@pytest.mark.terraform
def test_apply_refuses_stale_plans(journey: Journey, shared_provider: None, capsys: pytest.CaptureFixture[str]) -> None:
    j, runner = journey, journey.runner
    original = j.release_path.read_text()
    edit_release(j.release_path, lambda doc: doc["endpoint"].update(instance_count=2))
    reviewed = j.release_path.read_text()
    plan_file = j.repo / "out" / "reviewed.tfplan"
    plan_release(release := j.release(), Context.for_release(release, runner=runner), out=plan_file)

    # The release file changed after the plan was reviewed (even a comment): refused before Terraform runs.
    j.release_path.write_text(reviewed + "# edited after review\n")
    before = len(runner.commands)
    with pytest.raises(UserError, match="releases/dev.yaml changed since the plan was made"):
        apply_plan(release := j.release(), Context.for_release(release, runner=runner), plan_file=plan_file)
    assert len(runner.commands) == before
    assert cli.main(["apply", str(j.release_path), "--plan", str(plan_file)]) == 2
    assert "stale plan" in capsys.readouterr().err

    # The state changed after the plan was made (another apply ran): Terraform refuses, the message says why.
    j.release_path.write_text(reviewed)
    apply_release(release := j.release(), Context.for_release(release, runner=runner))
    with pytest.raises(UserError, match="the Terraform state changed since the plan was made"):
        apply_plan(release := j.release(), Context.for_release(release, runner=runner), plan_file=plan_file)

    j.release_path.write_text(original)
    _, restored = apply_release(release := j.release(), Context.for_release(release, runner=runner))
    assert restored.ok and restored.plan_after_apply_empty


@pytest.mark.terraform
def test_failed_update_fails_apply(journey: Journey, shared_provider: None, capsys: pytest.CaptureFixture[str]) -> None:
    """SageMaker keeps the old configuration serving when an update fails, and says why in FailureReason: apply
    must not call that a success. (Last of the Terraform tests: the FailureReason stays on the endpoint.)"""
    j = journey
    serving = j.expected_config(j.release())
    reason = "The primary container for production variant primary did not pass the ping health check."
    j.stack.admin.fail_next_update("smgitops-dev", reason)
    edit_release(j.release_path, lambda doc: doc["endpoint"].update(instance_count=2))  # needs UpdateEndpoint

    # The endpoint's postcondition fails the apply before create_before_destroy could delete what serves.
    with pytest.raises(ExternalError) as failed:
        apply_release(release := j.release(), Context.for_release(release, runner=j.runner))

    assert f"still serves {serving}" in str(failed.value) and reason in str(failed.value)
    assert cli.main(["verify", str(j.release_path)]) == 1
    out = capsys.readouterr().out
    assert f"endpoint smgitops-dev: last update failed: {reason}" in out
    assert f"configuration {serving}" in out  # still there, still serving


# -- units: settings, runner, working copies, summary -------------------------------------------------------------


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from smgitops.settings import settings_from_env

    env = {"SMGITOPS_STATE_BUCKET": "state", "SMGITOPS_LOCK_TABLE": "lock", "SMGITOPS_KMS_KEY_ARN": " "}
    with pytest.raises(UserError) as info:
        settings_from_env("us-east-1", env)
    message = str(info.value)
    for var in ("SMGITOPS_ARTIFACT_BUCKET", "SMGITOPS_EXECUTION_ROLE_ARN", "SMGITOPS_KMS_KEY_ARN"):
        assert var in message
    assert "SMGITOPS_STATE_BUCKET" not in message
    assert info.value.exit_code == 2


def test_one_repository_variable_names_every_environments_execution_role() -> None:
    """A pull request's plan job runs in no GitHub environment but plans dev and prod: each release must get its own
    environment's execution role from SMGITOPS_EXECUTION_ROLE_ARNS (bootstrap's execution_role_arns)."""
    from smgitops.localmode import resolve_settings
    from smgitops.settings import settings_from_env

    roles = {env: f"arn:aws:iam::123456789012:role/smgitops-sagemaker-execution-{env}" for env in ("dev", "prod")}
    base = {
        "SMGITOPS_STATE_BUCKET": "state",
        "SMGITOPS_LOCK_TABLE": "lock",
        "SMGITOPS_ARTIFACT_BUCKET": "artifacts",
        "SMGITOPS_KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/example",
    }
    mapped = settings_from_env("us-east-1", {**base, "SMGITOPS_EXECUTION_ROLE_ARNS": json.dumps(roles)})
    assert {env: mapped.execution_role_for(env) for env in roles} == roles
    with pytest.raises(UserError, match="no SageMaker execution role for environment 'qa'"):
        mapped.execution_role_for("qa")
    # explicit settings are complete with the map alone: local mode must not bootstrap the emulator instead
    local = {**base, "SMGITOPS_EXECUTION_ROLE_ARNS": json.dumps(roles), "AWS_ENDPOINT_URL": "https://127.0.0.1:9"}
    assert resolve_settings("us-east-1", env=local).execution_role_for("prod") == roles["prod"]
    # one ARN is the job's own choice and wins
    single = settings_from_env(
        "us-east-1",
        {**base, "SMGITOPS_EXECUTION_ROLE_ARN": roles["dev"], "SMGITOPS_EXECUTION_ROLE_ARNS": json.dumps(roles)},
    )
    assert single.execution_role_for("prod") == roles["dev"]
    for bad in ("{", "[]", '{"dev": 3}', '{"dev": "not-an-arn"}'):
        with pytest.raises(UserError, match="SMGITOPS_EXECUTION_ROLE_ARNS") as info:
            settings_from_env("us-east-1", {**base, "SMGITOPS_EXECUTION_ROLE_ARNS": bad})
        assert info.value.exit_code == 2


def _fake_runner(code: int = 0, stdout: str = "", stderr: str = "") -> Any:
    from smgitops.terraform import Completed

    calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def run(args: Any, *, cwd: Path, env: Any) -> Completed:
        calls.append((tuple(args), dict(env)))
        return Completed(tuple(args), code, stdout, stderr)

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_runner_raises_terraform_error_text_and_pins_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smgitops import paths
    from smgitops.errors import ExternalError
    from smgitops.terraform import Terraform, TerraformError, base_env

    stderr = "\x1b[31m╷\n│ Error: Saved plan is stale\n│\n│ The given plan file can no longer be applied.\n╵\n"
    runner = _fake_runner(1, stderr=stderr)
    monkeypatch.delenv("SMGITOPS_LOCK_TIMEOUT", raising=False)  # the product's default, not the suite's
    machine = {"TF_CLI_CONFIG_FILE": "/root/.terraformrc", "TF_CLI_ARGS_plan": "-refresh=false", "TF_DATA_DIR": "/x"}
    tf = Terraform(tmp_path, env=base_env({"SSL_CERT_FILE": "/ca.pem"}, machine))
    tf.runner = runner
    with pytest.raises(TerraformError) as info:
        tf.apply(tmp_path / "x.tfplan")
    assert isinstance(info.value, ExternalError) and info.value.exit_code == 1
    assert "Error: Saved plan is stale\n\nThe given plan file can no longer be applied." in str(info.value)
    assert "│" not in str(info.value) and "\x1b" not in str(info.value)
    assert info.value.stale_plan
    ((args, env),) = runner.calls
    assert args == ("terraform", "apply", "-no-color", "-input=false", "-lock-timeout=120s", str(tmp_path / "x.tfplan"))
    assert env["TF_CLI_CONFIG_FILE"] == str(paths.terraform_cli_config())  # never the machine's missing file
    assert (env["TF_IN_AUTOMATION"], env["TF_INPUT"], env["SSL_CERT_FILE"]) == ("1", "0", "/ca.pem")
    assert "TF_CLI_ARGS_plan" not in env and "TF_DATA_DIR" not in env
    assert [c.command for c in tf.calls] == ["apply"]


def test_the_plan_after_apply_check_runs_beside_smoke_and_canary_and_both_finish() -> None:
    """deploy's smoke and canary run while the plan-after-apply check does (each waits here for the other to have
    started, so run one after the other they would not finish); both have finished before an outcome is reported:
    the work's failure if it failed, else the check's failure or its drift."""
    import threading

    from smgitops.deploy import run_beside

    drift = [{"address": "aws_sagemaker_endpoint.this", "actions": ["update"]}]

    def pair(check_fails: bool = False, work_fails: bool = False) -> tuple[Any, Any, threading.Event]:
        check_started, work_started, check_done = threading.Event(), threading.Event(), threading.Event()

        def check() -> list[dict[str, Any]]:
            check_started.set()
            assert work_started.wait(30), "the work did not run while the check did"
            check_done.set()
            if check_fails:
                raise ExternalError("terraform plan failed")
            return drift

        def work() -> None:
            work_started.set()
            assert check_started.wait(30), "the check did not run while the work did"
            if work_fails:
                raise CheckFailed("canary breach")

        return check, work, check_done

    check, work, done = pair()
    assert run_beside(check, work) == drift and done.is_set()
    check, work, done = pair(check_fails=True)
    with pytest.raises(ExternalError, match="terraform plan failed"):
        run_beside(check, work)
    check, work, done = pair(check_fails=True, work_fails=True)
    with pytest.raises(CheckFailed, match="canary breach"):
        run_beside(check, work)
    assert done.is_set()


def test_plan_exit_code_two_means_changes(tmp_path: Path) -> None:
    from smgitops.terraform import Terraform

    tf = Terraform(tmp_path, runner=_fake_runner(2))
    assert tf.plan(out=tmp_path / "p.tfplan", variables={"b": "2", "a": "1"}) is True
    args = tf.calls[0].args
    assert "-detailed-exitcode" in args and args[-2:] == ("-var=a=1", "-var=b=2")
    assert Terraform(tmp_path, runner=_fake_runner(0)).plan() is False


def test_working_copy_mirrors_the_root_and_inits_only_on_change(tmp_path: Path) -> None:
    from smgitops.terraform import Terraform, WorkingCopy

    source = tmp_path / "terraform"
    source.mkdir()
    (source / "main.tf").write_text("# main\n")
    (source / "old.tf").write_text("# old\n")
    (source / ".terraform.lock.hcl").write_text("# lock\n")
    (source / "stray_override.tf").write_text("# never copied\n")
    copy = WorkingCopy(source, tmp_path / "work" / "root")
    runner = _fake_runner()
    tf = Terraform(copy.root, runner=runner)

    copy.sync(override="# local\n")
    assert sorted(p.name for p in copy.root.iterdir()) == [
        ".terraform.lock.hcl",
        "local_override.tf",
        "main.tf",
        "old.tf",
    ]
    backend = tmp_path / "work" / "backend.tfbackend"
    backend.write_text('bucket = "a"\n')
    assert copy.init_if_needed(tf, backend_config=[str(backend)]) is True
    assert copy.init_if_needed(tf, backend_config=[str(backend)]) is False  # nothing changed: no init
    init_args = runner.calls[0][0]
    assert "-lockfile=readonly" in init_args and f"-backend-config={backend}" in init_args

    backend.write_text('bucket = "b"\n')  # e.g. another emulator
    assert copy.init_if_needed(tf, backend_config=[str(backend)]) is True

    (source / "old.tf").unlink()
    copy.sync(override=None)  # production: no override, deleted files gone
    assert sorted(p.name for p in copy.root.iterdir() if p.is_file()) == [".terraform.lock.hcl", "main.tf"]
    assert copy.init_if_needed(tf, backend_config=[str(backend)]) is True
    assert sum(1 for args, _ in runner.calls if args[1] == "init") == 3


def test_local_mode_override_and_backend_settings(tmp_path: Path) -> None:
    from smgitops.localmode import Emulator, backend_endpoint_settings, provider_override, terraform_env

    ca = tmp_path / "cert.pem"
    emulator = Emulator(url="https://127.0.0.1:4566", ca_bundle=ca)
    override = provider_override(emulator)
    for line in (
        "s3_force_path_style         = true",
        "skip_requesting_account_id  = true",
        'sagemaker      = "https://127.0.0.1:4566"',
        'sts            = "https://127.0.0.1:4566"',
    ):
        assert line in override
    backend = backend_endpoint_settings(emulator)
    assert 's3 = "https://127.0.0.1:4566"' in backend and "use_path_style              = true" in backend
    env = terraform_env(emulator, {"AWS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"})
    assert env["SSL_CERT_FILE"] == env["AWS_CA_BUNDLE"] == str(ca)
    assert emulator.key == "127.0.0.1-4566"


def _rc(address: str, type_: str, actions: list[str], before: Any, after: Any) -> dict[str, Any]:
    return {
        "address": address,
        "mode": "managed",
        "type": type_,
        "change": {"actions": actions, "before": before, "after": after},
    }


def _model(mid: str, digest: str) -> dict[str, Any]:
    return {
        "name": naming.model_name(mid, "dev", digest),
        "primary_container": [{"model_data_url": f"s3://bucket/{naming.artifact_key(mid, digest)}"}],
    }


def _config(name: str, variants: list[tuple[str, str, float]]) -> dict[str, Any]:
    return {
        "name": name,
        "production_variants": [
            {
                "variant_name": v,
                "model_name": m,
                "initial_variant_weight": w,
                "instance_type": "ml.t2.large",
                "initial_instance_count": 1,
            }
            for v, m, w in variants
        ],
    }


def test_summary_of_a_promotion_plan(tmp_path: Path) -> None:
    """A plan that retires the canary's predecessor: weights before -> after, models added and removed."""
    from datetime import UTC, datetime

    from smgitops.plan import summarize

    root = make_scratch_repo_files(tmp_path)
    a, b = "a" * 64, "b" * 64

    def promote(doc: dict[str, Any]) -> None:
        base = json.loads(json.dumps(doc["models"]["cancer-logreg"]))
        doc["models"] = {"new": {**base, "artifact_sha256": b}}
        doc["variants"] = [{"name": "primary", "model": "new", "weight": 100}]

    edit_release(root / "releases" / "dev.yaml", promote)
    release = load_release(root / "releases" / "dev.yaml")
    old_cfg = _config(
        "smgitops-dev-11111111",
        [("primary", naming.model_name("old", "dev", a), 90.0), ("canary", naming.model_name("new", "dev", b), 10.0)],
    )
    new_cfg = _config("smgitops-dev-22222222", [("primary", naming.model_name("new", "dev", b), 100.0)])
    plan = {
        "resource_changes": [
            _rc('aws_sagemaker_model.this["old"]', "aws_sagemaker_model", ["delete"], _model("old", a), None),
            _rc(
                'aws_sagemaker_model.this["new"]', "aws_sagemaker_model", ["no-op"], _model("new", b), _model("new", b)
            ),
            _rc(
                "aws_sagemaker_endpoint_configuration.this",
                "aws_sagemaker_endpoint_configuration",
                ["create", "delete"],
                old_cfg,
                new_cfg,
            ),
            _rc(
                "aws_sagemaker_endpoint.this",
                "aws_sagemaker_endpoint",
                ["update"],
                {"name": "smgitops-dev", "endpoint_config_name": "smgitops-dev-11111111"},
                {"name": "smgitops-dev", "endpoint_config_name": "smgitops-dev-22222222"},
            ),
            _rc("data.aws_caller_identity.this", "aws_caller_identity", ["read"], None, {}),
        ]
    }
    when = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    s = summarize(plan, release, plan_file="dev.tfplan", generated_at=when)
    assert s["endpoint_config"] == {"before": "smgitops-dev-11111111", "after": "smgitops-dev-22222222"}
    assert [(v["name"], v["model"], v["weight_before"], v["weight_after"]) for v in s["variants"]] == [
        ("primary", "new", 90, 100),
        ("canary", "new", 10, None),
    ]
    assert s["models_removed"] == [{"id": "old", "digest": a, "name": naming.model_name("old", "dev", a)}]
    assert s["models_added"] == []
    assert {k: s["resources"][k] for k in ("add", "change", "destroy", "replace")} == {
        "add": 1,
        "change": 1,
        "destroy": 2,
        "replace": 1,
    }
    assert [c["address"] for c in s["resources"]["changes"]] == [
        'aws_sagemaker_model.this["old"]',
        "aws_sagemaker_endpoint_configuration.this",
        "aws_sagemaker_endpoint.this",
    ]
    assert (s["no_changes"], s["generated_at"], s["release"]) == (
        False,
        "2026-11-25T14:00:00+00:00",
        "releases/dev.yaml",
    )
    assert (s["instance_type"], s["instance_count"]) == ("ml.t2.large", 1)


def make_scratch_repo_files(dest: Path) -> Path:
    """releases/ and data/ only (no git): enough to load a release."""
    for name in ("releases", "data"):
        shutil.copytree(Path(__file__).resolve().parents[1] / name, dest / name)
    return dest
