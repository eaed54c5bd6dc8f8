"""``smgitops oidc-check``: can this job assume its AWS role through GitHub's OIDC token?

GitHub gives a pull request from a fork neither an OIDC token (no ``ACTIONS_ID_TOKEN_REQUEST_URL`` in the job's
environment, whatever ``permissions: id-token: write`` says) nor the repository's variables (the role ARN is '').
Assuming the role would then fail the job; instead this step says why in the job summary and sets the step output
``ready=false``, and the job's later steps are skipped (``if: steps.<id>.outputs.ready == 'true'``), green.

Standard library only: it runs first in its job, before the set-up, on the runner's bare Python.
"""

from __future__ import annotations

from collections.abc import Mapping

TOKEN_REQUEST_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"


def missing(role: str, environ: Mapping[str, str]) -> list[str]:
    """What the job lacks to assume ``role`` (empty: it can)."""
    reasons = []
    if not environ.get(TOKEN_REQUEST_ENV):
        reasons.append(f"no OIDC token ({TOKEN_REQUEST_ENV} is not set)")
    if not role.strip():
        reasons.append("no role to assume (the role variable is empty)")
    return reasons
