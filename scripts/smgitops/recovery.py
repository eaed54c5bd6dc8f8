"""Recovery: a cancelled, killed or failed apply never strands an environment.

* **Cancelled** (SIGINT/SIGTERM, as GitHub cancels a job): the signal reaches Terraform
  (:func:`smgitops.terraform.subprocess_runner`), which finishes the operations in flight, writes its state and
  releases the lock. :func:`on_interrupt` then says what state the environment is in and the command to run next,
  and the command exits non-zero (130) without rolling back.
* **Killed** (SIGKILL, a lost runner): Terraform may have created an endpoint configuration (and models) that never
  reached the state. Their names are a hash of their content, so the next apply finds them by name:
  :func:`adopt` imports every configuration or model the plan would create that already exists in SageMaker,
  tagged for this environment, before planning for real, and says so.
* **Never delete what serves**: a failed endpoint update ends ``InService`` on the old configuration; the
  endpoint's postcondition (``terraform/endpoint.tf``) then fails the apply before ``create_before_destroy``
  deletes the configuration still serving. A rollback to that configuration finds it by name: :func:`adopt`
  forgets the configuration that never served and imports the serving one, and after ``verify`` confirms the
  endpoint serves the release, :func:`prune` deletes this environment's configurations and models that are neither
  in the state nor serving.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import SmgitopsError
from .terraform import Interrupted

if TYPE_CHECKING:
    from .aws import Aws
    from .context import Context
    from .release import Release

CONFIG_ADDRESS = "aws_sagemaker_endpoint_configuration.this"
MODEL_TYPE = "aws_sagemaker_model"
CONFIG_TYPE = "aws_sagemaker_endpoint_configuration"


class Cancelled(SmgitopsError):
    """The run was cancelled by a signal while Terraform ran; Terraform exited cleanly. Nothing is rolled back."""

    exit_code = 130


# -- cancelled ----------------------------------------------------------------------------------------------------


def _environment_state(release: Release, ctx: Context) -> tuple[bool, str]:
    from .plan import expected_config_name
    from .workspace import read_lock

    parts: list[str] = []
    lock = None
    try:
        aws, settings = ctx.aws, ctx.settings
        lock = read_lock(aws, settings, release.environment)
        parts.append("state lock released" if lock is None else f"state lock STILL {lock.describe()}")
        endpoint = aws.describe_endpoint(release.endpoint.name)
        expected = expected_config_name(release, settings)
        if endpoint is None:
            parts.append(f"endpoint {release.endpoint.name} does not exist")
        else:
            live = endpoint.get("EndpointConfigName")
            which = "the release's" if live == expected else f"not the release's {expected}"
            parts.append(
                f"endpoint {release.endpoint.name} is {endpoint.get('EndpointStatus')} on configuration {live} "
                f"({which})"
            )
    except Exception as exc:  # the message must come out whatever AWS says now
        parts.append(f"live state unknown ({type(exc).__name__})")
    return lock is not None, "; ".join(parts)


@contextlib.contextmanager
def on_interrupt(release: Release, ctx: Context, label: str) -> Iterator[None]:
    """Turn :class:`Interrupted` into one message: what happened, the environment's state, the next command."""
    try:
        yield
    except Interrupted as exc:
        held, state = _environment_state(release, ctx)
        if exc.count == 1:
            how = "Terraform finished the operations in flight and saved the state"
        else:  # Terraform's "Two interrupts received. Exiting immediately."
            how = (
                f"{exc.count} signals: Terraform exited at once and may not have saved what it created (the next "
                "deploy adopts it)"
            )
        then = f"smgitops deploy {label} (re-run the job) finishes the rollout"
        if held:  # left by this very run: nothing else can be holding it
            then = f"smgitops unlock {release.environment} --older-than 0 (this run held it), then {then}"
        raise Cancelled(
            f"cancelled by {exc.signal_name} during terraform {exc.command}: {how}; {state}. Nothing was rolled "
            f"back. Next: {then}; smgitops verify {label} shows what is live"
        ) from exc


def endpoint_failure(release: Release, ctx: Context) -> str | None:
    """The endpoint's ``FailureReason`` as one sentence, None when it has none (or cannot be read)."""
    try:
        endpoint = ctx.aws.describe_endpoint(release.endpoint.name)
    except SmgitopsError:
        return None
    if not endpoint or not endpoint.get("FailureReason"):
        return None
    return (
        f"endpoint {release.endpoint.name} is {endpoint.get('EndpointStatus')} on configuration "
        f"{endpoint.get('EndpointConfigName')}: its last update failed: {endpoint['FailureReason']}"
    )


