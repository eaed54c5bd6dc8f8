"""``smgitops verify RELEASE``: check that the live endpoint equals the release (status, configuration name, every
variant's model, weight, instance type and count, the stored archives' digests) and, unless ``--no-plan``, that
the Terraform state matches AWS. Outside the release's working hours an absent endpoint is down on schedule.

Stages: :mod:`smgitops.release`, :mod:`smgitops.deploy` (the endpoint described and compared; a refresh-only
plan through :mod:`smgitops.recovery`), :mod:`smgitops.bringup` (working hours). Exit 1 on drift.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CheckFailed

HELP = "check that the live endpoint equals the release"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..deploy import DEFAULT_TIMEOUT

    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for Creating/Updating")
    parser.add_argument(
        "--no-plan",
        action="store_true",
        help="compare the endpoint only; by default the Terraform state must also match AWS (refresh-only plan)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--now",
        default=None,
        metavar="ISO-8601",
        help="the instant to judge working hours at (schedule.up to teardown.at; with offset; default: "
        "$SMGITOPS_NOW, else now): outside them an absent endpoint is down on schedule, not drift",
    )


def run(args: argparse.Namespace) -> int:
    from ..clock import cutoff_clock
    from ..context import Context
    from ..deploy import print_verify, verify_live
    from ..release import load_release

    release = load_release(args.release)
    result = verify_live(
        release, Context.for_release(release), cutoff_clock(args.now)(), timeout=args.timeout, plan=not args.no_plan
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_verify(result)
    return 0 if result.ok else CheckFailed.exit_code
