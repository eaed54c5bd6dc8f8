"""``smgitops publish``: upload the release's trained artifacts not yet in the content-addressed store (never
overwrite).

Stages: :mod:`smgitops.release` (the release file), :mod:`smgitops.artifacts` (digests checked, then each artifact
looked up and uploaded if absent). Exit 1 when an artifact is refused (other content under its key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..artifacts import PublishReport

HELP = "upload artifacts not yet in the content-addressed store (never overwrite)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, help="release file, e.g. releases/dev.yaml")
    parser.add_argument(
        "--from", dest="from_dir", type=Path, default=None, help="trained artifacts directory (default out/artifacts)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _print_report(report: PublishReport) -> None:
    from rich.table import Table

    from ..console import make_console

    table = Table(title=f"artifacts in s3://{report.bucket}")
    for col in ("model", "digest", "status", "detail"):
        table.add_column(col)
    style = {"published": "green", "already_present": "cyan", "refused": "bold red"}
    for o in report.outcomes:
        table.add_row(o.model, o.digest[:12], f"[{style[o.status]}]{o.status.replace('_', ' ')}[/]", o.detail)
    console = make_console()
    console.print(table)
    d = report.as_dict()
    console.print(f"{d['published']} published, {d['already_present']} already present, {d['refused']} refused")


def run(args: argparse.Namespace) -> int:
    from ..artifacts import publish_release, store_for
    from ..context import Context
    from ..release import load_release

    release = load_release(args.release)
    report = publish_release(release, store_for(release, Context.for_release(release)), artifact_dir=args.from_dir)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        print()
    else:
        _print_report(report)
    return 0 if report.ok else 1
