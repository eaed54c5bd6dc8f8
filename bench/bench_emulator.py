"""The local emulator's own costs: start, reset, SageMaker control calls and InvokeEndpoint latency.

Prints medians (and p99 for invocations) measured from a client over HTTPS, as the CLI and tests see them:

* server start (child process until it answers), median of 3; stop;
* admin reset;
* CreateModel + CreateEndpointConfig + CreateEndpoint + DescribeEndpoint until InService (default delay 0);
* InvokeEndpoint with the project's serving script and a scikit-learn model: first call (extract + model_fn) and
  steady state (p50/p99 over 200 calls), with and without an injected 250 ms latency (recorded, not slept).

Usage: ``.venv/bin/python bench/bench_emulator.py``
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import boto3  # noqa: E402
import joblib  # noqa: E402

from smgitops.emulator.extensions import percentile  # noqa: E402
from smgitops.emulator.server import Emulator  # noqa: E402
from smgitops.training import inference_source, pack  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/bench"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def artifact() -> bytes:
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression(random_state=0).fit([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], [0, 0, 1, 1])
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    manifest = {"model_id": "bench", "features": ["a", "b"], "classes": [0, 1]}
    return pack(
        {
            "model.joblib": buffer.getvalue(),
            "manifest.json": json.dumps(manifest).encode(),
            "code/inference.py": inference_source(),
        }
    )


def main() -> int:
    starts, stops = [], []
    for _ in range(3):
        server = Emulator()
        server.start()
        starts.append(server.startup_seconds)
        stops.append(timed(server.stop))
    print(f"server start (child process, answers)   median {statistics.median(starts) * 1000:7.0f} ms")
    print(f"server stop                             median {statistics.median(stops) * 1000:7.0f} ms")

    with Emulator() as emulator:
        os.environ.update(emulator.env())
        session = boto3.session.Session()
        s3: Any = session.client("s3")
        sm: Any = session.client("sagemaker")
        runtime: Any = session.client("sagemaker-runtime")
        resets = [timed(emulator.admin.reset) for _ in range(10)]
        print(f"admin reset                             median {statistics.median(resets) * 1000:7.1f} ms")

        s3.create_bucket(Bucket="bench-artifacts")
        s3.put_object(Bucket="bench-artifacts", Key="m/model.tar.gz", Body=artifact())

        def deploy() -> None:
            sm.create_model(
                ModelName="m",
                ExecutionRoleArn=ROLE,
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench-artifacts/m/model.tar.gz"},
            )
            sm.create_endpoint_config(
                EndpointConfigName="c",
                ProductionVariants=[
                    {"VariantName": "blue", "ModelName": "m", "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}
                ],
            )
            sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
            while sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] != "InService":
                pass

        print(f"create model+config+endpoint, InService        {timed(deploy) * 1000:7.1f} ms")
        body = json.dumps({"instances": [[0.5, 0.5], [2.5, 2.5]]})

        def invoke() -> None:
            runtime.invoke_endpoint(EndpointName="ep", ContentType="application/json", Body=body)["Body"].read()

        print(f"invoke, first call (extract + model_fn)        {timed(invoke) * 1000:7.1f} ms")
        for label in ("invoke, steady state", "invoke, 250 ms injected latency"):
            samples = [timed(invoke) * 1000 for _ in range(200)]
            print(
                f"{label:<40} p50 {statistics.median(samples):7.1f} ms   p99 {percentile(samples, 'p99') or 0:7.1f} ms"
            )
            emulator.admin.inject_fault("ep", "blue", latency_ms=250)
    return 0


if __name__ == "__main__":
    sys.exit(main())
