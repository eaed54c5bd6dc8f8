"""The GitHub Actions workflows, proven by running them.

The runner (tests/support/actions_runner.py) runs each workflow's jobs the way GitHub's runner does, its
``uses:`` steps replaced by local equivalents, against the emulator and a fake GitHub API.

Events: a pull request (the comment carries the traffic chart, the plan summary, the policy result and the cost),
a push to main (deploy, good tag pushed), a revert (deploy lands on the earlier configuration name), a failed
canary (automatic rollback, revert branch pushed, revert pull request opened), and the schedule (drift, teardown
dry run, teardown).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import SUITE_NOW
from iam_judge import AccountPolicies, judge_recorded
from smgitops import commands, naming
from smgitops.commands import COMMANDS
from support.actions_runner import (
    Evaluator,
    Event,
    ExpressionError,
    GitHubApp,
    Outputs,
    Runner,
    condition,
    explain,
    load_workflow,
    only,
    run_git,
)
from support.fake_github import FakeGitHub, serve

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def test_expression_evaluator_is_strict_and_follows_github_semantics() -> None:
    ctx = {
        "github": {"event": {"pull_request": {"base": {"sha": "abc"}}}},
        "inputs": {"dry_run": None},
        "needs": {"changes": {"outputs": {"any": "true", "matrix": '[{"a": 1}]'}}},
    }
    ev = Evaluator(ctx, {"success": True, "failure": False, "always": True, "cancelled": False})
    assert ev.evaluate("github.event.pull_request.base.sha") == "abc"
    assert ev.evaluate("needs.changes.outputs.any == 'TRUE'") is True  # strings compare case-insensitively
    assert ev.evaluate("fromJSON(needs.changes.outputs.matrix)") == [{"a": 1}]
    assert ev.evaluate("inputs.dry_run && '--dry-run' || ''") == ""
    assert ev.evaluate("!cancelled() && 1 == '1'") is True
    assert condition("needs.changes.outputs.any == 'true'", ev) is True
    with pytest.raises(ExpressionError, match="unknown property"):
        ev.evaluate("github.event.pull_request.base.shaa")
    with pytest.raises(ExpressionError, match="unknown context"):
        ev.evaluate("secrets.AWS_KEY")
    with pytest.raises(ExpressionError, match="unknown function"):
        ev.evaluate("join('x', ',')")


def test_missing_outputs_are_null_as_on_github(tmp_path: Path) -> None:
    """A step that never wrote an output, or a skipped job, gives ``''``; a name the job does not declare fails."""
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "a.txt").write_text("a==1\n")
    ctx = {
        "steps": {"app": {"outputs": Outputs(), "outcome": "skipped"}},
        "needs": {"changes": {"outputs": Outputs({}, declared=["any", "matrix"]), "result": "skipped"}},
    }
    ev = Evaluator(ctx, {"success": True, "failure": False, "always": True, "cancelled": False}, tmp_path)
    assert ev.evaluate("steps.app.outputs.token || 'fallback'") == "fallback"
    assert ev.evaluate("needs.changes.outputs.any == 'true'") is False
    with pytest.raises(ExpressionError, match="unknown property 'needs.changes.outputs.anyy'"):
        ev.evaluate("needs.changes.outputs.anyy")
    with pytest.raises(ExpressionError, match="unknown property 'steps.apq'"):
        ev.evaluate("steps.apq.outputs.token")
    digest = ev.evaluate("hashFiles('requirements/*.txt')")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    (tmp_path / "requirements" / "a.txt").write_text("a==2\n")
    assert ev.evaluate("hashFiles('requirements/*.txt')") != digest  # the key follows the requirements
    with pytest.raises(ExpressionError, match="matches no file"):
        ev.evaluate("hashFiles('requirements/*.text')")


# ---------------------------------------------------------------------------------------------------------------
# Static guarantees of every workflow
# ---------------------------------------------------------------------------------------------------------------


def _steps(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_hardening(path: Path) -> None:
    doc = load_workflow(path)
    text = path.read_text(encoding="utf-8")
    assert doc["permissions"] == {}, "top-level permissions must be {}"
    assert not {"pull_request_target", "workflow_run"} & set(doc["on"]), "no privileged triggers"
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict) and perms, f"{job_id}: per-job permissions"
        assert all(v in ("read", "write") for v in perms.values())
        steps = job.get("steps", [])
        assumes_role = any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials") for s in steps)
        assert (perms.get("id-token") == "write") == assumes_role, f"{job_id}: id-token only where a role is assumed"
        assert isinstance(job.get("timeout-minutes"), int), f"{job_id}: timeout-minutes"
        if assumes_role:  # the job holding AWS credentials can write nothing to GitHub: no pushes, no comments
            assert all(v == "read" for k, v in perms.items() if k != "id-token"), f"{job_id}: {perms}"
            setup = [i for i, s in enumerate(steps) if str(s.get("run", "")).strip() == "make setup"]
            assume = [i for i, s in enumerate(steps) if "configure-aws-credentials" in str(s.get("uses", ""))]
            assert setup and setup[0] < assume[0], f"{job_id}: set-up runs before the credentials step"
        for s in steps:
            assert "pip install" not in str(s.get("run", "")), f"{job_id}: installs go through make setup (hashes)"
    for job_id, step in _steps(doc):
        if "uses" in step:
            uses = str(step["uses"])
            assert SHA_PIN.match(uses), f"{job_id}: {uses} is not pinned to a commit SHA"
            line = next(ln for ln in text.splitlines() if uses in ln)
            assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"{job_id}: {uses} lacks its version comment"
            if uses.startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False
            if uses.startswith("hashicorp/setup-terraform@"):
                assert step.get("with", {}).get("terraform_wrapper") is False  # the wrapper mangles -json output
        if "run" in step:
            assert "${{" not in str(step["run"]), f"{job_id}: expressions go through env:, never into run:"
    for cron in (c["cron"] for c in doc["on"].get("schedule") or []):
        assert cron.split()[0] not in ("0", "00"), f"{cron}: scheduled runs off the hour"
    if doc["on"].get("schedule"):
        assert "workflow_dispatch" in doc["on"]


def _smgitops_calls(run: str) -> Iterator[list[str]]:
    """Every ``smgitops`` invocation in a run script, as argv (shell variables kept as placeholders)."""
    joined = run.replace("\\\n", " ")
    for line in joined.splitlines():
        for part in re.split(r"\|\||&&|\||;", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            for i, w in enumerate(words):
                if w.endswith("/smgitops") or w == "smgitops":
                    yield words[i + 1 :]
                elif w == "smgitops.cli" and i > 0 and words[i - 1] == "-m":
                    yield words[i + 1 :]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_cli_call_parses_with_the_real_cli(path: Path) -> None:
    """A typo in a command or an option fails here, even for steps no event of the runner reaches."""
    calls = 0
    for _, step in _steps(load_workflow(path)):
        for argv in _smgitops_calls(str(step.get("run", ""))):
            calls += 1
            assert argv and argv[0] in COMMANDS, f"unknown command in {argv}"
            parser = argparse.ArgumentParser(prog=f"smgitops {argv[0]}", exit_on_error=False)
            commands.load(argv[0]).configure(parser)
            # shell variables become "1": a valid path, revision, count or file name alike
            args = [re.sub(r"\$\{[^}]*\}|\$\w+", "1", a) for a in argv[1:] if a != "$@"]
            parser.parse_args(args)  # argparse.ArgumentError on an unknown option
    assert calls > 0 or path.name == "ci.yml"


# ---------------------------------------------------------------------------------------------------------------
# zizmor
# ---------------------------------------------------------------------------------------------------------------


def test_zizmor_auditor_persona_finds_nothing() -> None:
    zizmor = ROOT / ".venv-tools" / "bin" / "zizmor"
    proc = subprocess.run(
        [str(zizmor), "--offline", "--persona=auditor", str(WORKFLOWS)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout


# ---------------------------------------------------------------------------------------------------------------
# The events, end to end against the emulator
# ---------------------------------------------------------------------------------------------------------------

REPOSITORY = "octo/models"
TOKEN = "ghs_fake_workflow_token"
# GitHub variable naming each role's ARN -> the role's label in bootstrap's outputs (tests/iam_judge.py)
ROLE_VARIABLES = {
    "SMGITOPS_PLAN_ROLE_ARN": "plan",
    "SMGITOPS_TEARDOWN_ROLE_ARN": "teardown",
    "SMGITOPS_DRIFT_ROLE_ARN": "drift",
}
SEED_DIRS = ("releases", "data", "terraform", "bootstrap", "policies", "scripts", ".github", "requirements")
# with requirements/: what the set-up's cache key hashes
SEED_FILES = ("pyproject.toml", "Makefile", "tests/iam/package.json", "tests/iam/package-lock.json")
_IGNORE = shutil.ignore_patterns(".terraform", "*_override.tf", "*.tfstate*", "*.tfplan", "__pycache__", "*.pyc")
IDENTITY = {
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
}


@dataclass
class Story:
    runner: Runner
    github: FakeGitHub
    seed: Path  # the developer's clone (pushes to origin)
    origin: Path
    admin: Any = None  # the emulator's admin client (fault injection)
    roles: dict[str, str] = field(default_factory=dict)  # role label (plan, apply-dev, ...) -> ARN, bootstrap's
    bootstrap_outputs: dict[str, Any] = field(default_factory=dict)
    artifact_bucket: str = ""
    done: set[str] = field(default_factory=set)
    configs: dict[str, str] = field(default_factory=dict)  # commit label -> live endpoint configuration
    emulator_log: Path | None = None  # the emulator's server log, and its size when the story began
    emulator_log_start: int = 0

    def emulator_failures(self) -> list[str]:
        """The emulator's own failures since the story began (ERROR records: werkzeug's tracebacks, our own)."""
        if self.emulator_log is None:
            return []
        with self.emulator_log.open("rb") as log:
            log.seek(self.emulator_log_start)
            text = log.read().decode(errors="replace")
        return re.findall(r"^\S+ \S+ \S+ ERROR .*?(?=^\d{4}-\d\d-\d\d |\Z)", text, flags=re.M | re.S)

    def git(self, *args: str) -> str:
        return run_git(self.seed, *args, env=IDENTITY)

    def push(self, ref: str = "main") -> None:
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{ref}")

    def endpoint_config(self, name: str = "smgitops-dev") -> str | None:
        import boto3

        sm = boto3.client("sagemaker", region_name="us-east-1")
        try:
            return str(sm.describe_endpoint(EndpointName=name)["EndpointConfigName"])
        except sm.exceptions.ClientError:
            return None

    def served_models(self, endpoint: str) -> dict[str, str]:
        """SageMaker model name -> artifact URL of every variant the live endpoint serves."""
        import boto3

        sm = boto3.client("sagemaker", region_name="us-east-1")
        config_name = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
        return {
            v["ModelName"]: str(sm.describe_model(ModelName=v["ModelName"])["PrimaryContainer"]["ModelDataUrl"])
            for v in variants
        }

    def published(self, model_id: str, digest: str) -> bool:
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        listed = s3.list_objects_v2(Bucket=self.artifact_bucket, Prefix=naming.artifact_key(model_id, digest))
        return int(listed.get("KeyCount", 0)) > 0

    def require(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.skip(f"needs the earlier event(s) {missing} to have passed")

    def push_event(self, before: str, after: str) -> Event:
        return Event(
            "push",
            {"before": before, "after": after, "ref": "refs/heads/main", "repository": {"full_name": REPOSITORY}},
            after,
            "refs/heads/main",
        )


def _edit(path: Path, mutate: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    mutate(doc)

    class NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    path.write_text(yaml.dump(doc, Dumper=NoAlias, sort_keys=False))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    from fixtures_terraform import local_stack

    tmp = tmp_path_factory.mktemp("workflows")
    seed = tmp / "seed"
    for name in SEED_DIRS:
        shutil.copytree(ROOT / name, seed / name, ignore=_IGNORE)
    for name in SEED_FILES:
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, seed / name)
    (seed / ".gitignore").write_text("/.venv\n/.venv-tools\n/.smgitops/\n/out/\n")
    run_git(seed, "init", "-q", "-b", "main")
    run_git(seed, "add", ".")
    run_git(seed, "commit", "-q", "-m", "smgitops: dev and prod releases", env=IDENTITY)
    origin = tmp / "origin.git"
    run_git(tmp, "clone", "-q", "--bare", str(seed), str(origin))
    run_git(seed, "remote", "add", "origin", str(origin))
    run_git(seed, "fetch", "-q", "origin")

    github = FakeGitHub(REPOSITORY, TOKEN)
    with serve(github) as api_url, local_stack(tmp) as stack:
        aws_env = {**stack.emulator.env(), "SMGITOPS_LOCAL_DIR": str(stack.local_dir)}
        # The story's day: deploys judge the teardown cut-off at the suite's daytime instant, whatever the wall
        # clock says (conftest.SUITE_NOW); the teardown event moves the releases' cut-off before it.
        aws_env["SMGITOPS_NOW"] = SUITE_NOW
        # The roles are the ones bootstrap made on the emulator: every call a step makes is judged against them.
        (outputs_file,) = stack.local_dir.glob("*/outputs.json")
        outputs = json.loads(outputs_file.read_text())
        roles = AccountPolicies.role_arns(outputs)
        role_vars = {var: roles[label] for var, label in ROLE_VARIABLES.items()}
        # as github-setup sets them: every environment's execution role in one repository variable (a pull
        # request's plan job names no environment), the apply role per environment
        settings = {k: v for k, v in stack.settings_env().items() if k != "SMGITOPS_EXECUTION_ROLE_ARN"}
        execution_roles = {env: stack.settings.execution_role_for(env) for env in ("dev", "prod")}
        variables = {
            **settings,
            **role_vars,
            "SMGITOPS_EXECUTION_ROLE_ARNS": json.dumps(execution_roles),
            "SMGITOPS_AWS_REGION": "us-east-1",
            "SMGITOPS_APP_CLIENT_ID": "",  # no GitHub App: the revert pull request is opened with GITHUB_TOKEN
        }
        # The requests each deploy sends before its canary, so that every variant reaches min_invocations: dev's
        # canary event gives a variant 10 % (about 750 requests); prod serves its one model at 100 % throughout.
        from smgitops.release import load_release
        from smgitops.rollout import traffic_for_canary

        traffic = {"dev": 800, "prod": traffic_for_canary(load_release(seed / "releases" / "prod.yaml"))}
        per_env = {
            env: {
                "SMGITOPS_APPLY_ROLE_ARN": roles[f"apply-{env}"],
                "SMGITOPS_SYNTHETIC_TRAFFIC": str(traffic[env]),
            }
            for env in ("dev", "prod")
        }
        runner = Runner(
            origin=origin,
            tmp=tmp / "runs",
            aws_env=aws_env,
            variables=variables,
            environment_variables=per_env,
            api_url=api_url,
            repository=REPOSITORY,
            token=TOKEN,
            iam_log=stack.admin,
            secrets={"SMGITOPS_APP_PRIVATE_KEY": ""},
        )
        stack.admin.start_iam_log()
        # nothing is published beforehand: the merge workflow publishes (the first push included)
        s = Story(runner, github, seed, origin)
        s.admin = stack.admin
        s.roles, s.bootstrap_outputs = roles, outputs
        s.artifact_bucket = stack.settings.artifact_bucket
        s.emulator_log = stack.emulator.log_path
        s.emulator_log_start = s.emulator_log.stat().st_size if s.emulator_log is not None else 0
        yield s


def test_first_push_deploys_every_release(story: Story) -> None:
    head = story.git("rev-parse", "HEAD")
    digest = yaml.safe_load((story.seed / "releases" / "dev.yaml").read_text())["models"]["cancer-logreg"][
        "artifact_sha256"
    ]
    assert not story.published("cancer-logreg", digest)
    results = story.runner.run("deploy.yml", story.push_event("0" * 40, head))
    assert only(results, "changes").outputs["any"] == "true", explain(results)
    runs = {r.matrix["environment"]: r for r in results["deploy"]}
    assert set(runs) == {"dev", "prod"}
    for env, run in runs.items():
        assert run.result == "success", explain(results)
        assert run.environment == env  # prod runs in its GitHub environment (required reviewers)
        assert run.roles == [story.roles[f"apply-{env}"]]
        assert run.step("Publish (content-addressed, never overwritten)").outcome == "success"
    assert story.published("cancer-logreg", digest)  # published at the merge, by the deploy job
    record = only(results, "record")
    assert record.result == "success" and record.roles == [], explain(results)  # no AWS credentials
    assert story.github.pulls == []
    tags = run_git(story.origin, "tag", "--list", "smgitops/good/*").split()
    assert sorted(tags) == [f"smgitops/good/dev/{head}", f"smgitops/good/prod/{head}"]
    # Promotion: the shipped releases serve the very same artifact in both environments of one account, each
    # environment under a SageMaker model of its own (model names are account-wide, states are per environment).
    served = {env: story.served_models(f"smgitops-{env}") for env in ("dev", "prod")}
    for env in ("dev", "prod"):
        assert set(served[env]) == {naming.model_name("cancer-logreg", env, digest)}
    [url] = set(served["dev"].values()) | set(served["prod"].values())
    assert url.endswith("/" + naming.artifact_key("cancer-logreg", digest))
    story.configs["v1"] = str(story.endpoint_config())
    assert story.configs["v1"].startswith("smgitops-dev-")
    story.done.add("first-push")


def _canary_release(story: Story) -> None:
    """releases/dev.yaml gains a second model (C = 0.5) at 10 % of the traffic, with its real digest."""
    path = story.seed / "releases" / "dev.yaml"

    def add(doc: dict[str, Any]) -> None:
        base = doc["models"]["cancer-logreg"]
        doc["models"]["cancer-logreg-c05"] = {
            **json.loads(json.dumps(base)),
            "params": {"C": 0.5, "max_iter": 5000},
            "artifact_sha256": "0" * 64,
        }
        doc["variants"] = [
            {"name": "primary", "model": "cancer-logreg", "weight": 90},
            {"name": "canary", "model": "cancer-logreg-c05", "weight": 10},
        ]

    _edit(path, add)
    out = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "smgitops"),
            "train",
            str(path),
            "--model",
            "cancer-logreg-c05",
            "--out",
            str(story.runner.tmp / "train"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    digest = json.loads(out.stdout)["models"][0]["digest"]
    _edit(path, lambda doc: doc["models"]["cancer-logreg-c05"].update(artifact_sha256=digest))


def test_pull_request_plans_checks_and_comments_once(story: Story) -> None:
    story.require("first-push")
    base = story.git("rev-parse", "HEAD")
    story.git("checkout", "-q", "-b", "canary")
    _canary_release(story)
    story.git("commit", "-q", "-am", "dev: canary cancer-logreg-c05 at 10 %")
    head = story.git("rev-parse", "HEAD")
    story.push("canary")
    event = Event(
        "pull_request",
        {
            "action": "opened",
            "number": 7,
            "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "canary"}},
        },
        head,
        "refs/pull/7/merge",
    )
    for _ in range(2):  # opened, then synchronize: still one comment
        results = story.runner.run("pr.yml", event)
        assert json.loads(only(results, "changes").outputs["matrix"]) == [
            {"release": "releases/dev.yaml", "environment": "dev"}
        ], explain(results)
        plan = only(results, "plan")
        assert plan.result == "success", explain(results)
        assert plan.roles == [story.roles["plan"]]
        posting = only(results, "comment")  # posts what the plan job rendered, holding no AWS credentials
        assert posting.result == "success" and posting.roles == [], explain(results)
    comments = [c for c in story.github.comments.get(7, []) if c["body"].startswith("<!-- smgitops:dev -->")]
    assert len(comments) == 1, [c["body"][:80] for c in story.github.comments.get(7, [])]
    body = comments[0]["body"]
    # the pull request wrote nothing to AWS: the candidate's archive is published at the merge, not before
    candidate = yaml.safe_load((story.seed / "releases" / "dev.yaml").read_text())["models"]["cancer-logreg-c05"]
    assert not story.published("cancer-logreg-c05", candidate["artifact_sha256"])
    assert "**Published at merge:** `cancer-logreg-c05`" in body
    # ... and no other write either (no state lock, no lock-table item): every action the plan job's requests
    # needed, as the emulator recorded them, reads
    plan_actions = {
        call["action"]
        for record in story.runner.iam_records
        if re.match(r"pr\.yml run \d+ / plan ", str(record["where"]))
        for entry in record["entries"]
        for call in entry.get("calls") or []
    }
    assert "s3:GetObject" in plan_actions, plan_actions  # the state, read without its lock
    write = r"(s3|dynamodb|sagemaker|cloudwatch):(Put|Delete|Update|Create|Add)|kms:(Encrypt|GenerateDataKey)"
    writes = {a for a in plan_actions if re.match(write, a)}
    assert not writes, writes
    assert "```text\nvariant" in body and "mermaid" not in body  # one compact traffic picture
    # the candidate's held-out metrics beside the model it takes traffic from, the difference, the parameter change
    assert "taking traffic from `cancer-logreg`" in body, body
    assert re.search(r"\| accuracy \| 0\.\d{4} \| 0\.\d{4} \| \*\*([+-]0\.\d{4}|±0)\*\* \|", body), body
    assert "- params.C: `1.0` → `0.5`" in body
    assert "**Canary after the merge:**" in body
    assert re.search(r"\[workflow run \d+\]\(https://github\.invalid/[^)]+/actions/runs/\d+\)", body)
    assert re.search(r"\*\*Plan:\*\* \d+ to add, \d+ to change, \d+ to destroy", body)  # plan summary
    assert "**Policy:** ✅ passed — checkov" in body  # policy result
    assert re.search(r"\*\*Cost:\*\* \*\*\$[\d.]+ a day, \$[\d,.]+ a month\*\*", body), body  # cost
    assert "a day, +$" in body and re.search(r"Today: .{0,40}19:30 Europe/Berlin", body)  # the change; today's hours
    assert "**Model added:** `cancer-logreg-c05`" in body
    assert "<!-- smgitops:dev -->" in plan.summary  # the job summary has it too
    assert plan.temp is not None
    report = json.loads((plan.temp / "policy.json").read_text())
    assert report["ok"] and report["checkov"]["targets"][:2] == ["terraform/", "bootstrap/"]
    # the saved plan was scanned: the release-driven checks decided on it
    assert report["checkov"]["custom_checks"]["CKV_SMG_1"] >= 1 and report["checkov"]["custom_checks"]["CKV_SMG_3"] >= 1
    ck = report["checkov"]
    print(
        f"policy in the PR run: {ck['passed']} passed, {ck['failed']} failed, {len(ck['skipped'])} skipped, "
        f"{ck['seconds']} s; custom checks evaluated: {ck['custom_checks']}"
    )
    assert ck["failed"] == 0 and ck["passed"] >= 1, ck  # what the comment's "✅ passed" stands on
    assert story.endpoint_config() == story.configs["v1"]  # a pull request changes nothing live
    story.done.add("pull-request")


def test_merge_deploys_the_canary(story: Story) -> None:
    story.require("pull-request")
    before = story.git("rev-parse", "main")
    story.git("checkout", "-q", "main")
    story.git("merge", "-q", "--ff-only", "canary")
    story.push()
    after = story.git("rev-parse", "HEAD")
    results = story.runner.run("deploy.yml", story.push_event(before, after))
    (run,) = results["deploy"]
    assert run.matrix["environment"] == "dev" and run.result == "success", explain(results)
    candidate = yaml.safe_load((story.seed / "releases" / "dev.yaml").read_text())["models"]["cancer-logreg-c05"]
    assert story.published("cancer-logreg-c05", candidate["artifact_sha256"])  # published at the merge
    story.configs["canary"] = str(story.endpoint_config())
    assert story.configs["canary"] != story.configs["v1"]
    assert f"smgitops/good/dev/{after}" in run_git(story.origin, "tag", "--list")
    story.done.add("merge")


def test_revert_lands_on_the_earlier_configuration(story: Story) -> None:
    story.require("merge")
    before = story.git("rev-parse", "HEAD")
    story.git("revert", "--no-edit", "HEAD")
    story.push()
    after = story.git("rev-parse", "HEAD")
    results = story.runner.run("deploy.yml", story.push_event(before, after))
    (run,) = results["deploy"]
    assert run.result == "success", explain(results)
    assert story.endpoint_config() == story.configs["v1"]  # the very same configuration name: nothing retrained
    story.done.add("revert")


def test_failed_canary_rolls_back_and_opens_a_revert_pull_request(story: Story) -> None:
    story.require("revert")
    before = story.git("rev-parse", "HEAD")
    story.git("revert", "--no-edit", "HEAD")  # the canary again
    story.push()
    after = story.git("rev-parse", "HEAD")
    story.admin.inject_fault("smgitops-dev", "canary", error_rate=1.0)
    try:
        results = story.runner.run("deploy.yml", story.push_event(before, after))
    finally:
        story.admin.clear_faults()
    (run,) = results["deploy"]
    assert run.result == "failure" and run.step("deploy").outcome == "failure", explain(results)
    # the revert branch and the pull request come from the record job, which holds no AWS credentials
    record = only(results, "record")
    assert record.result == "success" and record.roles == [], explain(results)
    assert "opened the revert pull request" in record.steps[-1].output
    assert story.endpoint_config() == story.configs["v1"]  # rolled back to the last good release
    branch = only_branch(story)
    (pr,) = story.github.pulls
    assert pr["head"]["ref"] == branch and pr["base"]["ref"] == "main" and "releases/dev.yaml" in pr["title"]
    # opened with GITHUB_TOKEN (no App configured), so GitHub starts no check for it: the body says how to
    assert pr["user"]["login"] == "github-actions[bot]"
    assert "The checks have not run" in pr["body"] and "closing and reopening this pull request" in pr["body"]
    assert "git commit --allow-empty" in pr["body"] and f"git push origin {branch}" in pr["body"]
    assert f"smgitops/good/dev/{after}" not in run_git(story.origin, "tag", "--list")
    # merging the revert pull request makes main match what is live
    story.git("fetch", "-q", "origin", branch)
    story.git("merge", "-q", "--ff-only", "FETCH_HEAD")
    story.push()
    story.done.add("rollback")


def only_branch(story: Story) -> str:
    (branch,) = [b for b in run_git(story.origin, "branch", "--list", "smgitops/rollback-*").split() if b != "*"]
    return branch


def test_schedule_drift_and_evening_teardown(story: Story) -> None:
    story.require("rollback")
    for env in ("dev", "prod"):  # a cut-off long past, whatever time the test runs
        _edit(
            story.seed / "releases" / f"{env}.yaml", lambda doc: doc.update(teardown={"at": "00:00", "timezone": "UTC"})
        )
    story.git("commit", "-q", "-am", "releases: tear down at midnight UTC")
    story.push()
    head = story.git("rev-parse", "HEAD")
    schedule = Event("schedule", {"schedule": "41 8,12,16 * * 1-5"}, head, "refs/heads/main")

    drift = story.runner.run("drift.yml", schedule)
    assert {r.matrix["environment"]: r.result for r in drift["drift"]} == {"dev": "success", "prod": "success"}, (
        explain(drift)
    )
    assert all(r.roles == [story.roles["drift"]] for r in drift["drift"])

    dry = story.runner.run(
        "teardown.yml",
        Event("workflow_dispatch", {"inputs": {"dry_run": True}}, head, "refs/heads/main", inputs={"dry_run": True}),
    )
    assert only(dry, "teardown").result == "success", explain(dry)
    assert story.endpoint_config("smgitops-dev") and story.endpoint_config("smgitops-prod")  # nothing deleted

    results = story.runner.run("teardown.yml", Event("schedule", {"schedule": "17 19 * * *"}, head, "refs/heads/main"))
    run = only(results, "teardown")
    assert run.result == "success", explain(results)
    assert run.roles == [story.roles["teardown"]]
    assert "### Evening teardown" in run.summary and "smgitops-dev" in run.summary
    assert story.endpoint_config("smgitops-dev") is None and story.endpoint_config("smgitops-prod") is None

    after = story.runner.run("drift.yml", schedule)  # the release says serve; nothing does: reported
    for r in after["drift"]:
        assert (
            r.result == "failure" and "does not exist" in r.step("Verify the live endpoint against the release").output
        )
    story.done.add("schedule")


def _live_of(prefix: str, env: str) -> list[str]:
    """The endpoint, configurations, models and alarms an environment's Terraform root makes, as live now."""
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    names = (
        [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
        + [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
        + [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]]
    )
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    return sorted([n for n in names if n.startswith(prefix)] + [m for m in models if f"-{env}-" in m])


def test_deleting_a_release_file_retires_its_environment(story: Story) -> None:
    """A pull request that deletes releases/dev.yaml plans the destroy of dev (plan role: read-only) and comments
    "retire: N resources destroyed"; merging it destroys them with dev's apply role in the environment dev; prod
    stays as it is."""
    story.require("schedule")
    left = _live_of("smgitops-dev", "dev")  # the evening teardown took the endpoint; the rest is still there
    prod = _live_of("smgitops-prod", "prod")
    assert left and prod
    base = story.git("rev-parse", "HEAD")
    story.git("checkout", "-q", "-b", "retire-dev")
    story.git("rm", "-q", "releases/dev.yaml")
    story.git("commit", "-q", "-m", "retire dev")
    head = story.git("rev-parse", "HEAD")
    story.push("retire-dev")
    pull = {"number": 8, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "retire-dev"}}
    event = Event("pull_request", {"action": "opened", "number": 8, "pull_request": pull}, head, "refs/pull/8/merge")
    results = story.runner.run("pr.yml", event)
    changes = only(results, "changes")
    assert json.loads(changes.outputs["matrix"]) == [], explain(results)
    assert json.loads(changes.outputs["retired"]) == [{"release": "releases/dev.yaml", "environment": "dev"}]
    assert only(results, "plan").result == "skipped"
    plan = only(results, "retire-plan")
    assert plan.result == "success" and plan.roles == [story.roles["plan"]], explain(results)
    assert only(results, "comment").result == "success", explain(results)
    (comment,) = [c for c in story.github.comments.get(8, []) if c["body"].startswith("<!-- smgitops:dev -->")]
    planned = re.search(r"retire: (\d+) resources destroyed", comment["body"])
    assert planned and int(planned.group(1)) == len(left), comment["body"]
    assert _live_of("smgitops-dev", "dev") == left  # a pull request destroys nothing

    story.git("checkout", "-q", "main")
    story.git("merge", "-q", "--ff-only", "retire-dev")
    story.push()
    results = story.runner.run("deploy.yml", story.push_event(base, head))
    assert only(results, "deploy").result == "skipped"
    run = only(results, "retire")
    assert run.result == "success" and run.environment == "dev", explain(results)
    assert run.roles == [story.roles["apply-dev"]]
    output = run.step("Retire (destroy what the environment's state holds; nothing of it left live)").output
    assert f"retire: {len(left)} resources destroyed" in output, output
    assert _live_of("smgitops-dev", "dev") == [] and _live_of("smgitops-prod", "prod") == prod
    story.done.add("retire")


