"""InvokeEndpoint for real, per-variant CloudWatch metrics and fault injection on the emulator.

Each test's docstring states the AWS behaviour it reproduces and why the project depends on it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from typing import Any

import joblib
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from smgitops.aws import make_session
from smgitops.emulator.admin import AdminClient
from smgitops.emulator.extensions import percentile
from smgitops.emulator.invoke import pick_variant
from smgitops.emulator.server import Emulator
from smgitops.training import inference_source, pack

ROLE = "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "smgitops-artifacts"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})

# A serving script with the container contract but no model: answers the variant's name; "bad" is a client
# error (status_code 422), "boom" a crash, "loud" prints 200 kB.
STUB_INFERENCE = b"""
class BadRequest(ValueError):
    status_code = 422

def model_fn(model_dir):
    with open(model_dir + "/name.txt") as fh:
        return fh.read()

def input_fn(body, content_type):
    if body == b"bad":
        raise BadRequest("the body is bad")
    if body == b"boom":
        raise RuntimeError("the model crashed")
    if body == b"loud":
        print("x" * 200000)
    return body

def predict_fn(data, model):
    return {"variant_model": model, "echo": data.decode()}

def output_fn(prediction, accept):
    import json
    return json.dumps(prediction, sort_keys=True)
"""


def _client(service: str) -> Any:
    return make_session("us-east-1").client(service, config=NO_RETRY)  # type: ignore[call-overload]


def _sklearn_artifact() -> bytes:
    from sklearn.linear_model import LogisticRegression

    features = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    labels = [0, 0, 0, 1, 1, 1]
    estimator = LogisticRegression(random_state=0).fit(features, labels)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    manifest = {"model_id": "iris-lr", "features": ["a", "b"], "classes": [0, 1]}
    return pack(
        {
            "model.joblib": buffer.getvalue(),
            "manifest.json": json.dumps(manifest).encode(),
            "code/inference.py": inference_source(),
        }
    )


def _stub_artifact(name: str) -> bytes:
    return pack({"name.txt": name.encode(), "code/inference.py": STUB_INFERENCE})


def _deploy(
    sm: Any, s3: Any, endpoint: str, variants: dict[str, tuple[float, bytes]], config: str | None = None
) -> None:
    """Upload each variant's artifact, create its model, one endpoint configuration and the endpoint."""
    for variant, (_, artifact) in variants.items():
        key = f"models/{variant}/model.tar.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=artifact)
        sm.create_model(
            ModelName=f"{endpoint}-{variant}",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"},
        )
    sm.create_endpoint_config(
        EndpointConfigName=config or f"{endpoint}-config",
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": f"{endpoint}-{variant}",
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
            for variant, (weight, _) in variants.items()
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config or f"{endpoint}-config")


@pytest.fixture()
def aws(emulator: Emulator) -> tuple[Any, Any, Any, Any]:
    s3 = _client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return _client("sagemaker"), _client("sagemaker-runtime"), s3, _client("cloudwatch")


def _metric(cw: Any, endpoint: str, variant: str, name: str, stat: str) -> float | None:
    now = dt.datetime.now(dt.UTC)
    result = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": name,
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": endpoint},
                            {"Name": "VariantName", "Value": variant},
                        ],
                    },
                    "Period": 3600,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - dt.timedelta(minutes=30),
        EndTime=now + dt.timedelta(minutes=30),
    )["MetricDataResults"][0]["Values"]
    return float(sum(result)) if result else None


def test_invoke_runs_the_artifacts_inference_script(aws: Any, emulator_admin: AdminClient) -> None:
    """SageMaker's scikit-learn container loads model.tar.gz, calls model_fn once, then input_fn/predict_fn/
    output_fn per request, and names the variant in x-Amzn-Invoked-Production-Variant. The smoke inference of
    ``smgitops deploy`` and the canary traffic of the demo run the real serving script this way."""
    sm, runtime, s3, cw = aws
    _deploy(sm, s3, "churn", {"blue": (1.0, _sklearn_artifact())})
    answers = []
    loads = []  # the emulator's cache is per process and content-addressed: count what these requests add
    for _ in range(3):
        loads.append(emulator_admin.stats()["artifact_loads"])
        response = runtime.invoke_endpoint(
            EndpointName="churn",
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"instances": [[0.0, 0.0], [3.0, 3.0]]}),
        )
        assert response["InvokedProductionVariant"] == "blue"
        assert response["ContentType"] == "application/json"
        answers.append(json.loads(response["Body"].read()))
    assert answers[0]["predictions"] == [0, 1]
    assert answers[0]["model"] == "iris-lr"
    assert answers[0] == answers[1] == answers[2]
    # extracted and model_fn'd at most once (not at all if an earlier test on this emulator served the same bytes),
    # never per request
    after = emulator_admin.stats()["artifact_loads"]
    assert after - loads[0] <= 1 and loads[1] == loads[2] == after
    csv = runtime.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body="a,b\n3,3\n")
    assert json.loads(csv["Body"].read())["predictions"] == [1]
    assert _metric(cw, "churn", "blue", "Invocations", "Sum") == 4.0
    assert _metric(cw, "churn", "blue", "Invocation5XXErrors", "Sum") == 0.0


