"""The Terraform state lock: who holds it, and ``smgitops unlock ENV`` for a lock a dead run left behind.

Terraform (>= 1.10, ``use_lockfile``) and the DynamoDB table both hold the lock of an environment's state; each
records the same lock information (ID, operation, who, created). :func:`read_lock` reads it without taking the lock,
so a command about to wait can say who it waits for, and since when.

``unlock ENV`` releases the lock with ``terraform force-unlock`` and the lock ID read from the lock itself, but
refuses a lock younger than ``--older-than`` minutes (default 90: the deploy job's timeout): a younger lock may
belong to a run that is still going, and releasing it would let two applies write one state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ExternalError, UserError
from .settings import Settings
from .terraform import LockInfo, lock_created

if TYPE_CHECKING:
    from .aws import Aws

# The deploy job's timeout-minutes (.github/workflows/deploy.yml): no live run holds the lock longer.
DEFAULT_OLDER_THAN_MINUTES = 90.0


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


def unlock_command(environment: str) -> str:
    return f"smgitops unlock {environment}"


def release_lock(
    release_path: Path,
    *,
    older_than_minutes: float = DEFAULT_OLDER_THAN_MINUTES,
    aws: Aws | None = None,
    now: Callable[[], datetime] | None = None,
) -> LockInfo | None:
    """Force-unlock the state of ``release_path``'s environment if its lock is old enough; the released lock, or
    None when there was none. A younger (or undated) lock is refused with a UserError (exit 2)."""
    from .aws import Aws
    from .plan import workspace_for
    from .release import load_release

    release = load_release(release_path)
    ws = workspace_for(release)
    aws = aws or Aws.for_region(release.region)
    lock = read_lock(aws, ws.settings, release.environment)
    if lock is None:
        return None
    created = lock_created(lock)
    current = (now or (lambda: datetime.now(UTC)))()
    limit = timedelta(minutes=older_than_minutes)
    if created is None or current - created < limit:
        age = "of unknown age" if created is None else f"{(current - created).total_seconds() / 60:.0f} min old"
        raise UserError(
            f"state lock of {release.environment} {lock.describe()} is {age}, younger than "
            f"{older_than_minutes:g} min: its run may still be going (a deploy job runs up to the workflow's "
            f"timeout). Wait for it, or if you know it is dead: smgitops unlock {release.environment} "
            "--older-than 0"
        )
    with ws.locked():
        remove_lock(aws, ws.settings, release.environment, lock.id)
    return lock
