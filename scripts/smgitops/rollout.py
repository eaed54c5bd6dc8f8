"""Rollout: ``smgitops deploy RELEASE`` and ``smgitops rollback RELEASE --to REV``.

``rollback RELEASE --to REV`` applies the release file *as it was at git revision REV*: ``git show
REV:<path>`` is written to ``<repository>/.smgitops/rollback/<sha12>/<file name>`` (inside the repository, so data
paths and the per-environment Terraform working copy are the usual ones), loaded strictly, and every served model's
artifact must already be in the content-addressed store -- a rollback never trains; a missing artifact is refused
with its model id and digest. Then plan + apply + verify + "plan after apply is empty", the same path as
``smgitops apply --auto-approve``. Because endpoint-configuration names are a hash of their content, the endpoint
lands on the very configuration name it had at REV.

``deploy RELEASE`` is what the merge workflow runs: apply (plan + apply of the release file as committed) →
verify (part of apply) → smoke inference (a few held-out rows sent to *each* serving variant with
``TargetVariant``; each must answer 200 with its own model id, a label from its classes for every row, and agree
with the labels on most rows) → optional synthetic traffic (``--traffic N`` requests routed by weight, for local
runs and the demo; in production real users send it) → canary analysis over the window that starts when the apply
ended. On any failure it rolls back to the **last good revision** of the release file and writes a revert commit
on a new branch ``smgitops/rollback-<env>-<shortsha>`` whose release file equals the rolled-back-to content, so a
pull request can make Git match what is live; it exits 1 with a summary either way.

How "good" is recorded: after a successful deploy of commit C, a lightweight tag
``smgitops/good/<environment>/<C>`` points at C (lightweight: no git identity needed; CI pushes
``refs/tags/smgitops/good/*``). The last good revision for a deploy of C is the newest ancestor of C (C excluded)
carrying such a tag. Where none is recorded (a repository's first deploys, or tags not fetched), the fallback is
the newest earlier commit whose release file differs from C's -- stated as such in the report. A deploy whose
release file has uncommitted changes is never recorded as good (the content deployed is not a revision).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import Clock, Sleep, cutoff_clock
from .console import human
from .errors import CheckFailed, ExternalError, SmgitopsError, UserError
from .git import Git
from .recovery import Cancelled

if TYPE_CHECKING:
    from .aws import Aws
    from .canary import CanaryReport
    from .context import Context
    from .deploy import ApplyResult
    from .release import Release
    from .teardown import CutoffGuard

GOOD_TAG_PREFIX = "smgitops/good"
ROLLBACK_BRANCH_PREFIX = "smgitops/rollback"
ROLLBACK_DIR = Path(".smgitops") / "rollback"
SMOKE_ROWS = 8
SMOKE_MIN_AGREEMENT = 0.75  # share of smoke rows whose prediction must equal the label
DEFAULT_CANARY_TIMEOUT = 900.0
DEFAULT_CANARY_POLL = 30.0
GIT_NEEDED = "rollouts work on revisions of the release file"  # why outside a git repository is bad input


# --------------------------------------------------------------------------------------------------------------
# git
# --------------------------------------------------------------------------------------------------------------


def good_tag(environment: str, sha: str) -> str:
    return f"{GOOD_TAG_PREFIX}/{environment}/{sha}"


@dataclass(frozen=True)
class GoodRevision:
    sha: str
    how: str  # "recorded good (tag ...)" or the fallback's description


def recorded_good(git: Git, environment: str, relpath: str, shas: Iterable[str]) -> GoodRevision | None:
    """The first of ``shas`` tagged good for ``environment`` that holds the release file, or ``None``."""
    good = {sha: tag for tag, sha in git.tags(f"{GOOD_TAG_PREFIX}/{environment}/").items()}
    for sha in shas:
        if sha in good and git.blob_id(sha, relpath) is not None:
            return GoodRevision(sha, f"last recorded good (tag {good[sha]})")
    return None


def last_good_revision(git: Git, environment: str, relpath: str, deployed: str) -> GoodRevision | None:
    """The newest ancestor of ``deployed`` recorded good for ``environment``; else the previous revision of the
    release file (content differing from ``deployed``'s); ``None`` when there is neither."""
    history = git.ancestors(deployed)
    recorded = recorded_good(git, environment, relpath, history)
    if recorded is not None:
        return recorded
    current = git.blob_id(deployed, relpath)
    for sha in history:
        blob = git.blob_id(sha, relpath)
        if blob is not None and blob != current:
            return GoodRevision(sha, "previous revision of the release file (no good revision recorded)")
    return None


def record_good(git: Git, environment: str, relpath: str, sha: str) -> str | None:
    """Tag ``sha`` good for ``environment``; ``None`` (not recorded) if the deployed file was not that revision."""
    if not git.is_clean(relpath):
        return None
    tag = good_tag(environment, sha)
    git.create_tag(tag, sha)
    return tag


def write_revert_branch(
    git: Git, environment: str, relpath: str, failed: str, good: GoodRevision, reason: str, *, cause: str = ""
) -> tuple[str, str]:
    """Branch ``smgitops/rollback-<env>-<shortsha of failed>`` with one commit on ``failed`` whose release file is
    the good revision's. ``cause`` replaces the message's "deploy of ... failed" line. Returns (branch, commit)."""
    content = git.show(good.sha, relpath)
    short_failed, short_good = git.short(failed), git.short(good.sha)
    base_name = f"{ROLLBACK_BRANCH_PREFIX}-{environment}-{short_failed}"
    name, n = base_name, 1
    while git.branch_exists(name):
        n += 1
        name = f"{base_name}-{n}"
    message = (
        f"Roll back {relpath} to {short_good}\n\n"
        f"{cause or f'smgitops deploy of {short_failed} failed: {reason}'}\n"
        f"The live endpoint was rolled back to the release file of {short_good} ({good.how}).\n"
        f"Merging this commit makes {relpath} match what is live.\n"
    )
    commit = git.commit_file(failed, relpath, content, message)
    git.create_branch(name, commit)
    return name, commit


# --------------------------------------------------------------------------------------------------------------
# rollback
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RollbackResult:
    release: str
    revision: str
    sha: str
    ok: bool
    endpoint_config: str | None
    plan_after_apply_empty: bool | None
    weights: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_at(git: Git, release_path: Path, sha: str) -> Release:
    """The release file as it was at ``sha``, materialised inside the repository and loaded strictly."""
    from .release import load_release

    relpath = git.relpath(release_path)
    text = git.show(sha, relpath)
    target = git.repo / ROLLBACK_DIR / sha[:12] / release_path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return load_release(target)


def check_artifacts(release: Release, label: str, ctx: Context) -> None:
    """Every served model's archive must be in the store with the release's bytes: a rollback never trains.
    Other bytes under a key: :class:`smgitops.artifacts.ArtifactMismatch` (exit 2); missing: CheckFailed (exit 1)."""
    from .artifacts import require_servable, store_for

    require_servable(
        release,
        store_for(release, ctx),
        f"{label}: not rolled back",
        "A rollback reuses published artifacts and never trains; publish them from that revision "
        "(smgitops train + smgitops publish) or choose another revision.",
    )


def ensure_latest(git: Git, relpath: str, revision: str, ref: str) -> None:
    """Deploys in order: the release file at ``revision`` must be the one at ``ref`` (``origin/main``), else a newer
    commit changed it, its own deploy applies it, and this older one stops (CheckFailed, exit 1) before any change.
    Concurrency groups serialise deploys of an environment but do not order them."""
    if not git.ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"):
        raise UserError(f"{ref!r} is not a commit in {git.repo}: fetch it first (the workflow checks out all history)")
    latest = git.rev_parse(ref)
    if git.blob_id(revision, relpath) != git.blob_id(latest, relpath):
        raise CheckFailed(
            f"{relpath} at {git.short(revision)} is not the one on {ref} ({git.short(latest)}): a newer commit "
            "changed it and its deploy applies it; this older deploy stops without changing anything"
        )


def _live_weights(apply_result: Any) -> dict[str, float | None]:
    verify = getattr(apply_result, "verify", None)
    variants = getattr(verify, "variants", None) or []
    return {str(v["name"]): v.get("weight") for v in variants}


def rollback(
    release_path: Path,
    rev: str,
    ctx: Context,
    *,
    git: Git | None = None,
    cutoff_now: Clock | None = None,
) -> RollbackResult:
    """Apply the release file as it was at ``rev`` (no training), verify, and check the plan after is empty.

    Not after today's teardown cut-off (judged by ``cutoff_now``, default ``--now``/``SMGITOPS_NOW``/the real
    clock): :class:`smgitops.teardown.AfterCutoff`, exit 1, nothing changed."""
    from .deploy import apply_release
    from .teardown import CutoffGuard

    started = time.monotonic()
    git = git or Git.for_path(release_path, why=GIT_NEEDED)
    sha = git.rev_parse(rev)
    relpath = git.relpath(release_path)
    label = f"{relpath}@{git.short(sha)}"
    release = release_at(git, release_path, sha)
    guard = CutoffGuard.for_release(release, cutoff_now or cutoff_clock(), "rollback")
    guard.check("not rolled back, nothing was changed")
    ctx = ctx.bound_to(release)
    check_artifacts(release, label, ctx)
    _, applied = apply_release(release, ctx, guard=guard)
    verify = applied.verify
    problems = list(verify.problems) if verify is not None else []
    problems += [f"plan after apply not empty: {'/'.join(d['actions'])} {d['address']}" for d in applied.drift]
    ok = applied.ok
    notes: list[str] = list(verify.notes) if verify is not None else []
    if not ok and verify is not None and applied.plan_after_apply_empty:
        # Rolling back from a failed endpoint update: SageMaker kept the old configuration serving and keeps the
        # update's FailureReason until the next successful update. If the endpoint is InService on exactly the
        # rolled-back-to configuration, the rollback has done its job; the reason is reported, not held against it.
        stale = f"endpoint {release.endpoint.name}: last update failed:"
        residual = [p for p in problems if not p.startswith(stale)]
        if not residual and verify.status == "InService" and verify.config_name == verify.expected_config_name:
            ok = True
            notes = [f"{p} (the failure rolled back from; cleared by the next successful update)" for p in problems]
            problems = []
    return RollbackResult(
        release=relpath,
        revision=rev,
        sha=sha,
        ok=ok,
        notes=notes,
        endpoint_config=applied.endpoint_config,
        plan_after_apply_empty=applied.plan_after_apply_empty,
        weights=_live_weights(applied),
        problems=problems,
        seconds=round(time.monotonic() - started, 3),
    )


def match_git_to_live(git: Git, result: RollbackResult) -> dict[str, Any]:
    """After ``rollback --to REV`` the endpoint serves REV's release file while HEAD's may differ: write the revert
    branch as ``deploy`` does (one commit on HEAD whose release file is REV's) and say how to land it. Without a git
    identity to commit with, the exact commands that do it by hand instead. ``{"matches": True}`` when HEAD's file
    already is REV's."""
    head, relpath = git.head(), result.release
    if git.blob_id(head, relpath) == git.blob_id(result.sha, relpath):
        return {"matches": True}
    short_head, short_to = git.short(head), git.short(result.sha)
    current = git.run("rev-parse", "--abbrev-ref", "HEAD").strip()
    try:
        branch, commit = write_revert_branch(
            git,
            Path(relpath).stem,  # releases/<environment>.yaml
            relpath,
            head,
            GoodRevision(result.sha, f"smgitops rollback --to {result.revision}"),
            "",
            cause=f"smgitops rollback --to {result.revision} applied the release file of {short_to}, "
            f"not the one of {short_head} (HEAD).",
        )
    except ExternalError as exc:  # e.g. no git identity on this machine: the commands that do the same by hand
        return {
            "matches": False,
            "error": str(exc),
            "commands": [
                f"git checkout {result.sha} -- {relpath}",
                f'git commit -m "Roll back {relpath} to {short_to}" -- {relpath}',
                "git push",
            ],
        }
    commands = [f"git push origin {branch}"]
    if current != "HEAD":  # on a branch: the revert commit sits right on top of it
        commands.append(f"git merge --ff-only {branch}  # instead of a pull request, on {current}")
    return {"matches": False, "branch": branch, "commit": commit, "commands": commands}


# --------------------------------------------------------------------------------------------------------------
# smoke inference and synthetic traffic
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    ok: bool
    status: int
    variant: str | None
    body: str


# How many times an invocation is tried when the request provably never left this machine (:func:`never_sent`),
# and the pause before each new try (doubled each time).
CONNECT_ATTEMPTS = 3
CONNECT_PAUSE = 0.2


def never_sent(exc: BaseException) -> bool:
    """Whether a failed call's request provably never reached the server: the connection was refused or timed out,
    or the TLS handshake failed (an ``ssl.SSLError`` raised in ``do_handshake``), but not a certificate that does
    not verify (a set-up fault, the same on every try). An error after the handshake (a reset, a read timeout, a
    TLS error while the answer was read) may follow a request the model served: it is never tried again."""
    import ssl
    import traceback

    from botocore import exceptions as bx

    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return True
    if not isinstance(exc, bx.SSLError):
        return False
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None or isinstance(cause, ssl.SSLCertVerificationError):
        return False
    return any(frame.name == "do_handshake" for frame in traceback.extract_tb(cause.__traceback__))


class Runtime:
    """SageMaker runtime calls, typed; every request is exactly one invocation. botocore's retries are off (its
    ``max_attempts: 1`` meant one *retry*: a 5xx was sent twice; INVOKE_CONFIG: one attempt); a request that never
    reached the server (:func:`never_sent`: no connection, a failed TLS handshake) is tried again, up to
    :data:`CONNECT_ATTEMPTS` in all, since no model saw it."""

    def __init__(self, aws: Aws) -> None:
        self._client = aws.runtime
        self._sleep = aws.sleep

    def invoke(self, endpoint: str, body: str, target_variant: str | None = None) -> Invocation:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"EndpointName": endpoint, "ContentType": "application/json", "Body": body}
        if target_variant:
            kwargs["TargetVariant"] = target_variant
        try:
            resp = self._invoke_once_delivered(kwargs)
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            err = exc.response.get("Error", {})
            return Invocation(False, int(meta.get("HTTPStatusCode", 0)), target_variant, str(err.get("Message", "")))
        return Invocation(True, 200, resp.get("InvokedProductionVariant"), resp["Body"].read().decode())

    def _invoke_once_delivered(self, kwargs: dict[str, Any]) -> Any:
        attempt = 1
        while True:
            try:
                return self._client.invoke_endpoint(**kwargs)
            except Exception as exc:
                if attempt >= CONNECT_ATTEMPTS or not never_sent(exc):
                    raise
                self._sleep(CONNECT_PAUSE * 2 ** (attempt - 1))
                attempt += 1


