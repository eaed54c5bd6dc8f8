"""The per-environment workspace: where Terraform runs for one environment of one repository, and its state lock.

Terraform never runs in the checkout's ``terraform/`` (shared by every environment and every concurrent run) but in
a per-environment working copy, ``<repository>/.smgitops/work/<environment>/root/``, with its own ``.terraform/``
and, in local mode, its generated ``local_override.tf``. Runs of one environment in one checkout are serialised by a
file lock; different environments never share a file.

The state lock is held by Terraform (>= 1.10, ``use_lockfile``) and the DynamoDB table alike; each records the same
lock information (ID, operation, who, created). :func:`read_lock` reads it without taking the lock, so a command
about to wait can say who it waits for; :func:`remove_lock` releases a lock by its ID (``smgitops unlock``).

A command gets its workspace from its :class:`smgitops.context.Context` (``ctx.workspace(release)``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ExternalError
from .settings import Settings, is_local_mode
from .terraform import LockInfo, ProcessRunner, Terraform, WorkingCopy, file_lock, subprocess_runner

if TYPE_CHECKING:
    from .aws import Aws
    from .localmode import Emulator
    from .release import Release

WORK_DIR = Path(".smgitops") / "work"


@dataclass
class Workspace:
    """Everything Terraform needs to run one environment of one repository."""

    release: Release
    settings: Settings
    terraform: Terraform
    copy: WorkingCopy
    directory: Path
    local_override: str | None
    backend_extra: str
    connect: Callable[[], Aws] = field(repr=False)  # the command's AWS adapter, made on first use

    @classmethod
    def create(
        cls,
        release: Release,
        settings: Settings,
        connect: Callable[[], Aws],
        *,
        runner: ProcessRunner = subprocess_runner,
        env: Mapping[str, str] | None = None,
    ) -> Workspace:
        from .localmode import backend_endpoint_settings, provider_override

        directory, emulator, tf_env = _where_terraform_runs(release, env)
        copy = WorkingCopy(source=release.repo_root / "terraform", root=directory / "root")
        override = provider_override(emulator) if emulator is not None else None
        extra = backend_endpoint_settings(emulator) if emulator is not None else ""
        tf = Terraform(copy.root, env=tf_env, runner=runner)
        tf.lock_probe = _lock_probe(release, settings, connect)
        tf.lock_release = _lock_release(release, settings, connect)
        tf.unlock_hint = f"smgitops unlock {release.environment} (refuses a lock younger than the job timeout)"
        return cls(release, settings, tf, copy, directory, override, extra, connect)

    @staticmethod
    def warm_provider(release: Release, env: Mapping[str, str] | None = None) -> None:
        """Start the shared AWS provider the workspace's Terraform processes will attach to (local mode), in the
        background: before the settings are resolved, so its start overlaps that and everything else the command
        does before its first Terraform process. The environment is the one :meth:`create` gives Terraform."""
        from . import tfprovider

        directory, _, tf_env = _where_terraform_runs(release, env)
        tfprovider.warm(directory / "root", tf_env)

    @property
    def aws(self) -> Aws:
        """The AWS adapter (made on first use: a command that only shows a saved plan never imports botocore)."""
        return self.connect()

    @property
    def default_plan_file(self) -> Path:
        return self.directory / f"{self.release.environment}.tfplan"

    @property
    def backend_file(self) -> Path:
        return self.directory / "backend.tfbackend"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise runs of this environment in this checkout."""
        with file_lock(self.directory / ".lock"):
            yield

    def backend_config(self) -> str:
        s = self.settings
        lines = [
            f"bucket         = {json.dumps(s.state_bucket)}",
            f"key            = {json.dumps(s.state_key(self.release.environment))}",
            f"region         = {json.dumps(s.region)}",
            f"dynamodb_table = {json.dumps(s.lock_table)}",
            "use_lockfile   = true",
            "encrypt        = true",
            f"kms_key_id     = {json.dumps(s.kms_key_arn)}",
        ]
        return "\n".join(lines) + "\n" + self.backend_extra

    def prepare(self) -> bool:
        """Refresh the working copy and its backend configuration; ``init`` if needed. True if init ran.

        First a quick look at AWS (once per process): an endpoint that cannot be reached or credentials that do not
        work fail here in seconds, with one line, instead of inside Terraform after its provider's retries."""
        from .envfaults import preflight

        preflight(self.settings.region, self.aws)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.copy.sync(override=self.local_override)
        text = self.backend_config()
        if not self.backend_file.exists() or self.backend_file.read_text(encoding="utf-8") != text:
            self.backend_file.write_text(text, encoding="utf-8")
        return self.copy.init_if_needed(self.terraform, backend_config=[str(self.backend_file)])

    def variables(self) -> dict[str, str]:
        return {
            "artifact_bucket": self.settings.artifact_bucket,
            "execution_role_arn": self.settings.execution_role_for(self.release.environment),
            "kms_key_arn": self.settings.kms_key_arn,
            "release_file": str(self.release.path.resolve()),
        }

    def root_fingerprint(self) -> str:
        """Hash of the Terraform root as it is in the repository (what a saved plan was computed from)."""
        return WorkingCopy(source=self.copy.source, root=self.copy.source).fingerprint()


