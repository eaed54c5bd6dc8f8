"""The evening teardown's sweep on the emulator: N managed endpoints past their cut-off, deleted in one run.

Prints the wall time of the sweep, the AWS requests it made (counted at the emulator) and requests per endpoint,
for the concurrency teardown uses (smgitops.aws.TEARDOWN_WORKERS) and for one request at a time.

Usage: ``.venv/bin/python bench/bench_teardown.py [N]`` (default 1000).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import boto3  # noqa: E402

from smgitops.aws import TEARDOWN_WORKERS, Aws  # noqa: E402
from smgitops.emulator.server import Emulator  # noqa: E402
from smgitops.teardown import SageMakerEndpoints, load_schedules, teardown  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/bench"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
AFTER_CUTOFF = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 21:00 in Berlin, past dev's 19:30


def _sagemaker(server: Emulator) -> Any:
    return boto3.session.Session(region_name="us-east-1").client(
        "sagemaker", endpoint_url=server.url, verify=str(server.ca_bundle)
    )


def populate(server: Emulator, count: int) -> None:
    sm = _sagemaker(server)
    sm.create_model(ModelName="bench", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    sm.create_endpoint_config(
        EndpointConfigName="bench",
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": "bench", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    tags = [{"Key": "managed-by", "Value": "smgitops"}, {"Key": "release", "Value": "dev"}]

    def create(i: int) -> None:
        sm.create_endpoint(EndpointName=f"bench-{i:04d}-dev", EndpointConfigName="bench", Tags=tags)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(count)))


def sweep(server: Emulator, count: int, workers: int) -> tuple[float, int]:
    server.admin.reset()
    populate(server, count)
    before = server.admin.stats()["aws_requests"]
    schedules, _ = load_schedules(ROOT / "releases")
    aws = Aws(boto3.session.Session(region_name="us-east-1"))
    began = time.perf_counter()
    report = teardown(
        lambda region: SageMakerEndpoints(aws),
        ["us-east-1"],
        schedules,
        clock=lambda: AFTER_CUTOFF,
        workers=workers,
    )
    seconds = time.perf_counter() - began
    requests = server.admin.stats()["aws_requests"] - before
    deleted = report.to_dict()["counts"]["deleted"]
    assert report.ok and deleted == count, report.to_dict()["counts"]
    return seconds, requests


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    server = Emulator(tls=True).start()
    try:
        os.environ.update(server.env())
        for workers in (TEARDOWN_WORKERS, 1):
            seconds, requests = sweep(server, count, workers)
            print(
                f"teardown of {count} endpoints, {workers} in flight: {seconds:.1f} s, {requests} AWS requests "
                f"({requests / count:.2f} per endpoint)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
