"""``smgitops plan``: a saved Terraform plan of a release, and the summary a reviewer reads.

``plan RELEASE`` validates the release, checks every served model's archive in the store
(:func:`smgitops.artifacts.verify_artifacts`: one stored with other bytes is refused, exit 2; one not published
yet is listed as ``artifacts_to_publish``, since the merge publishes), runs ``terraform init`` (only when its
inputs changed) and ``terraform plan -out`` (with ``--lock=false`` without taking the state lock, so that
read-only credentials can plan, as the pull-request workflow does), and turns ``terraform show -json`` into a
summary: per variant the model and the weight before → after, models added and removed, resources to add /
change / destroy / replace. The summary goes to
stdout (a table), ``--json F`` (the dict below) and ``--markdown F`` (the pull-request comment).

Next to the plan file, ``<planfile>.meta.json`` records what the plan was made from (the release file's sha256,
the Terraform root's fingerprint, the state serial and lineage the plan was computed against) so that
``smgitops apply`` can refuse a plan that no longer matches.

Where Terraform runs: in the environment's workspace (:mod:`smgitops.workspace`: a per-environment working copy
under ``<repository>/.smgitops/work/<environment>/``, serialised by a file lock). The default plan file is
``<repository>/.smgitops/work/<environment>/<environment>.tfplan``.

Summary dict (the contract with the PR comment)::

    {"release": "releases/dev.yaml", "environment": "dev", "endpoint": "smgitops-dev",
     "endpoint_config": {"before": "smgitops-dev-1a2b3c4d" | None, "after": "smgitops-dev-5e6f7a8b"},
     "variants": [{"name", "model", "model_name", "digest", "weight_before", "weight_after"}],
     "models_added": [{"id", "digest", "name"}], "models_removed": [{"id", "digest", "name"}],
     "resources": {"add", "change", "destroy", "replace", "changes": [{"address", "actions"}]},
     "instance_type", "instance_count", "no_changes", "plan_file", "generated_at"}
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import naming
from .clock import utc_now
from .files import sha256_file
from .release import Release
from .settings import Settings
from .terraform import TerraformError
from .threads import Beside
from .workspace import Workspace

if TYPE_CHECKING:
    from .context import Context
CONFIG_TYPE = "aws_sagemaker_endpoint_configuration"
ENDPOINT_TYPE = "aws_sagemaker_endpoint"
MODEL_TYPE = "aws_sagemaker_model"
_ARTIFACT_URL = re.compile(r"/models/(?P<id>[^/]+)/sha256=(?P<digest>[0-9a-f]{64})/model\.tar\.gz$")


# -- labels ------------------------------------------------------------------------------------------------------


def release_label(release: Release) -> str:
    """The release path as a reader knows it: relative to its repository (``releases/dev.yaml``)."""
    path = release.path.resolve()
    try:
        return path.relative_to(release.repo_root.resolve()).as_posix()
    except ValueError:
        return str(release.path)


# -- reading a plan ----------------------------------------------------------------------------------------------


def _weight(value: Any) -> int | float | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _model_identity(values: Mapping[str, Any]) -> dict[str, str]:
    """(id, digest, name) of an ``aws_sagemaker_model`` from its artifact URL (or tags)."""
    name = str(values.get("name") or "")
    ident = {"id": "", "digest": "", "name": name}
    containers = values.get("primary_container") or []
    url = containers[0].get("model_data_url", "") if containers and isinstance(containers[0], dict) else ""
    match = _ARTIFACT_URL.search(str(url or ""))
    if match:
        ident["id"], ident["digest"] = match.group("id"), match.group("digest")
    else:
        tags = values.get("tags") or {}
        parts = naming.split_model_name(name)
        ident["digest"] = str(tags.get(naming.DIGEST_TAG, ""))
        ident["id"] = str(tags.get(naming.MODEL_ID_TAG) or (parts[0] if parts else name))
    return ident


def _resource_changes(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [rc for rc in plan.get("resource_changes", []) if rc.get("mode", "managed") == "managed"]


def _prior_resources(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every managed resource of the state the plan was computed against (root and child modules)."""
    found: list[dict[str, Any]] = []

    def walk(module: Mapping[str, Any]) -> None:
        found.extend(r for r in module.get("resources", []) if r.get("mode", "managed") == "managed")
        for child in module.get("child_modules", []):
            walk(child)

    walk(((plan.get("prior_state") or {}).get("values") or {}).get("root_module") or {})
    return found