def held_out_rows(release: Release, model_id: str, count: int) -> tuple[list[list[float]], list[int]]:
    """``count`` rows of the model's held-out test split (the split training used), with their labels."""
    from sklearn.model_selection import train_test_split

    from .training import TEST_SIZE, parse_dataset, read_data

    spec = release.models[model_id]
    dataset = parse_dataset(read_data(release, model_id), spec.data.path)
    indices = list(range(len(dataset.rows)))
    _, test_idx = train_test_split(indices, test_size=TEST_SIZE, stratify=dataset.target, random_state=spec.seed)
    chosen = [int(i) for i in test_idx][:count]
    return [dataset.rows[i] for i in chosen], [dataset.target[i] for i in chosen]


TRAFFIC_ROWS = 64  # the held-out rows synthetic traffic cycles through


class HeldOut:
    """The held-out rows smoke and traffic send, for the release's serving models, made in a thread started when
    Terraform's apply starts (:meth:`start`, apply_plan's ``while_applying``): scikit-learn's import and the split
    (about a second of CPU) then run while Terraform applies, neither before it, where they would slow the command's
    own steps, nor between the apply and the smoke test. A model it has no rows for (or failed on), or rows asked
    for when it never started, are read when asked, as :func:`held_out_rows` reads them, with their error."""

    def __init__(self, release: Release, count: int = max(SMOKE_ROWS, TRAFFIC_ROWS)) -> None:
        from .threads import Beside

        self.release, self.count = release, count
        self._rows: dict[str, tuple[list[list[float]], list[int]]] = {}
        self.reading = Beside(self._read, "held-out-rows")

    def start(self) -> None:
        """Start reading (once; a second call does nothing)."""
        from .estimators import steady_environ_for_numpy

        if not self.reading.started:
            steady_environ_for_numpy()  # scikit-learn's import in the thread, the AWS clients made meanwhile
            self.reading.start()

    def _read(self) -> None:
        for model_id in dict.fromkeys(v.model for v in self.release.variants if v.weight > 0):
            try:
                self._rows[model_id] = held_out_rows(self.release, model_id, self.count)
            except Exception:  # noqa: BLE001 - asked for again by the step that needs it, which reports it
                return

    def rows(self, model_id: str, count: int) -> tuple[list[list[float]], list[int]]:
        self.reading.wait()  # a reading never started stays so: the rows are read below
        found = self._rows.get(model_id)
        if found is None or count > self.count:
            return held_out_rows(self.release, model_id, count)
        return found[0][:count], found[1][:count]


