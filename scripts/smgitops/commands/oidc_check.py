"""``smgitops oidc-check``: can this job assume its AWS role through GitHub's OIDC token? If not (a pull request
from a fork), say why in the job summary and set the step output ``ready=false`` so the job's later steps skip.

Stages: :mod:`smgitops.oidc` (what the job lacks). Standard library only: it runs first in its job, on the runner's
bare Python.
"""

from __future__ import annotations

import argparse
import os

HELP = "can the job assume its role (OIDC token, role variable)? else say why, skip"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, help="the role ARN the job would assume (may be empty)")
    parser.add_argument("--what", default="this job", help="what is skipped without credentials (for the summary)")
    parser.add_argument("--github-output", action="store_true", help="append ready=true|false to $GITHUB_OUTPUT")


def run(args: argparse.Namespace) -> int:
    from ..ghoutput import append_github_output
    from ..oidc import missing

    reasons = missing(args.role, os.environ)
    if args.github_output:
        append_github_output({"ready": "false" if reasons else "true"})
    if not reasons:
        print(f"oidc-check: an OIDC token is available to assume {args.role}")
        return 0
    line = (
        f"Skipped {args.what}: {'; '.join(reasons)}. A pull request from a fork gets neither an OIDC token nor the "
        "repository's variables; a maintainer can push the branch to this repository to plan it."
    )
    print(f"oidc-check: {line}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # on GitHub always; elsewhere the printed line is all
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(f"{line}\n")
    return 0
