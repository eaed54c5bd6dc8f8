"""``smgitops github-setup`` and ``smgitops github-check``: the GitHub side of adopting the pipeline, in one command.

bootstrap/ creates the AWS side once per account; the repository then needs, before its first workflow run:

* repository variables (every job reads them): ``SMGITOPS_AWS_REGION``, the state, lock, artifact and key names,
  the plan, teardown and drift roles, and ``SMGITOPS_EXECUTION_ROLE_ARNS`` (every environment's SageMaker execution
  role as JSON: a pull request's plan job runs in no environment but plans each one with its own role);
* one GitHub environment per bootstrap environment (``dev``, ``prod``) whose deployments are limited to the branch the
  apply roles trust (``main``: a custom deployment branch policy), with the variables that differ per environment
  (``SMGITOPS_APPLY_ROLE_ARN``), and required reviewers on ``prod``;
* the environment ``record`` of deploy.yml's record job, also limited to ``main``: it holds the private key of
  the optional GitHub App that opens revert pull requests (secret ``SMGITOPS_APP_PRIVATE_KEY``, with the variable
  ``SMGITOPS_APP_CLIENT_ID``; both set by hand, README "Adopt it"), so no other branch's workflow can read it;
* the repository's OIDC subject template (bootstrap's output ``github_oidc_subject_template``): until it is set,
  GitHub issues default subjects and no role can be assumed;
* "Allow GitHub Actions to create and approve pull requests" (the revert pull request of an automatic rollback),
  with read-only default ``GITHUB_TOKEN`` permissions.

Every value comes from bootstrap/'s outputs (``terraform output -json`` in ``--bootstrap-dir``, or a saved copy given
with ``--outputs``); every change goes through GitHub's REST API (``GITHUB_API_URL``, default
https://api.github.com; token ``GH_TOKEN`` or ``GITHUB_TOKEN`` with admin rights on the repository). ``github-setup``
reads each item first and writes only what differs, so a second run writes nothing; ``--dry-run`` prints every call
it would make and makes none (no token needed). ``github-check`` reads everything back and prints each item as
``ok``, ``missing`` or ``wrong`` with its fix; exit 1 when anything is not ok.

Exit codes: 0 ok; 1 a check failed (github-check) or GitHub answered something unexpected; 2 bad input, no token, or
GitHub refused a call (401, 403, 404: the message names the call and what to do).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import ExternalError, UserError
from .git import Git, GitError

DEFAULT_API_URL = "https://api.github.com"

# Repository variables the workflows read (`vars.*` in .github/workflows/*.yml) => bootstrap output.
REPO_VARIABLES: dict[str, str] = {
    "SMGITOPS_AWS_REGION": "region",
    "SMGITOPS_STATE_BUCKET": "state_bucket",
    "SMGITOPS_LOCK_TABLE": "lock_table",
    "SMGITOPS_ARTIFACT_BUCKET": "artifact_bucket",
    "SMGITOPS_KMS_KEY_ARN": "kms_key_arn",
    "SMGITOPS_PLAN_ROLE_ARN": "plan_role_arn",
    "SMGITOPS_TEARDOWN_ROLE_ARN": "teardown_role_arn",
    "SMGITOPS_DRIFT_ROLE_ARN": "drift_role_arn",
}
# Repository variables holding a bootstrap output that is a map (environment => value), as compact JSON: a pull
# request's plan job runs in no GitHub environment but plans every environment, each with its own execution role.
REPO_MAP_VARIABLES: dict[str, str] = {
    "SMGITOPS_EXECUTION_ROLE_ARNS": "execution_role_arns",
}
# Variables of each GitHub environment => bootstrap output (a map environment => value). A job that names an
# environment sees its variables over the repository's.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "SMGITOPS_APPLY_ROLE_ARN": "apply_role_arns",
}
REVIEWED_ENVIRONMENT = "prod"
# deploy.yml's record job: the environment that holds the GitHub App's private key, deployable from main only
RECORD_ENVIRONMENT = "record"
WORKFLOW_PERMISSIONS = {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True}
_CLAIM_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_BRANCH_OF_SUBJECT = re.compile(r"/deploy\.yml@refs/heads/(?P<branch>[^*]+)$")
_REPO_OF_SUBJECT = re.compile(r"^repo:(?P<repo>[^:]+):")


# ---------------------------------------------------------------------------------------------------------------
# What bootstrap/ says the repository needs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    """The values github-setup writes, read from bootstrap/'s outputs."""

    repo_variables: dict[str, str]
    environment_variables: dict[str, dict[str, str]]  # environment => variable => value
    oidc_template: dict[str, Any]  # body of PUT .../actions/oidc/customization/sub
    branch: str  # the branch the apply roles trust: each environment's only deployment branch
    trusted_repository: str | None  # the repository bootstrap's trust policies name

    @property
    def environments(self) -> list[str]:
        return list(self.environment_variables)