@dataclass
class SmokeResult:
    ok: bool
    variants: dict[str, str]  # variant -> "ok" or what was wrong


def smoke(release: Release, runtime: Runtime, rows: int = SMOKE_ROWS, held_out: HeldOut | None = None) -> SmokeResult:
    """Every serving variant answers held-out rows correctly when addressed directly (TargetVariant)."""
    verdicts: dict[str, str] = {}
    for variant in release.variants:
        if variant.weight <= 0:
            continue
        if held_out is not None:
            features, labels = held_out.rows(variant.model, rows)
        else:
            features, labels = held_out_rows(release, variant.model, rows)
        inv = runtime.invoke(release.endpoint.name, json.dumps({"instances": features}), variant.name)
        verdicts[variant.name] = _judge_smoke(variant.name, variant.model, inv, labels)
    return SmokeResult(all(v == "ok" for v in verdicts.values()) and bool(verdicts), verdicts)


def _judge_smoke(variant: str, model_id: str, inv: Invocation, labels: Sequence[int]) -> str:
    if not inv.ok:
        return f"HTTP {inv.status}: {inv.body[:200]}"
    if inv.variant and inv.variant != variant:
        return f"answered by variant {inv.variant}, not {variant}"
    try:
        doc = json.loads(inv.body)
        predictions, classes, model = doc["predictions"], doc["classes"], doc["model"]
    except (ValueError, KeyError, TypeError):
        return f"not a prediction response: {inv.body[:200]}"
    if model != model_id:
        return f"served by model '{human(model)}', the release gives '{model_id}'"
    if len(predictions) != len(labels) or any(p not in classes for p in predictions):
        return f"{len(predictions)} predictions for {len(labels)} rows, or a label outside the classes {human(classes)}"
    agreement = sum(1 for p, y in zip(predictions, labels, strict=True) if p == y) / len(labels)
    if agreement < SMOKE_MIN_AGREEMENT:
        return f"only {agreement:.0%} of {len(labels)} held-out rows predicted correctly"
    return "ok"


