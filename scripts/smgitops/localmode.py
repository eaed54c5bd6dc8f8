"""Local mode: real Terraform and the real pipeline against the local AWS emulator.

Local mode is on when ``AWS_ENDPOINT_URL`` is set (botocore honours it by itself). Terraform's AWS provider 3.39
does not, so local mode generates, never commits:

* ``local_override.tf`` in the working copy of a root: the provider's local-mode switches and an ``endpoints {}``
  block naming the emulator for every service the roots use (Terraform merges ``*_override.tf`` files into the
  committed provider block, which stays the production one);
* the S3 backend's endpoint settings, appended to the generated backend configuration file;
* the environment: ``SSL_CERT_FILE`` / ``AWS_CA_BUNDLE`` = the emulator's certificate, so Terraform trusts it.

``bootstrap/`` is applied to the emulator on first use (:func:`ensure_bootstrap`). Its working copy and its local
state live under ``<tool home>/.cache/local/<emulator host>-<port>/`` (``$SMGITOPS_LOCAL_DIR/<host>-<port>/`` when
set), one directory per emulator, never in the checkout's ``bootstrap/``; the outputs are cached there and reused
as long as the emulator still has both buckets, the lock table and the KMS key. When it has lost some (one was
deleted) ``bootstrap/`` is applied again over the same local state: Terraform's refresh drops what is gone and
recreates it. When it has lost all of them (a new emulator on a reused port) the old state is kept aside under a new
name and ``bootstrap/`` applied afresh. The state is never deleted: without it, resources the emulator still holds
would make every later apply fail with "already exists".
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import paths
from .errors import ExternalError, UserError
from .files import write_atomic
from .settings import ENV_VARS, Settings, has_explicit_settings, is_local_mode, settings_from_env, settings_from_outputs
from .terraform import (
    ProcessRunner,
    Terraform,
    TerraformError,
    WorkingCopy,
    base_env,
    file_lock,
    subprocess_runner,
)

if TYPE_CHECKING:
    from .aws import Aws

# Provider 3.39 `endpoints {}` keys for every service the roots (and their data sources) may touch.
PROVIDER_ENDPOINT_SERVICES = (
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "ecr",
    "iam",
    "kms",
    "s3",
    "sagemaker",
    "sns",
    "ssm",
    "sts",
)
# Terraform 1.11 S3 backend `endpoints = {}` keys.
BACKEND_ENDPOINT_SERVICES = ("dynamodb", "iam", "s3", "sts")

# Retries of Terraform's AWS provider and S3 backend in local mode. The emulator is on this machine, and smgitops
# checks it answers before Terraform starts; the retries only absorb a busy machine (a loaded 2-core runner
# delays answers), bounded so that an emulator gone during a run still fails in seconds, not minutes.
LOCAL_MAX_RETRIES = 5

DEFAULT_NAME_PREFIX = "smgitops"
DEFAULT_GITHUB_REPOSITORY = "local/smgitops"


@dataclass(frozen=True)
class Emulator:
    """The emulator a local-mode run talks to, as the environment names it."""

    url: str
    ca_bundle: Path | None

    @property
    def key(self) -> str:
        """A directory-safe name of this emulator: ``<host>-<port>``."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname or 'localhost'}-{port}"