def _config_variants(values: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    for pv in (values or {}).get("production_variants") or []:
        variants[str(pv.get("variant_name"))] = pv
    return variants


def summarize(
    plan: Mapping[str, Any],
    release: Release,
    *,
    plan_file: Path | str,
    generated_at: datetime,
    expected_config: str | None = None,
) -> dict[str, Any]:
    """The plan summary (see the module docstring) from ``terraform show -json`` of a saved plan."""
    changes = _resource_changes(plan)
    before_configs: dict[str, Mapping[str, Any]] = {}
    after_configs: dict[str, Mapping[str, Any]] = {}
    models_before: dict[str, dict[str, str]] = {}
    models_after: dict[str, dict[str, str]] = {}
    endpoint_before: Mapping[str, Any] | None = None
    endpoint_after: Mapping[str, Any] | None = None
    endpoint_change: dict[str, Any] | None = None
    for res in _prior_resources(plan):
        values = res.get("values") or {}
        if res.get("type") == CONFIG_TYPE:
            before_configs[str(values.get("name"))] = values
        elif res.get("type") == MODEL_TYPE:
            models_before[str(values.get("name"))] = _model_identity(values)
        elif res.get("type") == ENDPOINT_TYPE:  # one endpoint per root, whatever its name (a rename replaces it)
            endpoint_before = values
    for rc in changes:
        change = rc.get("change") or {}
        before, after = change.get("before"), change.get("after")
        if rc.get("type") == CONFIG_TYPE:
            if before:
                before_configs.setdefault(str(before.get("name")), before)
            if after:
                after_configs[str(after.get("name"))] = after
        elif rc.get("type") == MODEL_TYPE:
            if before:
                models_before.setdefault(str(before.get("name")), _model_identity(before))
            if after:
                models_after[str(after.get("name"))] = _model_identity(after)
        elif rc.get("type") == ENDPOINT_TYPE:
            if before:
                endpoint_before = before
            if after and after.get("name") == release.endpoint.name:
                endpoint_after = after
            actions = list(change.get("actions") or [])
            if "delete" in actions and before:
                # Provider 3.39 replaces an endpoint (a new name) by deleting it first: no endpoint meanwhile.
                endpoint_change = {
                    "before": before.get("name"),
                    "after": (after or {}).get("name"),
                    "replaced": "create" in actions,
                    "downtime": True,
                }

    config_before = str(endpoint_before.get("endpoint_config_name")) if endpoint_before else None
    config_after_raw = (endpoint_after or {}).get("endpoint_config_name")
    config_after = str(config_after_raw) if config_after_raw else expected_config
    variants_before = _config_variants(before_configs.get(config_before or ""))
    variants_after = _config_variants(after_configs.get(config_after or "") or before_configs.get(config_after or ""))

    model_ids = {v.name: v.model for v in release.variants}
    rows: list[dict[str, Any]] = []
    for variant in release.variants:
        spec = release.models[variant.model]
        planned = variants_after.get(variant.name, {})
        rows.append(
            {
                "name": variant.name,
                "model": variant.model,
                "model_name": str(
                    planned.get("model_name")
                    or naming.model_name(variant.model, release.environment, spec.artifact_sha256)
                ),
                "digest": spec.artifact_sha256,
                "weight_before": _weight(variants_before.get(variant.name, {}).get("initial_variant_weight")),
                "weight_after": _weight(planned.get("initial_variant_weight", variant.weight)),
            }
        )
    for name, old in variants_before.items():
        if name in model_ids:
            continue
        ident = models_before.get(str(old.get("model_name")), _model_identity({"name": old.get("model_name")}))
        rows.append(
            {
                "name": name,
                "model": ident["id"],
                "model_name": str(old.get("model_name")),
                "digest": ident["digest"] or None,
                "weight_before": _weight(old.get("initial_variant_weight")),
                "weight_after": None,
            }
        )

    counts = {"add": 0, "change": 0, "destroy": 0, "replace": 0}
    listed: list[dict[str, Any]] = []
    models_added: list[dict[str, str]] = []
    models_removed: list[dict[str, str]] = []
    for rc in changes:
        actions = list((rc.get("change") or {}).get("actions") or [])
        if actions in (["no-op"], ["read"]):
            continue
        listed.append({"address": rc.get("address"), "actions": actions})
        if "create" in actions:
            counts["add"] += 1
        if "update" in actions:
            counts["change"] += 1
        if "delete" in actions:
            counts["destroy"] += 1
        if "create" in actions and "delete" in actions:
            counts["replace"] += 1
        if rc.get("type") == MODEL_TYPE:
            change = rc.get("change") or {}
            if actions == ["create"] and change.get("after"):
                models_added.append(_model_identity(change["after"]))
            elif actions == ["delete"] and change.get("before"):
                models_removed.append(_model_identity(change["before"]))

    return {
        "release": release_label(release),
        "environment": release.environment,
        "endpoint": release.endpoint.name,
        "endpoint_config": {"before": config_before, "after": config_after},
        "endpoint_change": endpoint_change,
        "variants": rows,
        "models_added": models_added,
        "models_removed": models_removed,
        "resources": {**counts, "changes": listed},
        "instance_type": release.endpoint.instance_type,
        "instance_count": release.endpoint.instance_count,
        "no_changes": not listed,
        "plan_file": str(plan_file),
        "generated_at": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
    }


def expected_config_name(release: Release, settings: Settings) -> str:
    """The endpoint-configuration name the release must be served by (the Terraform root computes the same)."""
    return naming.endpoint_config_name(
        release, artifact_bucket=settings.artifact_bucket, kms_key_arn=settings.kms_key_arn
    )


def plan_state_identity(plan_file: Path) -> dict[str, Any]:
    """Serial and lineage of the state a saved plan was computed against (read from the plan file itself)."""
    try:
        with zipfile.ZipFile(plan_file) as archive:
            names = set(archive.namelist())
            member = "tfstate" if "tfstate" in names else None
            if member is None:
                return {"serial": None, "lineage": None}
            state = json.loads(archive.read(member))
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError):
        return {"serial": None, "lineage": None}
    return {"serial": state.get("serial"), "lineage": state.get("lineage")}


