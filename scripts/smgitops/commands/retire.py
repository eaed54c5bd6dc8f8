"""``smgitops retire ENV``: destroy what an environment whose release file was deleted still has (with
``--plan-only``, plan it: a pull request's comment), then list what is still live.

Stages: :mod:`smgitops.retire` (the release file as it was before its deletion, ``terraform plan -destroy`` and
apply, what is left outside the state pruned), which renders the pull request's Markdown. Exit 1 when something is
still live.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import CheckFailed, UserError

HELP = "destroy what an environment whose release file was deleted still has (--plan-only)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("environment", metavar="ENV", help="the environment whose releases/<ENV>.yaml was deleted")
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="plan the destroy without the state lock (read-only credentials: a pull request); destroy nothing",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (no listing)")
    parser.add_argument("--report", type=Path, default=None, metavar="F", help="write the result as JSON to F")
    parser.add_argument("--markdown", type=Path, default=None, metavar="F", help="write the PR-comment Markdown to F")
    parser.add_argument("--summary", action="store_true", help="append the Markdown to $GITHUB_STEP_SUMMARY")


def run(args: argparse.Namespace) -> int:
    from ..context import Context
    from ..files import write_atomic
    from ..retire import render_markdown, retire

    result = retire(args.environment, Context(), plan_only=args.plan_only)
    markdown = render_markdown(result)
    if args.markdown is not None:
        write_atomic(args.markdown, markdown)
    if args.report is not None:
        write_atomic(args.report, json.dumps(result.as_dict(), indent=2) + "\n")
    if args.summary:
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not step_summary:
            raise UserError("--summary needs GITHUB_STEP_SUMMARY in the environment (set by GitHub Actions)")
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(markdown)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        verb = "to destroy" if result.plan_only else "destroyed"
        for d in result.destroy:
            print(f"  {verb:>10}  {d['address']}  {d['name']}")
        for name in result.pruned:
            print(f"  {'deleted':>10}  {name} (outside the state, tagged release={result.environment})")
        print(result.headline(), file=sys.stdout)
    if result.left:
        print(f"retire {result.environment}: still live: " + "; ".join(result.left), file=sys.stderr)
        return CheckFailed.exit_code
    return 0
