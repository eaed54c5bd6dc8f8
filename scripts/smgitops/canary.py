"""Canary analysis: ``smgitops canary RELEASE``.

Reads each serving variant's SageMaker metrics from CloudWatch over the release's bake window and holds them to
the release's ``canary`` thresholds:

* ``Invocations`` (Sum) and ``Invocation5XXErrors`` (Sum): the error rate is errors / invocations, compared with
  ``max_error_rate`` (a fraction; a rate *equal* to the maximum passes);
* ``ModelLatency`` (p99): SageMaker reports microseconds; the table shows milliseconds and compares with
  ``max_p99_latency_ms`` (equal passes);
* ``min_invocations``: fewer invocations than this is **inconclusive, never a pass** -- unless the errors seen so
  far already exceed what the error budget allows over ``min_invocations`` requests, which is a breach whatever
  the remaining requests do.

Only variants with a weight above 0 are judged; a 0-weight variant receives no traffic and is reported as
"not serving". The overall verdict is *pass* only if every serving variant passes, *breach* if any breaches,
*inconclusive* otherwise. Exit codes: 0 pass, 1 breach or inconclusive (after ``--timeout`` when ``--wait``).

The window starts no earlier than the live configuration's last change: ``--since`` when given (deploy passes
the end of its apply), else DescribeEndpoint's ``LastModifiedTime`` (set when an update starts and again when the
endpoint returns to ``InService``), so that invocations served by an earlier configuration never count for the one
under test. An endpoint that does not exist or is not ``InService`` has nothing to analyse: exit 1, saying so.

All metrics of all variants are fetched with one paginated ``GetMetricData`` call, with one period spanning the
whole window so that p99 is the window's percentile, not a percentile of per-minute percentiles. Should
CloudWatch still split the window into several datapoints, sums are added and the largest p99 is kept (the
conservative reading).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .clock import Clock, Sleep, real_sleep, utc_now
from .release import Canary, Release, Variant

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

    from .aws import Aws

NAMESPACE = "AWS/SageMaker"
INVOCATIONS = "Invocations"
ERRORS = "Invocation5XXErrors"
LATENCY = "ModelLatency"
LATENCY_STAT = "p99"
MICROSECONDS_PER_MS = 1000.0
MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit on MetricDataQueries per request
DEFAULT_TIMEOUT_SECONDS = 900.0
DEFAULT_POLL_SECONDS = 30.0


# --------------------------------------------------------------------------------------------------------------
# CloudWatch wrapper
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    id: str  # GetMetricData query id: starts with a lower-case letter
    metric: str
    stat: str
    dimensions: tuple[tuple[str, str], ...]


class CloudWatchMetrics:
    """The few CloudWatch calls the canary needs, through the client of an injected :class:`smgitops.aws.Aws`."""

    def __init__(self, aws: Aws) -> None:
        self._client = aws.cloudwatch

    def get_metric_data(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, list[float]]:
        """Values per query id over [start, end), following ``NextToken`` until the last page."""
        values: dict[str, list[float]] = {q.id: [] for q in queries}
        for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
            chunk: list[MetricDataQueryTypeDef] = [
                {
                    "Id": q.id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": q.metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions],
                        },
                        "Period": period_seconds,
                        "Stat": q.stat,
                    },
                    "ReturnData": True,
                }
                for q in queries[offset : offset + MAX_QUERIES_PER_CALL]
            ]
            token: str | None = None
            while True:
                if token:
                    page = self._client.get_metric_data(
                        MetricDataQueries=chunk, StartTime=start, EndTime=end, NextToken=token
                    )
                else:
                    page = self._client.get_metric_data(MetricDataQueries=chunk, StartTime=start, EndTime=end)
                for result in page.get("MetricDataResults", []):
                    values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
                token = page.get("NextToken")
                if not token:
                    break
        return values


# --------------------------------------------------------------------------------------------------------------
# Decision logic (plain data in, verdicts out)
# --------------------------------------------------------------------------------------------------------------


class Verdict(StrEnum):
    PASS = "pass"
    BREACH = "breach"
    INCONCLUSIVE = "inconclusive"
    NOT_SERVING = "not serving"


@dataclass(frozen=True)
class VariantMetrics:
    """What CloudWatch holds for one variant over the window; ``None`` where it returned no datapoint."""

    invocations: float | None
    errors: float | None
    p99_latency_ms: float | None


@dataclass(frozen=True)
class VariantResult:
    name: str
    model: str
    weight: int
    invocations: int
    errors: int
    error_rate: float | None
    p99_latency_ms: float | None
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CanaryReport:
    environment: str
    endpoint: str
    window_start: datetime
    window_end: datetime
    thresholds: Canary
    variants: list[VariantResult]
    polls: int = 1
    since_from: str | None = None  # what started the window: --since, the endpoint's last update, the apply

    @property
    def observed_seconds(self) -> float:
        return (self.window_end - self.window_start).total_seconds()

    @property
    def bake_complete(self) -> bool:
        """The window spans the whole bake time (it does unless ``since`` cut it short)."""
        return self.observed_seconds >= self.thresholds.bake_minutes * 60

    @property
    def verdict(self) -> Verdict:
        """Breach as soon as any serving variant breaches; pass only when every serving variant passes over a
        complete bake window -- a configuration observed for a minute has not baked for ten."""
        serving = [v for v in self.variants if v.verdict is not Verdict.NOT_SERVING]
        if any(v.verdict is Verdict.BREACH for v in serving):
            return Verdict.BREACH
        if serving and all(v.verdict is Verdict.PASS for v in serving) and self.bake_complete:
            return Verdict.PASS
        return Verdict.INCONCLUSIVE

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "endpoint": self.endpoint,
            "verdict": str(self.verdict),
            "ok": self.ok,
            "window": {
                "start": self.window_start.isoformat(),
                "end": self.window_end.isoformat(),
                "bake_minutes": self.thresholds.bake_minutes,
                "observed_seconds": self.observed_seconds,
                "bake_complete": self.bake_complete,
                "since_from": self.since_from,
            },
            "thresholds": asdict(self.thresholds),
            "polls": self.polls,
            "variants": [{**asdict(v), "verdict": str(v.verdict)} for v in self.variants],
        }

    def summary(self) -> str:
        parts = [f"canary {self.verdict} for {self.environment} ({self.endpoint})"]
        if not self.bake_complete and self.verdict is Verdict.INCONCLUSIVE:
            parts.append(
                f"observed {self.observed_seconds:.0f} s of the {self.thresholds.bake_minutes}-minute bake window"
            )
        for v in self.variants:
            if v.verdict in (Verdict.BREACH, Verdict.INCONCLUSIVE):
                parts.append(f"{v.name}: {v.verdict}: {'; '.join(v.reasons)}")
        return "; ".join(parts)


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def judge_variant(variant: Variant, metrics: VariantMetrics, thresholds: Canary) -> VariantResult:
    """Verdict for one variant. Missing datapoints count as nothing observed, never as good news."""
    invocations = int(round(metrics.invocations or 0.0))
    errors = int(round(metrics.errors or 0.0))
    rate = errors / invocations if invocations > 0 else None

    def result(verdict: Verdict, reasons: list[str]) -> VariantResult:
        return VariantResult(
            name=variant.name,
            model=variant.model,
            weight=variant.weight,
            invocations=invocations,
            errors=errors,
            error_rate=rate,
            p99_latency_ms=metrics.p99_latency_ms,
            verdict=verdict,
            reasons=reasons,
        )

    if variant.weight <= 0:
        return result(Verdict.NOT_SERVING, ["weight 0: receives no traffic"])

    reasons: list[str] = []
    notes: list[str] = []
    if metrics.errors is None and invocations > 0:
        notes.append(f"no {ERRORS} datapoints: counted as 0 errors")
    enough = invocations >= max(thresholds.min_invocations, 1)
    if enough:
        assert rate is not None
        if rate > thresholds.max_error_rate:
            reasons.append(
                f"error rate {_pct(rate)} > max {_pct(thresholds.max_error_rate)} "
                f"({errors} errors in {invocations} invocations)"
            )
        p99 = metrics.p99_latency_ms
        if p99 is not None and p99 > thresholds.max_p99_latency_ms:
            reasons.append(f"p99 latency {p99:.1f} ms > max {thresholds.max_p99_latency_ms:g} ms")
        if reasons:
            return result(Verdict.BREACH, reasons + notes)
        if p99 is None:
            return result(Verdict.INCONCLUSIVE, [f"no {LATENCY} p99 datapoint in the window", *notes])
        return result(Verdict.PASS, notes)

    # Too few invocations to judge -- but the error budget may already be spent whatever comes next.
    budget = thresholds.max_error_rate * max(thresholds.min_invocations, 1)
    if errors > budget:
        return result(
            Verdict.BREACH,
            [
                f"{errors} errors already exceed the {_pct(thresholds.max_error_rate)} allowed over "
                f"min_invocations={thresholds.min_invocations} (only {invocations} invocations so far)",
                *notes,
            ],
        )
    return result(
        Verdict.INCONCLUSIVE, [f"{invocations} invocations < min_invocations {thresholds.min_invocations}", *notes]
    )


def judge(
    release: Release, metrics: Mapping[str, VariantMetrics], window_start: datetime, window_end: datetime
) -> CanaryReport:
    empty = VariantMetrics(None, None, None)
    return CanaryReport(
        environment=release.environment,
        endpoint=release.endpoint.name,
        window_start=window_start,
        window_end=window_end,
        thresholds=release.canary,
        variants=[judge_variant(v, metrics.get(v.name, empty), release.canary) for v in release.variants],
    )


# --------------------------------------------------------------------------------------------------------------
# Collection and polling
# --------------------------------------------------------------------------------------------------------------


def window_for(now: datetime, bake_minutes: int, since: datetime | None = None) -> tuple[datetime, datetime]:
    """The bake window ending at ``now``: [now - bake, now], at whole seconds, end rounded up so that a
    datapoint recorded during the current second is inside it. ``since`` (e.g. the end of the apply that made the
    configuration under test) starts the window later, so traffic served by the previous configuration does not
    dilute the canary's numbers."""
    end = now.replace(microsecond=0)
    if now.microsecond:
        end += timedelta(seconds=1)
    start = end - timedelta(minutes=bake_minutes)
    if since is not None:
        start = min(max(start, since.replace(microsecond=0)), end - timedelta(seconds=1))
    return start, end


