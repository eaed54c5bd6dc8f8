"""``smgitops demo``: the whole story on a private emulator, in a scratch git repository, with real Terraform:
bootstrap, a first release, a canary, a promotion, a failed canary rolled back, a revert, the evening teardown and
the next morning's bring-up; every step's expectations checked against live state. It needs the ``local`` extra.

Stages: :mod:`smgitops.demo` (the story: it runs the emulator in process and wires the stages, and runs
``smgitops policy`` through :func:`smgitops.cli.main`, as the pull-request workflow does). Exit 1 when an
expectation did not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "the whole story on the emulator, in a scratch git repository"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch repository (its path is printed)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the timeline")
    parser.add_argument(
        "--no-checkov",
        dest="checkov",
        action="store_false",
        help="skip checkov (the full policy gate runs once, on the first pull request); release policy still runs",
    )


def run(args: argparse.Namespace) -> int:
    from ..console import PROGRESS_ENV, make_console
    from ..demo import render_timeline, run_story

    out = sys.stderr if args.json else sys.stdout
    console = make_console(out)
    # The demo tells its story one line per step; Terraform's output and the canary's heartbeats of its dozen
    # applies would bury it (SMGITOPS_PROGRESS=stream shows them).
    os.environ.setdefault(PROGRESS_ENV, "quiet")
    report = run_story(console, keep=args.keep, checkov=args.checkov)
    doc = report.as_dict()
    if args.report is not None:
        from ..files import write_atomic

        write_atomic(args.report, json.dumps(doc, indent=2) + "\n")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        render_timeline(report, console)
        if args.keep:
            console.print(f"scratch repository kept: {report.scratch_repository}")
    return 0 if report.ok else 1
