"""The emulator answers GetMetricData query by query over the datapoints each query can use: the same answer as
moto's, which compares every datapoint with every query in every period."""

from __future__ import annotations

import random
import types
from datetime import UTC, datetime, timedelta
from typing import Any

from smgitops.emulator.extensions import metric_data_query_by_query, metrics_for_the_query

ENDPOINTS = ("smgitops-dev", "smgitops-prod")
VARIANTS = ("primary", "candidate")
NAMES = ("Invocations", "Invocation5XXErrors", "ModelLatency")


def _backend_with_datapoints(start: datetime) -> Any:
    from moto.cloudwatch.models import CloudWatchBackend

    backend = CloudWatchBackend("us-east-1", "123456789012")
    rng = random.Random(7)
    for _ in range(600):
        endpoint, variant, name = rng.choice(ENDPOINTS), rng.choice(VARIANTS), rng.choice(NAMES)
        namespace = rng.choice(("AWS/SageMaker", "AWS/SageMaker", "Custom"))
        backend.put_metric_data(
            namespace,
            [
                {
                    "MetricName": name,
                    "Value": rng.random() * 100,
                    "Unit": rng.choice(("Count", "Microseconds")),
                    "Timestamp": start + timedelta(seconds=rng.randrange(0, 900)),
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                }
            ],
        )
    return backend


def _stat(i: int, name: str, stat: str, dimensions: list[dict[str, str]] | None, **extra: Any) -> dict[str, Any]:
    metric: dict[str, Any] = {"Namespace": "AWS/SageMaker", "MetricName": name}
    if dimensions is not None:
        metric["Dimensions"] = dimensions
    return {"Id": f"q{i}", "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat, **extra}}


def test_query_by_query_answers_as_moto_does() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    backend = _backend_with_datapoints(start)
    queries = [
        _stat(i, name, stat, [{"Name": "EndpointName", "Value": e}, {"Name": "VariantName", "Value": v}])
        for i, (e, v, name, stat) in enumerate(
            (e, v, n, s) for e in ENDPOINTS for v in VARIANTS for n in NAMES for s in ("Sum", "Average", "Maximum")
        )
    ]
    queries.append(_stat(len(queries), "Invocations", "Sum", None))  # no dimensions: by namespace
    queries.append(_stat(len(queries), "ModelLatency", "Sum", None, Unit="Microseconds"))
    queries[3]["ReturnData"] = False
    plain = CloudWatchBackend.get_metric_data(backend, queries, start, start + timedelta(minutes=10))

    backend.get_all_metrics = types.MethodType(metrics_for_the_query(CloudWatchBackend.get_all_metrics), backend)
    fast = metric_data_query_by_query(CloudWatchBackend.get_metric_data)
    answered = fast(backend, queries, start, start + timedelta(minutes=10))
    assert answered == plain
    assert sum(len(r["values"]) for r in plain) > 100  # the queries found datapoints in most periods
    assert "q3" not in {r["id"] for r in answered}
    assert len(backend.get_all_metrics()) == 600  # outside a query, every datapoint is there

    expression = [*queries[:2], {"Id": "e1", "Expression": "q0 + q1"}]
    assert fast(backend, expression, start, start + timedelta(minutes=10)) == CloudWatchBackend.get_metric_data(
        backend, expression, start, start + timedelta(minutes=10)
    )
