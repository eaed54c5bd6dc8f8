"""``smgitops apply`` and ``smgitops verify``: from a reviewed plan to a verified live endpoint.

``apply RELEASE [--plan PLANFILE]`` applies the *saved* plan that ``smgitops plan`` made and a reviewer read, never a
fresh one. Before Terraform runs, the plan's metadata (``<planfile>.meta.json``) must match the release file and
the Terraform root as they are now; Terraform itself refuses a plan whose state changed since ("Saved plan is
stale"). Either way the plan is **stale**: exit 2 (bad input: the plan file handed in no longer describes this
release), with a message saying to plan again. After the apply, ``verify`` checks the live endpoint and a fresh
plan must be empty ("plan after apply is empty"); otherwise exit 1, with the drift listed.

``apply RELEASE --auto-approve`` plans and applies in one go, without a reviewed plan: meant for rollbacks (the
release file at an earlier revision has been reviewed before) and for local experiments. It goes through the very
same saved-plan path (plan file, metadata, apply of that file), so the two cannot diverge.

``verify RELEASE`` compares the live endpoint with the release: it exists; ``EndpointStatus`` is ``InService``
(``Creating``/``Updating`` are waited for, up to ``--timeout``; ``Failed`` fails with its ``FailureReason``); a
``FailureReason`` is drift even when ``InService`` (a failed update leaves the old configuration serving); the
configuration name is :func:`smgitops.naming.endpoint_config_name` of the release; every variant has the
release's model (name and artifact digest), weight, instance type and count; there are no other variants; every
served archive in the store still hashes to the release's ``artifact_sha256``. Exit 1 on drift.

Stored bytes: ``apply`` (and so ``deploy`` and ``rollback``, which apply) checks every served model's archive with
:func:`smgitops.artifacts.verify_artifacts` before Terraform runs. Other bytes under a key stop it with exit 2,
naming the key and both digests, before anything is changed; a missing archive stops it with exit 1 ("publish
first"). ``verify`` reports the same as drift (exit 1): the endpoint may already serve the archive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import naming
from .artifacts import ArtifactStore, require_servable, verify_artifacts
from .console import Heartbeat, human, progress
from .errors import ExternalError, UserError
from .files import sha256_file
from .plan import PlanResult, expected_config_name, meta_path, plan_release, release_label
from .release import Release
from .settings import is_local_mode
from .terraform import TerraformError
from .threads import Beside
from .workspace import Workspace

if TYPE_CHECKING:
    from .aws import Aws
    from .context import Context, Monotonic
    from .teardown import CutoffGuard

WAIT_STATUSES = ("Creating", "Updating", "SystemUpdating", "UpdateRollbackFailed")
DEFAULT_TIMEOUT = 1800.0  # a real endpoint update takes about ten minutes
POLL_SECONDS = 15.0
LOCAL_POLL_SECONDS = 0.25


def wait_out_transition(
    aws: Aws,
    name: str,
    *,
    timeout: float,
    interval: float,
    clock: Monotonic,
    label: str,
    why: str = ":",
) -> tuple[dict[str, Any] | None, float]:
    """Describe endpoint ``name`` through ``aws`` until it leaves :data:`WAIT_STATUSES` or ``timeout`` seconds of
    ``clock`` pass, sleeping ``interval`` with the adapter's ``sleep``, with a heartbeat under ``label``; ``why``
    follows the status, ending in its punctuation. Returns the last description (None: no such endpoint) and the
    seconds waited; verify and recovery both wait this way."""
    started = clock()
    endpoint = aws.describe_endpoint(name)
    with progress(label) as beat:
        beats = Heartbeat(beat, clock)
        while endpoint is not None and endpoint.get("EndpointStatus") in WAIT_STATUSES:
            waited = clock() - started
            if waited >= timeout:
                break
            status = endpoint.get("EndpointStatus")
            beats(f"endpoint {name} is {status}{why} waited {waited:.0f} s, {timeout - waited:.0f} s left")
            aws.sleep(interval)
            endpoint = aws.describe_endpoint(name)
    return endpoint, clock() - started


# -- verify ------------------------------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    endpoint: str
    ok: bool
    status: str | None
    failure_reason: str | None
    config_name: str | None
    expected_config_name: str
    variants: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    waited_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    missing: bool = False  # the endpoint does not exist
    down_until: str | None = None  # missing on schedule (working hours, `smgitops verify`): not drift

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _live_variants(endpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Variants as served: the configuration's model/type/count, the endpoint's current weights and counts."""
    live = {str(v.get("VariantName")): v for v in endpoint.get("ProductionVariants") or []}
    rows: list[dict[str, Any]] = []
    for pv in (config or {}).get("ProductionVariants") or []:
        name = str(pv.get("VariantName"))
        ev = live.pop(name, {})
        weight = ev.get("CurrentWeight", pv.get("InitialVariantWeight"))
        count = ev.get("CurrentInstanceCount", pv.get("InitialInstanceCount"))
        rows.append(
            {
                "name": name,
                "model_name": pv.get("ModelName"),
                "weight": _num(weight),
                "instance_type": pv.get("InstanceType"),
                "instance_count": None if count is None else int(count),
            }
        )
    for name, ev in live.items():  # served but not in the configuration (should not happen)
        rows.append(
            {
                "name": name,
                "model_name": None,
                "weight": _num(ev.get("CurrentWeight")),
                "instance_type": None,
                "instance_count": ev.get("CurrentInstanceCount"),
            }
        )
    return rows