def test_container_errors_are_model_errors(aws: Any) -> None:
    """A non-2xx answer of the container reaches the client as ModelError (HTTP 424) with OriginalStatusCode,
    OriginalMessage and LogStreamArn, and counts in Invocation4XXErrors or Invocation5XXErrors. The serving
    script's contract: an exception with an integer status_code is that status, any other one a 500."""
    sm, runtime, s3, cw = aws
    _deploy(sm, s3, "ep", {"blue": (1.0, _stub_artifact("blue"))})
    with pytest.raises(ClientError) as client_error:
        runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"bad")
    error = client_error.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 422
    assert "the body is bad" in error["OriginalMessage"]
    assert error["LogStreamArn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep"
    assert error["Error"]["Message"].startswith("Received client error (422) from primary with message")
    with pytest.raises(ClientError) as server_error:
        runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"boom")
    assert server_error.value.response["OriginalStatusCode"] == 500
    assert "RuntimeError: the model crashed" in server_error.value.response["OriginalMessage"]
    runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"fine")
    assert _metric(cw, "ep", "blue", "Invocations", "Sum") == 3.0
    assert _metric(cw, "ep", "blue", "Invocation4XXErrors", "Sum") == 1.0
    assert _metric(cw, "ep", "blue", "Invocation5XXErrors", "Sum") == 1.0
    assert _metric(cw, "ep", "blue", "Invocation5XXErrors", "Average") == pytest.approx(1 / 3)


def test_inference_output_goes_to_the_log(aws: Any, emulator: Emulator) -> None:
    """What a serving script prints goes to the emulator's log (as a container's stdout goes to CloudWatch Logs)
    and never blocks the server, however much it prints."""
    sm, runtime, s3, _ = aws
    _deploy(sm, s3, "ep", {"blue": (1.0, _stub_artifact("blue"))})
    for _ in range(3):
        response = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"loud")
        assert json.loads(response["Body"].read())["echo"] == "loud"
    assert emulator.log_path is not None and "x" * 1000 in emulator.log_path.read_text()


def test_unknown_endpoint_is_a_validation_error(aws: Any) -> None:
    """InvokeEndpoint on a missing endpoint: ValidationError (400) "Endpoint X of account Y not found."."""
    _, runtime, _, _ = aws
    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="text/plain", Body=b"x")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == "Endpoint nope of account 123456789012 not found."


def test_traffic_is_split_by_weight_and_target_variant_is_honoured(aws: Any, emulator_admin: AdminClient) -> None:
    """SageMaker routes each request to a variant with probability weight / total weight; a variant of weight 0
    gets nothing unless TargetVariant names it. A canary at 10 % must see about a tenth of the traffic, and a
    drained variant none."""
    sm, runtime, s3, _ = aws
    emulator_admin.seed(7)
    _deploy(
        sm,
        s3,
        "ep",
        {"blue": (9.0, _stub_artifact("blue")), "green": (1.0, _stub_artifact("green")), "red": (0.0, b"")},
    )
    counts = Counter(
        runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x")["InvokedProductionVariant"]
        for _ in range(300)
    )
    assert set(counts) == {"blue", "green"}
    assert 12 <= counts["green"] <= 50  # binomial(300, 0.1): mean 30, sd 5.2

    def sequence() -> list[str]:
        return [
            runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x")["InvokedProductionVariant"]
            for _ in range(30)
        ]

    emulator_admin.seed(11)
    first = sequence()
    emulator_admin.seed(11)
    assert sequence() == first  # reproducible: tests and the demo seed the router
    targeted = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x", TargetVariant="green")
    assert targeted["InvokedProductionVariant"] == "green"
    assert json.loads(targeted["Body"].read())["variant_model"] == "green"
    with pytest.raises(ClientError, match="variant purple is not present"):
        runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x", TargetVariant="purple")


def test_pick_variant_uses_cumulative_weights() -> None:
    """Routing is a pure function of the weights and one uniform draw (the emulator's seeded generator)."""
    weights = [("blue", 0.9), ("green", 0.1), ("red", 0.0)]
    assert pick_variant(weights, 0.0) == "blue"
    assert pick_variant(weights, 0.899) == "blue"
    assert pick_variant(weights, 0.9) == "green"
    assert pick_variant(weights, 0.999999) == "green"
    assert pick_variant([("a", 0.0)], 0.5) is None


