"""``smgitops teardown``: delete the managed endpoints alive past their release's teardown time (the evening
cut-off), or with ``--dry-run`` list them.

Stages: :mod:`smgitops.teardown` (the releases' schedules, every managed endpoint of their regions judged at
``--now`` and deleted, bounded by ``--max``). Exit 1 when an endpoint past its cut-off is still alive.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError

HELP = "delete managed endpoints alive past their release's teardown time"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="delete at most N endpoints this run")
    parser.add_argument(
        "--now", help="the instant to judge cut-offs at (ISO-8601 with offset; default: $SMGITOPS_NOW, else now)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--releases", default=None, help="directory of release files (default: ./releases)")
    parser.add_argument(
        "--region", action="append", default=[], help="also sweep this region (repeatable; default: the releases')"
    )


def run(args: argparse.Namespace) -> int:
    from ..aws import Aws
    from ..clock import cutoff_clock
    from ..teardown import SageMakerEndpoints, load_schedules, regions_for, render, teardown

    if args.max is not None and args.max < 0:
        raise UserError("--max must be 0 or more")
    if args.releases is not None and not Path(args.releases).is_dir():
        raise UserError(f"--releases: {args.releases} is not a directory")
    releases_dir = Path(args.releases) if args.releases is not None else Path("releases")
    now = cutoff_clock(args.now)()
    schedules, warnings = load_schedules(releases_dir)
    if not schedules:
        warnings.append(f"no release files in {releases_dir}: every managed endpoint gets the default cut-off")
    report = teardown(
        lambda region: SageMakerEndpoints(Aws.for_region(region)),
        regions_for(schedules, args.region),
        schedules,
        clock=lambda: now,
        dry_run=args.dry_run,
        max_deletions=args.max,
        warnings=warnings,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render(report)
    return 0 if report.ok else 1