def _compare(release: Release, live: list[dict[str, Any]], sm: Aws, artifact_bucket: str | None) -> list[str]:
    problems: list[str] = []
    by_name = {row["name"]: row for row in live}
    for variant in release.variants:
        spec = release.models[variant.model]
        want_model = naming.model_name(variant.model, release.environment, spec.artifact_sha256)
        row = by_name.pop(variant.name, None)
        if row is None:
            problems.append(f"variant {variant.name}: missing (release serves {want_model} at {variant.weight} %)")
            continue
        if row["model_name"] != want_model:
            problems.append(f"variant {variant.name}: model {human(row['model_name'])}, release says {want_model}")
        if row["weight"] is None or row["weight"] != float(variant.weight):
            problems.append(f"variant {variant.name}: weight {_fmt(row['weight'])}, release says {variant.weight}")
        if row["instance_type"] != release.endpoint.instance_type:
            problems.append(
                f"variant {variant.name}: instance type {human(row['instance_type'])}, "
                f"release says {release.endpoint.instance_type}"
            )
        if row["instance_count"] != release.endpoint.instance_count:
            problems.append(
                f"variant {variant.name}: instance count {human(row['instance_count'])}, "
                f"release says {release.endpoint.instance_count}"
            )
        if row["model_name"] == want_model:
            model = sm.describe_model(want_model)
            key = naming.artifact_key(variant.model, spec.artifact_sha256)
            url = str(((model or {}).get("PrimaryContainer") or {}).get("ModelDataUrl", ""))
            if model is None:
                problems.append(f"variant {variant.name}: model {want_model} does not exist")
            elif not url.endswith("/" + key) or (artifact_bucket and url != f"s3://{artifact_bucket}/{key}"):
                problems.append(f"variant {variant.name}: model {want_model} serves {url}, release says .../{key}")
    for name, row in by_name.items():
        problems.append(
            f"variant {name}: not in the release (serves {human(row['model_name'])} at {_fmt(row['weight'])})"
        )
    return problems


def _fmt(weight: float | None) -> str:
    if weight is None:
        return "—"
    return str(int(weight)) if float(weight).is_integer() else str(weight)


def verify_release(
    release: Release,
    ctx: Context,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float | None = None,
    expected_config: str | None = None,
    store: ArtifactStore | None = None,
    settled: Callable[[], object] | None = None,
) -> VerifyResult:
    """Compare the live endpoint with ``release``; waits while it is ``Creating``/``Updating`` (``ctx``'s sleep and
    monotonic clock). With ``store``, the served archives' stored bytes are checked too
    (:func:`smgitops.artifacts.verify_artifacts`): other bytes under a served key are drift. ``settled`` is called
    once the endpoint is no longer in transition (or the wait ran out), before the rest is read."""
    settings = ctx.settings
    expected_config = expected_config or expected_config_name(release, settings)
    sm = ctx.aws
    interval = poll if poll is not None else (LOCAL_POLL_SECONDS if is_local_mode(ctx.env) else POLL_SECONDS)
    name = release.endpoint.name
    result = VerifyResult(name, False, None, None, None, expected_config)

    endpoint, waited = wait_out_transition(
        sm, name, timeout=timeout, interval=interval, clock=ctx.monotonic, label="verify"
    )
    result.waited_seconds = round(waited, 3)
    if settled is not None:
        settled()
    if endpoint is None:
        result.missing = True
        result.problems.append(f"endpoint {name} does not exist")
        return result

    result.status = str(endpoint.get("EndpointStatus"))
    result.failure_reason = endpoint.get("FailureReason") or None
    result.config_name = endpoint.get("EndpointConfigName")
    if result.status in WAIT_STATUSES:
        result.problems.append(f"endpoint {name} still {result.status} after {timeout:.0f} s")
    elif result.status != "InService":
        result.problems.append(f"endpoint {name} is {result.status}")
    if result.failure_reason and result.status == "InService" and result.config_name == expected_config:
        # An update that failed earlier (then rolled back from, or retried since): SageMaker keeps its reason
        # until the next successful update. On exactly the release's configuration the endpoint is healthy.
        result.notes.append(
            f"endpoint {name}: an earlier update failed ({result.failure_reason}); it serves the release's "
            "configuration now"
        )
    elif result.failure_reason:
        what = "last update failed" if result.status == "InService" else "failed"
        result.problems.append(f"endpoint {name}: {what}: {result.failure_reason}")
    if result.config_name != expected_config:
        result.problems.append(
            f"endpoint {name} serves configuration {result.config_name}, the release gives {expected_config}"
        )
    config = sm.describe_endpoint_config(str(result.config_name)) if result.config_name else None
    if result.config_name and config is None:
        result.problems.append(f"endpoint configuration {result.config_name} does not exist")
    result.variants = _live_variants(endpoint, config)
    result.problems += _compare(release, result.variants, sm, settings.artifact_bucket)
    if store is not None:
        result.problems += [p.describe(store.bucket) for p in verify_artifacts(release, store)]
    result.ok = not result.problems
    return result