def test_update_endpoint_moves_traffic_only_when_in_service(aws: Any, emulator_admin: AdminClient) -> None:
    """During an update SageMaker keeps serving the old configuration; once InService the new variants serve.
    Promotion and rollback are observed through invocations."""
    sm, runtime, s3, _ = aws
    _deploy(sm, s3, "ep", {"blue": (1.0, _stub_artifact("blue"))})
    _deploy_green = {"green": (1.0, _stub_artifact("green"))}
    s3.put_object(Bucket=BUCKET, Key="models/green/model.tar.gz", Body=_deploy_green["green"][1])
    sm.create_model(
        ModelName="ep-green",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/green/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="ep-config-2",
        ProductionVariants=[
            {"VariantName": "green", "ModelName": "ep-green", "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}
        ],
    )
    emulator_admin.set_update_delay(60)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="ep-config-2")
    during = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x")
    assert during["InvokedProductionVariant"] == "blue"
    emulator_admin.advance_clock(60)
    after = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x")
    assert after["InvokedProductionVariant"] == "green"


def test_injected_faults_show_in_metrics(aws: Any, emulator_admin: AdminClient) -> None:
    """Fault injection per variant: error_rate answers that fraction with a container 500 (counted in
    Invocation5XXErrors) and latency_ms adds to ModelLatency (microseconds, as SageMaker reports), read back with
    the p99 statistic. The canary analysis and the auto-rollback journey are driven by exactly these numbers."""
    sm, runtime, s3, cw = aws
    emulator_admin.seed(3)
    _deploy(sm, s3, "ep", {"blue": (1.0, _stub_artifact("blue")), "green": (1.0, _stub_artifact("green"))})
    emulator_admin.inject_fault("ep", "green", error_rate=1.0, latency_ms=750)
    assert emulator_admin.faults() == [{"endpoint": "ep", "variant": "green", "error_rate": 1.0, "latency_ms": 750}]
    for _ in range(10):
        response = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x", TargetVariant="blue")
        assert response["InvokedProductionVariant"] == "blue"
        with pytest.raises(ClientError) as err:
            runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x", TargetVariant="green")
        assert err.value.response["OriginalStatusCode"] == 500
    assert _metric(cw, "ep", "green", "Invocation5XXErrors", "Sum") == 10.0
    assert _metric(cw, "ep", "blue", "Invocation5XXErrors", "Sum") == 0.0
    green_p99 = _metric(cw, "ep", "green", "ModelLatency", "p99")
    blue_p99 = _metric(cw, "ep", "blue", "ModelLatency", "p99")
    assert green_p99 is not None and green_p99 >= 750_000
    assert blue_p99 is not None and blue_p99 < 750_000
    assert (_metric(cw, "ep", "blue", "OverheadLatency", "SampleCount") or 0) == 10.0

    emulator_admin.clear_faults()
    emulator_admin.inject_fault("ep", "green", error_rate=0.5)
    outcomes = Counter()
    for _ in range(200):
        try:
            runtime.invoke_endpoint(EndpointName="ep", ContentType="text/plain", Body=b"x", TargetVariant="green")
            outcomes["ok"] += 1
        except ClientError:
            outcomes["error"] += 1
    assert 70 <= outcomes["error"] <= 130  # binomial(200, 0.5): mean 100, sd 7


def test_percentile_statistics_are_computed(aws: Any) -> None:
    """CloudWatch computes percentile statistics: GetMetricData with Stat "p99" and GetMetricStatistics with
    ExtendedStatistics ["p99"]. moto returns none; the canary's p99 latency check and the p99 alarms need them."""
    _, _, _, cw = aws
    now = dt.datetime.now(dt.UTC)
    dims = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "blue"}]
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "ModelLatency", "Dimensions": dims, "Value": float(v), "Unit": "Microseconds"}
            for v in range(1, 101)
        ],
    )
    assert _metric(cw, "ep", "blue", "ModelLatency", "p99") == 99.0
    assert _metric(cw, "ep", "blue", "ModelLatency", "p50") == 50.0
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=dims,
        StartTime=now - dt.timedelta(minutes=30),
        EndTime=now + dt.timedelta(minutes=30),
        Period=3600,
        ExtendedStatistics=["p99", "p90"],
        Statistics=["SampleCount"],
    )["Datapoints"]
    assert sum(d["SampleCount"] for d in stats) == 100.0
    assert [d["ExtendedStatistics"] for d in stats] == [{"p99": 99.0, "p90": 90.0}]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0], "p99") == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], "p50") == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], "p100") == 4.0
    assert percentile([], "p99") is None
    with pytest.raises(ValueError):
        percentile([1.0], "avg")