def _unwrap(raw: Any) -> Any:
    return raw["value"] if isinstance(raw, dict) and "value" in raw and "type" in raw else raw


def parse_outputs(outputs: Mapping[str, Any], source: str) -> Bootstrap:
    """The values of ``terraform output -json`` (wrapped in ``{"value", "type", ...}`` or already unwrapped)."""
    values = {name: _unwrap(raw) for name, raw in outputs.items()}
    if not values:
        raise UserError(f"{source}: bootstrap/ has no outputs: apply it first (bootstrap/README.md, 'Apply it')")

    def bad(name: str, what: str) -> UserError:
        return UserError(f"{source}: output {name!r}: {what} (apply the current bootstrap/ and read its outputs again)")

    repo_variables: dict[str, str] = {}
    for var, name in REPO_VARIABLES.items():
        value = values.get(name)
        if not isinstance(value, str) or not value:
            raise bad(name, "missing or not a non-empty string")
        repo_variables[var] = value
    for var, name in REPO_MAP_VARIABLES.items():
        mapping = values.get(name)
        if not isinstance(mapping, dict) or not mapping or not all(isinstance(v, str) and v for v in mapping.values()):
            raise bad(name, "missing or not a map of environment to a non-empty string")
        repo_variables[var] = json.dumps(mapping, sort_keys=True, separators=(",", ":"))
    environment_variables: dict[str, dict[str, str]] = {}
    envs: list[str] | None = None
    for var, name in ENVIRONMENT_VARIABLES.items():
        mapping = values.get(name)
        if not isinstance(mapping, dict) or not mapping or not all(isinstance(v, str) and v for v in mapping.values()):
            raise bad(name, "missing or not a map of environment to a non-empty string")
        if envs is None:
            envs = sorted(mapping)
        elif sorted(mapping) != envs:
            raise bad(name, f"names environments {sorted(mapping)}, another output names {envs}")
        for env in envs:
            environment_variables.setdefault(env, {})[var] = mapping[env]
    template = values.get("github_oidc_subject_template")
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except json.JSONDecodeError:
            raise bad("github_oidc_subject_template", "not JSON") from None
    keys = template.get("include_claim_keys") if isinstance(template, dict) else None
    if (
        not isinstance(template, dict)
        or template.get("use_default") is not False
        or not isinstance(keys, list)
        or not keys
        or not all(isinstance(k, str) and _CLAIM_KEY.match(k) for k in keys)
    ):
        raise bad("github_oidc_subject_template", 'missing or not {"use_default": false, "include_claim_keys": [...]}')
    branch, trusted = "main", None
    subjects = values.get("github_oidc_subjects")
    if isinstance(subjects, dict):
        for subject in subjects.values():
            if not isinstance(subject, str):
                continue
            if m := _REPO_OF_SUBJECT.match(subject):
                trusted = m.group("repo")
            if m := _BRANCH_OF_SUBJECT.search(subject):
                branch = m.group("branch")
    return Bootstrap(
        repo_variables=repo_variables,
        environment_variables=environment_variables,
        oidc_template={"use_default": False, "include_claim_keys": list(keys)},
        branch=branch,
        trusted_repository=trusted,
    )


