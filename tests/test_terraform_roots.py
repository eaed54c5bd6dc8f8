"""The Terraform roots: bootstrap/ (one-time, local state) and terraform/ (per environment, S3 backend).

Static checks run Terraform offline with the provider from the set-up's mirror: formatting, validation, the
committed lock files (complete for every platform, left unchanged by ``terraform init``) and the house rules for
variables and outputs. The emulator tests apply bootstrap/ to a private emulator, re-plan it (must be empty), check
the buckets' policies as S3 evaluates them, then run terraform/ with the real S3 backend in the emulated state
bucket: plan dev, apply, re-plan empty, a canary, and a revert that lands on the very same configuration name.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from fixtures_emulator import start_emulator
from smgitops import naming
from smgitops.release import load_release, release_from_mapping
from terraform_helpers import (
    ROOT,
    copy_root,
    emulator_backend_file,
    init,
    s3_backend_config,
    terraform,
    tf_env,
    var_args,
    write_local_override,
)

ROOTS = ("bootstrap", "terraform")

# HashiCorp's published checksums of hashicorp/aws 3.39.0: the linux_amd64 package hash (h1:) and the sha256 of
# every platform's release zip (zh:). A lock file without all the zh: hashes fails `terraform init` elsewhere.
PROVIDER_VERSION = "3.39.0"
PROVIDER_HASHES = {
    "h1:goOMfGE4SjLps+hpxJFEM/pZFiNgvi6BMG8/w86+f6k=",
    "zh:2014b397dd93fa55f2f2d1338c19e5b2b77b025a76a6b1fceea0b8696e984b9c",
    "zh:23d59c68ab50148a0f5c911a801734e9934a1fccd41118a8efb5194135cbd360",
    "zh:412eab41d4934ca9c47083faa128e4cd585c3bb44ad718e40d67091aebc02f4e",
    "zh:4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3",
    "zh:694a32519dcca5bd8605d06481d16883d55160d97c1f4039deb13c6ca8de8427",
    "zh:6a0bcef43c2d9a97aeaaac3c5d1d6728dc2464a51a014f118c691c79029d0903",
    "zh:6d78fc7c663247ca2a80f276008dcdafece4cac75e2639bbce188c08b796040a",
    "zh:78f846a505d7b64b67feed1527d4d2b40130dadaf8e3112113685e148f49b156",
    "zh:881bc969432d3ef6ec70f5a762c3415e037904338579b0a360c6818b74d26e59",
    "zh:96c1ca80c1d693a3eef80489adb45c076ee8e6878e461d6c29b05388d4b95f48",
    "zh:9be5fa342272586fc6e319e20f21c0c5c801b05dcf7d59e473ad0882c9ecfa70",
}
# The linux_amd64 zip the local mirror serves (DESIGN: verified by set-up against HashiCorp's hash).
MIRROR_ZIP_SHA256 = "4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"

GITHUB_REPOSITORY = "example-org/smgitops-models"
BOOTSTRAP_VARIABLES = {"github_repository": GITHUB_REPOSITORY, "environments": ["dev", "prod"]}


# ---------------------------------------------------------------------------------------------------------------------
# Offline: formatting, validation, lock files, conventions
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.terraform
@pytest.mark.parametrize("root", ROOTS)
def test_fmt_clean(root: str) -> None:
    proc = terraform(ROOT / root, "fmt", "-check", "-diff", "-recursive", "-no-color", ok=(0, 3))
    assert proc.returncode == 0, f"terraform fmt would change {root}/:\n{proc.stdout}"


@pytest.mark.terraform
@pytest.mark.parametrize("root", ROOTS)
def test_validate_and_lock_file_unchanged_by_init(root: str, tmp_path: Path) -> None:
    workdir = copy_root(root, tmp_path / root)
    committed = (ROOT / root / ".terraform.lock.hcl").read_bytes()
    init(workdir, "-backend=false")
    assert (workdir / ".terraform.lock.hcl").read_bytes() == committed, "terraform init rewrote the lock file"
    # -lockfile=readonly: init must succeed without needing to record anything.
    init(workdir, "-backend=false", "-lockfile=readonly")
    result = json.loads(terraform(workdir, "validate", "-json", "-no-color").stdout)
    assert result["valid"], json.dumps(result["diagnostics"], indent=2)
    assert result["warning_count"] == 0, json.dumps(result["diagnostics"], indent=2)


@pytest.mark.parametrize("root", ROOTS)
def test_lock_file_lists_every_platform(root: str) -> None:
    text = (ROOT / root / ".terraform.lock.hcl").read_text(encoding="utf-8")
    blocks = re.findall(r'provider "([^"]+)" \{(.*?)\n\}', text, flags=re.S)
    assert [name for name, _ in blocks] == ["registry.terraform.io/hashicorp/aws"]
    body = blocks[0][1]
    assert re.search(r'^\s*version\s*=\s*"3\.39\.0"$', body, flags=re.M)
    assert re.search(r'^\s*constraints\s*=\s*"3\.39\.0"$', body, flags=re.M)
    hashes = re.findall(r'"((?:h1|zh):[^"]+)"', body)
    assert set(hashes) == PROVIDER_HASHES
    assert hashes == sorted(hashes), "terraform writes hashes sorted; an unsorted list is rewritten by init"


def test_mirror_serves_the_locked_zip() -> None:
    mirror = ROOT / ".cache" / "terraform" / "mirror" / "registry.terraform.io" / "hashicorp" / "aws"
    archive = mirror / f"terraform-provider-aws_{PROVIDER_VERSION}_linux_amd64.zip"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == MIRROR_ZIP_SHA256
    assert f"zh:{MIRROR_ZIP_SHA256}" in PROVIDER_HASHES


@pytest.mark.parametrize("root", ROOTS)
def test_versions_pin_terraform_and_provider(root: str) -> None:
    text = (ROOT / root / "versions.tf").read_text(encoding="utf-8")
    assert re.search(r'required_version\s*=\s*">= 1\.10, < 2\.0"', text)
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text)
    assert re.search(r'version\s*=\s*"= 3\.39\.0"', text)


def _blocks(text: str, kind: str) -> list[tuple[str, str]]:
    """Top-level ``<kind> "name" { ... }`` blocks of an HCL file (terraform fmt layout: closing brace at column 0)."""
    return re.findall(rf'^{kind} "([^"]+)" \{{\n(.*?)^\}}', text, flags=re.S | re.M)


@pytest.mark.parametrize("root", ROOTS)
def test_variables_sorted_typed_and_described(root: str) -> None:
    variables = _blocks((ROOT / root / "variables.tf").read_text(encoding="utf-8"), "variable")
    names = [name for name, _ in variables]
    assert names and names == sorted(names), f"{root}/variables.tf: variables not in alphabetical order: {names}"
    for name, body in variables:
        assert re.search(r"^  type\s+=", body, flags=re.M), f"{root}: variable {name} has no type"
        assert re.search(r'^  description\s+=\s+"\S', body, flags=re.M), f"{root}: variable {name} has no description"
    other_files = [p for p in (ROOT / root).glob("*.tf") if p.name != "variables.tf"]
    assert not any(_blocks(p.read_text(encoding="utf-8"), "variable") for p in other_files)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (
            "bootstrap",
            {
                "apply_role_arns",
                "artifact_bucket",
                "drift_role_arn",
                "execution_role_arns",
                "github_oidc_subject_template",
                "github_oidc_subjects",
                "kms_key_arn",
                "lock_table",
                "oidc_provider_arn",
                "plan_role_arn",
                "region",
                "state_bucket",
                "teardown_role_arn",
            },
        ),
        ("terraform", {"endpoint_config_name", "endpoint_name", "model_names", "variants"}),
    ],
)
def test_outputs_described(root: str, expected: set[str]) -> None:
    outputs = _blocks((ROOT / root / "outputs.tf").read_text(encoding="utf-8"), "output")
    assert {name for name, _ in outputs} == expected
    for name, body in outputs:
        assert re.search(r'^  description\s+=\s+"\S', body, flags=re.M), f"{root}: output {name} has no description"


@pytest.mark.parametrize("root", ROOTS)
def test_provider_block_is_production_only(root: str) -> None:
    """Local-mode switches live in the generated *_override.tf, never in the committed provider block."""
    text = (ROOT / root / "providers.tf").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for switch in ("skip_", "s3_force_path_style", "endpoints", "access_key", "secret_key", "localhost", "127.0.0.1"):
        assert switch not in code, f"{root}/providers.tf sets {switch}"
    assert re.search(r'managed-by\s*=\s*"smgitops"', code)
    # The overrides are generated into working copies; none is ever committed to a root.
    tracked = subprocess.run(
        ["git", "ls-files", "--", f"{root}/*override.tf*", f"{root}/override.tf*"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked == [], f"override files committed in {root}/: {tracked}"


def test_terraform_root_backend_is_partial_s3() -> None:
    text = (ROOT / "terraform" / "backend.tf").read_text(encoding="utf-8")
    assert re.search(r'backend "s3" \{\}', text), "terraform/ must use a partial S3 backend configured at init"


@pytest.mark.checkov
@pytest.mark.parametrize("root", ROOTS)
def test_checkov_builtin_checks_pass(root: str, tmp_path: Path) -> None:
    """checkov's built-in checks: no failure; every skip is an inline comment with a reason."""
    checkov = ROOT / ".venv-tools" / "bin" / "checkov"
    workdir = copy_root(root, tmp_path / root)
    proc = subprocess.run(
        [str(checkov), "-d", str(workdir), "--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=tf_env(),
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert not failed and proc.returncode == 0, f"{root}: checkov failures {failed}"
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 20, f"{root}: {skipped['check_id']} on {skipped['resource']} skipped without a reason"


# ---------------------------------------------------------------------------------------------------------------------
# On the emulator: bootstrap/ applies and re-plans empty
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Bootstrapped:
    url: str
    env: dict[str, str]
    workdir: Path
    outputs: dict[str, Any]
    apply_seconds: float
    plan_seconds: float


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _denied(error: ClientError) -> bool:
    """A 403 refusal. S3 answers AccessDenied; moto's policy check answers a bare 403 (no error document)."""
    return error.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and error.response["Error"]["Code"] in (
        "AccessDenied",
        "403",
    )


def _s3(env: dict[str, str]) -> Any:
    return boto3.session.Session(region_name="us-east-1").client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        verify=env.get("AWS_CA_BUNDLE") or False,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrapped]:
    """A private emulator with bootstrap/ applied to it (local state in a temporary copy of the root)."""
    with start_emulator() as server:
        # Provider 3.39 waits for an endpoint with the SDK's waiter (a poll every 30 s): transitions complete at once.
        server.admin.set_update_delay(0)
        env = tf_env(server.env())
        workdir = copy_root("bootstrap", tmp_path_factory.mktemp("bootstrap") / "bootstrap")
        write_local_override(workdir, server.url)
        init(workdir, env=env)
        variables = var_args(BOOTSTRAP_VARIABLES)
        started = time.monotonic()
        terraform(workdir, "apply", "-auto-approve", "-no-color", "-input=false", *variables, env=env)
        apply_seconds = time.monotonic() - started
        started = time.monotonic()
        replan = terraform(workdir, "plan", "-detailed-exitcode", "-no-color", *variables, env=env, ok=(0, 2))
        plan_seconds = time.monotonic() - started
        assert replan.returncode == 0, f"bootstrap/: plan after apply is not empty:\n{replan.stdout}"
        raw = json.loads(terraform(workdir, "output", "-json", env=env).stdout)
        outputs = {key: value["value"] for key, value in raw.items()}
        print(f"\nbootstrap/ on the emulator: apply {apply_seconds:.1f} s, re-plan {plan_seconds:.1f} s")
        yield Bootstrapped(server.url, env, workdir, outputs, apply_seconds, plan_seconds)


@pytest.mark.terraform
def test_bootstrap_applies_and_replans_empty(bootstrapped: Bootstrapped) -> None:
    out = bootstrapped.outputs
    # Plan after apply was empty (asserted by the fixture, which every emulator test shares); here the outputs.
    assert out["state_bucket"] == "smgitops-tfstate-123456789012"
    assert out["artifact_bucket"] == "smgitops-artifacts-123456789012"
    assert out["lock_table"] == "smgitops-tflock"
    assert out["region"] == "us-east-1"
    assert re.fullmatch(r"arn:aws:kms:us-east-1:123456789012:key/[-0-9a-f]+", out["kms_key_arn"])
    assert out["execution_role_arns"] == {
        env: f"arn:aws:iam::123456789012:role/smgitops-sagemaker-execution-{env}" for env in ("dev", "prod")
    }
    # The body of PUT /repos/{owner}/{repo}/actions/oidc/customization/sub that the trust policies expect.
    assert json.loads(out["github_oidc_subject_template"]) == {
        "use_default": False,
        "include_claim_keys": ["repo", "context", "job_workflow_ref"],
    }
    assert out["apply_role_arns"] == {
        env: f"arn:aws:iam::123456789012:role/smgitops-github-apply-{env}" for env in ("dev", "prod")
    }
    assert out["oidc_provider_arn"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert out["teardown_role_arn"] == "arn:aws:iam::123456789012:role/smgitops-github-teardown"
    assert out["drift_role_arn"] == "arn:aws:iam::123456789012:role/smgitops-github-drift"


@pytest.mark.terraform
def test_bootstrap_live_resources(bootstrapped: Bootstrapped) -> None:
    """What was applied is what production needs: encryption, versioning, PITR, rotation, exact OIDC trust."""
    env = bootstrapped.env
    session = boto3.session.Session(region_name="us-east-1")
    kw: dict[str, Any] = {"endpoint_url": env["AWS_ENDPOINT_URL"], "verify": env["AWS_CA_BUNDLE"]}
    s3, iam = _s3(env), session.client("iam", **kw)
    ddb, kms = session.client("dynamodb", **kw), session.client("kms", **kw)
    out = bootstrapped.outputs

    for bucket in (out["state_bucket"], out["artifact_bucket"]):
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == out["kms_key_arn"]
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4

    table = ddb.describe_table(TableName=out["lock_table"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    backups = ddb.describe_continuous_backups(TableName=out["lock_table"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert kms.get_key_rotation_status(KeyId=out["kms_key_arn"])["KeyRotationEnabled"] is True

    # GitHub's customised subject (repo, context, job_workflow_ref): each role names its workflow file and ref.
    repo, workflows, main = f"repo:{GITHUB_REPOSITORY}", f"{GITHUB_REPOSITORY}/.github/workflows", "refs/heads/main"
    expected_subjects = {
        "smgitops-github-apply-dev": f"{repo}:environment:dev:job_workflow_ref:{workflows}/deploy.yml@{main}",
        "smgitops-github-apply-prod": f"{repo}:environment:prod:job_workflow_ref:{workflows}/deploy.yml@{main}",
        "smgitops-github-teardown": f"{repo}:ref:{main}:job_workflow_ref:{workflows}/teardown.yml@{main}",
        "smgitops-github-drift": f"{repo}:ref:{main}:job_workflow_ref:{workflows}/drift.yml@{main}",
    }
    plan_subject = f"{repo}:pull_request:job_workflow_ref:{workflows}/pr.yml@refs/pull/*/merge"
    for role, subject in {**expected_subjects, "smgitops-github-plan": plan_subject}.items():
        trust: Any = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Federated": out["oidc_provider_arn"]}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        # Exact subjects for every role that writes; the read-only plan role matches the pull request's number.
        operator = "StringLike" if role == "smgitops-github-plan" else "StringEquals"
        conditions = {op: {key: _as_list(v) for key, v in keys.items()} for op, keys in statement["Condition"].items()}
        expected: dict[str, dict[str, list[str]]] = {
            "StringEquals": {"token.actions.githubusercontent.com:aud": ["sts.amazonaws.com"]}
        }
        expected.setdefault(operator, {})["token.actions.githubusercontent.com:sub"] = [subject]
        assert conditions == expected, role
    assert out["github_oidc_subjects"] == {
        "plan": plan_subject,
        "teardown": expected_subjects["smgitops-github-teardown"],
        "drift": expected_subjects["smgitops-github-drift"],
        **{f"apply-{env}": expected_subjects[f"smgitops-github-apply-{env}"] for env in ("dev", "prod")},
    }

    teardown: Any = iam.get_role_policy(RoleName="smgitops-github-teardown", PolicyName="teardown")["PolicyDocument"]
    teardown = json.loads(teardown) if isinstance(teardown, str) else teardown
    deletes = [s for s in teardown["Statement"] if "sagemaker:DeleteEndpoint" in _as_list(s["Action"])]
    assert deletes, "the teardown role must be able to delete endpoints"
    for statement in deletes:
        assert _as_list(statement["Condition"]["StringEquals"]["aws:ResourceTag/managed-by"]) == ["smgitops"]
    granted = {action for s in teardown["Statement"] for action in _as_list(s["Action"])}
    assert granted == {
        "sagemaker:ListEndpoints",
        "sagemaker:DescribeEndpoint",
        "sagemaker:ListTags",
        "sagemaker:DeleteEndpoint",
    }

    # The scheduled drift check runs `smgitops verify` (describes, the served archives' bytes, an empty plan without
    # the lock): the plan role's read-only policy, the same document, so no write action at all.
    drift: Any = iam.get_role_policy(RoleName="smgitops-github-drift", PolicyName="drift")["PolicyDocument"]
    drift = json.loads(drift) if isinstance(drift, str) else drift
    plan: Any = iam.get_role_policy(RoleName="smgitops-github-plan", PolicyName="plan")["PolicyDocument"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert drift == plan
    granted = {action for s in drift["Statement"] for action in _as_list(s["Action"])}
    writes = {
        a
        for a in granted
        if a.split(":")[1].startswith(("Put", "Delete", "Create", "Update", "Add", "Tag", "Untag", "Invoke"))
    }
    assert writes == set(), writes
    assert {"s3:GetObject", "sagemaker:DescribeEndpoint", "sagemaker:ListEndpoints"} <= granted


def _role_policy(iam: Any, role: str, name: str) -> list[dict[str, Any]]:
    doc: Any = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    return list(doc["Statement"])


def _allowed(statements: list[dict[str, Any]], action: str, arn: str) -> bool:
    """Some Allow statement names ``action`` and a resource pattern matching ``arn`` (IAM's * and ?)."""
    return any(
        s["Effect"] == "Allow"
        and action in _as_list(s["Action"])
        and any(fnmatch.fnmatchcase(arn, pattern) for pattern in _as_list(s["Resource"]))
        for s in statements
    )


# Names of environment "prod" chosen to trip naive patterns of "dev" (a "-dev-" inside the endpoint, model id or
# variant), and ordinary ones of "dev": <endpoint>, <endpoint>-<8 hex>, <model>-<env>-<12 hex>, <endpoint>/<variant>/...
_PROD_NAMES = {
    "endpoint": ["smgitops-prod", "x-dev-prod", "dev-prod", "a-dev-b-prod"],
    "endpoint-config": ["smgitops-prod-0a1b2c3d", "x-dev-prod-0a1b2c3d", "x-dev-12345678-prod-0a1b2c3d"],
    "model": ["cancer-logreg-prod-0123456789ab", "m-dev-prod-0123456789ab", "m-dev-0123456789ab-prod-0123456789ab"],
    "alarm": ["smgitops-prod/primary/5xx-rate", "x-dev-prod/primary/p99-latency", "s-prod/x-dev/5xx-rate"],
}
_DEV_NAMES = {
    "endpoint": ["smgitops-dev", "a-prod-dev"],
    "endpoint-config": ["smgitops-dev-0a1b2c3d"],
    "model": ["cancer-logreg-dev-0123456789ab", "m-prod-dev-0123456789ab"],
    "alarm": ["smgitops-dev/primary/5xx-rate", "smgitops-dev/canary/p99-latency"],
}
_CHANGES = {
    "endpoint": "sagemaker:UpdateEndpoint",
    "endpoint-config": "sagemaker:DeleteEndpointConfig",
    "model": "sagemaker:DeleteModel",
    "alarm": "cloudwatch:DeleteAlarms",
}


def _arn(kind: str, name: str) -> str:
    if kind == "alarm":
        return f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    return f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{name}"


@pytest.mark.terraform
def test_apply_roles_name_only_their_own_environment(bootstrapped: Bootstrapped) -> None:
    """As applied: the dev apply role's ARN patterns match dev's names and no prod name, however it is built; its
    state key, lock items, execution role and the execution role's data-capture prefix are dev's own."""
    iam = boto3.session.Session(region_name="us-east-1").client(
        "iam", endpoint_url=bootstrapped.env["AWS_ENDPOINT_URL"], verify=bootstrapped.env["AWS_CA_BUNDLE"]
    )
    out = bootstrapped.outputs
    state, artifacts = out["state_bucket"], out["artifact_bucket"]
    dev = _role_policy(iam, "smgitops-github-apply-dev", "apply-dev")
    for kind, action in _CHANGES.items():
        for name in _DEV_NAMES[kind]:
            assert _allowed(dev, action, _arn(kind, name)), f"dev cannot {action} its own {name}"
        for name in _PROD_NAMES[kind]:
            assert not _allowed(dev, action, _arn(kind, name)), f"dev's patterns match prod's {name}"
    assert _allowed(dev, "s3:PutObject", f"arn:aws:s3:::{state}/smgitops/dev.tfstate")
    assert not _allowed(dev, "s3:PutObject", f"arn:aws:s3:::{state}/smgitops/prod.tfstate")
    assert not _allowed(dev, "s3:PutObject", f"arn:aws:s3:::{state}/smgitops/prod.tfstate.tflock")
    [lock] = [s for s in dev if "dynamodb:PutItem" in _as_list(s["Action"])]
    assert _as_list(lock["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]) == [
        f"{state}/smgitops/dev.tfstate",
        f"{state}/smgitops/dev.tfstate-md5",
    ]
    [passrole] = [s for s in dev if "iam:PassRole" in _as_list(s["Action"])]
    assert _as_list(passrole["Resource"]) == [out["execution_role_arns"]["dev"]]
    # Explicit denies keep the ownership tags: never set to another environment, never removed.
    denies = {s["Sid"] for s in dev if s["Effect"] == "Deny"}
    assert {"DenyTaggingForAnotherEnvironment", "DenyRemovingOwnershipTags"} <= denies

    execution = _role_policy(iam, "smgitops-sagemaker-execution-dev", "serve-models-dev")
    assert _allowed(execution, "s3:PutObject", f"arn:aws:s3:::{artifacts}/data-capture/dev/smgitops-dev/x.jsonl")
    assert not _allowed(execution, "s3:PutObject", f"arn:aws:s3:::{artifacts}/data-capture/prod/smgitops-prod/x")
    assert _allowed(execution, "s3:GetObject", f"arn:aws:s3:::{artifacts}/{naming.artifact_key('m', 'ab' * 32)}")


@pytest.mark.terraform
def test_plan_role_writes_nothing(bootstrapped: Bootstrapped) -> None:
    """Pull requests run their own code with the plan role: as applied, it reads and never writes."""
    iam = boto3.session.Session(region_name="us-east-1").client(
        "iam", endpoint_url=bootstrapped.env["AWS_ENDPOINT_URL"], verify=bootstrapped.env["AWS_CA_BUNDLE"]
    )
    plan = _role_policy(iam, "smgitops-github-plan", "plan")
    granted = {a for s in plan if s["Effect"] == "Allow" for a in _as_list(s["Action"])}
    verbs = ("Put", "Delete", "Create", "Update", "Add", "Tag", "Untag", "Invoke", "Pass", "Encrypt", "Generate")
    assert not [a for a in granted if a.split(":", 1)[1].startswith(verbs)], granted
    assert {"s3:GetObject", "dynamodb:GetItem", "kms:Decrypt", "sagemaker:DescribeEndpoint"} <= granted
    [kms] = [s for s in plan if "kms:Decrypt" in _as_list(s["Action"])]
    assert set(_as_list(kms["Condition"]["StringEquals"]["kms:ViaService"])) == {
        "s3.us-east-1.amazonaws.com",
        "dynamodb.us-east-1.amazonaws.com",
    }


@pytest.mark.terraform
def test_artifact_bucket_is_write_once(bootstrapped: Bootstrapped) -> None:
    """models/ takes only conditional writes (If-None-Match) and refuses deletion; data capture writes freely."""
    s3 = _s3(bootstrapped.env)
    bucket = bootstrapped.outputs["artifact_bucket"]
    key = naming.artifact_key("policy-probe", "ab" * 32)

    with pytest.raises(ClientError) as unconditional:
        s3.put_object(Bucket=bucket, Key=key, Body=b"v1")
    assert _denied(unconditional.value)

    s3.put_object(Bucket=bucket, Key=key, Body=b"v1", IfNoneMatch="*")
    with pytest.raises(ClientError) as overwrite:
        s3.put_object(Bucket=bucket, Key=key, Body=b"v2", IfNoneMatch="*")
    assert overwrite.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as delete:
        s3.delete_object(Bucket=bucket, Key=key)
    assert _denied(delete.value)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v1"

    s3.put_object(Bucket=bucket, Key="data-capture/probe/record.jsonl", Body=b"{}")


@pytest.mark.terraform
@pytest.mark.parametrize("address", ["aws_s3_bucket.state", "aws_s3_bucket.artifacts", "aws_kms_key.this"])
def test_what_rollback_and_state_depend_on_cannot_be_replaced(bootstrapped: Bootstrapped, address: str) -> None:
    """Terraform refuses to plan the loss of the state bucket, the artifact bucket (every release in Git history
    points at its archives) or the KMS key (a scheduled key deletion makes the state and every archive unreadable)."""
    plan = terraform(
        bootstrapped.workdir,
        "plan",
        "-no-color",
        "-input=false",
        f"-replace={address}",
        *var_args(BOOTSTRAP_VARIABLES),
        env=bootstrapped.env,
        ok=(1,),
    )
    assert "Instance cannot be destroyed" in plan.stderr and address in plan.stderr, plan.stderr


@pytest.mark.terraform
def test_state_bucket_refuses_plain_http(bootstrapped: Bootstrapped) -> None:
    """The TLS-only policy as applied: over HTTPS the state bucket works; the same policy denies plain HTTP.

    One emulator serves one scheme, so the applied policy is read back and installed on a bucket of a second,
    plain-HTTP emulator, where S3 sees aws:SecureTransport = false.
    """
    tls_s3 = _s3(bootstrapped.env)
    bucket = bootstrapped.outputs["state_bucket"]
    tls_s3.put_object(Bucket=bucket, Key="smgitops/probe.txt", Body=b"over https")
    assert tls_s3.get_object(Bucket=bucket, Key="smgitops/probe.txt")["Body"].read() == b"over https"
    policy = tls_s3.get_bucket_policy(Bucket=bucket)["Policy"]
    assert "aws:SecureTransport" in policy

    with start_emulator(tls=False) as plain:
        http_s3 = _s3(plain.env())
        assert plain.url.startswith("http://")
        http_s3.create_bucket(Bucket=bucket)
        http_s3.put_object(Bucket=bucket, Key="smgitops/before.txt", Body=b"no policy yet")
        http_s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        with pytest.raises(ClientError) as denied_put:
            http_s3.put_object(Bucket=bucket, Key="smgitops/probe.txt", Body=b"over http")
        assert _denied(denied_put.value)
        with pytest.raises(ClientError) as denied_get:
            http_s3.get_object(Bucket=bucket, Key="smgitops/before.txt")
        assert _denied(denied_get.value)


# ---------------------------------------------------------------------------------------------------------------------
# On the emulator: terraform/ with the S3 backend in the emulated state bucket
# ---------------------------------------------------------------------------------------------------------------------


def _plan_holds(shown: dict[str, Any]) -> str:
    """A saved plan's changes and the refresh's drift, attribute by attribute."""
    lines = []
    for kind in ("resource_changes", "resource_drift"):
        for rc in shown.get(kind) or []:
            change = rc.get("change") or {}
            if kind == "resource_changes" and change.get("actions") in (["no-op"], ["read"]):
                continue
            before, after = change.get("before") or {}, change.get("after") or {}
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            diffs = ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys)
            lines.append(f"{kind} {rc.get('address')} {change.get('actions')} {diffs}")
    for name, change in (shown.get("output_changes") or {}).items():
        lines.append(f"output {name} {change.get('actions')}")
    return "\n".join(lines)


@dataclass
class EnvironmentRoot:
    workdir: Path
    env: dict[str, str]
    outputs: dict[str, Any]

    def variables(self, release_file: Path) -> list[str]:
        return var_args(
            {
                "release_file": str(release_file),
                "artifact_bucket": self.outputs["artifact_bucket"],
                "execution_role_arn": self.outputs["execution_role_arns"]["dev"],
                "kms_key_arn": self.outputs["kms_key_arn"],
            }
        )

    def plan_json(self, release_file: Path) -> dict[str, Any]:
        plan_file = self.workdir / "dev.tfplan"
        terraform(self.workdir, "plan", "-no-color", f"-out={plan_file}", *self.variables(release_file), env=self.env)
        shown: dict[str, Any] = json.loads(
            terraform(self.workdir, "show", "-json", str(plan_file), env=self.env).stdout
        )
        return shown

    def apply(self, release_file: Path) -> float:
        started = time.monotonic()
        terraform(self.workdir, "apply", "-auto-approve", "-no-color", *self.variables(release_file), env=self.env)
        return time.monotonic() - started

    def replan_is_empty(self, release_file: Path) -> tuple[bool, str, float]:
        """Whether a fresh plan is empty (``-detailed-exitcode`` 0), its output, and how long it took. A plan that is
        not empty also says what it holds (from ``show -json``): changes and what the refresh found changed."""
        started = time.monotonic()
        plan_file = self.workdir / "replan.tfplan"
        proc = terraform(
            self.workdir,
            "plan",
            "-detailed-exitcode",
            "-no-color",
            f"-out={plan_file}",
            *self.variables(release_file),
            env=self.env,
            ok=(0, 2),
        )
        seconds = time.monotonic() - started
        if proc.returncode == 0:
            return True, proc.stdout, seconds
        shown = json.loads(terraform(self.workdir, "show", "-json", str(plan_file), env=self.env).stdout)
        return False, f"{proc.stdout}\n--- the plan holds:\n{_plan_holds(shown)}", seconds

    def output(self) -> dict[str, Any]:
        raw = json.loads(terraform(self.workdir, "output", "-json", env=self.env).stdout)
        return {key: value["value"] for key, value in raw.items()}


@pytest.fixture(scope="module")
def dev_root(bootstrapped: Bootstrapped, tmp_path_factory: pytest.TempPathFactory) -> EnvironmentRoot:
    """terraform/ initialised exactly as the pipeline does: S3 backend in the state bucket, key smgitops/dev.tfstate."""
    out = bootstrapped.outputs
    base = tmp_path_factory.mktemp("terraform-dev")
    workdir = copy_root("terraform", base / "terraform")
    write_local_override(workdir, bootstrapped.url)
    backend = s3_backend_config(
        bucket=out["state_bucket"],
        key="smgitops/dev.tfstate",
        region=out["region"],
        lock_table=out["lock_table"],
        kms_key_arn=out["kms_key_arn"],
    )
    local_backend = emulator_backend_file(base / "emulator.tfbackend", bootstrapped.url)
    init(
        workdir,
        *[f"-backend-config={item}" for item in backend],
        f"-backend-config={local_backend}",
        env=bootstrapped.env,
    )
    return EnvironmentRoot(workdir, bootstrapped.env, out)


def _canary_release(tmp_path: Path, canary_weight: int, name: str) -> Path:
    doc = yaml.safe_load((ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8"))
    base_id = doc["variants"][0]["model"]
    challenger = copy.deepcopy(doc["models"][base_id])
    challenger.update(artifact_sha256=hashlib.sha256(b"challenger model").hexdigest())
    doc["models"]["challenger"] = challenger
    doc["variants"] = [
        {"name": doc["variants"][0]["name"], "model": base_id, "weight": 100 - canary_weight},
        {"name": "canary", "model": "challenger", "weight": canary_weight},
    ]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.terraform
def test_dev_plan_shows_expected_resources(dev_root: EnvironmentRoot) -> None:
    release_file = ROOT / "releases" / "dev.yaml"
    release = load_release(release_file)
    plan = dev_root.plan_json(release_file)
    changes = {rc["address"]: rc for rc in plan["resource_changes"]}
    variants = [v.name for v in release.variants]
    expected = {f'aws_sagemaker_model.this["{mid}"]' for mid in release.served_models()}
    expected |= {"aws_sagemaker_endpoint_configuration.this", "aws_sagemaker_endpoint.this"}
    expected |= {
        f'aws_cloudwatch_metric_alarm.{kind}["{v}"]' for v in variants for kind in ("error_rate", "p99_latency")
    }
    assert set(changes) == expected
    assert all(rc["change"]["actions"] == ["create"] for rc in changes.values())

    out = dev_root.outputs
    config = changes["aws_sagemaker_endpoint_configuration.this"]["change"]["after"]
    assert config["name"] == naming.endpoint_config_name(
        release, artifact_bucket=out["artifact_bucket"], kms_key_arn=out["kms_key_arn"]
    )
    assert config["kms_key_arn"] == out["kms_key_arn"]
    [capture] = config["data_capture_config"]
    assert (
        capture["destination_s3_uri"]
        == f"s3://{out['artifact_bucket']}/data-capture/{release.environment}/{release.endpoint.name}"
    )
    assert capture["kms_key_id"] == out["kms_key_arn"]
    assert capture["initial_sampling_percentage"] == release.endpoint.data_capture.sampling_percentage
    assert [(v["variant_name"], v["initial_variant_weight"]) for v in config["production_variants"]] == [
        (v.name, v.weight) for v in release.variants
    ]

    for mid, spec in release.served_models().items():
        model = changes[f'aws_sagemaker_model.this["{mid}"]']["change"]["after"]
        assert model["name"] == naming.model_name(mid, release.environment, spec.artifact_sha256)
        assert model["enable_network_isolation"] is True
        assert model["execution_role_arn"] == out["execution_role_arns"][release.environment]
        [container] = model["primary_container"]
        assert container["image"] == naming.image_uri(release.region, release.image)
        assert (
            container["model_data_url"]
            == f"s3://{out['artifact_bucket']}/{naming.artifact_key(mid, spec.artifact_sha256)}"
        )
        assert container["environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
        assert model["tags_all"] == {
            "managed-by": "smgitops",
            "release": release.environment,
            "model-digest": spec.artifact_sha256,
            "model-id": mid,
        }

    for rc in changes.values():
        tags = rc["change"]["after"].get("tags_all") or {}
        assert tags.get("managed-by") == "smgitops" and tags.get("release") == release.environment, rc["address"]

    latency = changes[f'aws_cloudwatch_metric_alarm.p99_latency["{variants[0]}"]']["change"]["after"]
    # <endpoint>/<variant>/<metric>: the apply role's alarm ARN pattern is anchored on the first "/" after -<env>.
    assert latency["alarm_name"] == f"{release.endpoint.name}/{variants[0]}/p99-latency"
    assert latency["extended_statistic"] == "p99"
    assert latency["threshold"] == release.canary.max_p99_latency_ms * 1000  # ModelLatency is in microseconds
    error_rate = changes[f'aws_cloudwatch_metric_alarm.error_rate["{variants[0]}"]']["change"]["after"]
    assert error_rate["threshold"] == release.canary.max_error_rate
    assert {q["id"] for q in error_rate["metric_query"]} == {"error_rate", "errors", "invocations"}


@pytest.mark.terraform
def test_dev_apply_canary_and_revert_replan_empty(dev_root: EnvironmentRoot, tmp_path: Path) -> None:
    """apply → empty plan; canary → empty plan; revert → the very same configuration name → empty plan."""
    out = dev_root.outputs
    dev_file = ROOT / "releases" / "dev.yaml"
    timings: list[str] = []

    def apply_and_replan(release_file: Path, label: str) -> dict[str, Any]:
        apply_seconds = dev_root.apply(release_file)
        empty, text, plan_seconds = dev_root.replan_is_empty(release_file)
        timings.append(f"{label}: apply {apply_seconds:.1f} s, re-plan {plan_seconds:.1f} s")
        assert empty, f"{label}: plan after apply is not empty:\n{text}"
        return dev_root.output()

    first = apply_and_replan(dev_file, "dev")
    release = load_release(dev_file)
    assert first["endpoint_config_name"] == naming.endpoint_config_name(
        release, artifact_bucket=out["artifact_bucket"], kms_key_arn=out["kms_key_arn"]
    )

    canary_file = _canary_release(tmp_path, 10, "canary.yaml")
    canary = apply_and_replan(canary_file, "canary 90/10")
    canary_release = release_from_mapping(yaml.safe_load(canary_file.read_text(encoding="utf-8")), canary_file)
    assert canary["endpoint_config_name"] == naming.endpoint_config_name(
        canary_release, artifact_bucket=out["artifact_bucket"], kms_key_arn=out["kms_key_arn"]
    )
    assert canary["endpoint_config_name"] != first["endpoint_config_name"]
    assert [v["weight"] for v in canary["variants"]] == [90, 10]

    reverted = apply_and_replan(dev_file, "revert")
    assert reverted["endpoint_config_name"] == first["endpoint_config_name"]
    assert reverted == first
    print("\nterraform/ on the emulator: " + "; ".join(timings))

    session = boto3.session.Session(region_name="us-east-1")
    sm = session.client(
        "sagemaker", endpoint_url=dev_root.env["AWS_ENDPOINT_URL"], verify=dev_root.env["AWS_CA_BUNDLE"]
    )
    live = sm.describe_endpoint(EndpointName=release.endpoint.name)
    assert live["EndpointConfigName"] == first["endpoint_config_name"]
    assert live["EndpointStatus"] == "InService"
