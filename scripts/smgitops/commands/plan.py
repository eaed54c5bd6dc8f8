"""``smgitops plan RELEASE``: ``terraform plan`` of the release in its environment's workspace, saved for ``apply``,
and summarised: variants, weights, instances, what is created, updated or replaced, and the artifacts still to
publish; ``--markdown F`` renders the pull request's comment.

Stages: :mod:`smgitops.release`, :mod:`smgitops.artifacts` (no stale trained archive), :mod:`smgitops.plan`
(workspace, ``terraform plan`` and ``show -json``, the summary).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "terraform plan of a release, summarised (variants, weights, cost)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument("--out", type=Path, default=None, help="plan file (default .smgitops/work/<env>/<env>.tfplan)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="F", help="write the PR-comment Markdown to F")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (no table)")
    parser.add_argument("--report", type=Path, default=None, metavar="F", help="write the summary as JSON to F")
    parser.add_argument(
        "--lock",
        choices=("true", "false"),
        default="true",
        help="take the state lock (default); --lock=false reads the state without it, as read-only credentials "
        "(pull requests) must",
    )


def run(args: argparse.Namespace) -> int:
    from ..artifacts import default_artifact_dir, refuse_stale_archives
    from ..clock import utc_now
    from ..context import Context
    from ..files import write_atomic
    from ..plan import plan_release, print_summary, render_markdown
    from ..release import load_release

    release = load_release(args.release)
    # A trained archive that is not the release's: the plan would deploy the model the release pins, not the one
    # just trained (a parameter changed and its digest was not written).
    refuse_stale_archives(release, default_artifact_dir(release), "not planned")
    result = plan_release(release, Context.for_release(release), out=args.out, lock=args.lock == "true")
    summary = result.summary
    if args.markdown is not None:
        write_atomic(args.markdown, render_markdown(summary, release, utc_now()))
    if args.report is not None:
        write_atomic(args.report, json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print_summary(summary)
    return 0
