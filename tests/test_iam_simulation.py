"""bootstrap/'s IAM policies proven offline: what the pipeline is refused, and how requests become IAM calls.

Three parts:

* the request log (``smgitops.emulator.iamlog``): the emulator maps each request the pipeline makes to the IAM
  action, resource ARN and condition keys AWS authorises it with, including the calls AWS makes on the caller's
  behalf (``iam:PassRole``, KMS through S3, DynamoDB and SageMaker); an unknown request shape is an error entry;
* attacks: requests each role must NOT be able to make, built from bootstrap's real roles (read back from the
  emulator after applying ``bootstrap/``) and the real names of the releases, judged by the IAM policy simulator
  ``@cloud-copilot/iam-simulate`` (tests/iam_judge.py). Each attack names the finding it proves; most have a
  *control*, the same request made legitimately, which must be allowed (so a denial is the policy's doing, not a
  malformed case);
* trust: who may assume each GitHub role, checked explicitly on the OIDC claims (the simulator ignores OIDC keys).

The calls the workflows really make are judged in tests/test_workflows.py
(``test_every_aws_call_of_the_story_is_allowed_by_its_role``), on the story's own log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from iam_judge import DENIED, ROOT, AccountPolicies, Case, require_simulator, simulate, trust_allows
from smgitops import naming
from smgitops.aws import make_session
from smgitops.emulator import iamlog
from smgitops.release import load_release

# ---------------------------------------------------------------------------------------------------------------
# The request log on the real emulator
# ---------------------------------------------------------------------------------------------------------------

KEY = "ASIAPROBE00000000001"


def _session(key: str | None = KEY) -> Any:
    """A session signing with ``key`` (None: the environment's key, the emulator's harness), on botocore's session of
    :func:`smgitops.aws.make_session`: it shares the process's parsed service models, where a plain boto3 session
    parses each service's JSON again (about 0.1 s a client, sagemaker's more)."""
    core = botocore.session.Session()
    core.register_component("data_loader", make_session("us-east-1").core.get_component("data_loader"))
    if key is None:
        return boto3.session.Session(botocore_session=core, region_name="us-east-1")
    return boto3.session.Session(
        botocore_session=core, aws_access_key_id=key, aws_secret_access_key="x", region_name="us-east-1"
    )


def _calls(entries: list[dict[str, Any]], key: str = KEY) -> list[tuple[str, str, dict[str, Any], str]]:
    out = []
    for e in entries:
        if e["access_key"] != key:
            continue
        assert e["error"] is None, e
        out += [(c["action"], c["resource"], c["context"], c["via"]) for c in e["calls"]]
    return out


def test_the_log_maps_s3_sagemaker_dynamodb_cloudwatch_and_kms_requests(emulator: Any) -> None:
    admin = emulator.admin
    harness = _session(None)  # the emulator's dummy key: the harness
    kms = harness.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/probe", TargetKeyId=key_arn)
    s3h = harness.client("s3")
    s3h.create_bucket(Bucket="probe-artifacts")
    s3h.put_bucket_encryption(
        Bucket="probe-artifacts",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/probe"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    ddb = harness.client("dynamodb")
    ddb.create_table(
        TableName="probe-lock",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
    )
    role_arn = harness.client("iam").create_role(RoleName="probe-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    admin.start_iam_log()
    s = _session()
    s3 = s.client("s3")
    s3.put_object(Bucket="probe-artifacts", Key="models/m/sha256=1/model.tar.gz", Body=b"x", IfNoneMatch="*")
    s3.get_object(Bucket="probe-artifacts", Key="models/m/sha256=1/model.tar.gz")
    s3.head_object(Bucket="probe-artifacts", Key="models/m/sha256=1/model.tar.gz", ChecksumMode="ENABLED")
    s3.list_objects_v2(Bucket="probe-artifacts", Prefix="models/m/")
    s3.get_bucket_versioning(Bucket="probe-artifacts")
    with pytest.raises(s3.exceptions.ClientError, match="404"):
        s3.head_object(Bucket="probe-artifacts", Key="models/m/sha256=2/model.tar.gz")  # not published yet
    s3.delete_objects(Bucket="probe-artifacts", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    sm = s.client("sagemaker")
    tags = [{"Key": "managed-by", "Value": "smgitops"}, {"Key": "release", "Value": "dev"}]
    sm.create_model(
        ModelName="m-dev-0123456789ab",
        ExecutionRoleArn=role_arn,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://probe-artifacts/models/m/sha256=1/model.tar.gz"},
        Tags=tags,
    )
    sm.create_endpoint_config(
        EndpointConfigName="probe-dev-01234567",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "m-dev-0123456789ab",
                "InstanceType": "ml.t2.large",
                "InitialInstanceCount": 1,
            }
        ],
        KmsKeyId="alias/probe",
        Tags=tags,
    )
    sm.create_endpoint(EndpointName="probe-dev", EndpointConfigName="probe-dev-01234567", Tags=tags)
    endpoint_arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/probe-dev"
    sm.add_tags(ResourceArn=endpoint_arn, Tags=[{"Key": "release", "Value": "prod"}])
    s.client("dynamodb").put_item(TableName="probe-lock", Item={"LockID": {"S": "b/smgitops/dev.tfstate"}})
    cw = s.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="probe-dev/primary/5xx-rate",
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "release", "Value": "dev"}],
    )
    cw.delete_alarms(AlarmNames=["probe-dev/primary/5xx-rate"])
    s.client("sts").get_caller_identity()
    s.client("sqs").list_queues()  # moto serves it; the log has no IAM mapping for it and says so
    entries = admin.iam_log()
    admin.stop_iam_log()

    calls = _calls([e for e in entries if e["path"] != "/" or e["calls"]])
    obj = "arn:aws:s3:::probe-artifacts/models/m/sha256=1/model.tar.gz"
    secure = {"aws:SecureTransport": "true"}
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": "123456789012"}
    assert ("s3:PutObject", obj, {**secure, "s3:if-none-match": "*"}, "") in calls
    generate = [c for c in calls if c[0] == "kms:GenerateDataKey"]
    assert generate and generate[0][1] == key_arn and generate[0][3] == "s3:PutObject"
    assert via_s3.items() <= generate[0][2].items()
    decrypts = [c for c in calls if c[0] == "kms:Decrypt" and c[3] == "s3:GetObject"]
    assert len(decrypts) == 1  # GetObject reads the bytes; HeadObject asks KMS nothing
    assert ("s3:GetObject", obj, secure, "") in calls
    assert ("s3:ListBucket", "arn:aws:s3:::probe-artifacts", {**secure, "s3:prefix": "models/m/"}, "") in calls
    assert ("s3:GetBucketVersioning", "arn:aws:s3:::probe-artifacts", secure, "") in calls
    # 404 rather than 403 for a missing key needs s3:ListBucket: recorded for the miss only
    assert [c for c in calls if c[0] == "s3:ListBucket" and c[3]] == [
        ("s3:ListBucket", "arn:aws:s3:::probe-artifacts", secure, "s3:GetObject")
    ]
    deletes = [c[1] for c in calls if c[0] == "s3:DeleteObject"]
    assert deletes == ["arn:aws:s3:::probe-artifacts/a", "arn:aws:s3:::probe-artifacts/b"]

    model_arn = "arn:aws:sagemaker:us-east-1:123456789012:model/m-dev-0123456789ab"
    request_tags = {"aws:RequestTag/managed-by": "smgitops", "aws:RequestTag/release": "dev"}
    assert (
        "sagemaker:CreateModel",
        model_arn,
        {**secure, **request_tags, "aws:TagKeys": ["managed-by", "release"]},
        "",
    ) in calls
    assert (
        "sagemaker:AddTags",
        model_arn,
        {**secure, **request_tags, "aws:TagKeys": ["managed-by", "release"]},
        "sagemaker:CreateModel",
    ) in calls
    passes = [c for c in calls if c[0] == "iam:PassRole"]
    assert [(p[1], p[2]["iam:PassedToService"]) for p in passes] == [(role_arn, "sagemaker.amazonaws.com")]
    (config_call,) = [c for c in calls if c[0] == "sagemaker:CreateEndpointConfig"]
    assert config_call[2]["sagemaker:ModelArn"] == [model_arn]
    assert config_call[2]["sagemaker:VolumeKmsKeyArn"] == key_arn
    endpoint_calls = [c[1] for c in calls if c[0] == "sagemaker:CreateEndpoint"]
    assert endpoint_calls == [
        endpoint_arn,
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/probe-dev-01234567",
    ]
    (grant,) = [c for c in calls if c[0] == "kms:CreateGrant"]
    assert grant[1] == key_arn and grant[2]["kms:GrantIsForAWSResource"] == "true"
    assert grant[2]["kms:ViaService"] == "sagemaker.us-east-1.amazonaws.com"
    (retag,) = [c for c in calls if c[0] == "sagemaker:AddTags" and c[3] == ""]
    assert retag[1] == endpoint_arn
    assert retag[2]["aws:ResourceTag/release"] == "dev" and retag[2]["aws:RequestTag/release"] == "prod"

    (put_item,) = [c for c in calls if c[0] == "dynamodb:PutItem"]
    assert put_item[2]["dynamodb:LeadingKeys"] == ["b/smgitops/dev.tfstate"]
    assert ("kms:Decrypt", key_arn) in [(c[0], c[1]) for c in calls if c[3] == "dynamodb:PutItem"]
    alarm_arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:probe-dev/primary/5xx-rate"
    (put_alarm,) = [c for c in calls if c[0] == "cloudwatch:PutMetricAlarm"]
    assert put_alarm[1] == alarm_arn and put_alarm[2]["aws:RequestTag/release"] == "dev"
    (delete_alarm,) = [c for c in calls if c[0] == "cloudwatch:DeleteAlarms"]
    assert delete_alarm[1] == alarm_arn and delete_alarm[2]["aws:ResourceTag/release"] == "dev"
    mine = [e for e in entries if e["access_key"] == KEY]
    sts = [e for e in mine if e["calls"] and e["calls"][0]["action"] == "sts:GetCallerIdentity"]
    assert len(sts) == 1 and sts[0]["calls"][0]["needs_permission"] is False
    (unknown,) = [e for e in mine if e["error"]]
    assert "no IAM mapping for service 'sqs'" in unknown["error"]  # never skipped silently


def test_the_log_is_off_until_started(emulator: Any) -> None:
    _session().client("sts").get_caller_identity()
    assert emulator.admin.iam_log() == []
    emulator.admin.start_iam_log()
    _session().client("sts").get_caller_identity()
    emulator.admin.stop_iam_log()
    _session().client("sts").get_caller_identity()
    assert [e["calls"][0]["action"] for e in emulator.admin.iam_log()] == ["sts:GetCallerIdentity"]


def test_a_read_of_a_deleted_object_in_a_versioned_bucket_is_logged_and_answered_404(emulator: Any) -> None:
    """Terraform's lock file lives in a versioned bucket: once released, its latest version is a delete marker.

    Reading it must answer 404 (what a lock release and Terraform's own lock check expect) while the log records.
    """
    s3 = _session().client("s3", config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="probe-state")
    s3.put_bucket_versioning(Bucket="probe-state", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="probe-state", Key="dev.tfstate.tflock", Body=b"{}")
    s3.delete_object(Bucket="probe-state", Key="dev.tfstate.tflock")
    emulator.admin.start_iam_log()
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="probe-state", Key="dev.tfstate.tflock")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    calls = _calls(emulator.admin.iam_log())
    assert [c[:2] for c in calls] == [
        ("s3:GetObject", "arn:aws:s3:::probe-state/dev.tfstate.tflock"),
        ("s3:ListBucket", "arn:aws:s3:::probe-state"),
    ]


class _NoWorld:
    account_id = "123456789012"

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def _request(method: str, path: str, query: Mapping[str, list[str]] | None = None, **headers: str) -> iamlog.Request:
    auth = {"authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20260101/us-east-1/s3/aws4_request, ..."}
    return iamlog.Request(method, path, query or {}, {**auth, **headers}, b"", True)


def test_unknown_request_shapes_are_errors_not_guesses() -> None:
    world: Any = _NoWorld()
    with pytest.raises(iamlog.UnknownRequest, match="unsigned"):
        iamlog.describe(iamlog.Request("GET", "/b", {}, {}, b"", True), world)
    with pytest.raises(iamlog.UnknownRequest, match="sub-resource"):
        iamlog.describe(_request("GET", "/bucket", {"inventory": [""]}), world)
    with pytest.raises(iamlog.UnknownRequest, match="not mapped"):
        iamlog.describe(_request("POST", "/bucket/key", {"restore": [""]}), world)
    (call,) = iamlog.describe(_request("GET", "/bucket/k", {"versionId": ["3"]}), world)
    assert (call.action, call.resource) == ("s3:GetObjectVersion", "arn:aws:s3:::bucket/k")
    (call,) = iamlog.describe(_request("DELETE", "/bucket/k", {"uploadId": ["u"]}), world)
    assert call.action == "s3:AbortMultipartUpload"


# ---------------------------------------------------------------------------------------------------------------
# Attacks against bootstrap's real policies
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Account:
    """bootstrap/ applied to a private emulator: its policies, outputs and the releases' real names."""

    policies: AccountPolicies
    outputs: dict[str, Any]
    roles: dict[str, str]  # label -> ARN
    region: str
    account: str
    releases: dict[str, Any] = field(default_factory=dict)

    def sagemaker(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def endpoint(self, env: str) -> str:
        return self.sagemaker("endpoint", self.releases[env].endpoint.name)

    def model(self, env: str, of: str | None = None) -> str:
        """The SageMaker model of ``of``'s release's first model, named for environment ``env``."""
        release = self.releases[of or env]
        model_id, model = next(iter(release.models.items()))
        return self.sagemaker("model", naming.model_name(model_id, env, model.artifact_sha256))

    def config(self, env: str) -> str:
        release = self.releases[env]
        name = naming.endpoint_config_name(
            release, artifact_bucket=self.outputs["artifact_bucket"], kms_key_arn=self.outputs["kms_key_arn"]
        )
        return self.sagemaker("endpoint-config", name)

    def alarm(self, env: str) -> str:
        release = self.releases[env]
        variant = release.variants[0].name
        return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{release.endpoint.name}/{variant}/5xx-rate"

    def archive(self) -> str:
        release = self.releases["prod"]
        model_id, model = next(iter(release.models.items()))
        return f"arn:aws:s3:::{self.outputs['artifact_bucket']}/{naming.artifact_key(model_id, model.artifact_sha256)}"

    def state(self, env: str, suffix: str = "") -> str:
        return f"arn:aws:s3:::{self.outputs['state_bucket']}/smgitops/{env}.tfstate{suffix}"

    def lock_table(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.outputs['lock_table']}"

    def lock_id(self, env: str) -> str:
        return f"{self.outputs['state_bucket']}/smgitops/{env}.tfstate"

    def execution(self, env: str) -> str:
        return self.roles.get(f"execution-{env}") or self.roles["execution"]


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    require_simulator()
    from fixtures_terraform import local_stack

    tmp = tmp_path_factory.mktemp("iam")
    with local_stack(tmp) as stack:
        (outputs_file,) = stack.local_dir.glob("*/outputs.json")
        outputs = json.loads(outputs_file.read_text())
        policies = AccountPolicies.read(boto3.session.Session(region_name=stack.settings.region), outputs)
        releases = {env: load_release(ROOT / "releases" / f"{env}.yaml") for env in ("dev", "prod")}
        yield Account(
            policies,
            outputs,
            AccountPolicies.role_arns(outputs),
            stack.settings.region,
            policies.account,
            releases,
        )


MANAGED = naming.MANAGED_BY_TAG
RELEASE = naming.RELEASE_TAG


def request_tags(release: str, managed_by: str = naming.MANAGED_BY_VALUE) -> dict[str, Any]:
    return {
        f"aws:RequestTag/{MANAGED}": managed_by,
        f"aws:RequestTag/{RELEASE}": release,
        "aws:TagKeys": [MANAGED, RELEASE],
    }


def resource_tags(release: str) -> dict[str, Any]:
    return {f"aws:ResourceTag/{MANAGED}": naming.MANAGED_BY_VALUE, f"aws:ResourceTag/{RELEASE}": release}


@dataclass(frozen=True)
class Attack:
    name: str
    finding: str
    role: str  # label: plan, apply-dev, teardown, drift, execution-dev, ...
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    control: tuple[str, str, str, Mapping[str, Any]] | None = None  # (role, action, resource, context): allowed


def attacks(a: Account) -> list[Attack]:
    via_s3 = {"kms:ViaService": f"s3.{a.region}.amazonaws.com", "kms:CallerAccount": a.account}
    key = a.outputs["kms_key_arn"]
    prod_ep, dev_ep = a.endpoint("prod"), a.endpoint("dev")
    unmanaged = a.sagemaker("endpoint", "handmade-dev")  # a name of dev's form, made by hand, untagged
    sm_writes = [
        ("sagemaker:CreateEndpoint", dev_ep, request_tags("dev")),
        ("sagemaker:UpdateEndpoint", dev_ep, resource_tags("dev")),
        ("sagemaker:DeleteEndpoint", dev_ep, resource_tags("dev")),
        ("sagemaker:CreateModel", a.model("dev"), request_tags("dev")),
        ("sagemaker:AddTags", dev_ep, {**resource_tags("dev"), **request_tags("dev")}),
    ]
    out = [
        # -- another environment's SageMaker resources ------------------------------------------------------------
        Attack(
            "dev-retags-prod-endpoint-as-dev",
            "dev apply role tags prod's endpoint release=dev, then owns it",
            "apply-dev",
            "sagemaker:AddTags",
            prod_ep,
            {**resource_tags("prod"), f"aws:RequestTag/{RELEASE}": "dev", "aws:TagKeys": [RELEASE]},
            control=(
                "apply-prod",
                "sagemaker:AddTags",
                prod_ep,
                {**resource_tags("prod"), f"aws:RequestTag/{RELEASE}": "prod", "aws:TagKeys": [RELEASE]},
            ),
        ),
        Attack(
            "dev-adopts-unmanaged-endpoint",
            "dev apply role tags a hand-made endpoint managed-by=smgitops (teardown would then delete it)",
            "apply-dev",
            "sagemaker:AddTags",
            a.sagemaker("endpoint", "handmade"),
            request_tags("dev"),
        ),
        Attack(
            "dev-creates-prod-endpoint-with-dev-tags",
            "dev apply role creates smgitops-prod (after the evening teardown) tagged release=dev",
            "apply-dev",
            "sagemaker:CreateEndpoint",
            prod_ep,
            request_tags("dev"),
            control=("apply-dev", "sagemaker:CreateEndpoint", dev_ep, request_tags("dev")),
        ),
        Attack(
            "dev-creates-prod-endpoint-with-prod-tags",
            "dev apply role creates smgitops-prod tagged as prod's own",
            "apply-dev",
            "sagemaker:CreateEndpoint",
            prod_ep,
            request_tags("prod"),
            control=("apply-prod", "sagemaker:CreateEndpoint", prod_ep, request_tags("prod")),
        ),
        Attack(
            "dev-creates-prod-model",
            "dev apply role creates the model <id>-prod-<digest> before prod does",
            "apply-dev",
            "sagemaker:CreateModel",
            a.model("prod"),
            request_tags("dev"),
            control=("apply-dev", "sagemaker:CreateModel", a.model("dev"), request_tags("dev")),
        ),
        Attack(
            "dev-creates-config-serving-prod-model",
            "dev apply role makes an endpoint configuration of its own name that serves prod's model",
            "apply-dev",
            "sagemaker:CreateEndpointConfig",
            a.config("dev"),
            {**request_tags("dev"), "sagemaker:ModelArn": [a.model("prod")]},
            control=(
                "apply-dev",
                "sagemaker:CreateEndpointConfig",
                a.config("dev"),
                {**request_tags("dev"), "sagemaker:ModelArn": [a.model("dev")]},
            ),
        ),
        Attack(
            "dev-updates-prod-endpoint",
            "dev apply role points prod's endpoint at another configuration",
            "apply-dev",
            "sagemaker:UpdateEndpoint",
            prod_ep,
            resource_tags("prod"),
            control=("apply-prod", "sagemaker:UpdateEndpoint", prod_ep, resource_tags("prod")),
        ),
        Attack(
            "dev-shifts-prod-weights",
            "dev apply role changes prod's traffic weights",
            "apply-dev",
            "sagemaker:UpdateEndpointWeightsAndCapacities",
            prod_ep,
            resource_tags("prod"),
        ),
        Attack(
            "dev-deletes-prod-endpoint",
            "dev apply role deletes prod's endpoint",
            "apply-dev",
            "sagemaker:DeleteEndpoint",
            prod_ep,
            resource_tags("prod"),
            control=("apply-dev", "sagemaker:DeleteEndpoint", dev_ep, resource_tags("dev")),
        ),
        Attack(
            "dev-deletes-prod-config",
            "dev apply role deletes prod's endpoint configuration",
            "apply-dev",
            "sagemaker:DeleteEndpointConfig",
            a.config("prod"),
            resource_tags("prod"),
            control=("apply-dev", "sagemaker:DeleteEndpointConfig", a.config("dev"), resource_tags("dev")),
        ),
        Attack(
            "dev-deletes-prod-model",
            "dev apply role deletes prod's model",
            "apply-dev",
            "sagemaker:DeleteModel",
            a.model("prod"),
            resource_tags("prod"),
            control=("apply-dev", "sagemaker:DeleteModel", a.model("dev"), resource_tags("dev")),
        ),
        Attack(
            "dev-untags-prod-endpoint",
            "dev apply role removes prod's ownership tags",
            "apply-dev",
            "sagemaker:DeleteTags",
            prod_ep,
            {**resource_tags("prod"), "aws:TagKeys": [RELEASE]},
        ),
        Attack(
            "dev-strips-own-ownership-tag",
            "dev apply role removes managed-by from its own endpoint (hides it from teardown)",
            "apply-dev",
            "sagemaker:DeleteTags",
            dev_ep,
            {**resource_tags("dev"), "aws:TagKeys": [MANAGED]},
        ),
        Attack(
            "dev-invokes-prod-endpoint",
            "dev apply role sends traffic to prod (skews prod's canary metrics)",
            "apply-dev",
            "sagemaker:InvokeEndpoint",
            prod_ep,
            resource_tags("prod"),
            control=("apply-dev", "sagemaker:InvokeEndpoint", dev_ep, resource_tags("dev")),
        ),
        # -- another environment's alarms -------------------------------------------------------------------------
        Attack(
            "dev-overwrites-prod-alarm",
            "dev apply role rewrites prod's 5xx alarm",
            "apply-dev",
            "cloudwatch:PutMetricAlarm",
            a.alarm("prod"),
            {**resource_tags("prod"), **request_tags("dev")},
            control=(
                "apply-dev",
                "cloudwatch:PutMetricAlarm",
                a.alarm("dev"),
                {**resource_tags("dev"), **request_tags("dev")},
            ),
        ),
        Attack(
            "dev-deletes-prod-alarm",
            "dev apply role deletes prod's alarm",
            "apply-dev",
            "cloudwatch:DeleteAlarms",
            a.alarm("prod"),
            resource_tags("prod"),
            control=("apply-dev", "cloudwatch:DeleteAlarms", a.alarm("dev"), resource_tags("dev")),
        ),
        # -- another environment's state and locks ----------------------------------------------------------------
        Attack(
            "dev-writes-prod-state",
            "dev apply role overwrites prod's Terraform state",
            "apply-dev",
            "s3:PutObject",
            a.state("prod"),
            {},
            control=("apply-dev", "s3:PutObject", a.state("dev"), {}),
        ),
        Attack(
            "dev-reads-prod-state",
            "dev apply role reads prod's state",
            "apply-dev",
            "s3:GetObject",
            a.state("prod"),
            {},
            control=("apply-dev", "s3:GetObject", a.state("dev"), {}),
        ),
        Attack(
            "dev-takes-prod-lock-item",
            "dev apply role takes prod's DynamoDB lock (blocks prod's deploys and rollbacks)",
            "apply-dev",
            "dynamodb:PutItem",
            a.lock_table(),
            {"dynamodb:LeadingKeys": [a.lock_id("prod")]},
            control=("apply-dev", "dynamodb:PutItem", a.lock_table(), {"dynamodb:LeadingKeys": [a.lock_id("dev")]}),
        ),
        Attack(
            "dev-breaks-prod-lock-item",
            "dev apply role deletes prod's lock item",
            "apply-dev",
            "dynamodb:DeleteItem",
            a.lock_table(),
            {"dynamodb:LeadingKeys": [a.lock_id("prod")]},
        ),
        Attack(
            "dev-takes-prod-lock-object",
            "dev apply role creates prod's native lock object",
            "apply-dev",
            "s3:PutObject",
            a.state("prod", ".tflock"),
            {"s3:if-none-match": "*"},
            control=("apply-dev", "s3:PutObject", a.state("dev", ".tflock"), {"s3:if-none-match": "*"}),
        ),
        # -- the plan role (pull-request code) writes nothing ------------------------------------------------------
        Attack(
            "plan-publishes-archive",
            "pull-request code writes a model archive under a predictable digest",
            "plan",
            "s3:PutObject",
            a.archive(),
            {"s3:if-none-match": "*"},
            control=("apply-prod", "s3:PutObject", a.archive(), {"s3:if-none-match": "*"}),
        ),
        Attack(
            "plan-writes-state",
            "pull-request code writes a state",
            "plan",
            "s3:PutObject",
            a.state("prod"),
            {},
            control=("plan", "s3:GetObject", a.state("prod"), {}),
        ),
        Attack(
            "plan-takes-lock-object",
            "pull-request code takes the native state lock",
            "plan",
            "s3:PutObject",
            a.state("prod", ".tflock"),
            {"s3:if-none-match": "*"},
        ),
        Attack(
            "plan-deletes-lock-object",
            "pull-request code removes the native state lock",
            "plan",
            "s3:DeleteObject",
            a.state("prod", ".tflock"),
            {},
        ),
        Attack(
            "plan-takes-lock-item",
            "pull-request code takes prod's lock item",
            "plan",
            "dynamodb:PutItem",
            a.lock_table(),
            {"dynamodb:LeadingKeys": [a.lock_id("prod")]},
            control=("plan", "dynamodb:GetItem", a.lock_table(), {"dynamodb:LeadingKeys": [a.lock_id("prod")]}),
        ),
        Attack(
            "plan-deletes-lock-item",
            "pull-request code breaks prod's lock",
            "plan",
            "dynamodb:DeleteItem",
            a.lock_table(),
            {"dynamodb:LeadingKeys": [a.lock_id("prod")]},
        ),
        *[
            Attack(f"plan-{action.split(':')[1]}", "pull-request code changes SageMaker", "plan", action, arn, ctx)
            for action, arn, ctx in sm_writes
        ],
        Attack(
            "plan-puts-alarm",
            "pull-request code changes an alarm",
            "plan",
            "cloudwatch:PutMetricAlarm",
            a.alarm("dev"),
            {**resource_tags("dev"), **request_tags("dev")},
        ),
        # -- teardown and drift ---------------------------------------------------------------------------------
        Attack(
            "teardown-deletes-unmanaged-endpoint",
            "teardown role deletes an endpoint smgitops does not manage",
            "teardown",
            "sagemaker:DeleteEndpoint",
            unmanaged,
            {},
            control=("teardown", "sagemaker:DeleteEndpoint", dev_ep, resource_tags("dev")),
        ),
        Attack(
            "teardown-deletes-model",
            "teardown role deletes a model (breaks rollback to it)",
            "teardown",
            "sagemaker:DeleteModel",
            a.model("prod"),
            resource_tags("prod"),
        ),
        Attack(
            "teardown-deletes-config",
            "teardown role deletes an endpoint configuration",
            "teardown",
            "sagemaker:DeleteEndpointConfig",
            a.config("prod"),
            resource_tags("prod"),
        ),
        Attack(
            "teardown-writes-state",
            "teardown role writes a state",
            "teardown",
            "s3:PutObject",
            a.state("prod"),
            {},
        ),
        *[
            Attack(f"drift-{action.split(':')[1]}", "the drift role changes SageMaker", "drift", action, arn, ctx)
            for action, arn, ctx in sm_writes
        ],
        Attack(
            "drift-writes-state",
            "the drift role writes a state",
            "drift",
            "s3:PutObject",
            a.state("dev"),
            {},
            control=("drift", "sagemaker:DescribeEndpoint", dev_ep, resource_tags("dev")),
        ),
        # -- passing roles ---------------------------------------------------------------------------------------
        Attack(
            "dev-passes-prod-execution-role",
            "dev apply role serves its models with prod's execution role",
            "apply-dev",
            "iam:PassRole",
            a.execution("prod"),
            {"iam:PassedToService": "sagemaker.amazonaws.com", "iam:AssociatedResourceArn": a.model("dev")},
            control=(
                "apply-dev",
                "iam:PassRole",
                a.execution("dev"),
                {"iam:PassedToService": "sagemaker.amazonaws.com", "iam:AssociatedResourceArn": a.model("dev")},
            ),
        ),
        Attack(
            "dev-passes-an-apply-role",
            "dev apply role hands prod's apply role to SageMaker",
            "apply-dev",
            "iam:PassRole",
            a.roles["apply-prod"],
            {"iam:PassedToService": "sagemaker.amazonaws.com"},
        ),
        Attack(
            "apply-passes-role-to-ec2",
            "apply role hands its execution role to another service",
            "apply-dev",
            "iam:PassRole",
            a.execution("dev"),
            {"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        # -- archives are immutable -----------------------------------------------------------------------------
        Attack(
            "apply-deletes-archive",
            "an apply role deletes a published archive (breaks rollback)",
            "apply-prod",
            "s3:DeleteObject",
            a.archive(),
            {},
        ),
        Attack(
            "apply-overwrites-archive",
            "an apply role rewrites a published archive (no If-None-Match)",
            "apply-prod",
            "s3:PutObject",
            a.archive(),
            {},
        ),
        Attack(
            "apply-reads-state-over-http",
            "state read without TLS",
            "apply-dev",
            "s3:GetObject",
            a.state("dev"),
            {"aws:SecureTransport": "false"},
        ),
        # -- execution roles --------------------------------------------------------------------------------------
        Attack(
            "dev-execution-writes-prod-capture",
            "dev's endpoints write into prod's data capture",
            "execution-dev",
            "s3:PutObject",
            f"arn:aws:s3:::{a.outputs['artifact_bucket']}/data-capture/prod/{a.releases['prod'].endpoint.name}/x.jsonl",
            {},
            control=(
                "execution-dev",
                "s3:PutObject",
                f"arn:aws:s3:::{a.outputs['artifact_bucket']}/data-capture/dev/{a.releases['dev'].endpoint.name}/x.jsonl",
                {},
            ),
        ),
        Attack(
            "execution-reads-state",
            "an endpoint's execution role reads Terraform state",
            "execution-prod",
            "s3:GetObject",
            a.state("prod"),
            {},
        ),
        # -- the key ---------------------------------------------------------------------------------------------
        Attack(
            "apply-decrypts-outside-s3",
            "an apply role decrypts with the key directly (not through S3/DynamoDB)",
            "apply-dev",
            "kms:Decrypt",
            key,
            {"kms:CallerAccount": a.account},
            control=("apply-dev", "kms:Decrypt", key, via_s3),
        ),
        Attack(
            "plan-decrypts-outside-s3",
            "pull-request code decrypts with the key directly",
            "plan",
            "kms:Decrypt",
            key,
            {"kms:CallerAccount": a.account},
            control=("plan", "kms:Decrypt", key, via_s3),
        ),
        Attack(
            "apply-grants-key-to-a-principal",
            "an apply role grants the key to something that is not an AWS resource",
            "apply-dev",
            "kms:CreateGrant",
            key,
            {"kms:GrantIsForAWSResource": "false", "kms:ViaService": f"sagemaker.{a.region}.amazonaws.com"},
            control=(
                "apply-dev",
                "kms:CreateGrant",
                key,
                {"kms:GrantIsForAWSResource": "true", "kms:ViaService": f"sagemaker.{a.region}.amazonaws.com"},
            ),
        ),
        Attack(
            "execution-decrypts-outside-s3",
            "an execution role decrypts with the key directly",
            "execution-dev",
            "kms:Decrypt",
            key,
            {"kms:CallerAccount": a.account},
        ),
    ]
    return out


def test_attacks_are_denied_by_bootstraps_policies(account: Account) -> None:
    """Each attack is denied; each control (the same request made legitimately) is allowed."""
    found = attacks(account)
    names = [a.name for a in found]
    assert len(names) == len(set(names)) and len(found) >= 25
    cases = [Case(a.name, account.roles[a.role], a.action, a.resource, a.context) for a in found]
    cases += [
        Case(f"control:{a.name}", account.roles[a.control[0]], a.control[1], a.control[2], a.control[3])
        for a in found
        if a.control is not None
    ]
    results = simulate(account.policies, cases)
    failures = []
    for attack in found:
        result = results[attack.name]
        verdict = result["result"]
        line = f"{attack.name:42} {verdict:17} {attack.role}: {attack.action} {attack.resource.rsplit(':', 1)[-1]}"
        print(line + f"  — {attack.finding}")
        if verdict not in DENIED:
            failures.append(f"NOT DENIED: {line} ({result['error'] or result['decisive']}) — {attack.finding}")
        if attack.control is not None:
            control = results[f"control:{attack.name}"]
            if control["result"] != "Allowed":
                failures.append(
                    f"CONTROL NOT ALLOWED: {attack.name}: {attack.control[0]} {attack.control[1]} "
                    f"{attack.control[2]}: {control['result']} {control['error'] or ''} "
                    f"ignored={control['ignoredContextKeys']}"
                )
    denied = sum(results[a.name]["result"] in DENIED for a in found)
    controls = sum(1 for a in found if a.control is not None)
    controls_allowed = sum(
        1 for a in found if a.control is not None and results[f"control:{a.name}"]["result"] == "Allowed"
    )
    print(f"IAM attacks: {len(found)} attacks, {denied} denied; {controls} controls, {controls_allowed} allowed")
    out = ROOT / "out" / "iam-simulation"
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "simulator": next(iter(results.values()))["simulator"],
        "attacks": len(found),
        "denied": denied,
        "controls": controls,
        "controls_allowed": controls_allowed,
        "cases": {a.name: {"finding": a.finding, "result": results[a.name]["result"]} for a in found},
    }
    (out / "attacks.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------------
# Trust: who may assume each GitHub role (OIDC claims, judged explicitly)
# ---------------------------------------------------------------------------------------------------------------

AUDIENCE = "sts.amazonaws.com"


def _subject(repo: str, context: str, workflow: str | None, ref: str = "refs/heads/main") -> str:
    """GitHub's subject with the customised template repo, context, job_workflow_ref (GitHub's OIDC reference)."""
    if workflow is None:
        return f"repo:{repo}:{context}"
    return f"repo:{repo}:{context}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}"


def test_trust_pins_repository_workflow_and_branch(account: Account) -> None:
    from smgitops.localmode import DEFAULT_GITHUB_REPOSITORY

    repo = os.environ.get("GITHUB_REPOSITORY") or DEFAULT_GITHUB_REPOSITORY  # what local mode bootstraps with
    provider = str(account.outputs["oidc_provider_arn"])
    trust = {label: account.policies.roles[arn].trust for label, arn in account.roles.items()}
    pr = _subject(repo, "pull_request", "pr.yml", "refs/pull/7/merge")
    real = {
        "plan": pr,
        "apply-dev": _subject(repo, "environment:dev", "deploy.yml"),
        "apply-prod": _subject(repo, "environment:prod", "deploy.yml"),
        "teardown": _subject(repo, "ref:refs/heads/main", "teardown.yml"),
        "drift": _subject(repo, "ref:refs/heads/main", "drift.yml"),
    }
    refused = {
        "a pull request's own deploy.yml": _subject(repo, "pull_request", "deploy.yml", "refs/pull/7/merge"),
        "a pull request naming the environment": _subject(repo, "environment:dev", "deploy.yml", "refs/pull/7/merge"),
        "deploy.yml of a feature branch": _subject(repo, "environment:dev", "deploy.yml", "refs/heads/feature"),
        "an environment subject without job_workflow_ref": f"repo:{repo}:environment:dev",
        "another repository": _subject("evil/models", "environment:dev", "deploy.yml"),
        "another workflow on main in the environment": _subject(repo, "environment:dev", "other.yml"),
        "the teardown workflow": real["teardown"],
        "the drift workflow": real["drift"],
        "the default (un-customised) branch subject": f"repo:{repo}:ref:refs/heads/main",
        "prod's deploy": real["apply-prod"],
        "dev's deploy": real["apply-dev"],
        "the pull request": pr,
    }
    checks = 0
    problems = []
    for label, subject in real.items():
        checks += 1
        if not trust_allows(trust[label], provider, {"aud": AUDIENCE, "sub": subject}):
            problems.append(f"{label} refuses its real subject {subject}")
        checks += 1
        if trust_allows(trust[label], provider, {"aud": "https://github.com/evil", "sub": subject}):
            problems.append(f"{label} accepts another audience")
        checks += 1
        if trust_allows(trust[label], provider + "-other", {"aud": AUDIENCE, "sub": subject}):
            problems.append(f"{label} accepts another identity provider")
        for what, other in refused.items():
            if other == subject:
                continue
            checks += 1
            if trust_allows(trust[label], provider, {"aud": AUDIENCE, "sub": other}):
                problems.append(f"{label} accepts {what}: {other}")
    print(f"IAM trust: {checks} checks on {len(real)} GitHub roles, {len(problems)} problems")
    assert not problems, "\n".join(problems)
    for label in ("execution-dev", "execution-prod", "execution"):  # SageMaker only, no GitHub token
        if label in account.roles:
            assert not trust_allows(trust[label], provider, {"aud": AUDIENCE, "sub": real["apply-dev"]})


def test_a_missing_simulator_fails_with_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import iam_judge

    monkeypatch.setenv("PATH", str(tmp_path))  # no node
    with pytest.raises(pytest.fail.Exception, match="node is not on PATH.*make setup"):
        require_simulator()
    monkeypatch.undo()
    monkeypatch.setattr(iam_judge, "SIMULATOR_DIR", tmp_path)  # node, but the package not installed
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {iam_judge.SIMULATOR_PACKAGE: "0.1.173"}}))
    with pytest.raises(pytest.fail.Exception, match="is not installed .*make setup"):
        require_simulator()


def test_the_story_judge_reports_denied_unmapped_and_foreign_calls(account: Account) -> None:
    """What makes the story's verdict meaningful: a denied call, an unmapped request or an unknown key is a problem."""
    from iam_judge import HARNESS_KEY, judge_recorded, role_access_key

    plan = account.roles["plan"]
    key = role_access_key(plan)

    def entry(action: str, resource: str, access_key: str = key, error: str | None = None) -> dict[str, Any]:
        call = {"action": action, "resource": resource, "context": {}, "via": "", "needs_permission": True}
        call["operation"] = action.partition(":")[2]
        return {
            "access_key": access_key,
            "method": "PUT",
            "path": "/x",
            "error": error,
            "calls": [] if error else [call],
        }

    records = [
        {
            "where": "pr.yml / plan / Plan",
            "entries": [
                entry("s3:GetObject", account.state("dev")),  # allowed
                entry("s3:PutObject", account.state("dev")),  # the plan role writes nothing
                entry("s3:PutObject", account.state("dev"), access_key=HARNESS_KEY),  # the harness: left out
                entry("s3:PutObject", account.state("dev"), access_key="ASIAUNKNOWN000000000"),
                entry("", "", error="UnknownRequest: S3 POST ?restore is not mapped"),
            ],
        }
    ]
    verdict = judge_recorded(account.policies, records, {key: plan})
    assert verdict.summary()["per_role"]["plan"] == {"requests": 3, "calls": 2, "allowed": 1, "no_permission_needed": 0}
    assert verdict.harness_requests == 1
    assert len(verdict.problems) == 3
    assert any(p.startswith("ImplicitlyDenied: plan s3:PutObject") for p in verdict.problems)
    assert any("unknown key 'ASIAUNKNOWN000000000'" in p for p in verdict.problems)
    assert any("not mapped to IAM" in p for p in verdict.problems)
