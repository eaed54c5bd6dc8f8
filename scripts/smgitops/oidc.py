"""``smgitops oidc-check``: can this job assume its AWS role through GitHub's OIDC token?

GitHub gives a pull request from a fork neither an OIDC token (no ``ACTIONS_ID_TOKEN_REQUEST_URL`` in the job's
environment, whatever ``permissions: id-token: write`` says) nor the repository's variables (the role ARN is '').
Assuming the role would then fail the job; instead this step says why in the job summary and sets the step output
``ready=false``, and the job's later steps are skipped (``if: steps.<id>.outputs.ready == 'true'``), green.

Standard library only: it runs first in its job, before the set-up, on the runner's bare Python.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from .ghoutput import append_github_output

TOKEN_REQUEST_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"


def missing(role: str, environ: Mapping[str, str]) -> list[str]:
    """What the job lacks to assume ``role`` (empty: it can)."""
    reasons = []
    if not environ.get(TOKEN_REQUEST_ENV):
        reasons.append(f"no OIDC token ({TOKEN_REQUEST_ENV} is not set)")
    if not role.strip():
        reasons.append("no role to assume (the role variable is empty)")
    return reasons


def configure_oidc_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, help="the role ARN the job would assume (may be empty)")
    parser.add_argument("--what", default="this job", help="what is skipped without credentials (for the summary)")
    parser.add_argument("--github-output", action="store_true", help="append ready=true|false to $GITHUB_OUTPUT")


def run_oidc_check(args: argparse.Namespace) -> int:
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