def test_every_aws_call_of_the_story_is_allowed_by_its_role(story: Story) -> None:
    """Each AWS call a workflow step made, judged against the policy of the role that step assumed.

    The emulator recorded every request of the story (pull request, deploys, revert, failed canary, drift,
    teardown) with the access key that signed it; each role had its own key. The identity policies are read back
    from bootstrap's roles on the emulator, the bucket and key policies likewise, and a maintained IAM policy
    simulator (tests/iam_judge.py) decides. The test harness's own calls (its key) are left out. Whatever part of
    the story ran is judged; the roles' coverage is asserted once every event has passed.
    """
    story.require("first-push")
    import boto3

    policies = AccountPolicies.read(boto3.session.Session(region_name="us-east-1"), story.bootstrap_outputs)
    verdict = judge_recorded(policies, story.runner.iam_records, story.runner.role_keys)
    summary = verdict.summary()
    for role, counts in summary["per_role"].items():
        calls, requests, allowed = counts["calls"], counts["requests"], counts["allowed"]
        print(f"IAM: {role}: {calls} recorded calls ({requests} requests), {allowed} allowed")
    print(f"IAM: {summary['recorded_calls']} recorded calls, {summary['allowed']} allowed ({summary['simulator']})")
    out = ROOT / "out" / "iam-simulation"
    out.mkdir(parents=True, exist_ok=True)
    (out / "recorded.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    assert not verdict.problems, "\n".join(verdict.problems[:40])
    refused = {role: counts for role, counts in summary["per_role"].items() if counts["allowed"] != counts["calls"]}
    assert not refused, refused  # every recorded call of every role allowed, whatever part of the story ran
    story.require("pull-request", "merge", "revert", "rollback", "schedule")
    for label in ("plan", "apply-dev", "apply-prod", "drift", "teardown"):
        assert summary["per_role"].get(label, {}).get("calls", 0) > 0, f"{label} made no recorded call"
    assert summary["recorded_calls"] == summary["allowed"] > 0


def _offline_runner(origin: Path, tmp_path: Path, **settings: Any) -> Runner:
    """A runner whose GitHub API answers nothing (127.0.0.1:9): for workflows that must not call it. ``settings``
    (variables, environment_variables, secrets, app) override the empty defaults."""
    config: dict[str, Any] = {"aws_env": {}, "variables": {}, "environment_variables": {}, **settings}
    return Runner(
        origin=origin,
        tmp=tmp_path / "runs",
        api_url="http://127.0.0.1:9",
        repository=REPOSITORY,
        token=TOKEN,
        **config,
    )


def test_the_emulator_failed_no_request_of_the_story(story: Story) -> None:
    """A request the emulator fails itself (a 500 from an exception, not an injected fault) is a bug of the
    emulator, and one that shows up elsewhere as a flaky retry, a lost answer or a stranded lock."""
    story.require("first-push")
    assert story.emulator_log is not None
    failures = story.emulator_failures()
    assert not failures, "\n".join(failures[:5])


def test_the_runner_fails_on_typos(tmp_path: Path) -> None:
    """What makes the event tests meaningful: a wrong expression or a failing command fails the run."""
    runner = _offline_runner(tmp_path, tmp_path, variables={"SMGITOPS_AWS_REGION": "x"})
    event = Event("pull_request", {"pull_request": {"number": 1, "base": {"sha": "abc"}}}, "abc", "refs/pull/1/merge")
    flow = tmp_path / "flow.yml"

    def write(step: dict[str, Any]) -> None:
        doc = {
            "on": {"pull_request": {}},
            "permissions": {},
            "defaults": {"run": {"shell": "bash"}},
            "jobs": {
                "j": {
                    "runs-on": "ubuntu-24.04",
                    "permissions": {"contents": "read"},
                    "steps": [step, {"name": "after", "run": "echo after"}],
                }
            },
        }
        flow.write_text(yaml.safe_dump(doc))

    write({"name": "typo", "env": {"BASE": "${{ github.event.pull_request.base.shaa }}"}, "run": "echo $BASE"})
    with pytest.raises(ExpressionError, match="base.shaa"):
        runner.run(flow, event)
    write({"name": "typo", "env": {"ROLE": "${{ vars.SMGITOPS_PLAN_ROLE }}"}, "run": "echo $ROLE"})
    with pytest.raises(ExpressionError, match="SMGITOPS_PLAN_ROLE"):
        runner.run(flow, event)
    write({"name": "pipe", "run": "false | cat"})  # shell: bash is -o pipefail, as on GitHub
    job = only(runner.run(flow, event), "j")
    assert job.result == "failure" and [s.outcome for s in job.steps] == ["failure", "skipped"]
    write({"name": "unknown", "uses": "someone/action@" + "0" * 40})
    with pytest.raises(AssertionError, match="no local equivalent"):
        runner.run(flow, event)


def test_dispatch_inputs_take_their_defaults(tmp_path: Path) -> None:
    """A dispatched run sees every declared input, its default where none was given; a scheduled run sees null."""
    flow = tmp_path / "flow.yml"
    doc = {
        "on": {
            "schedule": [{"cron": "17 19 * * *"}],
            "workflow_dispatch": {
                "inputs": {
                    "dry_run": {"type": "boolean", "default": True},
                    "target": {"type": "string", "default": "dev"},
                }
            },
        },
        "permissions": {},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {
            "j": {
                "runs-on": "ubuntu-24.04",
                "permissions": {"contents": "read"},
                "steps": [
                    {
                        "name": "inputs",
                        "env": {"DRY_RUN": "${{ inputs.dry_run }}", "TARGET": "${{ inputs.target }}"},
                        "run": 'echo "dry_run=[$DRY_RUN] target=[$TARGET]" >> "$GITHUB_STEP_SUMMARY"',
                    }
                ],
            }
        },
    }
    flow.write_text(yaml.safe_dump(doc))
    runner = _offline_runner(tmp_path, tmp_path)

    def summary(event: Event) -> str:
        return only(runner.run(flow, event), "j").summary.strip()

    dispatch = Event("workflow_dispatch", {"inputs": {}}, "abc", "refs/heads/main")
    assert summary(dispatch) == "dry_run=[true] target=[dev]"
    dispatch.inputs = {"target": "prod"}
    assert summary(dispatch) == "dry_run=[true] target=[prod]"
    assert summary(Event("schedule", {"schedule": "17 19 * * *"}, "abc", "refs/heads/main")) == "dry_run=[] target=[]"


def test_setup_python_is_a_bare_python(tmp_path: Path) -> None:
    """actions/setup-python brings the standard library and nothing of the project's: the jobs that run
    ``python -m smgitops.cli`` without ``make setup`` (changes, record, comment, the OIDC check) run on it here."""
    flow = tmp_path / "flow.yml"
    pin = "actions/setup-python@" + _pin("actions/setup-python")
    steps = [
        {"uses": pin, "id": "python", "with": {"python-version": "3.11"}},
        {"name": "stdlib", "run": "python -c 'import json, sqlite3, urllib.request'"},
        {"name": "yaml", "run": "python -c 'import yaml'"},
    ]
    doc = {
        "on": {"push": {}},
        "permissions": {},
        "jobs": {"j": {"runs-on": "ubuntu-24.04", "permissions": {"contents": "read"}, "steps": steps}},
    }
    flow.write_text(yaml.safe_dump(doc))
    runner = _offline_runner(tmp_path, tmp_path)
    job = only(runner.run(flow, Event("push", {}, "abc", "refs/heads/main")), "j")
    assert [s.outcome for s in job.steps] == ["success", "success", "failure"], explain({"j": [job]})
    assert "No module named 'yaml'" in job.step("yaml").output


def _seed_origin(tmp_path: Path, dirs: tuple[str, ...], files: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A developer's clone of the project's ``dirs`` and ``files`` (one commit on main) and its bare origin."""
    seed = tmp_path / "seed"
    for name in dirs:
        shutil.copytree(ROOT / name, seed / name, ignore=_IGNORE)
    for name in files:
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, seed / name)
    run_git(seed, "init", "-q", "-b", "main")
    run_git(seed, "add", ".")
    run_git(seed, "commit", "-q", "-m", "base", env=IDENTITY)
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    return seed, origin


APP = GitHubApp(
    client_id="Iv23liTESTCLIENT",
    private_key="-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----",
    slug="smgitops-revert",
    token="ghs_installation_token_of_the_app",
)


@pytest.mark.parametrize("app", ["none", "app", "app-wrong-key"])
def test_a_set_up_failure_before_deploy_fails_the_job_cleanly(tmp_path: Path, app: str) -> None:
    """``make setup`` fails (say the package index is unreachable): each deploy job fails at that step, the steps
    after it are skipped (no credentials, no publish, no deploy, no revert branch), the record job still runs and
    finds nothing to record, and nothing is pushed. With a GitHub App configured its token is minted; a key GitHub
    refuses fails that step visibly without losing the record job."""
    seed, origin = _seed_origin(tmp_path, SEED_DIRS, SEED_FILES)
    head = run_git(seed, "rev-parse", "HEAD")
    used = set(re.findall(r"\bvars\.(\w+)", (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")))
    variables = {k: "arn:aws:iam::123456789012:role/x" if k.endswith("_ARN") else "x" for k in used}
    variables["SMGITOPS_APP_CLIENT_ID"] = APP.client_id if app != "none" else ""
    key = {"none": "", "app": APP.private_key, "app-wrong-key": "-----BEGIN RSA PRIVATE KEY-----\nother"}[app]
    runner = _offline_runner(  # nothing may be called: no record, so no pull request
        origin,
        tmp_path,
        variables=variables,
        environment_variables={
            env: {"SMGITOPS_APPLY_ROLE_ARN": f"arn:aws:iam::123456789012:role/apply-{env}"} for env in ("dev", "prod")
        },
        secrets={"SMGITOPS_APP_PRIVATE_KEY": key},
        app=APP,
    )
    runner.setup_fault = "pip could not reach the package index"
    push = {"before": "0" * 40, "after": head, "ref": "refs/heads/main", "repository": {"full_name": REPOSITORY}}
    results = runner.run("deploy.yml", Event("push", push, head, "refs/heads/main"))
    assert only(results, "changes").result == "success", explain(results)
    deploys = {r.matrix["environment"]: r for r in results["deploy"]}
    assert set(deploys) == {"dev", "prod"}
    for run in deploys.values():
        assert run.result == "failure", explain(results)
        outcomes = {s.name.split("@")[0]: s.outcome for s in run.steps}
        setup = "Set up (virtual environments from hash-pinned requirements, provider mirror)"
        assert outcomes[setup] == "failure" and "pip could not reach" in run.step(setup).output
        assert outcomes["actions/cache"] == "success"  # a miss: the set-up builds, and fails
        after = run.steps[[s.name for s in run.steps].index(setup) + 1 :]
        assert [s.name.split("@")[0] for s in after if s.outcome != "skipped"] == ["actions/upload-artifact"]
        assert run.step("deploy").outcome == "skipped" and run.roles == []  # no credentials were ever assumed
        assert "no files at" in run.step("actions/upload-artifact@" + _pin("actions/upload-artifact")).output
    record = only(results, "record")
    assert record.result == "success", explain(results)
    assert record.environment == "record"  # the environment holding the App's private key
    minted = record.step("app")
    assert minted.outcome == {"none": "skipped", "app": "success", "app-wrong-key": "failure"}[app], minted
    assert "no deploy records" in record.steps[-1].output
    assert run_git(origin, "tag", "--list") == "" and "rollback" not in run_git(origin, "branch", "--list")


def _pin(action: str) -> str:
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    m = re.search(rf"uses: {re.escape(action)}@([0-9a-f]{{40}})", text)
    assert m, action
    return m.group(1)


def test_changed_releases_matrix(tmp_path: Path) -> None:
    from smgitops.changes import changed_releases, matrix

    repo = tmp_path / "r"
    (repo / "releases").mkdir(parents=True)
    (repo / "terraform").mkdir()
    for name in ("dev", "prod"):
        (repo / "releases" / f"{name}.yaml").write_text(f"environment: {name}\n")
    (repo / "terraform" / "main.tf").write_text("# root\n")
    (repo / "README.md").write_text("x\n")
    run_git(repo, "init", "-q", "-b", "main")
    run_git(repo, "add", ".")
    run_git(repo, "commit", "-q", "-m", "c0", env=IDENTITY)
    c0 = run_git(repo, "rev-parse", "HEAD")

    def commit(msg: str) -> str:
        run_git(repo, "add", "-A")
        run_git(repo, "commit", "-q", "-m", msg, env=IDENTITY)
        return run_git(repo, "rev-parse", "HEAD")

    assert changed_releases(repo, "0" * 40) == ["releases/dev.yaml", "releases/prod.yaml"]  # first push: all
    (repo / "README.md").write_text("y\n")
    c1 = commit("docs only")
    assert changed_releases(repo, c0, c1) == []
    (repo / "releases" / "prod.yaml").write_text("environment: prod\n# changed\n")
    c2 = commit("prod")
    assert matrix(changed_releases(repo, c1, c2)) == [{"release": "releases/prod.yaml", "environment": "prod"}]
    (repo / "terraform" / "main.tf").write_text("# changed root\n")
    c3 = commit("terraform")
    assert changed_releases(repo, c2, c3) == ["releases/dev.yaml", "releases/prod.yaml"]  # shared input: all
    (repo / "releases" / "dev.yaml").unlink()
    c4 = commit("retire dev")
    assert changed_releases(repo, c3, c4) == []  # nothing left to deploy for a deleted release


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "no-plan-role"])
def test_a_pull_request_without_oidc_or_role_skips_the_plan_green(tmp_path: Path, fork: bool) -> None:
    """A fork's pull request gets no OIDC token and no variables: the plan job says so and skips, it does not fail."""
    seed = tmp_path / "seed"
    for name in ("releases", "scripts"):
        shutil.copytree(ROOT / name, seed / name, ignore=_IGNORE)
    run_git(seed, "init", "-q", "-b", "main")
    run_git(seed, "add", ".")
    run_git(seed, "commit", "-q", "-m", "base", env=IDENTITY)
    base = run_git(seed, "rev-parse", "HEAD")
    with (seed / "releases" / "dev.yaml").open("a") as fh:
        fh.write("# a change from a contributor\n")
    run_git(seed, "commit", "-q", "-am", "dev", env=IDENTITY)
    head = run_git(seed, "rev-parse", "HEAD")
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    used = set(re.findall(r"\bvars\.(\w+)", (WORKFLOWS / "pr.yml").read_text(encoding="utf-8")))
    variables = {k: "arn:aws:iam::123456789012:role/x" if k.endswith("_ARN") else "x" for k in used}
    if not fork:
        variables["SMGITOPS_PLAN_ROLE_ARN"] = ""  # the repository was never set up (github-setup)
    runner = _offline_runner(origin, tmp_path, variables=variables)  # no plan, so no comment to post
    pr = {"number": 9, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "contrib"}}
    results = runner.run("pr.yml", Event("pull_request", {"pull_request": pr}, head, "refs/pull/9/merge", fork=fork))
    assert {job: [r.result for r in runs] for job, runs in results.items()} == {
        "changes": ["success"],
        "plan": ["success"],
        "retire-plan": ["skipped"],  # no release file deleted
        "comment": ["success"],
    }, explain(results)
    plan = only(results, "plan")
    assert plan.matrix == {"release": "releases/dev.yaml", "environment": "dev"}
    reason = "no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set)" if fork else "no role to assume"
    assert plan.summary.startswith(f"Skipped the plan of releases/dev.yaml: {reason}"), plan.summary
    ran = [s.name.split("@")[0] for s in plan.steps if s.outcome != "skipped"]
    assert ran == ["actions/checkout", "actions/setup-python", "Can this job assume the plan role?"], ran
    assert plan.roles == []
    post = only(results, "comment").step("Post the comments (one per environment, updated in place)")
    assert "no comment" in post.output


def test_changed_releases_after_a_force_push_compare_with_the_last_good_tag(tmp_path: Path) -> None:
    """GitHub's ``before`` of a force-push is a commit the clone never saw: each release's last good tag stands in."""
    repo = tmp_path / "r"
    (repo / "releases").mkdir(parents=True)
    for name in ("dev", "prod", "stage"):
        (repo / "releases" / f"{name}.yaml").write_text(f"environment: {name}\n")
    run_git(repo, "init", "-q", "-b", "main")
    run_git(repo, "add", ".")
    run_git(repo, "commit", "-q", "-m", "c0", env=IDENTITY)
    run_git(repo, "tag", "smgitops/good/dev/" + run_git(repo, "rev-parse", "HEAD"))
    run_git(repo, "tag", "smgitops/good/prod/" + run_git(repo, "rev-parse", "HEAD"))
    (repo / "releases" / "prod.yaml").write_text("environment: prod\n# changed\n")
    run_git(repo, "commit", "-q", "-am", "prod", env=IDENTITY)
    unknown = "e" * 40
    cli = [str(ROOT / ".venv" / "bin" / "smgitops"), "changed-releases", "--base", unknown, "--repo", str(repo)]
    proc = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {"release": "releases/prod.yaml", "environment": "prod"},  # changed since smgitops/good/prod/<c0>
        {"release": "releases/stage.yaml", "environment": "stage"},  # never deployed good: included
    ]
    assert f"base {unknown} is not in this repository" in proc.stderr
    assert "releases/dev.yaml: unchanged since its last good tag smgitops/good/dev/" in proc.stderr
    assert "releases/stage.yaml: no good tag smgitops/good/stage/* before HEAD: included" in proc.stderr
    (repo / "terraform").mkdir()
    (repo / "terraform" / "main.tf").write_text("# root\n")
    run_git(repo, "add", ".")
    run_git(repo, "commit", "-q", "-m", "root", env=IDENTITY)
    proc = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert [r["environment"] for r in json.loads(proc.stdout)] == ["dev", "prod", "stage"]  # a shared input


