"""``smgitops deploy RELEASE``: apply (the reviewed plan, or plan and apply), verify, smoke-test, send traffic and
run the canary; on a failure roll back to the last good release and write a revert branch; on success tag the
release good. ``--record DIR`` leaves what git must learn for ``smgitops record``.

Stages: :mod:`smgitops.rollout` (the steps, the rollback, the good tag), which goes through :mod:`smgitops.deploy`
(apply and verify), :mod:`smgitops.canary` and :mod:`smgitops.record`. Exit 1 when the deploy failed (rolled back
or not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ._options import cutoff_now

if TYPE_CHECKING:
    from ..rollout import Step

HELP = "apply, verify, smoke, canary; roll back to the last good release on failure"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..rollout import DEFAULT_CANARY_POLL, DEFAULT_CANARY_TIMEOUT

    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument(
        "--traffic",
        type=int,
        default=0,
        metavar="N",
        help="send exactly N synthetic requests (held-out rows, routed by weight) before the canary; the step "
        "says how many each variant answered",
    )
    parser.add_argument(
        "--canary-timeout",
        type=float,
        default=DEFAULT_CANARY_TIMEOUT,
        help="seconds to wait for enough invocations before the canary is inconclusive",
    )
    parser.add_argument("--canary-poll", type=float, default=DEFAULT_CANARY_POLL, help="seconds between polls")
    parser.add_argument("--plan", type=Path, default=None, help="apply this reviewed plan (default: plan and apply)")
    cutoff_now(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--github-output",
        action="store_true",
        help="append ok=, endpoint_config= and rollback_branch= (empty unless a revert branch was written) "
        "to $GITHUB_OUTPUT",
    )
    parser.add_argument(
        "--latest-ref",
        default=None,
        metavar="REF",
        help="deploy only if the release file equals the one at REF (e.g. origin/main); else exit 1 and leave it "
        "to the newer commit's deploy",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="DIR",
        help="write what Git must learn (good tag, revert branch as a git bundle) to DIR/<environment>.json for "
        "`smgitops record`, which pushes it from a job without AWS credentials",
    )


def run(args: argparse.Namespace) -> int:
    from ..clock import announce, bake_clock, cutoff_clock
    from ..context import Context
    from ..git import Git
    from ..rollout import deploy

    if not args.release.is_file():
        raise UserError(f"{args.release}: no such release file")
    if args.traffic < 0 or args.canary_timeout < 0 or args.canary_poll <= 0:
        raise UserError("--traffic and --canary-timeout must be >= 0, --canary-poll > 0")
    clock, canary_sleep, note = bake_clock()
    announce(note, args.json)
    result = deploy(
        args.release,
        Context(clock=clock),  # bound to the release by deploy, which loads it
        traffic=args.traffic,
        canary_sleep=canary_sleep,
        canary_timeout=args.canary_timeout,
        canary_poll=args.canary_poll,
        on_step=None if args.json else print_step,
        plan_file=args.plan,
        latest_ref=args.latest_ref,
        cutoff_now=cutoff_clock(args.now),
    )
    if args.record is not None:
        from ..record import write_record

        write_record(Git.for_path(args.release), result, args.record)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        if result.canary is not None:
            from ..canary import render_doc

            render_doc(result.canary)
        print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    if args.github_output:
        from ..ghoutput import append_github_output

        rb = result.rollback or {}
        append_github_output(
            {
                "ok": "true" if result.ok else "false",
                "endpoint_config": result.endpoint_config or "",
                "rollback_branch": str(rb.get("branch") or "") if rb.get("ok") else "",
            }
        )
    return 0 if result.ok else 1


def print_step(s: Step) -> None:
    """One line per step of the deploy, as it finishes."""
    from rich.markup import escape

    from ..console import make_console

    mark = "[green]ok    [/]" if s.ok else "[bold red]FAILED[/]"
    make_console().print(f"{s.name:<14} {mark} {s.seconds:6.1f} s  {escape(s.detail)}", highlight=False)
