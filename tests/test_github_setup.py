"""``smgitops github-setup`` / ``github-check`` against a fake of GitHub's REST API on a free local port.

The values come from bootstrap/ itself: the module applies the real bootstrap/ to the emulator once (as local mode
does) and hands its ``terraform output -json`` to the commands with ``--outputs``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures_terraform import local_stack
from smgitops.cli import main
from smgitops.github_setup import ENVIRONMENT_VARIABLES, REPO_MAP_VARIABLES, REPO_VARIABLES
from support.fake_github import FakeGitHub, serve

REPO = "local/smgitops"  # the repository local mode bootstraps for (localmode.DEFAULT_GITHUB_REPOSITORY)
TOKEN = "ghp_test_token_not_a_secret"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.terraform


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real bootstrap/ root, applied to the emulator (its state is local, beside it)."""
    tmp = tmp_path_factory.mktemp("bootstrap")
    with local_stack(tmp) as stack:
        (root,) = stack.local_dir.glob("*/bootstrap")
    return Path(root)


@pytest.fixture(scope="module")
def outputs(applied: Path) -> Path:
    """What an adopter saves: `terraform output -json` in the applied root."""
    done = subprocess.run(["terraform", "output", "-json"], cwd=applied, capture_output=True, text=True, check=True)
    path = applied.parent / "outputs.json"
    path.write_text(done.stdout, encoding="utf-8")
    return path