# -- apply -------------------------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    release: str
    environment: str
    plan_file: str
    ok: bool
    applied_changes: bool
    verify: VerifyResult | None
    plan_after_apply_empty: bool | None
    drift: list[dict[str, Any]] = field(default_factory=list)
    endpoint_config: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["verify"] = self.verify.as_dict() if self.verify is not None else None
        return doc


def check_plan_current(release: Release, plan_file: Path, ws: Workspace) -> dict[str, Any]:
    """Refuse (UserError, exit 2) a plan that is not the plan of this release file and Terraform root as now."""
    meta_file = meta_path(plan_file)
    if not plan_file.is_file():
        raise UserError(f"{plan_file}: no such plan file: run smgitops plan {release.path} first")
    if not meta_file.is_file():
        raise UserError(f"{plan_file}: no {meta_file.name} beside it: make plans with smgitops plan, then apply them")
    meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("applied"):
        raise UserError(f"{plan_file}: this plan was already applied; run smgitops plan {release.path} for a new one")
    label = release_label(release)
    stale: list[str] = []
    if meta.get("environment") != release.environment:
        stale.append(f"it was made for environment {meta.get('environment')!r}, not {release.environment!r}")
    if meta.get("release_sha256") != sha256_file(release.path):
        stale.append(f"{label} changed since the plan was made")
    if meta.get("terraform_sha256") != ws.root_fingerprint():
        stale.append("terraform/ changed since the plan was made")
    if meta.get("plan_sha256") != sha256_file(plan_file):
        stale.append("the plan file was modified after it was made")
    if stale:
        raise UserError(
            f"{plan_file}: stale plan, not applied: " + "; ".join(stale) + f". Run smgitops plan {release.path} "
            "again and review it."
        )
    return meta


