"""``smgitops retire ENV [--plan-only] [--json F] [--markdown F] [--summary]``: retire an environment whose release
file was deleted.

A pull request that deletes ``releases/<env>.yaml`` retires ``<env>``: ``changed-releases`` lists it apart
(``retired``), the pull request's plan job runs ``retire ENV --plan-only`` (read-only, without the state lock) and
comments "retire: N resources destroyed" with the list, and merging it runs ``retire ENV`` in deploy.yml's job of the
GitHub environment ``<env>`` (so prod's destroy waits for its required reviewers), with that environment's apply role.

The release file is gone, but the Terraform root reads one (``var.release_file``): ``retire`` takes the file as it
was just before the commit that deleted it (``git show <that commit>^:releases/<env>.yaml``, materialised under
``.smgitops/rollback/``, as ``rollback`` does), so the destroy plan is made against the environment's own state
with the very names and settings that created its resources. A release file still present at ``HEAD`` is refused
(exit 2): deleting it in a reviewed commit is what retires an environment.

``retire ENV``: ``terraform plan -destroy`` and apply of that plan under the state lock, then a look at what is
live: the endpoint, this environment's endpoint configurations and models (tagged ``release = <env>``; any a
cancelled run left outside the state are deleted too, as :func:`smgitops.recovery.prune` does) and the endpoint's
alarms. Exit 0 when nothing is left, 1 otherwise (what is left is listed). The teardown cut-off does not apply:
retiring deletes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .git import Git

if TYPE_CHECKING:
    from .aws import Aws
    from .context import Context
    from .release import Release
    from .workspace import Workspace

RELEASE_DIR = "releases"
ALARMS = ("5xx-rate", "p99-latency")  # terraform/alarms.tf: <endpoint>/<variant>/<kind>


@dataclass
class RetireResult:
    environment: str
    release: str  # releases/<env>.yaml
    retired_from: str  # the revision whose release file the plan was made with
    endpoint: str
    plan_only: bool
    destroy: list[dict[str, str]] = field(default_factory=list)  # {"address", "type", "name"}
    pruned: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.left

    def headline(self) -> str:
        n = len(self.destroy)
        if self.plan_only:
            return f"retire: {n} resource{'s' if n != 1 else ''} destroyed on merge (plan)"
        return f"retire: {n} resource{'s' if n != 1 else ''} destroyed"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "headline": self.headline()}


# -- the release file as it was -------------------------------------------------------------------------------------


def retired_release(environment: str, repo: Path, git: Git | None = None) -> tuple[Release, str]:
    """The release file of ``environment`` as it was before the commit that deleted it, and that revision."""
    from .rollout import release_at

    git = git or Git(repo)
    relpath = f"{RELEASE_DIR}/{environment}.yaml"
    head = git.head()
    if git.blob_id(head, relpath) is not None:
        raise UserError(
            f"{relpath} exists at HEAD: an environment is retired by deleting its release file in a commit "
            "(a pull request: its plan shows what is destroyed), then merging it"
        )
    deleted = git.run("log", "-1", "--format=%H", "--diff-filter=D", head, "--", relpath).strip()
    if not deleted:
        raise UserError(f"{relpath} is not in this repository's history: there is no environment {environment!r}")
    before = git.rev_parse(f"{deleted}^")
    return release_at(git, repo / relpath, before), before


# -- plan and destroy -----------------------------------------------------------------------------------------------


def _destroyed(plan_json: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for rc in plan_json.get("resource_changes", []):
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        if "delete" not in list(change.get("actions") or []):
            continue
        before = change.get("before") or {}
        name = before.get("name") or before.get("alarm_name") or before.get("id") or ""
        out.append({"address": str(rc.get("address")), "type": str(rc.get("type")), "name": str(name)})
    return out


def _live_leftovers(
    release: Release, aws: Aws, state_names: set[str], delete: bool, alarm_names: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """What of this environment is still live after the destroy: (deleted now, still left). Configurations and models
    tagged for this environment that the state does not hold (a cancelled run's) are deleted when ``delete``."""
    from .recovery import _ours, _tags

    sm = aws.sagemaker
    env, endpoint = release.environment, release.endpoint.name
    pruned: list[str] = []
    left: list[str] = []
    if aws.describe_endpoint(endpoint) is not None:
        left.append(f"endpoint {endpoint}")
    for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=f"{endpoint}-"):
        for item in page.get("EndpointConfigs", []):
            name = str(item["EndpointConfigName"])
            if not name.startswith(f"{endpoint}-") or not _ours(_tags(sm, str(item["EndpointConfigArn"])), env):
                continue
            if delete and name not in state_names:
                sm.delete_endpoint_config(EndpointConfigName=name)
                pruned.append(name)
            else:
                left.append(f"endpoint configuration {name}")
    for models in sm.get_paginator("list_models").paginate(NameContains=f"-{env}-"):
        for model in models.get("Models", []):
            name = str(model["ModelName"])
            if f"-{env}-" not in name or not _ours(_tags(sm, str(model["ModelArn"])), env):
                continue
            if delete and name not in state_names:
                sm.delete_model(ModelName=name)
                pruned.append(name)
            else:
                left.append(f"model {name}")
    # By name, as Terraform reads them: the environment's role may describe its own alarms, not list everyone's.
    alarms = sorted(set(alarm_names) | {f"{endpoint}/{v.name}/{kind}" for v in release.variants for kind in ALARMS})
    cw = aws.cloudwatch
    for start in range(0, len(alarms), 100):  # DescribeAlarms takes at most 100 names
        found = cw.describe_alarms(AlarmNames=alarms[start : start + 100]).get("MetricAlarms", [])
        left += [f"alarm {a['AlarmName']}" for a in found]
    return pruned, left