TRAFFIC_SIGMAS = 3.0  # traffic_for_canary: each variant's minimum this many standard deviations below its mean


@dataclass
class TrafficResult:
    """Synthetic traffic: exactly ``sent`` requests (one invocation each: retries are off), ``ok`` answered.
    ``by_variant``: answered requests per variant (SageMaker's ``InvokedProductionVariant``); an error response
    names no variant, so errors are counted apart (CloudWatch's per-variant ``Invocation5XXErrors`` has them)."""

    sent: int
    ok: int
    errors: int
    by_variant: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        answered = ", ".join(f"{name} {n}" for name, n in self.by_variant.items()) or "none"
        text = f"{self.sent} requests: answered by {answered}"
        if self.errors:
            text += f"; {self.errors} errors (an error names no variant)"
        return "; ".join([text, *self.notes])


def traffic_for_canary(release: Release, sigmas: float = TRAFFIC_SIGMAS) -> int:
    """Requests to send (routed by weight) so that every serving variant gets the canary's ``min_invocations``
    with ``sigmas`` standard deviations to spare: the smallest n with n*p - sigmas*sqrt(n*p*(1-p)) >= min for
    the smallest serving weight p (a 90/10 split with min_invocations 10 -> 240; 100 % -> 10)."""
    serving = [v.weight for v in release.variants if v.weight > 0]
    need = max(release.canary.min_invocations, 1)
    if not serving:
        return 0
    p = min(serving) / 100
    if p >= 1:
        return need
    # n*p = x: x - k*sqrt(x*(1-p)) >= need  <=>  sqrt(x) >= (k*sqrt(1-p) + sqrt(k^2*(1-p) + 4*need)) / 2
    k = sigmas * math.sqrt(1 - p)
    root = (k + math.sqrt(k * k + 4 * need)) / 2
    return math.ceil(root * root / p)


