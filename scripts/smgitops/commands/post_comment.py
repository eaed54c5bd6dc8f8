"""``smgitops post-comment DIR``: post the comments ``comment --markdown`` rendered (one ``DIR/*.md`` per
environment, each starting with its marker), creating or updating each environment's one comment. The job has no
AWS credentials and no set-up.

Stages: :mod:`smgitops.comment` (the pull request's comments found by marker, updated or created).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError

HELP = "post rendered pull-request comments (a job without AWS credentials)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", type=Path, metavar="DIR", help="directory of comments rendered by `smgitops comment --markdown`"
    )


def run(args: argparse.Namespace) -> int:
    """Post every ``DIR/*.md`` (one per environment, each starting with its marker) to the pull request."""
    from ..comment import MARKER_LINE, MAX_BODY, post

    files = sorted(args.directory.glob("*.md")) if args.directory.is_dir() else []
    bodies: list[tuple[str, str]] = []
    for path in files:
        body = path.read_text(encoding="utf-8", errors="replace")
        m = MARKER_LINE.match(body.split("\n", 1)[0])
        if m is None:
            raise UserError(f"{path}:1: not a smgitops comment (the first line must be <!-- smgitops:ENV -->)")
        if len(body) > MAX_BODY:
            raise UserError(f"{path}: {len(body)} characters, more than a comment holds ({MAX_BODY})")
        bodies.append((m.group(1), body))
    if not bodies:
        print(f"smgitops post-comment: no comment in {args.directory} (no plan got far enough to render one)")
        return 0
    for environment, body in bodies:
        done = post(body, environment, env=os.environ)
        print(f"comment {environment} {done['action']}: {done['url'] or done['id']}")
    return 0
