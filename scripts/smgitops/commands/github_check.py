"""``smgitops github-check``: read the repository's GitHub configuration back and print each item ``ok``,
``missing`` or ``wrong`` with its fix.

Stages: :mod:`smgitops.github_setup` (the same items as github-setup, read only). Exit 1 when an item is not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ._options import github_repository

HELP = "read the repository's GitHub configuration back: ok, missing or wrong"


def configure(parser: argparse.ArgumentParser) -> None:
    github_repository(parser)


def run(args: argparse.Namespace) -> int:
    from ..github_setup import Plan, api_for, load_outputs, parse_reviewers, print_items, run_items

    environ = os.environ
    out = sys.stdout
    bootstrap = load_outputs(args.outputs, args.bootstrap_dir)
    api = api_for(args.repo, environ, bootstrap, need_token=True)
    items = run_items(Plan(api, bootstrap, parse_reviewers(args.prod_reviewers)), write=False)
    bad = [i for i in items if i.state != "ok"]
    if args.json:
        doc = {"repository": api.repository, "ok": not bad, "items": [asdict(i) for i in items]}
        print(json.dumps(doc), file=out)
    else:
        print_items(items, out)
        print(f"github-check: {len(items) - len(bad)} of {len(items)} ok", file=out)
    return 1 if bad else 0
