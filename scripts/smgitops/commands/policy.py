"""``smgitops policy [RELEASE]``: checkov on the Terraform roots and the release's plan (the repository's custom
checks in ``policies/`` included), then the release policy (against the base release with ``--base-release`` or
``--base-rev``: traffic moves, promotion evidence); one report, as a table or JSON.

Stages: :mod:`smgitops.release`, :mod:`smgitops.plan` (a saved plan shown as JSON), :mod:`smgitops.policy`
(checkov run, release policy, the report). Exit 1 on any finding.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError

HELP = "checkov, custom checks and the release policy"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", nargs="?", type=Path, help="release file (the release policy needs it)")
    plan = parser.add_mutually_exclusive_group()
    plan.add_argument(
        "--plan-json",
        type=Path,
        default=None,
        metavar="F",
        help="`terraform show -json` of the release's plan, scanned with --framework terraform_plan",
    )
    plan.add_argument(
        "--plan-file",
        type=Path,
        default=None,
        metavar="F",
        help="the saved plan `smgitops plan RELEASE` wrote (shown as JSON in its working copy, then scanned)",
    )
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--base-release", type=Path, default=None, metavar="F", help="the base release file")
    base.add_argument(
        "--base-rev",
        default=None,
        metavar="REV",
        help="git revision whose copy of RELEASE is the base (e.g. the PR's base commit)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository holding terraform/, bootstrap/ and policies/ (default: the release's, "
        "else the current directory)",
    )
    parser.add_argument("--release-only", action="store_true", help="only the release policy; no checkov")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout (no table)")
    parser.add_argument("--report", type=Path, default=None, metavar="F", help="write the report as JSON to F")


def run(args: argparse.Namespace) -> int:
    from ..context import Context
    from ..files import write_atomic
    from ..policy import policy_report, print_report

    if args.release is None and (args.base_release or args.base_rev):
        raise UserError("--base-release/--base-rev need a RELEASE")
    if args.release_only and args.release is None:
        raise UserError("--release-only needs a RELEASE")
    if args.plan_file is not None and args.release is None:
        raise UserError("--plan-file needs the RELEASE it was planned from")
    report = policy_report(
        args.release,
        Context(),  # bound to the release (the saved plan's workspace), when there is one
        root=args.root,
        plan_json=args.plan_json,
        plan_file=args.plan_file,
        base_release=args.base_release,
        base_rev=args.base_rev,
        release_only=args.release_only,
    )
    if args.report is not None:
        write_atomic(args.report, json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["ok"] else 1