def emulator_from_env(env: Mapping[str, str] | None = None) -> Emulator:
    """The emulator named by ``AWS_ENDPOINT_URL``; its certificate from ``AWS_CA_BUNDLE`` (HTTPS only)."""
    environ = os.environ if env is None else env
    url = environ.get("AWS_ENDPOINT_URL", "").strip().rstrip("/")
    if not url:
        raise UserError("local mode needs AWS_ENDPOINT_URL (the emulator's URL, printed by `smgitops emulator`)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"AWS_ENDPOINT_URL={url!r} is not an http(s) URL")
    ca: Path | None = None
    if parts.scheme == "https":
        bundle = environ.get("AWS_CA_BUNDLE", "").strip()
        ca = Path(bundle) if bundle else paths.emulator_tls_dir() / "cert.pem"
        if not ca.is_file():
            raise UserError(f"AWS_CA_BUNDLE={ca}: no such file (the emulator's certificate, made by `make setup`)")
    return Emulator(url=url, ca_bundle=ca)


def terraform_env(emulator: Emulator | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Terraform's environment; in local mode it trusts the emulator's certificate."""
    extra: dict[str, str] = {}
    if emulator is not None and emulator.ca_bundle is not None:
        extra["SSL_CERT_FILE"] = str(emulator.ca_bundle)
        extra["AWS_CA_BUNDLE"] = str(emulator.ca_bundle)
    return base_env(extra, environ)


def _hcl_string(value: str) -> str:
    return json.dumps(value)


def provider_override(emulator: Emulator) -> str:
    """``local_override.tf``: merged by Terraform into the committed provider block of a root."""
    endpoints = "\n".join(f"    {svc.ljust(14)} = {_hcl_string(emulator.url)}" for svc in PROVIDER_ENDPOINT_SERVICES)
    return f"""# Generated by smgitops local mode for the emulator at {emulator.url}. Never committed (*_override.tf).
provider "aws" {{
  skip_credentials_validation = true
  skip_get_ec2_platforms      = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  s3_force_path_style         = true
  # The provider's default is 25 retries with backoff: minutes against an emulator that is gone. smgitops checks
  # the emulator answers before Terraform starts (envfaults.preflight); this bounds a failure during the run.
  max_retries = {LOCAL_MAX_RETRIES}

  endpoints {{
{endpoints}
  }}
}}
"""


def backend_endpoint_settings(emulator: Emulator) -> str:
    """The S3 backend's local-mode settings, in ``.tfbackend`` syntax."""
    endpoints = ", ".join(f"{svc} = {_hcl_string(emulator.url)}" for svc in BACKEND_ENDPOINT_SERVICES)
    return (
        f"endpoints                   = {{ {endpoints} }}\n"
        "use_path_style              = true\n"
        "skip_credentials_validation = true\n"
        "skip_requesting_account_id  = true\n"
        "skip_metadata_api_check     = true\n"
        "skip_region_validation      = true\n"
        f"max_retries                 = {LOCAL_MAX_RETRIES}\n"
    )


# -- bootstrap on first use -------------------------------------------------------------------------------------


def local_dir(emulator: Emulator, env: Mapping[str, str] | None = None) -> Path:
    """Per-emulator working directory of local mode (bootstrap working copy, its state and outputs).

    Under ``SMGITOPS_LOCAL_DIR`` when set (tests, the demo's scratch space), else ``<tool home>/.cache/local``.
    """
    environ = os.environ if env is None else env
    base = environ.get("SMGITOPS_LOCAL_DIR", "").strip()
    return (Path(base) if base else paths.cache_dir() / "local") / emulator.key


def _environments(repo_root: Path) -> list[str]:
    found = sorted(p.stem for p in (repo_root / "releases").glob("*.yaml"))
    return found or ["dev", "prod"]


_GONE = ("404", "NoSuchBucket", "ResourceNotFoundException", "NotFoundException")


# How long the bootstrap check waits for the emulator's answer before the bounded preflight says what is wrong.
_CHECK_TIMEOUT = 5.0


def _missing_resources(settings: Settings, emulator: Emulator, connect: Callable[[], Aws]) -> list[str]:
    """Which of bootstrap/'s stateful resources the emulator no longer has (empty: all there): one request to the
    emulator's admin API. An emulator without that route (not smgitops' own) is asked through AWS calls instead.
    Any answer other than "not found" (access denied, unreachable, throttled) is raised: it says nothing about
    what is there."""
    from .emulator.admin import AdminClient, AdminError

    account = settings.kms_key_arn.split(":")[4] if settings.kms_key_arn.count(":") == 5 else ""
    try:
        return AdminClient(emulator.url, emulator.ca_bundle, timeout=_CHECK_TIMEOUT).missing(
            settings.region,
            account=account,
            buckets=[settings.state_bucket, settings.artifact_bucket],
            tables=[settings.lock_table],
            kms_keys=[settings.kms_key_arn],
        )
    except AdminError as exc:
        if "HTTP 404" not in str(exc):
            raise ExternalError(f"asking the emulator at {emulator.url} for bootstrap/'s resources: {exc}") from exc
    except OSError as exc:
        from .envfaults import preflight

        preflight(settings.region, connect())  # an endpoint that cannot work: one classified line (exit 2)
        raise ExternalError(f"the emulator at {emulator.url} did not answer: {exc}") from exc
    return _missing_by_aws(settings, connect())


def _missing_by_aws(settings: Settings, aws: Aws) -> list[str]:
    from botocore.exceptions import ClientError

    s3, ddb, kms = aws.s3, aws.dynamodb, aws.kms
    checks: list[tuple[str, Callable[[], Any]]] = [
        (settings.state_bucket, lambda: s3.head_bucket(Bucket=settings.state_bucket)),
        (settings.artifact_bucket, lambda: s3.head_bucket(Bucket=settings.artifact_bucket)),
        (settings.lock_table, lambda: ddb.describe_table(TableName=settings.lock_table)),
        (settings.kms_key_arn, lambda: kms.describe_key(KeyId=settings.kms_key_arn)),
    ]
    missing: list[str] = []
    for name, check in checks:
        try:
            check()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in _GONE:
                raise
            missing.append(name)
    return missing


def _set_aside(state: Path, base: Path) -> Path | None:
    """Keep a local bootstrap state that describes resources an emulator no longer has, under another name in
    ``base`` (outside the working copy, whose sync removes files its source does not have)."""
    if not state.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = base / f"bootstrap-{stamp}.emulator-lost.tfstate"
    state.replace(kept)
    return kept


def _applied_is(applied_file: Path, applied: dict[str, Any]) -> bool:
    """Whether the last apply to this emulator (``applied.json``) was of these bootstrap files and variables."""
    if not applied_file.exists():
        return False
    recorded: dict[str, Any] = json.loads(applied_file.read_text(encoding="utf-8"))
    return recorded == applied


# Bootstraps this process found complete (emulator, local directory, what was applied): a command resolves its
# settings several times (plan, the artifact store, the lock probe) and each check costs a request to the emulator.
# A process checks once; the next command (a new process) checks again.
_CHECKED: dict[tuple[str, str, str], Settings] = {}

_ALREADY_EXISTS = re.compile(r"already exists|AlreadyExists|ResourceInUseException")


def ensure_bootstrap(
    *,
    region: str,
    repo_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    runner: ProcessRunner = subprocess_runner,
    connect: Callable[[], Aws] | None = None,
    workdir: Path | None = None,
) -> Settings:
    """Apply ``bootstrap/`` to the emulator unless it already was; return the settings its outputs give.

    Safe to call from concurrent processes (a file lock serialises them) and cheap when already bootstrapped: one
    request to the emulator's admin API, no Terraform call. A change to ``bootstrap/`` (or to its variables, e.g. a
    new environment's release file) since the last apply to this emulator is applied on the next call.
    """
    emulator = emulator_from_env(env)
    root = Path(repo_root) if repo_root is not None else paths.tool_home()
    source = root / "bootstrap"
    if not any(source.glob("*.tf")):
        source = paths.tool_home() / "bootstrap"
    if not any(source.glob("*.tf")):
        raise UserError(f"{source}: no Terraform files; local mode applies bootstrap/ to the emulator")
    base = workdir or local_dir(emulator, env)
    base.mkdir(parents=True, exist_ok=True)
    outputs_file, applied_file = base / "outputs.json", base / "applied.json"
    variables = {
        "environments": json.dumps(_environments(root)),
        "github_repository": (os.environ if env is None else env).get("GITHUB_REPOSITORY", DEFAULT_GITHUB_REPOSITORY),
        "name_prefix": DEFAULT_NAME_PREFIX,
        "region": region,
    }
    # What was applied: the bootstrap root's files and the variables. A change to either is applied again.
    applied = {"bootstrap_sha256": WorkingCopy(source, source).fingerprint(), "variables": variables}
    checked = (emulator.url, str(base.resolve()), json.dumps(applied, sort_keys=True))
    if checked in _CHECKED and _applied_is(applied_file, applied):
        return _CHECKED[checked]
    made: list[Aws] = []

    def aws() -> Aws:
        """The AWS adapter, made only when needed (botocore's import and clients cost a command a quarter second)."""
        if not made:
            if connect is None:
                from .aws import Aws

                made.append(Aws.for_region(region))
            else:
                made.append(connect())
        return made[0]

    with file_lock(base / ".lock"):
        cached: Settings | None = None
        if outputs_file.exists():
            try:
                cached = settings_from_outputs(json.loads(outputs_file.read_text(encoding="utf-8")), region)
            except UserError:
                pass  # outputs of an older bootstrap/ (its files changed too): applied again below
        if cached is not None:
            missing = _missing_resources(cached, emulator, aws)
            if not missing and _applied_is(applied_file, applied):
                _CHECKED[checked] = cached
                return cached
            if len(missing) == 4:
                # None of them is left (a new emulator on this port): the state describes another emulator's
                # resources, and Terraform cannot refresh a KMS key that is gone. Kept aside, applied afresh.
                kept = _set_aside(base / "bootstrap" / "terraform.tfstate", base)
                if kept is not None:
                    print(
                        f"local mode: the emulator at {emulator.url} has none of bootstrap/'s resources (restarted?):"
                        f" bootstrapping it afresh; the previous local state is kept as {kept}",
                        file=sys.stderr,
                    )
            # Otherwise (a bucket or the lock table deleted) applied again over the same state: Terraform's refresh
            # notices what is gone and recreates it; what is still there stays in the state.
        from .envfaults import preflight

        preflight(region, aws(), env)  # Terraform's provider would retry an unreachable emulator for minutes
        copy = WorkingCopy(source=source, root=base / "bootstrap")
        copy.sync(override=provider_override(emulator))
        tf = Terraform(copy.root, env=terraform_env(emulator, env), runner=runner)
        copy.init_if_needed(tf)
        try:
            tf.apply(variables=variables)
        except TerraformError as exc:
            if _ALREADY_EXISTS.search(exc.result.stderr + exc.result.stdout):
                raise UserError(
                    f"bootstrap/ on the emulator at {emulator.url}: it holds resources that the local bootstrap "
                    f"state in {copy.root} does not know (bootstrapped from another SMGITOPS_LOCAL_DIR?): use that "
                    "directory, or restart the emulator"
                ) from exc
            raise ExternalError(f"applying bootstrap/ to the emulator at {emulator.url} failed.\n{exc}") from exc
        outputs = tf.output_json()
        settings = settings_from_outputs(outputs, region)
        for path, doc in ((outputs_file, outputs), (applied_file, applied)):
            write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        _CHECKED[checked] = settings
        return settings


def resolve_settings(
    region: str,
    repo_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    connect: Callable[[], Aws] | None = None,
) -> Settings:
    """Settings for a run: the ``SMGITOPS_*`` variables; in local mode, when they are not all set, the outputs of
    ``bootstrap/`` applied to the emulator (bootstrapping it on first use, through the AWS adapter ``connect``
    gives; a command's :class:`smgitops.context.Context` hands its own)."""
    environ = os.environ if env is None else env
    if is_local_mode(env) and not has_explicit_settings(environ):
        return ensure_bootstrap(region=region, repo_root=repo_root, env=env, connect=connect)
    return settings_from_env(region, env)


def artifact_bucket(
    region: str,
    repo_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    resolve: Callable[[], Settings] | None = None,
) -> str:
    """Only the artifact bucket (``publish`` needs nothing else): ``SMGITOPS_ARTIFACT_BUCKET``, or in local mode
    the bootstrap output when that variable is not set (the settings ``resolve`` gives, by default
    :func:`resolve_settings`)."""
    environ = os.environ if env is None else env
    value = environ.get(ENV_VARS["artifact_bucket"], "").strip()
    if not value and is_local_mode(env):
        return (resolve() if resolve is not None else resolve_settings(region, repo_root, env)).artifact_bucket
    if not value:
        raise UserError(
            f"missing setting: {ENV_VARS['artifact_bucket']} (the bootstrap/ output artifact_bucket; "
            "a GitHub repository variable in CI; or set AWS_ENDPOINT_URL to use the local emulator)"
        )
    return value