def send_traffic(
    release: Release, runtime: Runtime, requests: int, workers: int = 4, held_out: HeldOut | None = None
) -> TrafficResult:
    """Exactly ``requests`` single-row requests routed by the endpoint's weights (rows cycling through held-out
    data), ``workers`` at a time. When that many requests leave a serving variant below the canary's
    ``min_invocations`` on average, a note says so and how many would do (:func:`traffic_for_canary`); nothing
    more is sent: the number asked for is the number sent."""
    from concurrent.futures import ThreadPoolExecutor

    serving = [v for v in release.variants if v.weight > 0]
    if not serving or requests <= 0:
        return TrafficResult(0, 0, 0, {})
    if held_out is not None:
        features, _ = held_out.rows(serving[0].model, TRAFFIC_ROWS)
    else:
        features, _ = held_out_rows(release, serving[0].model, TRAFFIC_ROWS)
    by_variant: dict[str, int] = {v.name: 0 for v in serving}
    ok = 0

    def one(i: int) -> Invocation:
        return runtime.invoke(release.endpoint.name, json.dumps({"instances": [features[i % len(features)]]}))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for inv in pool.map(one, range(requests)):
            if inv.ok:
                ok += 1
                if inv.variant:
                    by_variant[inv.variant] = by_variant.get(inv.variant, 0) + 1
    need = release.canary.min_invocations
    short = [v for v in serving if requests * v.weight / 100 < need]
    notes = [
        f"{v.name} ({v.weight} %) can expect about {requests * v.weight / 100:g} of {requests} requests, fewer "
        f"than the canary's min_invocations {need}: without other traffic its canary stays inconclusive "
        f"(--traffic {traffic_for_canary(release)} would give every variant enough)"
        for v in short
    ]
    return TrafficResult(requests, ok, requests - ok, by_variant, notes)


