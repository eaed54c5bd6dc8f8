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
