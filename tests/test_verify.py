"""``smgitops verify`` against the emulator: the live endpoint must equal the release, or it is drift (exit 1).

The live resources are made with boto3 directly, the way drift happens (a console edit, a failed update, a
half-finished deploy), and verify is held to what a user relies on: the endpoint exists and is InService, it is
served by the configuration the release names, each variant has the release's model, weight, instance type and
count, no other variant serves, and a FailureReason is never hidden, even on an InService endpoint. Waiting for
Creating/Updating uses an injected clock and sleep that move the emulator's clock, never real time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures_terraform import edit_release
from smgitops import cli, naming
from smgitops.aws import make_session
from smgitops.context import Context
from smgitops.deploy import verify_release
from smgitops.release import Release, load_release
from smgitops.settings import ENV_VARS, Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Settings(
    state_bucket="smgitops-tfstate-123456789012",
    lock_table="smgitops-tflock",
    artifact_bucket="smgitops-artifacts-123456789012",
    execution_role_arn="arn:aws:iam::123456789012:role/smgitops-sagemaker-execution",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-0000-4000-8000-000000000000",
    region="us-east-1",
)
ARCHIVES = {"cancer-logreg": b"archive of cancer-logreg", "cancer-tree": b"archive of cancer-tree"}
DIGESTS = {model_id: hashlib.sha256(data).hexdigest() for model_id, data in ARCHIVES.items()}


@dataclass
class FakeTime:
    """A monotonic clock and a sleep that moves it and the emulator's clock together."""

    admin: Any
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.admin.advance_clock(seconds)


@pytest.fixture()
def fake_time(emulator: Any) -> FakeTime:
    return FakeTime(emulator.admin)


@pytest.fixture()
def sm(emulator: Any) -> Any:
    return make_session("us-east-1").client("sagemaker")


def _release(tmp_path: Path, variants: list[dict[str, Any]] | None = None) -> Release:
    root = tmp_path / "repo"
    for name in ("releases", "data"):
        (root / name).mkdir(parents=True)
        for f in (ROOT / name).iterdir():
            if f.is_file():
                (root / name / f.name).write_bytes(f.read_bytes())

    def mutate(doc: dict[str, Any]) -> None:
        base = doc["models"]["cancer-logreg"]
        doc["models"] = {mid: {**json.loads(json.dumps(base)), "artifact_sha256": d} for mid, d in DIGESTS.items()}
        if variants is not None:
            doc["variants"] = variants

    edit_release(root / "releases" / "dev.yaml", mutate)
    return load_release(root / "releases" / "dev.yaml")


CANARY = [
    {"name": "primary", "model": "cancer-logreg", "weight": 90},
    {"name": "canary", "model": "cancer-tree", "weight": 10},
]


def _create_model(
    sm: Any, model_id: str, digest: str, *, url_digest: str | None = None, environment: str = "dev"
) -> str:
    name = naming.model_name(model_id, environment, digest)
    key = naming.artifact_key(model_id, url_digest or digest)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=SETTINGS.execution_role_arn,
        PrimaryContainer={
            "Image": naming.image_uri("us-east-1", "1.2-1-cpu-py3"),
            "ModelDataUrl": f"s3://{SETTINGS.artifact_bucket}/{key}",
        },
    )
    return name


def _create_config(
    sm: Any, name: str, variants: list[tuple[str, str, float]], instance_type: str = "ml.t2.large"
) -> str:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": vname,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
                "InitialVariantWeight": weight,
            }
            for vname, model, weight in variants
        ],
    )
    return name


def _expected(release: Release) -> str:
    return naming.endpoint_config_name(
        release, artifact_bucket=SETTINGS.artifact_bucket, kms_key_arn=SETTINGS.kms_key_arn
    )


def _deploy(sm: Any, release: Release, fake_time: FakeTime, **overrides: Any) -> str:
    """The release as Terraform would have deployed it, with ``overrides`` to make drift."""
    for model_id in {v.model for v in release.variants}:
        _create_model(sm, model_id, DIGESTS[model_id], url_digest=overrides.get("url_digest"))
    variants = [
        (v.name, naming.model_name(v.model, release.environment, DIGESTS[v.model]), float(v.weight))
        for v in release.variants
    ]
    variants = overrides.get("variants", variants)
    config = _create_config(
        sm, overrides.get("config_name", _expected(release)), variants, overrides.get("instance_type", "ml.t2.large")
    )
    sm.create_endpoint(EndpointName=release.endpoint.name, EndpointConfigName=config)
    fake_time.admin.advance_clock(60)  # Creating -> InService
    return config


def _verify(release: Release, fake_time: FakeTime, timeout: float = 600.0) -> Any:
    return verify_release(
        release,
        Context.for_release(release, settings=SETTINGS, sleep=fake_time.sleep, monotonic=fake_time.clock),
        timeout=timeout,
        poll=5.0,
    )


