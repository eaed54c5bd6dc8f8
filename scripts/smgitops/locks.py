"""The Terraform state lock: who holds it, and ``smgitops unlock ENV`` for a lock a dead run left behind.

Terraform (>= 1.10, ``use_lockfile``) and the DynamoDB table both hold the lock of an environment's state
(:func:`smgitops.workspace.read_lock` reads it without taking it, :func:`smgitops.workspace.remove_lock` releases it
by its ID).

``unlock ENV`` releases the lock with ``terraform force-unlock`` and the lock ID read from the lock itself, but
refuses a lock younger than ``--older-than`` minutes (default 90: the deploy job's timeout): a younger lock may
belong to a run that is still going, and releasing it would let two applies write one state. With no run going, it
also repairs the state digest a run killed between writing the state and its digest left stale
(:func:`smgitops.workspace.repair_digest`), which would otherwise fail every later Terraform command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError
from .terraform import LockInfo, lock_created

if TYPE_CHECKING:
    from .context import Context

# The deploy job's timeout-minutes (.github/workflows/deploy.yml): no live run holds the lock longer.
DEFAULT_OLDER_THAN_MINUTES = 90.0


def unlock_command(environment: str) -> str:
    return f"smgitops unlock {environment}"


@dataclass(frozen=True)
class Unlocked:
    """What ``smgitops unlock`` did: the lock it released (None: it was free) and the digest it repaired."""

    lock: LockInfo | None
    repaired_digest: str | None = None


def release_lock(
    release_path: Path,
    ctx: Context,
    *,
    older_than_minutes: float = DEFAULT_OLDER_THAN_MINUTES,
    now: Callable[[], datetime] | None = None,
) -> Unlocked:
    """Force-unlock the state of ``release_path``'s environment if its lock is old enough, then repair a stale
    state digest. A younger (or undated) lock is refused with a UserError (exit 2), and nothing is changed.
    ``ctx`` is bound to the release file here."""
    from .release import load_release
    from .workspace import read_lock, remove_lock, repair_digest

    release = load_release(release_path)
    ctx = ctx.bound_to(release)
    ws = ctx.workspace(release)
    lock = read_lock(ctx.aws, ws.settings, release.environment)
    if lock is None:
        with ws.locked():
            return Unlocked(None, repair_digest(ctx.aws, ws.settings, release.environment))
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
        remove_lock(ctx.aws, ws.settings, release.environment, lock.id)
        return Unlocked(lock, repair_digest(ctx.aws, ws.settings, release.environment))