# -- adopt and forget before an apply ------------------------------------------------------------------------------


@dataclass
class Adoption:
    imported: list[tuple[str, str]] = field(default_factory=list)  # (address, name)
    forgotten: list[tuple[str, str]] = field(default_factory=list)  # (address, name)

    def lines(self) -> list[str]:
        out = [
            f"adopted {name} into {address}: it exists in SageMaker but was not in the state"
            for address, name in self.imported
        ]
        out += [
            f"forgot {name} ({address}): replaced by the adopted one, pruned once the release serves"
            for address, name in self.forgotten
        ]
        return out


def _tags(sm: Any, arn: str) -> dict[str, str]:
    resp = sm.list_tags(ResourceArn=arn)
    return {t["Key"]: t["Value"] for t in resp.get("Tags", [])}


def _ours(tags: dict[str, str], environment: str) -> bool:
    return tags.get("managed-by") == "smgitops" and tags.get("release") == environment


def _existing(aws: Aws, kind: str, name: str) -> str | None:
    """The ARN of the model or endpoint configuration ``name``, None when it does not exist."""
    if kind == CONFIG_TYPE:
        config = aws.describe_endpoint_config(name)
        return None if config is None else str(config["EndpointConfigArn"])
    model = aws.describe_model(name)
    return None if model is None else str(model["ModelArn"])


def wait_settled(release: Release, ctx: Context, timeout: float) -> None:
    """Wait while the endpoint is Creating/Updating (a killed run's update still in flight): Terraform cannot
    update an endpoint in progress. A heartbeat says so every :data:`smgitops.console.HEARTBEAT_SECONDS` of
    ``ctx``'s monotonic clock."""
    from . import deploy

    deploy.wait_out_transition(
        ctx.aws,
        release.endpoint.name,
        timeout=timeout,
        interval=1.0,
        clock=ctx.monotonic,
        label="recovery",
        why=" (an update still in flight): Terraform waits for it;",
    )


def adopt(
    release: Release, ctx: Context, plan_json: Mapping[str, Any], notify: Callable[[str], None] | None = None
) -> Adoption:
    """Before an apply (workspace lock held, ``prepare`` done): import what the release's plan (``plan_json``, its
    ``show -json``, made under this lock) would create that exists already (tagged for this environment),
    forgetting first what the address holds now. Returns what was done; when anything was imported or forgotten
    the state changed and that plan is stale (the caller plans again)."""
    notify = notify or (lambda text: print(text, file=sys.stderr, flush=True))
    ws, aws = ctx.workspace(release), ctx.aws
    sm = aws.sagemaker
    tf = ws.terraform
    variables = ws.variables()
    result = Adoption()
    for rc in plan_json.get("resource_changes", []):
        if rc.get("type") not in (MODEL_TYPE, CONFIG_TYPE) or rc.get("mode") != "managed":
            continue
        change = rc.get("change") or {}
        actions = list(change.get("actions") or [])
        address = str(rc.get("address"))
        before_name = (change.get("before") or {}).get("name")
        after_name = (change.get("after") or {}).get("name")
        if rc.get("deposed"):
            # A replaced object a stopped apply left behind (Terraform's "deposed"): the endpoint no longer needs
            # it once it moved to the new one, and Terraform destroys it only after that move succeeded.
            continue
        if "create" not in actions or not after_name:
            continue
        arn = _existing(aws, str(rc.get("type")), str(after_name))
        if arn is None or not _ours(_tags(sm, arn), ws.release.environment):
            continue
        if "delete" in actions and before_name:
            # The address holds another object (the one a rollback leaves, or the one a killed run replaced):
            # forget it so the existing one can be imported; it is pruned once the endpoint serves the release.
            tf.state_rm(address)
            result.forgotten.append((address, str(before_name)))
        tf.import_(address, str(after_name), variables=variables)
        result.imported.append((address, str(after_name)))
    for line in result.lines():
        notify(line)
    return result


# -- prune after verify --------------------------------------------------------------------------------------------