def _where_terraform_runs(
    release: Release, env: Mapping[str, str] | None
) -> tuple[Path, Emulator | None, dict[str, str]]:
    """The environment's work directory (the working copy is its ``root/``), the emulator in local mode, and the
    environment Terraform runs with: one derivation for the workspace and for the provider warmed ahead of it,
    whose key must be the one the workspace's Terraform processes ask for."""
    from .localmode import emulator_from_env, terraform_env

    emulator = emulator_from_env(env) if is_local_mode(env) else None
    return release.repo_root / WORK_DIR / release.environment, emulator, terraform_env(emulator, env)


def _lock_probe(release: Release, settings: Settings, connect: Callable[[], Aws]) -> Callable[[], LockInfo | None]:
    """Who holds the environment's state lock now; None when free or when the lock cannot be read (Terraform
    then reports what it finds itself)."""

    def probe() -> LockInfo | None:
        from .errors import SmgitopsError

        try:
            return read_lock(connect(), settings, release.environment)
        except (SmgitopsError, OSError, ImportError):
            return None
        except Exception as exc:  # botocore's connection and credential errors: not this probe's to report
            if type(exc).__module__.startswith("botocore"):
                return None
            raise

    return probe


def _lock_release(release: Release, settings: Settings, connect: Callable[[], Aws]) -> Callable[[LockInfo], None]:
    """Release a lock of the environment's state by its ID (both halves, each only if it carries that ID)."""

    def release_it(lock: LockInfo) -> None:
        remove_lock(connect(), settings, release.environment, lock.id)

    return release_it


# -- the state lock -------------------------------------------------------------------------------------------------


def read_lock(aws: Aws, settings: Settings, environment: str) -> LockInfo | None:
    """The lock on ``environment``'s state, or None when it is free (the S3 lock file first, then DynamoDB)."""
    from botocore.exceptions import ClientError

    key = settings.state_key(environment)
    try:
        body = aws.s3.get_object(Bucket=settings.state_bucket, Key=f"{key}.tflock")["Body"].read()
        return LockInfo.from_doc(json.loads(body))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise ExternalError(f"reading the state lock s3://{settings.state_bucket}/{key}.tflock: {exc}") from exc
    except ValueError:
        pass
    try:
        item = aws.dynamodb.get_item(
            TableName=settings.lock_table, Key={"LockID": {"S": f"{settings.state_bucket}/{key}"}}, ConsistentRead=True
        )
    except ClientError as exc:
        raise ExternalError(f"reading the state lock in DynamoDB table {settings.lock_table}: {exc}") from exc
    info = ((item.get("Item") or {}).get("Info") or {}).get("S")
    if not info:
        return None
    try:
        return LockInfo.from_doc(json.loads(info))
    except ValueError:
        return None


