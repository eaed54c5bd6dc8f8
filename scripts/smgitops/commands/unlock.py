"""``smgitops unlock ENV``: release the Terraform state lock a cancelled or lost run left behind; a lock younger
than ``--older-than`` minutes is refused (it may belong to a run still going).

With no lock held (or once the dead run's lock is released) it also repairs the state digest a run killed between
writing the state and its digest left stale.

Stages: :mod:`smgitops.locks` (the lock read, its age checked, the lock released by its ID, the digest repaired).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..errors import UserError

HELP = "release the state lock a cancelled or lost run left behind (refuses a young lock), repair a stale digest"


def _release_path(target: str) -> Path:
    """``dev`` means ``releases/dev.yaml``; a path is taken as it is."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return path
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,11}", target):
        raise UserError(f"{target!r}: give an environment (dev) or a release file (releases/dev.yaml)")
    return Path("releases") / f"{target}.yaml"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..locks import DEFAULT_OLDER_THAN_MINUTES

    parser.add_argument("environment", metavar="ENV", help="environment (dev) or its release file (releases/dev.yaml)")
    parser.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_OLDER_THAN_MINUTES,
        metavar="MINUTES",
        help=f"refuse a lock younger than this (default {DEFAULT_OLDER_THAN_MINUTES:g}: the deploy job's timeout)",
    )


def run(args: argparse.Namespace) -> int:
    from ..context import Context
    from ..locks import release_lock

    path = _release_path(args.environment)
    if not path.is_file():
        raise UserError(f"{path}: no such release file")
    if args.older_than < 0:
        raise UserError("--older-than must be >= 0")
    done = release_lock(path, Context(), older_than_minutes=args.older_than)
    if done.lock is None:
        print(f"{path}: the state lock is free; nothing to release")
    else:
        print(f"{path}: released the state lock {done.lock.describe()}")
    if done.repaired_digest:
        print(f"{path}: repaired {done.repaired_digest}")
    return 0