def load_outputs(outputs_file: str | None, bootstrap_dir: str) -> Bootstrap:
    """bootstrap/'s outputs: a saved ``terraform output -json`` (``--outputs``), or Terraform run in the root."""
    if outputs_file:
        path = Path(outputs_file)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"{path}: cannot read the bootstrap outputs: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): save `terraform output -json`"
            ) from exc
        if not isinstance(doc, dict):
            raise UserError(f"{path}: expected the object `terraform output -json` prints, got {type(doc).__name__}")
        return parse_outputs(doc, str(path))
    root = Path(bootstrap_dir)
    if not any(root.glob("*.tf")):
        raise UserError(f"{root}: no Terraform files: run in the repository root, or pass --bootstrap-dir / --outputs")
    from .terraform import Terraform

    return parse_outputs(Terraform(root).output_json(), f"{root} (terraform output)")


# ---------------------------------------------------------------------------------------------------------------
# GitHub's REST API
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None

    def __str__(self) -> str:
        text = f"{self.method} {self.path}"
        return text if self.body is None else f"{text} {json.dumps(self.body, sort_keys=True)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """GitHub answers 303 to a branch policy that exists: that is an answer, not a place to go."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_WHAT_TO_DO = {
    401: "the token (GH_TOKEN or GITHUB_TOKEN) is invalid or expired: create a new one",
    403: "the token may not do this: it needs admin rights on the repository (fine-grained token: Administration, "
    "Environments, Variables and Actions read and write; classic token: repo)",
    404: "the repository does not exist or the token cannot see it (GitHub answers 404 for both), or the token lacks "
    "admin rights for this setting",
}


class GitHubApi:
    """The few REST calls github-setup needs, with urllib. ``read`` answers None for 404; writes raise."""

    def __init__(self, api_url: str, repository: str, token: str, *, opener: Any = None) -> None:
        self.api = api_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.opener = opener or urllib.request.build_opener(_NoRedirect)
        self.writes: list[Call] = []

    def repo_path(self, *parts: str) -> str:
        return "/repos/" + self.repository + "".join("/" + urllib.parse.quote(p, safe="") for p in parts)

    def request(self, call: Call, *, ok: Sequence[int] = (200, 201, 204)) -> tuple[int, Any]:
        data = None if call.body is None else json.dumps(call.body).encode()
        req = urllib.request.Request(f"{self.api}{call.path}", data=data, method=call.method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "smgitops")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise ExternalError(f"GitHub API {call.method} {call.path}: {self.api} unreachable: {exc.reason}") from exc
        if call.method != "GET":
            self.writes.append(call)
        try:
            doc = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            doc = None
        if status in ok:
            return status, doc
        message = raw.decode(errors="replace")[:200]
        if isinstance(doc, dict):
            errors = doc.get("errors")
            details = [e if isinstance(e, str) else json.dumps(e) for e in errors] if isinstance(errors, list) else []
            message = "; ".join([str(doc.get("message", "")), *details])
        if status in _WHAT_TO_DO:
            raise UserError(f"GitHub answered {status} to {call.method} {call.path}: {_WHAT_TO_DO[status]}")
        raise ExternalError(f"GitHub answered {status} to {call.method} {call.path}: {message}")

    def read(self, path: str) -> Any:
        status, doc = self.request(Call("GET", path), ok=(200, 404))
        return None if status == 404 else doc


# ---------------------------------------------------------------------------------------------------------------
# Reviewers
# ---------------------------------------------------------------------------------------------------------------


def parse_reviewers(values: Iterable[str] | None) -> list[str]:
    """``user`` or ``org/team-slug`` names from ``--prod-reviewers a,b --prod-reviewers c``."""
    names: list[str] = []
    for value in values or []:
        for raw in value.split(","):
            name = raw.strip()
            if not name:
                continue
            if not re.match(r"^[A-Za-z0-9-]{1,39}(/[A-Za-z0-9._-]{1,100})?$", name):
                raise UserError(f"--prod-reviewers: {name!r} is neither a user name nor ORG/TEAM-SLUG")
            if name not in names:
                names.append(name)
    if len(names) > 6:
        raise UserError(f"--prod-reviewers: GitHub allows at most 6 required reviewers, got {len(names)}")
    return names