def prune(
    release: Release, ctx: Context, notify: Callable[[str], None] | None = None, also: Sequence[str] = ()
) -> list[str]:
    """Delete this environment's endpoint configurations and models that are neither in the state nor used by
    the configuration the endpoint serves: those named after the endpoint, and ``also`` (what :func:`adopt`
    forgot, e.g. the configurations of an endpoint's old name). Called only once verify confirmed the endpoint
    serves the release."""
    notify = notify or (lambda text: print(text, file=sys.stderr, flush=True))
    ws, aws = ctx.workspace(release), ctx.aws
    sm = aws.sagemaker
    managed: set[str] = set()  # every object the state holds, deposed ones included
    for res in ws.terraform.state_pull().get("resources", []):
        if res.get("mode") == "managed" and res.get("type") in (MODEL_TYPE, CONFIG_TYPE):
            managed.update(str((i.get("attributes") or {}).get("name")) for i in res.get("instances", []))
    endpoint = sm.describe_endpoint(EndpointName=release.endpoint.name)
    serving = str(endpoint.get("EndpointConfigName"))
    serving_config = sm.describe_endpoint_config(EndpointConfigName=serving)
    in_use = {serving} | {str(v.get("ModelName")) for v in serving_config.get("ProductionVariants", [])}
    deleted: list[str] = []
    prefix = f"{release.endpoint.name}-"
    extra = [name for name in also if name not in managed and name not in in_use]
    for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix):
        for item in page.get("EndpointConfigs", []):
            name = str(item["EndpointConfigName"])
            if name in extra:
                extra.remove(name)
            if name.startswith(prefix) and name not in managed and name not in in_use:
                if _ours(_tags(sm, str(item["EndpointConfigArn"])), release.environment):
                    sm.delete_endpoint_config(EndpointConfigName=name)
                    deleted.append(name)
    marker = f"-{release.environment}-"
    for models in sm.get_paginator("list_models").paginate(NameContains=marker):
        for model in models.get("Models", []):
            name = str(model["ModelName"])
            if marker in name and name not in managed and name not in in_use:
                if _ours(_tags(sm, str(model["ModelArn"])), release.environment):
                    sm.delete_model(ModelName=name)
                    deleted.append(name)
    for name in extra:  # forgotten configurations under another prefix (a renamed endpoint's)
        arn = _existing(aws, CONFIG_TYPE, name)
        if arn is not None and _ours(_tags(sm, arn), release.environment):
            sm.delete_endpoint_config(EndpointConfigName=name)
            deleted.append(name)
    for name in deleted:
        notify(f"pruned {name}: no longer in the state and not serving")
    return deleted


# -- state == live -------------------------------------------------------------------------------------------------


def plan_drift(release: Release, ctx: Context) -> list[dict[str, Any]]:
    """Where the state and AWS disagree, read-only: a refresh-only plan (``-refresh-only -lock=false``: the drift
    role cannot take the lock) lists every managed object whose live attributes differ from the state, or that is
    gone: ``[{"address", "actions"}]``, empty when they agree. A release merged but not deployed yet is not this
    (the deploy applies it); a configuration a killed run moved the endpoint onto is."""
    ws = ctx.workspace(release)
    check = ws.directory / f"{release.environment}.drift.tfplan"
    with ws.locked():
        ws.prepare()
        try:
            args = ["-no-color", "-input=false", "-detailed-exitcode", "-refresh-only", "-lock=false", f"-out={check}"]
            args += [f"-var={k}={v}" for k, v in sorted(ws.variables().items())]
            changed = ws.terraform.run("plan", *args, ok_codes=(0, 2)).returncode == 2
            doc = ws.terraform.show_json(check) if changed else {}
        finally:
            check.unlink(missing_ok=True)
    drift = []
    for rc in doc.get("resource_drift", []):
        change = rc.get("change") or {}
        actions = list(change.get("actions") or [])
        if actions in (["no-op"], ["read"]):
            continue
        if actions == ["update"] and not drifted_attributes(change.get("before"), change.get("after")):
            continue
        drift.append({"address": rc.get("address"), "actions": actions})
    return drift


def _blank(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def drifted_attributes(before: Any, after: Any) -> list[str]:
    """The attributes a refresh changed, leaving out an absent value read back as an empty one.

    A provider stores an attribute it was never given as null and reads it back from AWS as ``{}`` or ``[]``
    (provider 3.39: an alarm's actions and dimensions, any resource's ``tags`` when ``default_tags`` is used): the
    refresh reports "updated outside Terraform" although nothing changed, and a normal plan shows no difference."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after or (_blank(before) and _blank(after)) else ["(value)"]
    changed = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b == a or (_blank(b) and _blank(a)):
            continue
        changed.append(key)
    return changed