# --------------------------------------------------------------------------------------------------------------
# deploy
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class DeployResult:
    release: str
    environment: str
    revision: str | None
    ok: bool = False
    failed_step: str | None = None
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    endpoint_config: str | None = None
    weights: dict[str, float | None] = field(default_factory=dict)
    plan_after_apply_empty: bool | None = None
    canary: dict[str, Any] | None = None
    traffic: dict[str, Any] | None = None
    recorded_good: str | None = None
    evidence: dict[str, Any] | None = None  # the canary evidence kept with the good tag (smgitops.record)
    rollback: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            return f"deployed {self.release} ({self.endpoint_config}); recorded good: {self.recorded_good or 'no'}"
        text = f"deploy of {self.release} failed at {self.failed_step}: {self.reason}"
        rb = self.rollback or {}
        if rb.get("ok"):
            text += (
                f"; rolled back to {rb['to'][:8]} ({rb['how']}), live configuration {rb['endpoint_config']}; "
                f"revert commit {rb['commit'][:8]} on branch {rb['branch']}: open a pull request from it"
            )
        elif rb.get("cutoff"):
            text += f"; not rolled back: {rb['error']}"
        elif rb:
            text += f"; ROLLBACK FAILED: {rb.get('error') or '; '.join(rb.get('problems', []))}"
        return text