def _reviewer_call(name: str) -> Call:
    if "/" in name:
        org, slug = name.split("/", 1)
        return Call("GET", f"/orgs/{urllib.parse.quote(org)}/teams/{urllib.parse.quote(slug)}")
    return Call("GET", f"/users/{urllib.parse.quote(name)}")


def resolve_reviewers(api: GitHubApi, names: Sequence[str]) -> list[dict[str, Any]]:
    """``[{"type": "User"|"Team", "id": N}]``: environments name reviewers by id."""
    out: list[dict[str, Any]] = []
    for name in names:
        call = _reviewer_call(name)
        status, doc = api.request(call, ok=(200, 404))
        if status == 404 or not isinstance(doc, dict) or not isinstance(doc.get("id"), int):
            kind = "team (ORG/TEAM-SLUG)" if "/" in name else "user"
            raise UserError(f"--prod-reviewers: no GitHub {kind} {name!r} ({call.method} {call.path} answered 404)")
        out.append({"type": "Team" if "/" in name else "User", "id": doc["id"]})
    return out


def _current_reviewers(environment: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not environment:
        return []
    for rule in environment.get("protection_rules") or []:
        if isinstance(rule, dict) and rule.get("type") == "required_reviewers":
            return [
                {"type": r.get("type"), "id": (r.get("reviewer") or {}).get("id")}
                for r in rule.get("reviewers") or []
                if isinstance(r, dict)
            ]
    return []


def _reviewer_set(reviewers: Iterable[Mapping[str, Any]]) -> set[tuple[str, int]]:
    return {(str(r.get("type")), int(r.get("id") or 0)) for r in reviewers}


# ---------------------------------------------------------------------------------------------------------------
# The items: each read, judged, and (setup) written
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Item:
    name: str
    state: str = "ok"  # ok | missing | wrong
    detail: str = ""
    fix: str = ""
    fixed: bool = False  # github-setup wrote it


@dataclass
class Plan:
    """What one run of github-setup or github-check works from."""

    api: GitHubApi
    bootstrap: Bootstrap
    reviewers: list[str]  # --prod-reviewers names (empty: keep prod's reviewers, require at least one)
    resolved: list[dict[str, Any]] | None = None  # their ids, once read
    items: list[Item] = field(default_factory=list)

    @property
    def setup_command(self) -> str:
        return f"smgitops github-setup --repo {self.api.repository}"

    def branch_policy_body(self) -> dict[str, bool]:
        return {"protected_branches": False, "custom_branch_policies": True}


def _variable_paths(api: GitHubApi, environment: str | None) -> tuple[str, Callable[[str], str]]:
    base = (
        api.repo_path("actions", "variables")
        if environment is None
        else api.repo_path("environments", environment, "variables")
    )
    return base, lambda name: f"{base}/{urllib.parse.quote(name, safe='')}"


def _variables(environment: str | None, plan: Plan) -> dict[str, str]:
    if environment is None:
        return plan.bootstrap.repo_variables
    return plan.bootstrap.environment_variables[environment]


def _label(var: str, environment: str | None) -> str:
    return f"repository variable {var}" if environment is None else f"environment {environment} variable {var}"


def check_variables(plan: Plan, environment: str | None, *, write: bool) -> None:
    base, one = _variable_paths(plan.api, environment)
    for var, want in _variables(environment, plan).items():
        item = Item(_label(var, environment), fix=plan.setup_command)
        current = plan.api.read(one(var))
        if current is None:
            item.state, item.detail = "missing", f"want {want}"
            if write:
                item.fixed = True
                status, _ = plan.api.request(Call("POST", base, {"name": var, "value": want}), ok=(201, 409))
                if status == 409:  # created meanwhile: update it
                    plan.api.request(Call("PATCH", one(var), {"name": var, "value": want}))
        elif current.get("value") != want:
            item.state, item.detail = "wrong", f"is {current.get('value')!r}, want {want}"
            if write:
                item.fixed = True
                plan.api.request(Call("PATCH", one(var), {"name": var, "value": want}))
        plan.items.append(item)


def check_environment(plan: Plan, environment: str, *, write: bool) -> None:
    api = plan.api
    path = api.repo_path("environments", environment)
    current = api.read(path)
    policy = (current or {}).get("deployment_branch_policy") or {}
    item = Item(f"environment {environment}: deployments only from chosen branches", fix=plan.setup_command)
    if current is None:
        item.state, item.detail = "missing", "no such environment"
    elif policy != plan.branch_policy_body():
        item.state, item.detail = "wrong", f"deployment_branch_policy is {json.dumps(policy or None)}"
    reviewed = environment == REVIEWED_ENVIRONMENT
    have = _current_reviewers(current)
    want = plan.resolved if (reviewed and plan.resolved is not None) else None
    review = Item(f"environment {environment}: required reviewers", fix="")
    if reviewed:
        hint = ",".join(plan.reviewers) or "USER,ORG/TEAM"
        review.fix = f"{plan.setup_command} --prod-reviewers {hint}"
        if want is not None and _reviewer_set(have) != _reviewer_set(want):
            review.state = "missing" if not have else "wrong"
            review.detail = f"has {len(have)} reviewer(s), want {', '.join(plan.reviewers)}"
        elif not have:
            review.state, review.detail = "missing", "nobody has to approve a production deploy"
    if write and (item.state != "ok" or (want is not None and review.state != "ok")):
        body: dict[str, Any] = {"deployment_branch_policy": plan.branch_policy_body()}
        # A PUT states the environment's protection rules: what this command does not manage is sent back unchanged.
        if current is not None:
            for key in ("wait_timer", "prevent_self_review"):
                rule_value = next(
                    (r.get(key) for r in current.get("protection_rules") or [] if isinstance(r, dict) and key in r),
                    None,
                )
                if rule_value is not None:
                    body[key] = rule_value
        reviewers = want if want is not None else have
        if reviewers:
            body["reviewers"] = reviewers
        api.request(Call("PUT", path, body))
        item.fixed = item.state != "ok"
        review.fixed = want is not None and review.state != "ok"
    plan.items.append(item)
    if reviewed:
        plan.items.append(review)
    check_branch_policies(plan, environment, write=write, environment_exists=current is not None or write)


def check_branch_policies(plan: Plan, environment: str, *, write: bool, environment_exists: bool) -> None:
    api = plan.api
    base = api.repo_path("environments", environment, "deployment-branch-policies")
    branch = plan.bootstrap.branch
    item = Item(f"environment {environment}: deployment branch {branch} only", fix=plan.setup_command)
    policies: list[dict[str, Any]] = []
    if environment_exists:
        doc = api.read(base)
        policies = list((doc or {}).get("branch_policies") or [])
    wanted = [p for p in policies if p.get("name") == branch and p.get("type", "branch") == "branch"]
    others = [p for p in policies if p not in wanted]
    if not wanted:
        item.state, item.detail = "missing", f"no deployment branch policy for {branch}"
    elif others:
        names = ", ".join(f"{p.get('type', 'branch')} {p.get('name')}" for p in others)
        item.state, item.detail = "wrong", f"also allows {names}"
    if write:
        item.fixed = item.state != "ok"
        for p in others:
            api.request(Call("DELETE", f"{base}/{p.get('id')}"))
        if not wanted:
            api.request(Call("POST", base, {"name": branch, "type": "branch"}), ok=(200, 303))
    plan.items.append(item)


def check_oidc(plan: Plan, *, write: bool) -> None:
    api = plan.api
    path = api.repo_path("actions", "oidc", "customization", "sub")
    want = plan.bootstrap.oidc_template
    current = api.read(path) or {}
    item = Item("OIDC subject template", fix=plan.setup_command)
    if current.get("use_default", True) is not False or current.get("include_claim_keys") != want["include_claim_keys"]:
        item.state = "missing" if current.get("use_default", True) is not False else "wrong"
        item.detail = f"is {json.dumps(current, sort_keys=True)}, want {json.dumps(want, sort_keys=True)}"
        if write:
            item.fixed = True
            api.request(Call("PUT", path, want))
    plan.items.append(item)


def check_workflow_permissions(plan: Plan, *, write: bool) -> None:
    api = plan.api
    path = api.repo_path("actions", "permissions", "workflow")
    current = api.read(path) or {}
    item = Item(
        "Actions may create pull requests; GITHUB_TOKEN read-only by default",
        fix=f"{plan.setup_command} (or Settings > Actions > General > Workflow permissions: 'Read repository "
        "contents', and tick 'Allow GitHub Actions to create and approve pull requests')",
    )
    wrong = {k: current.get(k) for k, v in WORKFLOW_PERMISSIONS.items() if current.get(k) != v}
    if wrong:
        item.state = "wrong"
        item.detail = ", ".join(f"{k} is {json.dumps(v)}" for k, v in wrong.items())
        if write:
            item.fixed = True
            call = Call("PUT", path, dict(WORKFLOW_PERMISSIONS))
            if api.request(call, ok=(204, 409))[0] == 409:
                raise UserError(
                    f"GitHub answered 409 to {call.method} {call.path}: the organization (or enterprise) does not let "
                    "repositories change this; an owner must allow it (organization Settings > Actions > General > "
                    "Workflow permissions)"
                )
    plan.items.append(item)


def _preflight(plan: Plan, *, write: bool) -> None:
    path = plan.api.repo_path()
    repo = plan.api.read(path)
    if repo is None:
        raise UserError(
            f"GitHub answered 404 to GET {path}: the repository does not exist or the token cannot see it "
            "(pass --repo OWNER/NAME, or a token with access to it)"
        )
    if write and (repo.get("permissions") or {}).get("admin") is False:
        raise UserError(
            f"GET {path}: the token has no admin rights on {plan.api.repository}; environments, variables and "
            "Actions settings need them: use a repository admin's token (GH_TOKEN=$(gh auth token))"
        )


def run_items(plan: Plan, *, write: bool) -> list[Item]:
    """Read (and with ``write``, correct) every item; the returned states are as they were before any write."""
    _preflight(plan, write=write)
    if plan.reviewers:
        if REVIEWED_ENVIRONMENT not in plan.bootstrap.environments:
            raise UserError(
                f"--prod-reviewers: bootstrap/ has no environment {REVIEWED_ENVIRONMENT!r} "
                f"(it has {', '.join(plan.bootstrap.environments)})"
            )
        plan.resolved = resolve_reviewers(plan.api, plan.reviewers)
    check_variables(plan, None, write=write)
    for environment in plan.bootstrap.environments:
        check_environment(plan, environment, write=write)
        check_variables(plan, environment, write=write)
    check_environment(plan, RECORD_ENVIRONMENT, write=write)
    check_oidc(plan, write=write)
    check_workflow_permissions(plan, write=write)
    return plan.items


def dry_run_calls(plan: Plan) -> list[Call]:
    """Every call github-setup makes on a repository that has none of it yet (reviewer ids shown by name)."""
    api, b = plan.api, plan.bootstrap
    calls: list[Call] = [Call("GET", api.repo_path())]
    reviewers = [{"type": "Team" if "/" in n else "User", "id": f"<id of {n}>"} for n in plan.reviewers]
    calls += [_reviewer_call(n) for n in plan.reviewers]
    base, _ = _variable_paths(api, None)
    calls += [Call("POST", base, {"name": k, "value": v}) for k, v in b.repo_variables.items()]
    for environment in b.environments:
        body: dict[str, Any] = {"deployment_branch_policy": plan.branch_policy_body()}
        if environment == REVIEWED_ENVIRONMENT and reviewers:
            body["reviewers"] = reviewers
        calls.append(Call("PUT", api.repo_path("environments", environment), body))
        calls.append(
            Call(
                "POST",
                api.repo_path("environments", environment, "deployment-branch-policies"),
                {"name": b.branch, "type": "branch"},
            )
        )
        base, _ = _variable_paths(api, environment)
        calls += [Call("POST", base, {"name": k, "value": v}) for k, v in b.environment_variables[environment].items()]
    calls.append(
        Call(
            "PUT",
            api.repo_path("environments", RECORD_ENVIRONMENT),
            {"deployment_branch_policy": plan.branch_policy_body()},
        )
    )
    calls.append(
        Call(
            "POST",
            api.repo_path("environments", RECORD_ENVIRONMENT, "deployment-branch-policies"),
            {"name": b.branch, "type": "branch"},
        )
    )
    calls.append(Call("PUT", api.repo_path("actions", "oidc", "customization", "sub"), b.oidc_template))
    calls.append(Call("PUT", api.repo_path("actions", "permissions", "workflow"), dict(WORKFLOW_PERMISSIONS)))
    return calls


# ---------------------------------------------------------------------------------------------------------------
# Inputs: token, repository
# ---------------------------------------------------------------------------------------------------------------


def repository_from_git(cwd: Path | None = None) -> str | None:
    """OWNER/NAME of the ``origin`` remote (https or ssh form), or None."""
    try:
        url = (Git(cwd or Path.cwd()).try_run("remote", "get-url", "origin") or "").strip()
    except GitError:  # git cannot be run here
        return None
    m = re.search(r"[:/](?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$", url)
    return f"{m.group('owner')}/{m.group('name')}" if m else None


def resolve_repository(flag: str | None, env: Mapping[str, str]) -> str:
    repository = flag or env.get("GITHUB_REPOSITORY", "").strip() or repository_from_git()
    if not repository:
        raise UserError("no repository: pass --repo OWNER/NAME (or set GITHUB_REPOSITORY, or run in a clone)")
    if not _REPOSITORY.match(repository):
        raise UserError(f"--repo: {repository!r} is not OWNER/NAME")
    return repository


def api_for(repo: str | None, env: Mapping[str, str], bootstrap: Bootstrap, *, need_token: bool) -> GitHubApi:
    """The API of ``repo`` (default: ``GITHUB_REPOSITORY``, else the origin remote), which must be the repository
    bootstrap/'s roles trust, with the token of ``GH_TOKEN`` or ``GITHUB_TOKEN`` (required unless ``need_token``
    is false: a dry run)."""
    repository = resolve_repository(repo, env)
    if bootstrap.trusted_repository and bootstrap.trusted_repository != repository:
        raise UserError(
            f"bootstrap/'s roles trust the repository {bootstrap.trusted_repository}, not {repository}: apply "
            f"bootstrap/ with -var github_repository={repository}, or pass --repo {bootstrap.trusted_repository}"
        )
    token = (env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or "").strip()
    if need_token and not token:
        raise UserError(
            "no GitHub token: set GH_TOKEN (or GITHUB_TOKEN) to a token with admin rights on the repository "
            "(e.g. GH_TOKEN=$(gh auth token))"
        )
    return GitHubApi(env.get("GITHUB_API_URL") or DEFAULT_API_URL, repository, token)


def print_items(items: Sequence[Item], out: TextIO, *, written: bool = False) -> None:
    """One line per item: ``ok``, or (check) its state, what is wrong and the fix; (setup) ``set`` and what was."""
    width = max(len(i.name) for i in items)
    for i in items:
        if i.state == "ok":
            line = f"{'ok':<8} {i.name}"
        elif written and i.fixed:
            line = f"{'set':<8} {i.name.ljust(width)}  (was {i.state}: {i.detail})"
        else:
            line = f"{i.state:<8} {i.name.ljust(width)}  {i.detail}; fix: {i.fix}"
        print(line, file=out)
