"""Canary analysis: the decision rules on plain data, the CloudWatch wrapper's paging, and the whole analysis
against metrics recorded in CloudWatch (emulated)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from smgitops import canary
from smgitops.aws import Aws, make_session
from smgitops.canary import (
    CanaryReport,
    CloudWatchMetrics,
    MetricQuery,
    VariantMetrics,
    Verdict,
    analyse,
    judge,
    judge_variant,
    window_for,
)
from smgitops.release import Canary, Variant, release_from_mapping

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
THRESHOLDS = Canary(bake_minutes=10, min_invocations=100, max_error_rate=0.01, max_p99_latency_ms=200.0)


def _release(variants: list[dict[str, Any]], **canary_overrides: Any) -> Any:
    doc: dict[str, Any] = {
        "environment": "dev",
        "region": "us-east-1",
        "image": "1.2-1-cpu-py3",
        "endpoint": {"name": "smgitops-dev", "instance_type": "ml.t2.medium", "instance_count": 1},
        "teardown": {"at": "19:00", "timezone": "Europe/Berlin"},
        "models": {
            m: {
                "data": {"path": "data/train.csv", "sha256": "0" * 64},
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {},
                "seed": 1,
                "artifact_sha256": "a" * 64,
            }
            for m in {v["model"] for v in variants}
        },
        "variants": variants,
        "canary": {
            "bake_minutes": 10,
            "min_invocations": 100,
            "max_error_rate": 0.01,
            "max_p99_latency_ms": 200,
            **canary_overrides,
        },
    }
    return release_from_mapping(doc, Path("releases/dev.yaml"))


V = Variant(name="canary", model="m2", weight=10)


# ---------------------------------------------------------------------------------------------------------------
# decision rules
# ---------------------------------------------------------------------------------------------------------------


def test_error_rate_equal_to_the_maximum_passes_and_one_more_error_breaches() -> None:
    ok = judge_variant(V, VariantMetrics(1000, 10, 50.0), THRESHOLDS)
    assert ok.verdict is Verdict.PASS
    assert ok.error_rate == pytest.approx(0.01)
    bad = judge_variant(V, VariantMetrics(1000, 11, 50.0), THRESHOLDS)
    assert bad.verdict is Verdict.BREACH
    assert bad.reasons[0] == "error rate 1.10% > max 1.00% (11 errors in 1000 invocations)"


def test_p99_equal_to_the_maximum_passes_and_above_it_breaches_with_the_numbers() -> None:
    assert judge_variant(V, VariantMetrics(100, 0, 200.0), THRESHOLDS).verdict is Verdict.PASS
    bad = judge_variant(V, VariantMetrics(100, 0, 200.4), THRESHOLDS)
    assert bad.verdict is Verdict.BREACH
    assert bad.reasons == ["p99 latency 200.4 ms > max 200 ms"]


def test_both_thresholds_breached_are_both_named() -> None:
    bad = judge_variant(V, VariantMetrics(200, 50, 900.0), THRESHOLDS)
    assert bad.verdict is Verdict.BREACH
    assert len(bad.reasons) == 2
    assert "error rate 25.00%" in bad.reasons[0] and "p99 latency 900.0 ms" in bad.reasons[1]


def test_too_few_invocations_is_inconclusive_never_a_pass() -> None:
    r = judge_variant(V, VariantMetrics(99, 0, 10.0), THRESHOLDS)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reasons == ["99 invocations < min_invocations 100"]
    assert judge_variant(V, VariantMetrics(100, 0, 10.0), THRESHOLDS).verdict is Verdict.PASS


def test_no_traffic_at_all_is_inconclusive_even_with_min_invocations_zero() -> None:
    zero_min = Canary(bake_minutes=10, min_invocations=0, max_error_rate=0.01, max_p99_latency_ms=200.0)
    r = judge_variant(V, VariantMetrics(None, None, None), zero_min)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.invocations == 0 and r.error_rate is None


def test_errors_beyond_the_whole_budget_breach_before_min_invocations_is_reached() -> None:
    # budget: 1 % of 100 = 1 error; 2 errors in 20 requests cannot be rescued by the next 80
    r = judge_variant(V, VariantMetrics(20, 2, 10.0), THRESHOLDS)
    assert r.verdict is Verdict.BREACH
    assert "2 errors already exceed the 1.00% allowed over min_invocations=100" in r.reasons[0]
    # 1 error in 20 can still end within budget: inconclusive
    assert judge_variant(V, VariantMetrics(20, 1, 10.0), THRESHOLDS).verdict is Verdict.INCONCLUSIVE


def test_missing_latency_with_enough_traffic_is_inconclusive() -> None:
    r = judge_variant(V, VariantMetrics(500, 0, None), THRESHOLDS)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reasons == ["no ModelLatency p99 datapoint in the window"]


def test_missing_error_datapoints_count_as_zero_and_say_so() -> None:
    r = judge_variant(V, VariantMetrics(500, None, 20.0), THRESHOLDS)
    assert r.verdict is Verdict.PASS
    assert r.errors == 0
    assert r.reasons == ["no Invocation5XXErrors datapoints: counted as 0 errors"]


def test_zero_weight_variant_is_not_serving_and_does_not_fail_the_canary() -> None:
    release = _release([{"name": "old", "model": "m1", "weight": 0}, {"name": "new", "model": "m2", "weight": 100}])
    report = judge(release, {"new": VariantMetrics(300, 0, 40.0)}, NOW - timedelta(minutes=10), NOW)
    verdicts = {v.name: v.verdict for v in report.variants}
    assert verdicts == {"old": Verdict.NOT_SERVING, "new": Verdict.PASS}
    assert report.verdict is Verdict.PASS and report.ok


def test_overall_verdict_is_pass_only_if_every_serving_variant_passes() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 90}, {"name": "b", "model": "m2", "weight": 10}])
    good, few, bad = VariantMetrics(900, 0, 30.0), VariantMetrics(50, 0, 30.0), VariantMetrics(900, 90, 30.0)
    start = NOW - timedelta(minutes=10)
    assert judge(release, {"a": good, "b": good}, start, NOW).verdict is Verdict.PASS
    assert judge(release, {"a": good, "b": few}, start, NOW).verdict is Verdict.INCONCLUSIVE
    assert judge(release, {"a": good}, start, NOW).verdict is Verdict.INCONCLUSIVE  # no datapoints for b
    assert judge(release, {"a": bad, "b": few}, start, NOW).verdict is Verdict.BREACH


def test_window_ends_at_now_rounded_up_to_the_second() -> None:
    start, end = window_for(datetime(2026, 11, 25, 14, 0, 0, 300, tzinfo=UTC), 10)
    assert end == datetime(2026, 11, 25, 14, 0, 1, tzinfo=UTC)
    assert end - start == timedelta(minutes=10)


def test_since_starts_the_window_after_the_apply_but_never_widens_it() -> None:
    now = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
    start, end = window_for(now, 10, since=now - timedelta(minutes=2, microseconds=-5))
    assert (start, end) == (now - timedelta(minutes=2), now)
    start, _ = window_for(now, 10, since=now - timedelta(hours=1))  # older than the bake window: ignored
    assert start == now - timedelta(minutes=10)


# ---------------------------------------------------------------------------------------------------------------
# CloudWatch wrapper: paging and the shape of the query
# ---------------------------------------------------------------------------------------------------------------


def test_get_metric_data_follows_next_token_and_merges_values() -> None:
    client = make_session("us-east-1").client("cloudwatch")
    queries = [
        MetricQuery("v0_invocations", "Invocations", "Sum", (("EndpointName", "e"), ("VariantName", "a"))),
        MetricQuery("v0_latency", "ModelLatency", "p99", (("EndpointName", "e"), ("VariantName", "a"))),
    ]
    start, end = NOW - timedelta(minutes=10), NOW
    expected: dict[str, Any] = {"MetricDataQueries": ANY, "StartTime": start, "EndTime": end}
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [{"Id": "v0_invocations", "Values": [40.0], "Timestamps": [start]}],
                "NextToken": "page-2",
            },
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "v0_invocations", "Values": [60.0], "Timestamps": [start]},
                    {"Id": "v0_latency", "Values": [12_500.0], "Timestamps": [start]},
                ]
            },
            {**expected, "NextToken": "page-2"},
        )
        values = CloudWatchMetrics(Aws(None, clients={"cloudwatch": client})).get_metric_data(queries, start, end, 600)
        stub.assert_no_pending_responses()
    assert values == {"v0_invocations": [40.0, 60.0], "v0_latency": [12_500.0]}


def test_collect_asks_once_for_every_serving_variant_and_converts_microseconds() -> None:
    release = _release([{"name": "blue", "model": "m1", "weight": 90}, {"name": "green", "model": "m2", "weight": 10}])
    calls: list[tuple[list[MetricQuery], int]] = []

    class FakeMetrics(CloudWatchMetrics):
        def __init__(self) -> None:
            pass

        def get_metric_data(
            self, queries: Any, start: datetime, end: datetime, period_seconds: int
        ) -> dict[str, list[float]]:
            calls.append((list(queries), period_seconds))
            return {
                "v0_invocations": [120.0, 30.0],
                "v0_errors": [1.0],
                "v0_latency": [40_000.0, 55_000.0],
                "v1_invocations": [15.0],
            }

    metrics, start, end = canary.collect(FakeMetrics(), release, NOW)
    assert len(calls) == 1
    queries, period = calls[0]
    assert period == 600 and end - start == timedelta(minutes=10)
    assert sorted((q.metric, q.stat, dict(q.dimensions)["VariantName"]) for q in queries) == [
        ("Invocation5XXErrors", "Sum", "blue"),
        ("Invocation5XXErrors", "Sum", "green"),
        ("Invocations", "Sum", "blue"),
        ("Invocations", "Sum", "green"),
        ("ModelLatency", "p99", "blue"),
        ("ModelLatency", "p99", "green"),
    ]
    assert metrics["blue"] == VariantMetrics(150.0, 1.0, 55.0)  # sums added, the largest p99 kept, in ms
    assert metrics["green"] == VariantMetrics(15.0, None, None)


# ---------------------------------------------------------------------------------------------------------------
# waiting with an injected clock
# ---------------------------------------------------------------------------------------------------------------


class ScriptedMetrics(CloudWatchMetrics):
    """Answers each poll with the next scripted invocation count for every variant."""

    def __init__(self, invocations: list[float]) -> None:
        self.invocations = invocations
        self.calls = 0

    def get_metric_data(
        self, queries: Any, start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, list[float]]:
        n = self.invocations[min(self.calls, len(self.invocations) - 1)]
        self.calls += 1
        out: dict[str, list[float]] = {}
        for q in queries:
            out[q.id] = {"Invocations": [n], "Invocation5XXErrors": [0.0], "ModelLatency": [20_000.0]}[q.metric]
        return out


class FakeTime:
    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_wait_polls_until_enough_invocations_then_passes() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    t = FakeTime()
    metrics = ScriptedMetrics([10, 60, 150])
    report = analyse(release, metrics, clock=t.clock, sleep=t.sleep, wait=True, timeout_seconds=300, poll_seconds=30)
    assert report.verdict is Verdict.PASS
    assert report.polls == 3 and t.slept == [30, 30]
    assert report.window_end == NOW + timedelta(seconds=60)  # the window moves with the clock


def test_wait_gives_up_inconclusive_at_the_timeout() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    t = FakeTime()
    report = analyse(
        release, ScriptedMetrics([5]), clock=t.clock, sleep=t.sleep, wait=True, timeout_seconds=100, poll_seconds=30
    )
    assert report.verdict is Verdict.INCONCLUSIVE and not report.ok
    assert sum(t.slept) == 100 and t.slept[-1] == 10  # the last sleep is cut to the timeout


def test_without_wait_a_single_poll_decides() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    t = FakeTime()
    report = analyse(release, ScriptedMetrics([5, 500]), clock=t.clock, sleep=t.sleep)
    assert report.verdict is Verdict.INCONCLUSIVE and report.polls == 1 and t.slept == []


def test_report_json_names_the_verdict_and_numbers() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    report: CanaryReport = judge(release, {"a": VariantMetrics(200, 10, 30.0)}, NOW - timedelta(minutes=10), NOW)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["verdict"] == "breach" and doc["ok"] is False
    assert doc["variants"][0]["error_rate"] == pytest.approx(0.05)
    assert doc["thresholds"]["max_error_rate"] == 0.01
    assert "a: breach: error rate 5.00% > max 1.00%" in report.summary()


# ---------------------------------------------------------------------------------------------------------------
# against the emulator: metrics stored in (emulated) CloudWatch, p99 computed by it, the CLI end to end
# ---------------------------------------------------------------------------------------------------------------


def _valid_release_file(root: Path, variants: list[dict[str, Any]], canary: dict[str, Any]) -> Path:
    """The project's dev release with these variants (models m1/m2 copied from its model) and canary, in a
    repository layout holding the data it pins: it passes the strict loader."""
    import shutil

    import yaml

    project = Path(__file__).resolve().parents[1]
    shutil.copytree(project / "data", root / "data")
    doc = yaml.safe_load((project / "releases" / "dev.yaml").read_text())
    model = next(iter(doc["models"].values()))
    doc["models"] = {"m1": model, "m2": json.loads(json.dumps({**model, "seed": model["seed"] + 1}))}
    doc.update(variants=variants, canary=canary)
    path = root / "releases" / "dev.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _put(cw: Any, variant: str, metric: str, values: list[float], at: datetime, unit: str = "None") -> None:
    dims = [{"Name": "EndpointName", "Value": "smgitops-dev"}, {"Name": "VariantName", "Value": variant}]
    for i in range(0, len(values), 500):
        cw.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": metric, "Dimensions": dims, "Value": v, "Timestamp": at, "Unit": unit}
                for v in values[i : i + 500]
            ],
        )


def test_analysis_of_metrics_stored_in_cloudwatch(emulator: Any, tmp_path: Path, capsys: Any) -> None:
    cw = make_session("us-east-1").client("cloudwatch")
    at = NOW - timedelta(minutes=3)
    # primary: 200 invocations, 1 error, latencies 1..200 ms -> p99 = 198 ms (SageMaker reports microseconds)
    _put(cw, "primary", "Invocations", [1.0] * 200, at)
    _put(cw, "primary", "Invocation5XXErrors", [0.0] * 199 + [1.0], at)
    _put(cw, "primary", "ModelLatency", [ms * 1000.0 for ms in range(1, 201)], at, unit="Microseconds")
    # candidate: 120 invocations, 6 errors (5 %)
    _put(cw, "candidate", "Invocations", [1.0] * 120, at)
    _put(cw, "candidate", "Invocation5XXErrors", [1.0] * 6, at)
    _put(cw, "candidate", "ModelLatency", [20_000.0] * 120, at, unit="Microseconds")
    # outside the window (older than the bake minutes): must not count
    _put(cw, "candidate", "Invocation5XXErrors", [1.0] * 50, NOW - timedelta(minutes=30))

    release = _release(
        [{"name": "primary", "model": "m1", "weight": 90}, {"name": "candidate", "model": "m2", "weight": 10}],
        max_p99_latency_ms=250,
        max_error_rate=0.01,
    )
    report = analyse(release, CloudWatchMetrics(Aws.for_region("us-east-1")), clock=lambda: NOW)
    by_name = {v.name: v for v in report.variants}
    assert (by_name["primary"].invocations, by_name["primary"].errors) == (200, 1)
    assert by_name["primary"].p99_latency_ms == pytest.approx(198.0, abs=1.0)
    assert by_name["primary"].verdict is Verdict.PASS
    assert (by_name["candidate"].invocations, by_name["candidate"].errors) == (120, 6)
    assert by_name["candidate"].verdict is Verdict.BREACH
    assert by_name["candidate"].reasons == ["error rate 5.00% > max 1.00% (6 errors in 120 invocations)"]
    assert report.verdict is Verdict.BREACH

    # the command: JSON report, exit 1 on the breach
    from smgitops import cli

    path = _valid_release_file(tmp_path, release.raw["variants"], release.raw["canary"])
    since = (NOW - timedelta(minutes=10)).isoformat()  # no endpoint here to take its last update from
    code = cli.main(["canary", str(path), "--json", "--now", NOW.isoformat(), "--since", since])
    captured = capsys.readouterr()
    assert captured.err == ""
    out = json.loads(captured.out)
    assert code == 1 and out["verdict"] == "breach"
    assert out["window"]["since_from"] == f"--since {since}"
    assert [v["verdict"] for v in out["variants"]] == ["pass", "breach"]


def test_a_virtual_bake_window_is_announced_on_stderr_also_with_json(
    emulator: Any, tmp_path: Path, capsys: Any
) -> None:
    from smgitops import cli

    release = _release([{"name": "primary", "model": "m1", "weight": 100}])
    path = _valid_release_file(tmp_path, release.raw["variants"], release.raw["canary"])
    since = datetime.now(UTC).isoformat()
    code = cli.main(["canary", str(path), "--json", "--wait", "--timeout", "0", "--since", since])
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout stays one JSON document
    assert code == 1 and out["verdict"] == "inconclusive"
    # a machine-readable run (deploy.yml runs deploy --json) must not pass a virtual bake off as a real one
    assert "virtual time" in captured.err


def _endpoint(sm: Any, config: str, variants: list[str]) -> None:
    """An endpoint configuration of ``variants`` (equal weights), its models created; nothing is served for real."""
    for v in variants:
        sm.create_model(
            ModelName=f"{config}-{v}",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/smgitops-sagemaker",
            PrimaryContainer={"Image": "sklearn", "ModelDataUrl": f"s3://artifacts/{config}/{v}/model.tar.gz"},
        )
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": v, "ModelName": f"{config}-{v}", "InstanceType": "ml.t2.medium",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}
            for v in variants
        ],
    )  # fmt: skip


def _good_traffic(cw: Any, variant: str, count: int, at: datetime) -> None:
    _put(cw, variant, "Invocations", [1.0] * count, at)
    _put(cw, variant, "Invocation5XXErrors", [0.0] * count, at)
    _put(cw, variant, "ModelLatency", [20_000.0] * count, at, unit="Microseconds")


def test_without_since_invocations_before_the_last_update_never_count(
    emulator: Any, emulator_admin: Any, tmp_path: Path, capsys: Any
) -> None:
    """The window starts at the live configuration's last update (DescribeEndpoint's LastModifiedTime): 50 good
    invocations per variant served before the update (the canary's min_invocations) would pass a canary that has
    seen nothing of the new configuration; they are not counted, only the 7 served after it."""
    from smgitops import cli

    sm = make_session("us-east-1").client("sagemaker")
    cw = make_session("us-east-1").client("cloudwatch")
    release = _release(
        [{"name": "primary", "model": "m1", "weight": 90}, {"name": "candidate", "model": "m2", "weight": 10}],
        min_invocations=50,
    )
    path = _valid_release_file(tmp_path, release.raw["variants"], release.raw["canary"])
    _endpoint(sm, "old", ["primary", "candidate"])
    _endpoint(sm, "new", ["primary", "candidate"])
    sm.create_endpoint(EndpointName="smgitops-dev", EndpointConfigName="old")
    emulator_admin.advance_clock(60)
    sm.update_endpoint(EndpointName="smgitops-dev", EndpointConfigName="new")
    emulator_admin.advance_clock(60)  # the update completes: InService on "new"
    described = sm.describe_endpoint(EndpointName="smgitops-dev")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "new")
    updated = described["LastModifiedTime"].astimezone(UTC)

    for variant in ("primary", "candidate"):
        _good_traffic(cw, variant, 50, updated - timedelta(minutes=3))  # served by "old"
        _good_traffic(cw, variant, 7, updated + timedelta(seconds=30))  # served by "new"
    now = (updated + timedelta(minutes=2)).isoformat()  # a bake window of 10 min would reach back 8 min

    code = cli.main(["canary", str(path), "--json", "--now", now])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "inconclusive"
    assert out["window"]["start"] == updated.replace(microsecond=0).isoformat()
    assert out["window"]["since_from"].startswith("the endpoint's last update")
    assert {v["name"]: v["invocations"] for v in out["variants"]} == {"primary": 7, "candidate": 7}

    # an explicit --since earlier than the update is the user's choice: then the old traffic counts (and passes)
    since = (updated - timedelta(minutes=8)).isoformat()
    code = cli.main(["canary", str(path), "--json", "--now", now, "--since", since])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["verdict"] == "pass"
    assert {v["name"]: v["invocations"] for v in out["variants"]} == {"primary": 57, "candidate": 57}


def test_an_endpoint_not_serving_has_no_canary(emulator: Any, emulator_admin: Any, tmp_path: Path, capsys: Any) -> None:
    from smgitops import cli

    sm = make_session("us-east-1").client("sagemaker")
    release = _release([{"name": "primary", "model": "m1", "weight": 100}])
    path = _valid_release_file(tmp_path, release.raw["variants"], release.raw["canary"])
    assert cli.main(["canary", str(path)]) == 1
    assert "endpoint smgitops-dev does not exist" in capsys.readouterr().err
    _endpoint(sm, "first", ["primary"])
    emulator_admin.set_update_delay(300)
    sm.create_endpoint(EndpointName="smgitops-dev", EndpointConfigName="first")
    assert cli.main(["canary", str(path)]) == 1
    assert "endpoint smgitops-dev is Creating, not InService" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# baking: a pass needs the whole bake window since the apply; a breach does not wait
# ---------------------------------------------------------------------------------------------------------------


def test_a_pass_needs_a_complete_bake_window_a_breach_does_not() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    since = NOW - timedelta(minutes=2)
    good = judge(release, {"a": VariantMetrics(500, 0, 20.0)}, since, NOW)
    assert good.variants[0].verdict is Verdict.PASS and not good.bake_complete
    assert good.verdict is Verdict.INCONCLUSIVE
    assert "observed 120 s of the 10-minute bake window" in good.summary()
    bad = judge(release, {"a": VariantMetrics(500, 50, 20.0)}, since, NOW)
    assert bad.verdict is Verdict.BREACH


def test_waiting_bakes_for_the_whole_window_then_passes() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])
    t = FakeTime()
    since = NOW - timedelta(seconds=5)
    report = analyse(
        release, ScriptedMetrics([500]), clock=t.clock, sleep=t.sleep, wait=True, timeout_seconds=900,
        poll_seconds=60, since=since,
    )  # fmt: skip
    assert report.verdict is Verdict.PASS and report.bake_complete
    assert report.window_start == since and report.window_end - report.window_start == timedelta(minutes=10)
    assert t.slept == [60.0] * 9 + [55.0]  # the last sleep lands exactly on the end of the bake


def test_waiting_stops_at_a_breach_without_baking() -> None:
    release = _release([{"name": "a", "model": "m1", "weight": 100}])

    class Failing(ScriptedMetrics):
        def get_metric_data(self, queries: Any, start: datetime, end: datetime, period: int) -> dict[str, list[float]]:
            out = super().get_metric_data(queries, start, end, period)
            return {k: ([40.0] if k.endswith("_errors") else v) for k, v in out.items()}

    t = FakeTime()
    report = analyse(release, Failing([500]), clock=t.clock, sleep=t.sleep, wait=True, since=NOW)
    assert report.verdict is Verdict.BREACH and t.slept == []


def test_virtual_clock_moves_only_when_slept_and_never_lags_real_time() -> None:
    from smgitops.clock import VirtualClock, utc_now

    vc = VirtualClock()
    first = vc.now()
    assert first <= utc_now()
    vc.sleep(600)
    assert vc.now() - first >= timedelta(seconds=600) and vc.slept == 600