class _StepFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deploy(
    release_path: Path,
    ctx: Context,
    *,
    traffic: int = 0,
    canary_timeout: float = DEFAULT_CANARY_TIMEOUT,
    canary_poll: float = DEFAULT_CANARY_POLL,
    git: Git | None = None,
    on_step: Callable[[Step], None] | None = None,
    plan_file: Path | None = None,
    canary_sleep: Sleep | None = None,
    latest_ref: str | None = None,
    cutoff_now: Clock | None = None,
) -> DeployResult:
    """apply → verify → smoke → (traffic) → canary; on any failure roll back to the last good revision.

    With ``plan_file`` the reviewed, saved plan is applied (``smgitops apply --plan``); without, the release is
    planned and applied in one go. With ``latest_ref`` (``origin/main``), a release file that is no longer the one
    there stops the deploy first (:func:`ensure_latest`). Served archives whose stored bytes are not the release's
    stop it before anything is applied (exit 2) and never trigger a rollback: what is live stays as it is.

    ``ctx`` is bound to the release here; its ``clock`` is the canary's, its ``sleep`` the waits' (``canary_sleep``,
    when given, the canary's polls').

    Teardown wins the evening: after today's cut-off of the release (judged by ``cutoff_now``, default
    ``--now``/``SMGITOPS_NOW``/the real clock), the deploy stops before any change
    (:class:`smgitops.teardown.AfterCutoff`, exit 1), the apply re-checks under the environment's lock, and a
    failure after the cut-off is not rolled back (a rollback would bring the endpoint back for the night)."""
    from .artifacts import require_servable, store_for
    from .canary import CloudWatchMetrics, analyse
    from .deploy import apply_plan, apply_release
    from .release import load_release
    from .teardown import AfterCutoff, CutoffGuard

    git = git or Git.for_path(release_path, why=GIT_NEEDED)
    relpath = git.relpath(release_path)
    release = load_release(release_path)
    ctx = ctx.bound_to(release)
    clock = ctx.clock
    guard = CutoffGuard.for_release(release, cutoff_now or cutoff_clock(), "deploy")
    guard.check("not deployed, nothing was changed")
    if canary_timeout < release.canary.bake_minutes * 60:
        raise UserError(
            f"canary timeout {canary_timeout:g} s is shorter than the release's bake window "
            f"({release.canary.bake_minutes} min): the canary could never pass"
        )
    revision = git.head()
    if latest_ref is not None:
        ensure_latest(git, relpath, revision, latest_ref)
    require_servable(
        release, store_for(release, ctx), f"{relpath}: not deployed", f"Publish first: smgitops publish {relpath}."
    )
    result = DeployResult(release=relpath, environment=release.environment, revision=revision)
    held_out = HeldOut(release)  # read while Terraform applies (started by apply_plan)

    # The apply step is recorded as soon as the endpoint verified: smoke, traffic and canary then run while its
    # plan-after-apply check does (apply_plan's ``alongside``); the step learns the check's outcome afterwards.
    early: dict[str, Step] = {}
    pending: list[_StepFailed] = []  # a failure of smoke, traffic or canary, raised once the check has finished

    def step(name: str, fn: Callable[[], str]) -> None:
        t0 = time.monotonic()
        try:
            detail = fn()
        except _StepFailed as exc:
            _finish(name, False, t0, exc.reason)
            raise
        except SmgitopsError as exc:
            _finish(name, False, t0, str(exc))
            # Nothing to roll back: the apply refused before changing anything (state lock held, stale plan:
            # exit 2), or the job was cancelled and Terraform stopped cleanly (the message says what to run).
            if isinstance(exc, Cancelled | AfterCutoff) or (name == "apply" and isinstance(exc, UserError)):
                raise
            raise _StepFailed(str(exc)) from exc
        _finish(name, True, t0, detail)

    def _finish(name: str, ok: bool, t0: float, detail: str) -> None:
        s = early.pop(name, None)
        if s is None:
            _record(Step(name, ok, time.monotonic() - t0, detail))
            return
        s.detail = detail
        if not ok:  # the check that ran alongside failed: the apply failed, reported as when the check ran first
            s.ok = False  # (unless smoke or canary failed meanwhile: the first failure is the one that matters)
            if result.failed_step is None:
                result.failed_step, result.reason = name, detail
            if on_step is not None:
                on_step(s)

    def _record(s: Step) -> None:
        s.seconds = round(s.seconds, 3)
        result.steps.append(s)
        if not s.ok and result.failed_step is None:  # the first failure is the one that matters
            result.failed_step, result.reason = s.name, s.detail
        if on_step is not None:
            on_step(s)

    applied_at: list[datetime] = []

    def after_verify(applied: ApplyResult) -> None:
        ran_alongside.append(True)
        applied_at.append(clock())
        early["apply"] = Step(
            "apply",
            True,
            time.monotonic() - started[0],
            f"{applied.endpoint_config}, plan after apply checked alongside smoke and canary",
        )
        _record(early["apply"])
        try:
            the_rest()
        except _StepFailed as exc:
            pending.append(exc)

    started: list[float] = []
    ran_alongside: list[bool] = []

    def do_apply() -> str:
        started.append(time.monotonic())
        during = held_out.start
        if plan_file is not None:
            applied = apply_plan(
                release, ctx, plan_file=plan_file, guard=guard, alongside=after_verify, while_applying=during
            )
        else:
            _, applied = apply_release(release, ctx, guard=guard, alongside=after_verify, while_applying=during)
        if not applied_at:
            applied_at.append(clock())
        result.endpoint_config = applied.endpoint_config
        result.weights = _live_weights(applied)
        result.plan_after_apply_empty = applied.plan_after_apply_empty
        if not applied.ok:
            problems = list(applied.verify.problems) if applied.verify is not None else []
            problems += [f"plan after apply not empty: {d['address']}" for d in applied.drift]
            raise _StepFailed("; ".join(problems) or "apply did not verify")
        return f"{applied.endpoint_config}, plan after apply empty"

    runtime = Runtime(ctx.aws)

    def do_smoke() -> str:
        res = smoke(release, runtime, held_out=held_out)
        bad = {k: v for k, v in res.variants.items() if v != "ok"}
        if not res.ok:
            raise _StepFailed("; ".join(f"{k}: {v}" for k, v in bad.items()) or "no serving variant")
        return ", ".join(f"{k} ok" for k in res.variants) + f" (one request of {SMOKE_ROWS} rows per variant)"

    def do_traffic() -> str:
        res = send_traffic(release, runtime, traffic, held_out=held_out)
        result.traffic = asdict(res)
        return res.describe()

    def do_canary() -> str:
        from .console import progress

        with progress("canary") as beat:
            report: CanaryReport = analyse(
                release,
                CloudWatchMetrics(ctx.aws),
                clock=clock,
                sleep=canary_sleep or ctx.sleep,
                wait=True,
                timeout_seconds=canary_timeout,
                poll_seconds=canary_poll,
                since=applied_at[0] if applied_at else None,
                since_from="the end of the apply" if applied_at else None,
                progress=beat,
            )
        result.canary = report.to_dict()
        if not report.ok:
            raise _StepFailed(report.summary())
        return report.summary()

    def the_rest() -> None:
        step("smoke", do_smoke)
        if traffic > 0:
            step("traffic", do_traffic)
        step("canary", do_canary)

    try:
        step("apply", do_apply)
        if pending:
            raise pending[0]
        if not ran_alongside:
            the_rest()
    except _StepFailed:
        result.rollback = _auto_rollback(
            git, release_path, relpath, release.environment, revision, result.reason, ctx, _record, guard
        )
        return result
    result.ok = True
    result.recorded_good = record_good(git, release.environment, relpath, revision)
    if result.recorded_good and result.canary is not None:
        from .record import canary_evidence, store_evidence

        result.evidence = canary_evidence(release, revision, result.canary)
        store_evidence(git, result.evidence)
    return result