# -- planning ----------------------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    summary: dict[str, Any]
    plan_file: Path
    meta_file: Path
    workspace: Workspace
    plan_json: dict[str, Any] = field(repr=False)
    init_ran: bool = False

    @property
    def no_changes(self) -> bool:
        return bool(self.summary["no_changes"])


def meta_path(plan_file: Path) -> Path:
    return plan_file.with_name(plan_file.name + ".meta.json")


def artifacts_to_publish(release: Release, ctx: Context) -> list[dict[str, str]]:
    """Served archives not in the store yet (the merge publishes them), as ``{"id", "digest", "key"}``.

    A pull request plans before anything is published (its credentials write nothing), so a missing archive is
    reported, not refused; ``apply`` refuses it. An archive stored under the key with other bytes is refused here
    already (:class:`smgitops.artifacts.ArtifactMismatch`, exit 2): the merge could never serve it."""
    from .artifacts import ArtifactMismatch, ArtifactStore, verify_artifacts

    store = ArtifactStore(ctx.aws, ctx.settings.artifact_bucket)
    problems = verify_artifacts(release, store)
    tampered = [p for p in problems if p.found is not None]
    if tampered:
        listed = "; ".join(p.describe(store.bucket) for p in tampered)
        raise ArtifactMismatch(f"{release_label(release)}: not planned: {listed}")
    return [{"id": p.model, "digest": p.expected, "key": p.key} for p in problems]


def plan_release(release: Release, ctx: Context, *, out: Path | None = None, lock: bool = True) -> PlanResult:
    """Make and save the plan of ``release``; return its summary. ``lock=False``: read the state without taking
    its lock (pull requests: read-only credentials). Archives not yet published are listed in the summary
    (``artifacts_to_publish``); one stored with other bytes is refused."""
    ws = ctx.workspace(release)
    with ws.locked():
        init_ran = ws.prepare()
        plan_file = (out or ws.default_plan_file).resolve()
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        meta_file = meta_path(plan_file)
        # A failed plan must not leave an older plan behind that apply could pick up.
        meta_file.unlink(missing_ok=True)
        plan_file.unlink(missing_ok=True)
        # The store is read (S3, read-only) while Terraform plans. An archive stored with other bytes refuses the
        # plan (no plan file is kept), before any error of Terraform's, as when the store was read first.
        store_check = Beside(lambda: artifacts_to_publish(release, ctx), "artifact-check").start()
        failed: TerraformError | None = None
        try:
            ws.terraform.plan(out=plan_file, variables=ws.variables(), lock=lock)
            plan_json = ws.terraform.show_json(plan_file)
        except TerraformError as exc:
            failed = exc
        finally:
            store_check.wait()
        if store_check.failed:
            plan_file.unlink(missing_ok=True)
        to_publish = store_check.result()  # the store's refusal, if any, is raised here
        if failed is not None:
            raise failed
        summary = summarize(
            plan_json,
            release,
            plan_file=plan_file,
            generated_at=utc_now(),
            expected_config=expected_config_name(release, ws.settings),
        )
        summary["artifacts_to_publish"] = to_publish
        meta = {
            "release": release_label(release),
            "release_sha256": sha256_file(release.path),
            "environment": release.environment,
            "terraform_sha256": ws.root_fingerprint(),
            "state": plan_state_identity(plan_file),
            "plan_sha256": sha256_file(plan_file),
            "no_changes": summary["no_changes"],
            "endpoint_config_after": summary["endpoint_config"]["after"],
            "generated_at": summary["generated_at"],
        }
        meta_file.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return PlanResult(summary, plan_file, meta_file, ws, plan_json, init_ran)