def test_endpoint_as_released_verifies(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path, CANARY)
    config = _deploy(sm, release, fake_time)
    result = _verify(release, fake_time)
    assert result.ok, result.problems
    assert result.status == "InService" and result.config_name == config
    assert [(v["name"], v["weight"]) for v in result.variants] == [("primary", 90.0), ("canary", 10.0)]


def test_missing_endpoint_is_drift(tmp_path: Path, fake_time: FakeTime) -> None:
    release = _release(tmp_path)
    result = _verify(release, fake_time)
    assert not result.ok
    assert result.problems == [f"endpoint {release.endpoint.name} does not exist"]


def test_wrong_weights_are_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path, CANARY)
    names = {mid: naming.model_name(mid, "dev", d) for mid, d in DIGESTS.items()}
    # Same configuration name as the release (someone reused it), other weights.
    _deploy(
        sm,
        release,
        fake_time,
        variants=[("primary", names["cancer-logreg"], 50.0), ("canary", names["cancer-tree"], 50.0)],
    )
    result = _verify(release, fake_time)
    assert not result.ok
    assert "variant primary: weight 50, release says 90" in result.problems
    assert "variant canary: weight 50, release says 10" in result.problems


def test_weights_changed_on_the_live_endpoint_are_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path, CANARY)
    _deploy(sm, release, fake_time)
    fake_time.admin.set_update_delay(30)  # emulator-clock seconds: only the injected sleep gets it there
    sm.update_endpoint_weights_and_capacities(
        EndpointName=release.endpoint.name,
        DesiredWeightsAndCapacities=[
            {"VariantName": "primary", "DesiredWeight": 0.0},
            {"VariantName": "canary", "DesiredWeight": 100.0},
        ],
    )
    result = _verify(release, fake_time)  # waits out Updating through the injected sleep
    assert sum(fake_time.sleeps) >= 30, "verify must wait while the endpoint is Updating"
    assert result.status == "InService"
    assert "variant primary: weight 0, release says 90" in result.problems
    assert "variant canary: weight 100, release says 10" in result.problems


def test_wrong_configuration_name_is_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path)
    _deploy(sm, release, fake_time, config_name="smgitops-dev-hand-made")
    result = _verify(release, fake_time)
    assert not result.ok
    assert result.problems == [
        f"endpoint smgitops-dev serves configuration smgitops-dev-hand-made, the release gives {_expected(release)}"
    ]


def test_failed_update_leaves_old_config_and_failure_reason(
    tmp_path: Path, sm: Any, fake_time: FakeTime, emulator: Any
) -> None:
    old = _release(tmp_path / "old")
    _deploy(sm, old, fake_time)
    canary = _release(tmp_path / "new", CANARY)
    _create_model(sm, "cancer-tree", DIGESTS["cancer-tree"])
    names = {mid: naming.model_name(mid, "dev", d) for mid, d in DIGESTS.items()}
    new_config = _create_config(
        sm, _expected(canary), [("primary", names["cancer-logreg"], 90.0), ("canary", names["cancer-tree"], 10.0)]
    )
    reason = "The primary container for production variant canary did not pass the ping health check."
    emulator.admin.fail_next_update(canary.endpoint.name, reason)
    sm.update_endpoint(EndpointName=canary.endpoint.name, EndpointConfigName=new_config)

    result = _verify(canary, fake_time)

    assert result.status == "InService"  # SageMaker keeps the old configuration serving
    assert result.failure_reason == reason
    assert f"endpoint smgitops-dev: last update failed: {reason}" in result.problems
    assert result.config_name == _expected(old) != new_config
    assert not result.ok
    # The release that *is* being served is healthy: InService on exactly its configuration; SageMaker keeps the
    # failed update's reason until the next successful update, so it is a note, never drift (no rollback loop).
    served = _verify(old, fake_time)
    assert served.ok and served.problems == []
    assert served.notes == [
        f"endpoint smgitops-dev: an earlier update failed ({reason}); it serves the release's configuration now"
    ]


def test_extra_variant_and_foreign_artifact_are_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path)
    names = {mid: naming.model_name(mid, "dev", d) for mid, d in DIGESTS.items()}
    _create_model(sm, "cancer-tree", DIGESTS["cancer-tree"])
    _deploy(
        sm,
        release,
        fake_time,
        url_digest="c" * 64,
        variants=[("primary", names["cancer-logreg"], 100.0), ("shadow", names["cancer-tree"], 1.0)],
    )
    result = _verify(release, fake_time)
    tree = naming.model_name("cancer-tree", "dev", DIGESTS["cancer-tree"])
    assert f"variant shadow: not in the release (serves {tree} at 1)" in result.problems
    assert any(
        p.startswith(
            f"variant primary: model {naming.model_name('cancer-logreg', 'dev', DIGESTS['cancer-logreg'])} serves s3://"
        )
        for p in result.problems
    )


def test_another_environments_model_is_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    """dev's endpoint on prod's model of the very same artifact: same digest, but a model another state owns."""
    release = _release(tmp_path)
    prod_model = _create_model(sm, "cancer-logreg", DIGESTS["cancer-logreg"], environment="prod")
    _deploy(sm, release, fake_time, variants=[("primary", prod_model, 100.0)])
    dev_model = naming.model_name("cancer-logreg", "dev", DIGESTS["cancer-logreg"])
    result = _verify(release, fake_time)
    assert result.problems == [f"variant primary: model {prod_model}, release says {dev_model}"]


