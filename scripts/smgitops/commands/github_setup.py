"""``smgitops github-setup``: configure the GitHub repository from bootstrap/'s outputs through GitHub's REST API
(variables, environments and their branch policies, prod's reviewers, the OIDC subject template, Actions
permissions), writing only what differs; ``--dry-run`` prints the calls and makes none.

Stages: :mod:`smgitops.github_setup` (bootstrap/'s outputs read, each item read, then written if it differs).
Exit 1 when prod has no required reviewers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ._options import github_repository

HELP = "configure the GitHub repository from bootstrap/'s outputs (REST API)"


def configure(parser: argparse.ArgumentParser) -> None:
    github_repository(parser)
    parser.add_argument("--dry-run", action="store_true", help="print every call and make none (no token needed)")


def run(args: argparse.Namespace) -> int:
    from ..github_setup import (
        REVIEWED_ENVIRONMENT,
        Plan,
        api_for,
        dry_run_calls,
        load_outputs,
        parse_reviewers,
        print_items,
        run_items,
    )

    environ = os.environ
    out = sys.stdout
    bootstrap = load_outputs(args.outputs, args.bootstrap_dir)
    api = api_for(args.repo, environ, bootstrap, need_token=not args.dry_run)
    plan = Plan(api, bootstrap, parse_reviewers(args.prod_reviewers))
    if args.dry_run:
        calls = dry_run_calls(plan)
        if args.json:
            print(json.dumps({"repository": api.repository, "dry_run": True, "calls": [asdict(c) for c in calls]}))
            return 0
        print(f"dry run: {len(calls)} calls to {api.api} for {api.repository}; none made", file=out)
        for call in calls:
            print(call, file=out)
        print(
            "(github-setup reads each item first and writes only what differs; a variable that exists is updated "
            "with PATCH .../variables/NAME)",
            file=out,
        )
        return 0
    items = run_items(plan, write=True)
    changed = sum(i.fixed for i in items)
    if args.json:
        doc = {"repository": api.repository, "items": [asdict(i) for i in items], "writes": len(api.writes)}
        print(json.dumps(doc), file=out)
    else:
        print_items(items, out, written=True)
        print(
            f"github-setup: {len(items)} items, {changed} changed, {len(api.writes)} writes to {api.repository}",
            file=out,
        )
    if REVIEWED_ENVIRONMENT in bootstrap.environments and not plan.reviewers:
        prod = next(i for i in items if i.name == f"environment {REVIEWED_ENVIRONMENT}: required reviewers")
        if prod.state != "ok":
            print(f"note: {prod.name}: {prod.detail}; fix: {prod.fix}", file=out)
            return 1
    return 0
