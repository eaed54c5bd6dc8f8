"""``smgitops changed-releases``: the release files a git change concerns, as a workflow's job matrix (JSON on
stdout; with ``--github-output`` also ``matrix``, ``any``, ``retired`` and ``any_retired`` in ``$GITHUB_OUTPUT``).

Stages: :mod:`smgitops.changes` (git diff of base and head, deleted release files apart). Standard library only:
the job runs it on the runner's bare Python.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "release files a git change concerns, as a workflow job matrix"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default=None, help="base revision (a PR's base SHA; a push's `before`)")
    parser.add_argument("--head", default="HEAD", help="head revision (default HEAD)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository (default: current directory)")
    parser.add_argument("--github-output", action="store_true", help="append matrix= and any= to $GITHUB_OUTPUT")


def run(args: argparse.Namespace) -> int:
    from ..changes import changed_releases, deleted_releases, has_release_dir, matrix
    from ..ghoutput import append_github_output

    present = has_release_dir(args.repo, args.head)  # the last release file deleted: none left
    rows = matrix(changed_releases(args.repo, args.base, args.head)) if present else []
    retired = matrix(deleted_releases(args.repo, args.base, args.head))
    text = json.dumps(rows, separators=(",", ":"))
    print(text)
    for row in retired:
        print(
            f"changed-releases: {row['release']} deleted: environment {row['environment']} retires "
            f"(smgitops retire {row['environment']})",
            file=sys.stderr,
        )
    if args.github_output:
        append_github_output(
            {
                "matrix": text,
                "any": "true" if rows else "false",
                "retired": json.dumps(retired, separators=(",", ":")),
                "any_retired": "true" if retired else "false",
            }
        )
    return 0