def test_concurrency_and_environments() -> None:
    deploy = load_workflow(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    assert deploy["environment"] == "${{ matrix.environment }}"  # prod: required reviewers on its environment
    assert "matrix.environment" in deploy["concurrency"]["group"]
    assert deploy["concurrency"]["cancel-in-progress"] is False  # an apply is never cancelled half-way
    assert "concurrency" not in load_workflow(WORKFLOWS / "deploy.yml")  # no run-level group dropping pending runs
    pr = load_workflow(WORKFLOWS / "pr.yml")
    assert "pull_request.number" in pr["concurrency"]["group"] and pr["concurrency"]["cancel-in-progress"] is True
    assert load_workflow(WORKFLOWS / "teardown.yml")["concurrency"]["cancel-in-progress"] is False
    for name in ("pr.yml", "deploy.yml", "teardown.yml", "drift.yml"):
        jobs = load_workflow(WORKFLOWS / name)["jobs"]
        writers = {j for j, job in jobs.items() if job["permissions"].get("pull-requests") == "write"}
        posting = {
            j
            for j, job in jobs.items()
            if any(
                re.search(r"smgitops(\.cli)? (post-comment|record)\b", str(s.get("run", "")))
                for s in job.get("steps", [])
            )
        }
        assert writers == posting, f"{name}: pull-requests: write only where a comment or PR is made"
        for job_id in posting:  # the posting jobs hold no AWS credentials and install nothing
            steps = jobs[job_id]["steps"]
            assert "id-token" not in jobs[job_id]["permissions"]
            assert not any("make setup" in str(s.get("run", "")) for s in steps), job_id
    comment_job = load_workflow(WORKFLOWS / "pr.yml")["jobs"]["comment"]
    checkout = next(s for s in comment_job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"  # the base's code posts
