"""``smgitops record DIR``: what a deploy job wrote with ``--record`` (its good tag, its revert branch as a git
bundle), pushed from a job without AWS credentials, and the revert pull request opened.

Stages: :mod:`smgitops.record` (records read, tags and branches pushed, pull requests opened). Runs on the runner's
bare Python (no set-up).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "push a deploy's good tag and revert branch, open the revert PR (no AWS credentials)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR", help="the records `smgitops deploy --record` wrote")
    parser.add_argument("--remote", default="origin", help="remote to push to (default origin)")
    parser.add_argument("--base", default="main", help="base branch of the revert pull requests (default main)")
    parser.add_argument(
        "--app-slug",
        default="",
        metavar="SLUG",
        help="the GitHub App whose installation token GH_TOKEN is (its pull requests run the checks); "
        "empty: GITHUB_TOKEN, and the pull request says how to start them",
    )


def run(args: argparse.Namespace) -> int:
    from ..git import Git
    from ..record import record

    repository = Git.containing(Path.cwd())  # the checkout of the push the workflow runs for
    done = record(args.directory, repository, remote=args.remote, base=args.base, app=args.app_slug)
    for line in done or [f"{args.directory}: no deploy records (no deploy got far enough to write one)"]:
        print(line)
    return 0