@pytest.fixture()
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(REPO, TOKEN)
    fake.add_user("alice")
    fake.add_team("local", "platform")
    with serve(fake) as url:
        for key in ("GH_TOKEN", "GITHUB_TOKEN", "GITHUB_REPOSITORY"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GH_TOKEN", TOKEN)
        yield fake


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def setup(capsys: pytest.CaptureFixture[str], outputs: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "github-setup", "--repo", REPO, "--outputs", str(outputs), *extra)


def check(capsys: pytest.CaptureFixture[str], outputs: Path) -> tuple[int, str, str]:
    return cli(capsys, "github-check", "--repo", REPO, "--outputs", str(outputs))


def states(out: str) -> dict[str, str]:
    """``{item name: state}`` from github-check's report."""
    rows: dict[str, str] = {}
    for line in out.splitlines():
        state, _, rest = line.partition(" ")
        if state in ("ok", "missing", "wrong"):
            rows[rest.strip().split("  ")[0]] = state
    return rows


def values(outputs: Path) -> dict[str, Any]:
    return {
        k: v["value"] if isinstance(v, dict) and "type" in v else v for k, v in json.loads(outputs.read_text()).items()
    }


# ---------------------------------------------------------------------------------------------------------------


def test_dry_run_prints_every_call_and_makes_none(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GH_TOKEN")  # a dry run needs no token
    code, out, _ = setup(capsys, outputs, "--dry-run", "--prod-reviewers", "alice,local/platform")
    assert code == 0
    assert github.calls == []
    calls = [line for line in out.splitlines() if line.split(" ")[0] in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    v = values(outputs)
    envs = sorted(v["apply_role_arns"])
    assert envs == ["dev", "prod"]
    # the repository, 2 reviewers, every repository variable, per environment: PUT, branch policy, its variables;
    # the record job's environment (PUT, branch policy); the OIDC template and the workflow permissions
    per_env = len(envs) * (2 + len(ENVIRONMENT_VARIABLES))
    expected = 1 + 2 + len(REPO_VARIABLES) + len(REPO_MAP_VARIABLES) + per_env + 2 + 2
    assert len(calls) == expected, out
    assert out.splitlines()[0].startswith(f"dry run: {expected} calls")
    body = {c.split(" ", 2)[1]: c.split(" ", 2)[2] if c.count(" ") >= 2 else "" for c in calls}
    prefix = f"/repos/{REPO}"
    for var, name in REPO_VARIABLES.items():
        assert f'POST {prefix}/actions/variables {{"name": "{var}", "value": "{v[name]}"}}' in calls
    # every environment's execution role in one repository variable: the PR plan job names no environment
    posted = [json.loads(c.split(" ", 2)[2]) for c in calls if c.startswith(f"POST {prefix}/actions/variables ")]
    roles = next(p["value"] for p in posted if p["name"] == "SMGITOPS_EXECUTION_ROLE_ARNS")
    assert json.loads(roles) == v["execution_role_arns"] and sorted(json.loads(roles)) == envs
    for env in envs:
        for var, name in ENVIRONMENT_VARIABLES.items():
            assert f'POST {prefix}/environments/{env}/variables {{"name": "{var}", "value": "{v[name][env]}"}}' in calls
        assert (
            f'POST {prefix}/environments/{env}/deployment-branch-policies {{"name": "main", "type": "branch"}}' in calls
        )
    prod = json.loads(body[f"{prefix}/environments/prod"])
    assert prod["deployment_branch_policy"] == {"custom_branch_policies": True, "protected_branches": False}
    assert prod["reviewers"] == [
        {"id": "<id of alice>", "type": "User"},
        {"id": "<id of local/platform>", "type": "Team"},
    ]
    assert "reviewers" not in json.loads(body[f"{prefix}/environments/dev"])
    # the environment holding the GitHub App's key (revert pull requests): deployable from main only
    assert json.loads(body[f"{prefix}/environments/record"]) == {
        "deployment_branch_policy": prod["deployment_branch_policy"]
    }
    assert f'POST {prefix}/environments/record/deployment-branch-policies {{"name": "main", "type": "branch"}}' in calls
    assert json.loads(body[f"{prefix}/actions/oidc/customization/sub"]) == json.loads(v["github_oidc_subject_template"])
    assert json.loads(body[f"{prefix}/actions/permissions/workflow"]) == {
        "can_approve_pull_request_reviews": True,
        "default_workflow_permissions": "read",
    }
    assert "GET /users/alice" in calls and "GET /orgs/local/teams/platform" in calls


def test_setup_then_check_passes_and_a_second_setup_writes_nothing(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(capsys, outputs)
    assert code == 1, out + err
    before = states(out)
    assert before and all(s != "ok" for s in before.values()), out  # an unconfigured repository: nothing is ok

    code, out, err = setup(capsys, outputs, "--prod-reviewers", "alice,local/platform")
    assert code == 0, out + err
    v = values(outputs)
    # what GitHub now holds, read from the fake's state
    assert github.variables == {
        **{var: v[name] for var, name in REPO_VARIABLES.items()},
        **{var: json.dumps(v[name], sort_keys=True, separators=(",", ":")) for var, name in REPO_MAP_VARIABLES.items()},
    }
    for env in ("dev", "prod", "record"):
        e = github.environments[env]
        want = {} if env == "record" else {var: v[name][env] for var, name in ENVIRONMENT_VARIABLES.items()}
        assert e.variables == want
        assert e.branch_policy == {"protected_branches": False, "custom_branch_policies": True}
        assert [(p["name"], p["type"]) for p in e.branch_policies] == [("main", "branch")]
    assert github.environments["record"].reviewers == []  # a revert must not wait for a reviewer
    assert github.environments["dev"].reviewers == []
    assert github.environments["prod"].reviewers == [
        {"type": "User", "id": github.users["alice"]},
        {"type": "Team", "id": github.teams[("local", "platform")]},
    ]
    assert github.oidc == {"use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}
    assert github.workflow_permissions == {
        "default_workflow_permissions": "read",
        "can_approve_pull_request_reviews": True,
    }
    writes = len(github.writes())

    code, out, err = check(capsys, outputs)
    assert code == 0, out + err
    after = states(out)
    assert set(after) == set(before) and set(after.values()) == {"ok"}
    assert f"github-check: {len(after)} of {len(after)} ok" in out
    code, out, _ = cli(capsys, "github-check", "--repo", REPO, "--outputs", str(outputs), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and [i["name"] for i in doc["items"]] == list(after)

    code, out, err = setup(capsys, outputs, "--prod-reviewers", "alice,local/platform")
    assert code == 0, out + err
    assert len(github.writes()) == writes  # idempotent: the second run reads and writes nothing
    assert f"{len(after)} items, 0 changed, 0 writes" in out


@pytest.mark.parametrize(
    ("break_it", "item", "state"),
    [
        (lambda g: g.variables.pop("SMGITOPS_PLAN_ROLE_ARN"), "repository variable SMGITOPS_PLAN_ROLE_ARN", "missing"),
        (
            lambda g: g.variables.update(SMGITOPS_AWS_REGION="eu-west-1"),
            "repository variable SMGITOPS_AWS_REGION",
            "wrong",
        ),
        (
            lambda g: g.environments["prod"].variables.pop("SMGITOPS_APPLY_ROLE_ARN"),
            "environment prod variable SMGITOPS_APPLY_ROLE_ARN",
            "missing",
        ),
        (lambda g: g.environments["prod"].reviewers.clear(), "environment prod: required reviewers", "missing"),
        (
            lambda g: g.environments["dev"].branch_policies.append({"id": 1, "name": "*", "type": "branch"}),
            "environment dev: deployment branch main only",
            "wrong",
        ),
        (
            lambda g: setattr(g.environments["prod"], "branch_policy", None),
            "environment prod: deployments only from chosen branches",
            "wrong",
        ),
        (lambda g: g.environments.pop("dev"), "environment dev: deployments only from chosen branches", "missing"),
        (lambda g: setattr(g, "oidc", {"use_default": True}), "OIDC subject template", "missing"),
        (
            lambda g: g.workflow_permissions.update(can_approve_pull_request_reviews=False),
            "Actions may create pull requests; GITHUB_TOKEN read-only by default",
            "wrong",
        ),
    ],
)
def test_check_names_what_is_missing_and_setup_repairs_it(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str], break_it: Any, item: str, state: str
) -> None:
    assert setup(capsys, outputs, "--prod-reviewers", "alice")[0] == 0
    break_it(github)
    code, out, _ = check(capsys, outputs)
    assert code == 1
    rows = states(out)
    assert rows[item] == state, out
    assert [name for name, s in rows.items() if s != "ok"][0] == item
    line = next(line for line in out.splitlines() if item in line)
    assert f"fix: smgitops github-setup --repo {REPO}" in line
    assert setup(capsys, outputs, "--prod-reviewers", "alice")[0] == 0
    assert check(capsys, outputs)[0] == 0


def test_setup_keeps_prod_reviewers_when_not_given_and_fails_when_prod_has_none(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = setup(capsys, outputs)
    assert code == 1  # everything else is set, but nobody has to approve a production deploy
    assert "note: environment prod: required reviewers" in out and "--prod-reviewers" in out
    assert setup(capsys, outputs, "--prod-reviewers", "local/platform")[0] == 0
    assert setup(capsys, outputs)[0] == 0
    assert github.environments["prod"].reviewers == [{"type": "Team", "id": github.teams[("local", "platform")]}]


def test_unknown_reviewer_is_bad_input(github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = setup(capsys, outputs, "--prod-reviewers", "mallory")
    assert code == 2
    assert err.strip().splitlines() == [
        "smgitops github-setup: error: --prod-reviewers: no GitHub user 'mallory' (GET /users/mallory answered 404)"
    ]
    assert github.writes() == []


def test_a_refused_call_is_one_line_naming_it(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    github.forbid.add(("PUT", f"/repos/{REPO}/actions/oidc/customization/sub"))
    code, _, err = setup(capsys, outputs, "--prod-reviewers", "alice")
    assert code == 2
    assert err.count("\n") == 1
    assert f"GitHub answered 403 to PUT /repos/{REPO}/actions/oidc/customization/sub" in err
    assert "admin rights" in err

    github.forbid.clear()
    assert setup(capsys, outputs, "--prod-reviewers", "alice")[0] == 0  # the rest of the run, once allowed
    github.admin = False
    code, _, err = setup(capsys, outputs, "--prod-reviewers", "alice")
    assert code == 2 and err.count("\n") == 1
    assert f"the token has no admin rights on {REPO}" in err
    assert check(capsys, outputs)[0] == 0  # reading needs no admin rights (in the fake)

    github.admin = True
    github.workflow_permissions["can_approve_pull_request_reviews"] = False
    github.org_locks_workflow_permissions = True
    code, _, err = setup(capsys, outputs, "--prod-reviewers", "alice")
    assert code == 2 and err.count("\n") == 1
    assert f"GitHub answered 409 to PUT /repos/{REPO}/actions/permissions/workflow: the organization" in err

    monkeypatch.setenv("GH_TOKEN", "expired")
    code, _, err = check(capsys, outputs)
    assert code == 2 and err.count("\n") == 1
    assert f"GitHub answered 401 to GET /repos/{REPO}: the token (GH_TOKEN or GITHUB_TOKEN) is invalid" in err


def test_another_repository_than_bootstrap_trusts_is_refused(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "github-setup", "--repo", "someone/else", "--outputs", str(outputs))
    assert code == 2
    assert f"bootstrap/'s roles trust the repository {REPO}, not someone/else" in err
    assert github.calls == []


def test_bad_outputs_file_names_the_file_and_the_output(
    github: FakeGitHub, outputs: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads(outputs.read_text())
    del doc["plan_role_arn"]
    broken = tmp_path / "outputs.json"
    broken.write_text(json.dumps(doc))
    code, _, err = cli(capsys, "github-check", "--repo", REPO, "--outputs", str(broken))
    assert code == 2
    assert f"{broken}: output 'plan_role_arn': missing or not a non-empty string" in err
    broken.write_text("{\n  nope")
    code, _, err = cli(capsys, "github-check", "--repo", REPO, "--outputs", str(broken))
    assert code == 2 and f"{broken}:2:3: not JSON" in err
    assert github.calls == []


def test_missing_token_is_exit_2_in_one_line(github: FakeGitHub, outputs: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    for command in ("github-setup", "github-check"):
        done = subprocess.run(
            [sys.executable, "-m", "smgitops.cli", command, "--repo", REPO, "--outputs", str(outputs)],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith(f"smgitops {command}: error: no GitHub token: set GH_TOKEN (or GITHUB_TOKEN)")
    assert github.calls == []


def test_outputs_read_from_the_bootstrap_root_and_repository_from_the_git_remote(
    github: FakeGitHub,
    applied: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin", f"git@github.com:{REPO}.git"], check=True)
    monkeypatch.chdir(clone)
    code, out, err = cli(capsys, "github-setup", "--bootstrap-dir", str(applied), "--prod-reviewers", "alice")
    assert code == 0, out + err
    assert f"writes to {REPO}" in out
    code, out, err = cli(capsys, "github-check", "--bootstrap-dir", str(applied))
    assert code == 0, out + err
    assert github.variables["SMGITOPS_AWS_REGION"] == "us-east-1"