def remove_lock(aws: Aws, settings: Settings, environment: str, lock_id: str) -> list[str]:
    """Release the lock with this ID wherever it is held: the S3 lock file and the DynamoDB item, each only if it
    carries ``lock_id`` (conditional delete, so a lock taken meanwhile by another run stays). Returns what was
    removed. Unlike ``terraform force-unlock`` this also releases half a lock (a lock request that failed between
    its two writes leaves one of them)."""
    from botocore.exceptions import ClientError

    key = settings.state_key(environment)
    removed: list[str] = []
    s3 = aws.s3
    try:
        body = s3.get_object(Bucket=settings.state_bucket, Key=f"{key}.tflock")["Body"].read()
        if str(json.loads(body).get("ID", "")) == lock_id:
            s3.delete_object(Bucket=settings.state_bucket, Key=f"{key}.tflock")
            removed.append(f"s3://{settings.state_bucket}/{key}.tflock")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise ExternalError(f"releasing the state lock s3://{settings.state_bucket}/{key}.tflock: {exc}") from exc
    except ValueError:
        pass
    ddb = aws.dynamodb
    item_key = {"LockID": {"S": f"{settings.state_bucket}/{key}"}}
    try:
        item = ddb.get_item(TableName=settings.lock_table, Key=item_key, ConsistentRead=True).get("Item") or {}
        info = (item.get("Info") or {}).get("S")
        if info and str(json.loads(info).get("ID", "")) == lock_id:
            ddb.delete_item(
                TableName=settings.lock_table,
                Key=item_key,
                ConditionExpression="Info = :info",
                ExpressionAttributeValues={":info": {"S": info}},
            )
            removed.append(f"DynamoDB {settings.lock_table} item {item_key['LockID']['S']}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise ExternalError(f"releasing the state lock in DynamoDB table {settings.lock_table}: {exc}") from exc
    except ValueError:
        pass
    return removed


def repair_digest(aws: Aws, settings: Settings, environment: str) -> str | None:
    """Make the state digest in DynamoDB match the state in S3 again, after a run died between the two writes.

    Terraform persists the state by writing the S3 object first and its MD5 (the DynamoDB item ``<key>-md5``)
    second; a run killed between them leaves S3 holding the newer state and the digest the older one, and every
    later Terraform command fails with "state data in S3 does not have the expected content". S3 is then the truth:
    the digest is set to the MD5 of the object (conditional on the stale digest, so a write meanwhile is kept).
    Call this only with no run going (``smgitops unlock`` after releasing a dead run's lock). Returns what was
    repaired, or None when the digest already matched (or there is no state or no digest)."""
    import hashlib

    from botocore.exceptions import ClientError

    key = settings.state_key(environment)
    item_key = {"LockID": {"S": f"{settings.state_bucket}/{key}-md5"}}
    try:
        item = aws.dynamodb.get_item(TableName=settings.lock_table, Key=item_key, ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise ExternalError(f"reading the state digest in DynamoDB table {settings.lock_table}: {exc}") from exc
    stored = ((item or {}).get("Digest") or {}).get("S")
    if not stored:
        return None
    try:
        body = aws.s3.get_object(Bucket=settings.state_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise ExternalError(f"reading the state s3://{settings.state_bucket}/{key}: {exc}") from exc
    actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
    if actual == stored:
        return None
    try:
        aws.dynamodb.put_item(
            TableName=settings.lock_table,
            Item={**item_key, "Digest": {"S": actual}},
            ConditionExpression="Digest = :stale",
            ExpressionAttributeValues={":stale": {"S": stored}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None  # written meanwhile: whoever wrote it wrote the state too
        raise ExternalError(f"repairing the state digest in DynamoDB table {settings.lock_table}: {exc}") from exc
    return (
        f"the state digest {item_key['LockID']['S']} was {stored}, the state in S3 is {actual} "
        "(a run died between writing the state and its digest); set to the state's"
    )
