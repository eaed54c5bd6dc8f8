"""``smgitops apply RELEASE``: apply the saved plan ``smgitops plan`` made and a reviewer read (refused when stale),
then verify the live endpoint and check that a fresh plan is empty; ``--auto-approve`` plans and applies in one go.

Stages: :mod:`smgitops.release`, :mod:`smgitops.deploy` (the plan checked current, the artifacts servable,
``terraform apply``, verify, the plan after apply), :mod:`smgitops.plan` (with ``--auto-approve``). Exit 1 when
verify or the plan after apply fails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckFailed, UserError

if TYPE_CHECKING:
    from ..plan import PlanResult

HELP = "apply the reviewed plan, then verify"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..deploy import DEFAULT_TIMEOUT

    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument(
        "--plan", type=Path, default=None, help="saved plan (default .smgitops/work/<env>/<env>.tfplan)"
    )
    parser.add_argument(
        "--auto-approve",
        "--no-saved-plan",
        dest="auto_approve",
        action="store_true",
        help="plan and apply in one go, without a reviewed plan (rollbacks, local runs)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds verify waits for InService")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..context import Context
    from ..deploy import apply_plan, apply_release, print_verify
    from ..release import load_release

    release = load_release(args.release)
    ctx = Context.for_release(release)
    if args.auto_approve and args.plan is not None:
        raise UserError("--plan and --auto-approve exclude each other: apply a reviewed plan, or plan and apply")
    planned: PlanResult | None = None
    if args.auto_approve:
        planned, result = apply_release(release, ctx, verify_timeout=args.timeout)
    else:
        result = apply_plan(release, ctx, plan_file=args.plan, verify_timeout=args.timeout)
    if args.json:
        doc = result.as_dict()
        if planned is not None:
            doc["plan"] = planned.summary
        print(json.dumps(doc, indent=2))
    else:
        if planned is not None:
            from ..plan import print_summary

            print_summary(planned.summary)
        if result.verify is not None:
            print_verify(result.verify)
        if result.plan_after_apply_empty:
            print("plan after apply is empty")
        else:
            print("plan after apply is NOT empty (drift):")
            for d in result.drift:
                print(f"  {'/'.join(d['actions']):>14}  {d['address']}")
        print(", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
    return 0 if result.ok else CheckFailed.exit_code