def _resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The managed resources of ``terraform show -json`` of the state (an empty state has no ``values``)."""
    resources = ((state.get("values") or {}).get("root_module") or {}).get("resources", [])
    return [r for r in resources if r.get("mode", "managed") == "managed"]


def _variables(ws: Workspace, state: dict[str, Any]) -> dict[str, str]:
    """The root's variables. The environment's execution role may be configured no more (local mode applies
    bootstrap/ for the release files present): a destroy does not use it, so the one the state's models name does."""
    try:
        return ws.variables()
    except UserError:
        roles = [
            str((r.get("values") or {}).get("execution_role_arn"))
            for r in _resources(state)
            if r.get("type") == "aws_sagemaker_model"
        ]
        if not roles:
            raise
        s = ws.settings
        return {
            "artifact_bucket": s.artifact_bucket,
            "execution_role_arn": roles[0],
            "kms_key_arn": s.kms_key_arn,
            "release_file": str(ws.release.path.resolve()),
        }


def retire(environment: str, ctx: Context, *, repo: Path | None = None, plan_only: bool = False) -> RetireResult:
    """Plan (``plan_only``: read-only, without the state lock) or carry out the retirement of ``environment``.
    ``ctx`` is bound here to the release file as it was before its deletion (read from history)."""
    repo = repo or Git.containing(Path.cwd(), why="retire reads the deleted release file from history").repo
    release, before = retired_release(environment, repo)
    result = RetireResult(
        environment=environment,
        release=f"{RELEASE_DIR}/{environment}.yaml",
        retired_from=before,
        endpoint=release.endpoint.name,
        plan_only=plan_only,
    )
    ctx = ctx.bound_to(release)
    ws = ctx.workspace(release)
    planfile = ws.directory / f"{environment}.retire.tfplan"
    with ws.locked():
        ws.prepare()
        state = ws.terraform.show_json()
        if _resources(state):
            try:
                ws.terraform.plan(out=planfile, variables=_variables(ws, state), destroy=True, lock=not plan_only)
                result.destroy = _destroyed(ws.terraform.show_json(planfile))
                if plan_only:
                    return result
                if result.destroy:
                    ws.terraform.apply(planfile)
            finally:
                planfile.unlink(missing_ok=True)
            state = ws.terraform.show_json()
        elif plan_only:
            return result
        names = {str((r.get("values") or {}).get("name")) for r in _resources(state)}
    if names:
        result.left += [f"in the Terraform state: {name}" for name in sorted(names)]
    alarms = [d["name"] for d in result.destroy if d["type"] == "aws_cloudwatch_metric_alarm"]
    pruned, left = _live_leftovers(release, ctx.aws, names, True, alarms)
    result.pruned, result.left = pruned, result.left + left
    return result


# -- output ---------------------------------------------------------------------------------------------------------


def render_markdown(result: RetireResult) -> str:
    from .comment import marker

    when = (
        f"when this pull request is merged (deploy.yml, environment `{result.environment}`, with its approval)"
        if result.plan_only
        else "by this run"
    )
    n = len(result.destroy)
    count = f"retire: {n} resource{'s' if n != 1 else ''}"
    lines = [
        marker(result.environment),
        f"### `{result.release}` deleted: retire `{result.environment}`",
        "",
        f"**{count} destroyed** {when}; endpoint `{result.endpoint}` stops serving (planned with the release file "
        f"of `{result.retired_from[:8]}`).",
        "",
        "| resource | name |",
        "|---|---|",
        *[f"| `{d['address']}` | `{d['name']}` |" for d in result.destroy],
    ]
    if result.pruned:
        lines += ["", "Also deleted (outside the state, tagged for this environment): " + ", ".join(result.pruned)]
    if result.left:
        lines += ["", "**Still live:** " + "; ".join(result.left)]
    return "\n".join(lines) + "\n"