# -- output ------------------------------------------------------------------------------------------------------


def _fmt_weight(value: Any) -> str:
    from .console import percent

    return percent(value)


def print_summary(summary: Mapping[str, Any], file: Any = None) -> None:
    from rich.table import Table

    from .console import make_console

    console = make_console(file)
    cfg = summary["endpoint_config"]
    console.print(
        f"[bold]{summary['release']}[/] → endpoint [bold]{summary['endpoint']}[/] "
        f"({summary['instance_count']} × {summary['instance_type']})"
    )
    console.print(f"endpoint configuration: {cfg['before'] or '(none)'} → {cfg['after']}")
    if summary.get("endpoint_change"):
        console.print(f"[bold red]{endpoint_change_text(summary['endpoint_change'])}[/]")
    table = Table()
    for col in ("variant", "model", "model name", "weight before → after"):
        table.add_column(col)
    for v in summary["variants"]:
        before, after = v["weight_before"], v["weight_after"]
        arrow = f"{_fmt_weight(before)} → {_fmt_weight(after)}"
        if before != after:
            arrow = f"[bold yellow]{arrow}[/]"
        table.add_row(v["name"], v["model"], v["model_name"], arrow)
    console.print(table)
    for label, key in (("models added", "models_added"), ("models removed", "models_removed")):
        if summary[key]:
            console.print(f"{label}: " + ", ".join(f"{m['id']} ({m['digest'][:12]})" for m in summary[key]))
    if summary.get("artifacts_to_publish"):
        listed = ", ".join(f"{m['id']} ({m['digest'][:12]})" for m in summary["artifacts_to_publish"])
        console.print(f"not in the artifact store yet (published at merge, before the apply): {listed}")
    r = summary["resources"]
    if summary["no_changes"]:
        console.print("No changes: the live infrastructure matches the release.")
    else:
        console.print(
            f"Plan: {r['add']} to add, {r['change']} to change, {r['destroy']} to destroy ({r['replace']} replaced)"
        )
        for change in r["changes"]:
            console.print(f"  {'/'.join(change['actions']):>14}  {change['address']}")
    console.print(f"saved plan: {summary['plan_file']}")


def endpoint_change_text(change: Mapping[str, Any]) -> str:
    """One line for an endpoint the plan deletes: renamed (replaced) or removed, and that it means downtime."""
    if change.get("replaced"):
        return (
            f"endpoint {change.get('before')} → {change.get('after')}: replaced: downtime (the live endpoint is "
            "deleted first, then the new one created; nothing serves in between)"
        )
    return f"endpoint {change.get('before')}: deleted: downtime (nothing serves it afterwards)"


def fallback_markdown(summary: Mapping[str, Any]) -> str:
    """A plain Markdown summary, used when the PR-comment renderer is not installed."""
    cfg = summary["endpoint_config"]
    lines = [
        f"### `{summary['release']}` → `{summary['endpoint']}`",
        "",
        f"Endpoint configuration: `{cfg['before'] or '(none)'}` → `{cfg['after']}`",
        "",
        *([f"**{endpoint_change_text(summary['endpoint_change'])}**", ""] if summary.get("endpoint_change") else []),
        "| variant | model | weight before → after |",
        "|---|---|---|",
    ]
    for v in summary["variants"]:
        weights = f"{_fmt_weight(v['weight_before'])} → {_fmt_weight(v['weight_after'])}"
        lines.append(f"| {v['name']} | `{v['model_name']}` | {weights} |")
    r = summary["resources"]
    lines += [
        "",
        "No changes."
        if summary["no_changes"]
        else f"{r['add']} to add, {r['change']} to change, {r['destroy']} to destroy.",
    ]
    return "\n".join(lines) + "\n"


def render_markdown(summary: Mapping[str, Any], release: Release, now: datetime) -> str:
    """The PR-comment Markdown (``smgitops.comment``), with the cost estimate when ``smgitops.pricing`` exists."""
    try:
        comment = importlib.import_module("smgitops.comment")
    except ImportError:
        return fallback_markdown(summary)
    cost: dict[str, Any] | None = None
    try:
        pricing = importlib.import_module("smgitops.pricing")
    except ImportError:
        pricing = None
    if pricing is not None and hasattr(pricing, "compare_cost"):
        cost = pricing.compare_cost(release, None, now)  # no base here: `smgitops comment --base-rev` has one
    return str(comment.render_markdown(dict(summary), policy=None, cost=cost))