def test_wrong_instance_type_is_drift(tmp_path: Path, sm: Any, fake_time: FakeTime) -> None:
    release = _release(tmp_path)
    _deploy(sm, release, fake_time, instance_type="ml.m5.xlarge")
    result = _verify(release, fake_time)
    assert result.problems == ["variant primary: instance type ml.m5.xlarge, release says ml.t2.large"]


def test_updating_longer_than_the_timeout_fails(tmp_path: Path, sm: Any, fake_time: FakeTime, emulator: Any) -> None:
    release = _release(tmp_path)
    _deploy(sm, release, fake_time)
    emulator.admin.set_update_delay(10_000)
    sm.update_endpoint(EndpointName=release.endpoint.name, EndpointConfigName=_expected(release))
    result = _verify(release, fake_time, timeout=60)
    assert result.status == "Updating"
    assert result.problems[0] == "endpoint smgitops-dev still Updating after 60 s"
    assert sum(fake_time.sleeps) == pytest.approx(60)


def test_cli_exit_codes_and_json(
    tmp_path: Path, sm: Any, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, var in ENV_VARS.items():
        monkeypatch.setenv(var, getattr(SETTINGS, name))
    release = _release(tmp_path)
    # the endpoint against the release only: the state's own check (a refresh-only plan) is tests/test_recovery.py's
    assert cli.main(["verify", str(release.path), "--json", "--no-plan"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["problems"] == ["endpoint smgitops-dev does not exist"]

    _deploy(sm, release, fake_time)
    s3 = make_session("us-east-1").client("s3")
    s3.create_bucket(Bucket=SETTINGS.artifact_bucket)
    for model_id, data in ARCHIVES.items():  # as publish stores them: with S3's SHA-256 checksum
        key = naming.artifact_key(model_id, DIGESTS[model_id])
        s3.put_object(Bucket=SETTINGS.artifact_bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")
    assert cli.main(["verify", str(release.path), "--json", "--no-plan"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["config_name"] == _expected(release)

    # the served archive's stored bytes are not the release's any more: drift, exit 1, both digests named
    key = naming.artifact_key("cancer-logreg", DIGESTS["cancer-logreg"])
    s3.put_object(Bucket=SETTINGS.artifact_bucket, Key=key, Body=b"other bytes")
    assert cli.main(["verify", str(release.path), "--json", "--no-plan"]) == 1
    doc = json.loads(capsys.readouterr().out)
    found = hashlib.sha256(b"other bytes").hexdigest()
    assert doc["problems"] == [
        f"model cancer-logreg: s3://{SETTINGS.artifact_bucket}/{key} holds sha256 {found}, the release pins sha256 "
        f"{DIGESTS['cancer-logreg']} (the stored archive is not the one that was published)"
    ]


def test_failed_endpoint_shows_its_failure_reason(tmp_path: Path) -> None:
    """``Failed`` (a create that never came up) is not reachable on the emulator: SageMaker's answer, stubbed."""
    from datetime import UTC, datetime

    from botocore.stub import Stubber

    from smgitops.aws import Aws

    release = _release(tmp_path)
    client = make_session("us-east-1").client("sagemaker")
    reason = "Image 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:9.9 does not exist."
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "smgitops-dev",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/smgitops-dev",
                "EndpointConfigName": _expected(release),
                "EndpointStatus": "Failed",
                "FailureReason": reason,
                "CreationTime": when,
                "LastModifiedTime": when,
            },
            {"EndpointName": "smgitops-dev"},
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": _expected(release),
                "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x",
                "ProductionVariants": [
                    {
                        "VariantName": "primary",
                        "ModelName": naming.model_name("cancer-logreg", "dev", DIGESTS["cancer-logreg"]),
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.t2.large",
                        "InitialVariantWeight": 100.0,
                    }
                ],
                "CreationTime": when,
            },
            {"EndpointConfigName": _expected(release)},
        )
        stub.add_response(
            "describe_model",
            {
                "ModelName": naming.model_name("cancer-logreg", "dev", DIGESTS["cancer-logreg"]),
                "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/x",
                "PrimaryContainer": {
                    "ModelDataUrl": f"s3://{SETTINGS.artifact_bucket}/"
                    + naming.artifact_key("cancer-logreg", DIGESTS["cancer-logreg"])
                },
                "CreationTime": when,
            },
        )
        sleeps: list[float] = []
        result = verify_release(
            release,
            Context.for_release(
                release, settings=SETTINGS, aws=Aws(None, sleep=sleeps.append, clients={"sagemaker": client})
            ),
        )
    assert sleeps == []  # Failed is final: nothing to wait for
    assert result.problems == ["endpoint smgitops-dev is Failed", f"endpoint smgitops-dev: failed: {reason}"]
    assert not result.ok