def _auto_rollback(
    git: Git,
    release_path: Path,
    relpath: str,
    environment: str,
    failed: str,
    reason: str,
    ctx: Context,
    record: Callable[[Step], None],
    guard: CutoffGuard,
) -> dict[str, Any]:
    from .teardown import AfterCutoff

    t0 = time.monotonic()
    late = guard.passed()
    if late is not None:  # the endpoint is (or is about to be) the teardown's: no rollback, no revert branch
        record(Step("rollback", False, time.monotonic() - t0, f"not rolled back: {late}"))
        return {"ok": False, "cutoff": True, "error": late}
    good = last_good_revision(git, environment, relpath, failed)
    if good is None:
        record(Step("rollback", False, time.monotonic() - t0, "no earlier revision of the release file"))
        return {"ok": False, "error": f"no earlier revision of {relpath} to roll back to"}
    try:
        rb = rollback(release_path, good.sha, ctx, git=git, cutoff_now=guard.clock)
    except AfterCutoff as exc:  # the cut-off passed while the rollback waited for the lock
        record(Step("rollback", False, time.monotonic() - t0, f"not rolled back: {exc}"))
        return {"ok": False, "cutoff": True, "to": good.sha, "how": good.how, "error": str(exc)}
    except SmgitopsError as exc:
        record(Step("rollback", False, time.monotonic() - t0, str(exc)))
        return {"ok": False, "to": good.sha, "how": good.how, "error": str(exc)}
    doc: dict[str, Any] = {"to": good.sha, "how": good.how, **rb.as_dict()}
    record(Step("rollback", rb.ok, time.monotonic() - t0, f"to {good.sha[:8]}: {rb.endpoint_config}"))
    if rb.ok:
        branch, commit = write_revert_branch(git, environment, relpath, failed, good, reason)
        doc.update(branch=branch, commit=commit)
        record(Step("revert-branch", True, 0.0, f"{branch} ({commit[:8]})"))
    return doc