def _queries(endpoint: str, variants: Iterable[Variant]) -> list[tuple[str, MetricQuery, MetricQuery, MetricQuery]]:
    out = []
    for i, v in enumerate(variants):
        dims = (("EndpointName", endpoint), ("VariantName", v.name))
        out.append(
            (
                v.name,
                MetricQuery(f"v{i}_invocations", INVOCATIONS, "Sum", dims),
                MetricQuery(f"v{i}_errors", ERRORS, "Sum", dims),
                MetricQuery(f"v{i}_latency", LATENCY, LATENCY_STAT, dims),
            )
        )
    return out


def collect(
    cloudwatch: CloudWatchMetrics, release: Release, now: datetime, since: datetime | None = None
) -> tuple[dict[str, VariantMetrics], datetime, datetime]:
    """One GetMetricData round for every serving variant's three metrics."""
    start, end = window_for(now, release.canary.bake_minutes, since)
    serving = [v for v in release.variants if v.weight > 0]
    per_variant = _queries(release.endpoint.name, serving)
    queries = [q for _, *qs in per_variant for q in qs]
    if not queries:
        return {}, start, end
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    values = cloudwatch.get_metric_data(queries, start, end, period)
    metrics: dict[str, VariantMetrics] = {}
    for name, q_inv, q_err, q_lat in per_variant:
        inv, err, lat = values.get(q_inv.id, []), values.get(q_err.id, []), values.get(q_lat.id, [])
        metrics[name] = VariantMetrics(
            invocations=sum(inv) if inv else None,
            errors=sum(err) if err else None,
            p99_latency_ms=max(lat) / MICROSECONDS_PER_MS if lat else None,
        )
    return metrics, start, end