def _drift_entries(plan_json: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rc in plan_json.get("resource_changes", []):
        actions = list((rc.get("change") or {}).get("actions") or [])
        if actions not in (["no-op"], ["read"]):
            out.append({"address": rc.get("address"), "actions": actions})
    return out


def apply_plan(
    release: Release,
    ctx: Context,
    *,
    plan_file: Path | None = None,
    verify_timeout: float = DEFAULT_TIMEOUT,
    guard: CutoffGuard | None = None,
    alongside: Callable[[ApplyResult], None] | None = None,
    while_applying: Callable[[], object] | None = None,
) -> ApplyResult:
    """Apply the saved plan of ``release``, verify the live endpoint, and check that a fresh plan is empty. With
    ``guard`` (deploy, rollback), nothing is applied after the release's teardown cut-off (:class:`AfterCutoff`).
    ``while_applying`` is called as Terraform's apply starts (deploy: reading the held-out rows, in a thread).

    The plan-after-apply check runs in a thread from the end of the apply, while the endpoint is verified here and
    then ``alongside`` (deploy: smoke, traffic and canary) is called, once the endpoint verified, with the result so
    far (``plan_after_apply_empty`` None): the check's two Terraform processes (about 1 s) then cost no wall time.
    Both finish, under the environment's lock, before this returns (or re-raises what the verify or ``alongside``
    raised); the result is the same as without them. A verify that failed skips ``alongside``."""
    from . import recovery

    ws = ctx.workspace(release)
    clock = ctx.monotonic
    planfile = (plan_file or ws.default_plan_file).resolve()
    seconds: dict[str, float] = {}
    store = ArtifactStore(ctx.aws, ws.settings.artifact_bucket)

    with ws.locked(), recovery.on_interrupt(release, ctx, release_label(release)):
        if guard is not None:  # under the lock: what held it (a teardown, another deploy) has finished
            guard.check("not applied, nothing was changed")
        meta = check_plan_current(release, planfile, ws)
        # What the plan points the models at must be the release's bytes before Terraform changes anything.
        require_servable(
            release, store, release_label(release), f"Publish first: smgitops publish {release_label(release)}."
        )
        ws.prepare()
        t0 = clock()
        if while_applying is not None:
            while_applying()
        try:
            ws.terraform.apply(planfile)
        except TerraformError as exc:
            if exc.stale_plan:
                raise UserError(
                    f"{planfile}: stale plan, not applied: the Terraform state changed since the plan was made "
                    f"(another apply ran). Run smgitops plan {release.path} again and review it."
                ) from exc
            if guard is not None:  # an apply the evening teardown overtook: what it left is the teardown's
                hand_over_to_teardown(release, ctx.aws, guard)
            failure = recovery.endpoint_failure(release, ctx)
            if failure:  # Terraform cannot show why an update failed: SageMaker's FailureReason says it
                raise ExternalError(f"{exc}\n{failure}") from exc
            raise
        seconds["apply"] = round(clock() - t0, 3)
        # The plan has been applied: it must never be applied again.
        meta["applied"] = True
        meta_path(planfile).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if guard is not None:  # the apply began before the cut-off; if it ended after, the endpoint does not stay
            hand_over_to_teardown(release, ctx.aws, guard)

        expected = expected_config_name(release, ws.settings)

        def plan_after_apply() -> list[dict[str, Any]]:
            t0 = clock()
            check_file = ws.directory / f"{release.environment}.post-apply.tfplan"
            changed = ws.terraform.plan(out=check_file, variables=ws.variables())
            found = _drift_entries(ws.terraform.show_json(check_file)) if changed else []
            check_file.unlink(missing_ok=True)
            seconds["plan_after_apply"] = round(clock() - t0, 3)
            return found

        def result(verified: VerifyResult, drift: list[dict[str, Any]], empty: bool | None) -> ApplyResult:
            return ApplyResult(
                release=release_label(release),
                environment=release.environment,
                plan_file=str(planfile),
                ok=verified.ok and empty is not False,
                applied_changes=not meta.get("no_changes", False),
                verify=verified,
                plan_after_apply_empty=empty,
                drift=drift,
                endpoint_config=verified.config_name,
                seconds=seconds,
            )

        verified_box: list[VerifyResult] = []

        def verify_then_alongside() -> None:
            t0 = clock()
            verified = verify_release(release, ctx, timeout=verify_timeout, expected_config=expected, store=store)
            seconds["verify"] = round(clock() - t0, 3)
            verified_box.append(verified)
            if alongside is not None and verified.ok:
                alongside(result(verified, [], None))

        # The check reads what the apply left, as the verify does: both at once, neither waiting for the other.
        drift = run_beside(plan_after_apply, verify_then_alongside)
    return result(verified_box[0], drift, not drift)


def run_beside(check: Callable[[], list[dict[str, Any]]], work: Callable[[], None]) -> list[dict[str, Any]]:
    """Run ``check`` in a thread while ``work`` runs here; wait for both. What ``work`` raised is raised (the
    check finished first); otherwise what ``check`` raised."""
    beside = Beside(check, "terraform-check").start()
    try:
        work()
    finally:
        beside.wait()
    return beside.result()


def hand_over_to_teardown(release: Release, aws: Aws, guard: CutoffGuard) -> None:
    """After an apply that ended past the release's teardown cut-off (it began before): delete the endpoint, as the
    evening teardown does (configuration and models stay), and raise :class:`AfterCutoff`. So an apply and the
    teardown need no shared lock: whichever way they interleave, no endpoint is left after the cut-off."""
    from .teardown import AfterCutoff, SageMakerEndpoints

    reason = guard.passed()
    if reason is None:
        return
    name = release.endpoint.name
    deleted = SageMakerEndpoints(aws).delete_endpoint(name)
    raise AfterCutoff(
        f"{reason}; the apply ended after the cut-off: endpoint {name} "
        f"{'deleted' if deleted else 'already gone'}, as the evening teardown does (its configuration and models "
        "stay); not verified, nothing rolled back"
    )


def apply_release(
    release: Release,
    ctx: Context,
    *,
    verify_timeout: float = DEFAULT_TIMEOUT,
    guard: CutoffGuard | None = None,
    alongside: Callable[[ApplyResult], None] | None = None,
    while_applying: Callable[[], object] | None = None,
) -> tuple[PlanResult, ApplyResult]:
    """Plan and apply ``release`` in one go (no separate review): rollbacks and local runs. ``guard``,
    ``alongside`` and ``while_applying``: see :func:`apply_plan`."""
    from . import recovery

    ws = ctx.workspace(release)
    with ws.locked(), recovery.on_interrupt(release, ctx, release_label(release)):
        if guard is not None:
            guard.check("not applied, nothing was changed")
        # What a cancelled or killed run left: an update still in flight is waited for; a configuration or model
        # that exists but is not in the state is adopted; what the plan would delete is forgotten, pruned below.
        ws.prepare()
        recovery.wait_settled(release, ctx, verify_timeout)
        # One plan serves both: adoption reads what it would create; only when adoption changed the state is the
        # release planned again (the first plan is stale then).
        planned = plan_release(release, ctx)
        adopted = recovery.adopt(release, ctx, planned.plan_json)
        if adopted.imported or adopted.forgotten:
            planned = plan_release(release, ctx)
        applied = apply_plan(
            release,
            ctx,
            plan_file=planned.plan_file,
            verify_timeout=verify_timeout,
            guard=guard,
            alongside=alongside,
            while_applying=while_applying,
        )
        if applied.ok:  # the endpoint serves the release: what it served before may go now
            recovery.prune(release, ctx, also=[name for _, name in adopted.forgotten])
    return planned, applied


# -- output ------------------------------------------------------------------------------------------------------


def print_verify(result: VerifyResult, file: Any = None) -> None:
    from rich.table import Table

    from .console import make_console

    console = make_console(file)
    if result.down_until:
        console.print(f"endpoint [bold]{result.endpoint}[/]: {result.down_until}", highlight=False)
    else:
        console.print(
            f"endpoint [bold]{result.endpoint}[/]: {result.status or 'missing'}, "
            f"configuration {result.config_name or '—'} (release: {result.expected_config_name})"
        )
    if result.variants:
        table = Table()
        for col in ("variant", "model name", "weight", "instance type", "count"):
            table.add_column(col)
        for v in result.variants:
            table.add_row(
                v["name"],
                human(v["model_name"]),
                _fmt(v["weight"]),
                human(v["instance_type"]),
                human(v["instance_count"]),
            )
        console.print(table)
    if result.ok and result.down_until:
        console.print("[green]down on schedule: not drift[/]")
    elif result.ok:
        console.print("[green]live endpoint matches the release[/]")
    for problem in result.problems:
        console.print(f"[bold red]drift:[/] {problem}")
    for note in result.notes:
        console.print(f"note: {note}")


ENDPOINT_ADDRESS = "aws_sagemaker_endpoint.this"


def verify_live(
    release: Release, ctx: Context, now: datetime, *, timeout: float = DEFAULT_TIMEOUT, plan: bool = True
) -> VerifyResult:
    """What ``smgitops verify`` (the drift workflow) reports: :func:`verify_release` against the release's store,
    and with ``plan`` a refresh-only plan (state == live). An absent endpoint of a release with ``schedule.up``,
    outside its working hours, is down on schedule (``down_until``), not drift; everything else still counts."""
    from .artifacts import store_for
    from .bringup import scheduled_down
    from .recovery import plan_drift

    # State == live too: an endpoint a killed run moved onto a configuration the state does not know looks right
    # but breaks the next apply. Read-only: a refresh-only plan without the state lock, run once the endpoint is
    # out of any transition, beside the rest of the reads (its Terraform processes then cost no wall time).
    drift = Beside(lambda: plan_drift(release, ctx), "terraform-drift") if plan else None
    try:
        result = verify_release(
            release, ctx, timeout=timeout, store=store_for(release, ctx), settled=drift.start if drift else None
        )
    finally:
        if drift is not None:
            drift.wait()
    down = scheduled_down(release, now) if result.missing else None
    if down is not None:
        result.down_until = down
        result.problems = [p for p in result.problems if p != f"endpoint {release.endpoint.name} does not exist"]
    if drift is not None:
        result.problems += [
            f"the Terraform state does not match AWS: {d['address']} ({'/'.join(d['actions'])} outside Terraform)"
            for d in drift.result()
            # the endpoint the evening teardown deleted is gone from AWS, not from the state, until the bring-up
            if not (down is not None and d["address"] == ENDPOINT_ADDRESS and d["actions"] == ["delete"])
        ]
    result.ok = not result.problems
    return result
