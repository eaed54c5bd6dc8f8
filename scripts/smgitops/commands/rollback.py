"""``smgitops rollback RELEASE --to REV``: apply the release file as it was at a git revision (no training), verify
it, and make git match what is live (a revert branch, or the commands that land one).

Stages: :mod:`smgitops.rollout` (the file at ``REV`` materialised, applied through :func:`smgitops.deploy.apply_release`
under the teardown cut-off, git matched to live). Exit 1 when the rollback does not verify.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ._options import cutoff_now

if TYPE_CHECKING:
    from ..rollout import RollbackResult

HELP = "apply the release file as it was at a git revision (no training)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument("--to", required=True, metavar="REV", help="git revision whose release file to apply")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    cutoff_now(parser)


def run(args: argparse.Namespace) -> int:
    from ..clock import cutoff_clock
    from ..context import Context
    from ..git import Git
    from ..rollout import match_git_to_live, rollback

    if not args.release.is_file():
        raise UserError(f"{args.release}: no such release file")
    # the context is bound to the release file as it was at REV, which rollback reads from git
    result = rollback(args.release, args.to, Context(), cutoff_now=cutoff_clock(args.now))
    git_state = match_git_to_live(Git.for_path(args.release), result) if result.ok else None
    if args.json:
        print(json.dumps({**result.as_dict(), "git": git_state}, indent=2))
    else:
        print_rollback(result, git_state)
    return 0 if result.ok else 1


def print_rollback(result: RollbackResult, git_state: dict[str, Any] | None) -> None:
    """What ``smgitops rollback`` prints for a person: weights in percent, yes/no, never a Python value."""
    from ..console import human, weights_text

    state = "rolled back" if result.ok else "ROLLBACK DID NOT VERIFY"
    print(f"{state}: {result.release} as of {result.revision} ({result.sha[:8]})")
    print(f"live configuration {human(result.endpoint_config)}, weights {weights_text(result.weights)}")
    print(f"plan after apply empty: {human(result.plan_after_apply_empty)}; {result.seconds:.1f} s")
    for p in result.problems:
        print(f"  problem: {p}")
    for n in result.notes:
        print(f"  note: {n}")
    _print_git_state(result, git_state)


def _print_git_state(result: RollbackResult, git_state: dict[str, Any] | None) -> None:
    if git_state is None:
        return
    if git_state["matches"]:
        print(f"git matches live: {result.release} at HEAD is the file of {result.sha[:8]}")
        return
    print(f"git does not match live: {result.release} at HEAD is not the file of {result.sha[:8]} now served")
    if "branch" in git_state:
        print(f"revert commit {git_state['commit'][:8]} on branch {git_state['branch']}; to make git match live:")
    else:
        print(f"no revert branch written ({git_state['error']}); to make git match live:")
    for command in git_state["commands"]:
        print(f"  {command}")
    if "branch" in git_state:
        print("and open a pull request from the branch (or merge it as above)")