def analyse(
    release: Release,
    cloudwatch: CloudWatchMetrics,
    *,
    clock: Clock = utc_now,
    sleep: Sleep = real_sleep,
    wait: bool = False,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    since: datetime | None = None,
    since_from: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CanaryReport:
    """Analyse now; with ``wait``, poll until the verdict is no longer inconclusive (a breach ends it at once; a
    pass needs the whole bake window since ``since``) or the timeout passes. ``progress`` hears after every poll
    that goes on waiting what was seen so far and how long is left (:func:`heartbeat`), in the injected clock's
    time."""
    started = clock()
    polls = 0
    while True:
        polls += 1
        metrics, start, end = collect(cloudwatch, release, clock(), since)
        report = judge(release, metrics, start, end)
        if not wait or report.verdict is not Verdict.INCONCLUSIVE:
            break
        elapsed = (clock() - started).total_seconds()
        if elapsed >= timeout_seconds:
            break
        pause = min(poll_seconds, max(timeout_seconds - elapsed, 0.0))
        to_bake = release.canary.bake_minutes * 60 - report.observed_seconds
        if to_bake > 0:  # wake up exactly when the window first spans the whole bake time
            pause = min(pause, to_bake)
        if progress is not None:
            progress(heartbeat(report, polls, timeout_seconds - elapsed, pause))
        sleep(pause)
    return CanaryReport(
        environment=report.environment,
        endpoint=report.endpoint,
        window_start=report.window_start,
        window_end=report.window_end,
        thresholds=report.thresholds,
        variants=report.variants,
        polls=polls,
        since_from=since_from,
    )


def heartbeat(report: CanaryReport, polls: int, left_seconds: float, next_poll_seconds: float) -> str:
    """One line on a canary still waiting: invocations per serving variant so far (with the minimum), how much of
    the bake window is observed, when the next poll comes and how long the wait may still last."""
    t = report.thresholds
    seen = ", ".join(
        f"{v.name} {v.invocations} invocation{'s' if v.invocations != 1 else ''}"
        + (f" ({v.errors} error{'s' if v.errors != 1 else ''})" if v.errors else "")
        for v in report.variants
        if v.verdict is not Verdict.NOT_SERVING
    )
    return (
        f"poll {polls}: {seen or 'no serving variant'} (min {t.min_invocations} each); "
        f"{report.observed_seconds / 60:.1f} of {t.bake_minutes} bake min observed; "
        f"next poll in {next_poll_seconds:.0f} s, {_duration(left_seconds)} left before giving up"
    )


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def live_since(release: Release, aws: Aws) -> datetime:
    """When the endpoint's live configuration took over: DescribeEndpoint's ``LastModifiedTime``. SageMaker sets
    it when an update starts and again when the endpoint is back ``InService``, so for an ``InService`` endpoint it
    is no earlier than the moment the configuration now serving started to. CheckFailed (exit 1) when there is no
    such moment to take: the endpoint does not exist, or it is not ``InService`` (the configuration under test is
    not serving yet, or the endpoint failed)."""
    from .errors import CheckFailed

    name = release.endpoint.name
    endpoint = aws.describe_endpoint(name)
    if endpoint is None:
        raise CheckFailed(f"endpoint {name} does not exist: nothing serves, so there is no canary to analyse")
    status = endpoint.get("EndpointStatus")
    if status != "InService":
        raise CheckFailed(
            f"endpoint {name} is {status}, not InService: the configuration to analyse is not serving yet; run the "
            "canary once it is InService, or give --since"
        )
    modified = endpoint.get("LastModifiedTime")
    if not isinstance(modified, datetime):
        raise CheckFailed(f"endpoint {name}: DescribeEndpoint returned no LastModifiedTime; give --since")
    return modified if modified.tzinfo is not None else modified.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------------------
# Output and CLI
# --------------------------------------------------------------------------------------------------------------

_STYLE = {
    Verdict.PASS: "green",
    Verdict.BREACH: "bold red",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.NOT_SERVING: "dim",
}


def render(report: CanaryReport, console: Any = None) -> None:
    render_doc(report.to_dict(), console)


def render_doc(doc: Mapping[str, Any], console: Any = None) -> None:
    """The table of a report in its JSON form (what ``deploy --json`` and the demo keep)."""
    from rich.table import Table

    from .console import make_console

    t, w = doc["thresholds"], doc["window"]
    start, end = datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])
    table = Table(
        title=f"canary: {doc['environment']} / {doc['endpoint']}",
        caption=(
            f"window {start:%H:%M:%S}..{end:%H:%M:%S} UTC ({(end - start).total_seconds() / 60:.1f} of "
            f"{t['bake_minutes']} bake min); max error rate "
            f"{_pct(t['max_error_rate'])}, max p99 {t['max_p99_latency_ms']:g} ms, min invocations "
            f"{t['min_invocations']}" + (f"; window from {w['since_from']}" if w.get("since_from") else "")
        ),
    )
    for col in ("variant", "model", "weight", "invocations", "errors", "error rate", "p99 ms", "verdict"):
        table.add_column(col, justify="right" if col in ("weight", "invocations", "errors") else "left")
    for v in doc["variants"]:
        verdict = Verdict(v["verdict"])
        table.add_row(
            v["name"],
            v["model"],
            str(v["weight"]),
            str(v["invocations"]),
            str(v["errors"]),
            _pct(v["error_rate"]) if v["error_rate"] is not None else "-",
            f"{v['p99_latency_ms']:.1f}" if v["p99_latency_ms"] is not None else "-",
            f"[{_STYLE[verdict]}]{verdict}[/]",
        )
    console = console or make_console()
    console.print(table)
    for v in doc["variants"]:
        if Verdict(v["verdict"]) is not Verdict.NOT_SERVING:
            for reason in v["reasons"]:
                console.print(f"  {v['name']}: {reason}", markup=False, highlight=False)
    overall = Verdict(doc["verdict"])
    console.print(f"[{_STYLE[overall]}]overall: {overall}[/]")
