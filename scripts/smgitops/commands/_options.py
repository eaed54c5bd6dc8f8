"""Arguments more than one command takes, defined once (command modules do not import each other)."""

from __future__ import annotations

import argparse


def github_repository(parser: argparse.ArgumentParser) -> None:
    """github-setup's and github-check's: the repository, bootstrap/'s outputs, prod's reviewers, --json."""
    parser.add_argument("--repo", help="OWNER/NAME (default: GITHUB_REPOSITORY, else the origin remote)")
    parser.add_argument(
        "--outputs", metavar="FILE", help="bootstrap/'s outputs saved with `terraform output -json > FILE`"
    )
    parser.add_argument(
        "--bootstrap-dir",
        default="bootstrap",
        help="bootstrap root to run `terraform output -json` in (default bootstrap)",
    )
    parser.add_argument(
        "--prod-reviewers",
        action="append",
        metavar="USER,ORG/TEAM",
        help="required reviewers of prod (up to 6 users or teams, comma-separated); without it setup keeps prod's "
        "and check accepts any",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


_NOW_HELP = (
    "the instant to judge the release's teardown cut-off at (ISO-8601 with offset; default: $SMGITOPS_NOW, else "
    "now); after today's cut-off nothing is applied (exit 1). The canary's bake clock is separate"
)


def cutoff_now(parser: argparse.ArgumentParser) -> None:
    """deploy's and rollback's ``--now``: the instant their teardown cut-off is judged at."""
    parser.add_argument("--now", default=None, metavar="ISO-8601", help=_NOW_HELP)
