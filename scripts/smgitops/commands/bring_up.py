"""``smgitops bring-up [RELEASE...]``: re-create the endpoints whose ``schedule.up`` has come (working hours), on
the release as committed, with no training; ``--due`` only says which releases are due (no AWS call).

Stages: :mod:`smgitops.release` (every file loaded first), :mod:`smgitops.bringup` (due or not, then
:func:`smgitops.deploy.apply_release` and verify; an endpoint already up is verified only).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from datetime import datetime

    from ..release import Release

HELP = "re-create endpoints whose schedule.up has come (working hours; no training)"


def _release_files(paths: list[Path], releases_dir: Path | None) -> list[Path]:
    """The release files named, else every ``*.yaml``/``*.yml`` in ``releases_dir`` (default ``./releases``)."""
    if paths:
        for path in paths:
            if not path.is_file():
                raise UserError(f"{path}: no such release file")
        return paths
    directory = releases_dir or Path("releases")
    if not directory.is_dir():
        raise UserError(f"--releases: {directory} is not a directory")
    found = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not found:
        raise UserError(f"{directory}: no release files")
    return found


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, nargs="*", help="release files (default: every one in --releases)")
    parser.add_argument("--releases", type=Path, default=None, help="directory of release files (default ./releases)")
    parser.add_argument(
        "--now",
        default=None,
        metavar="ISO-8601",
        help="the instant to judge schedule.up and the teardown cut-off at (with offset; default: $SMGITOPS_NOW, "
        "else now)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds verify waits for InService")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--due", action="store_true", help="only say which releases are due now (no AWS call, nothing applied)"
    )
    parser.add_argument(
        "--github-output", action="store_true", help="with --due: append matrix= and any= to $GITHUB_OUTPUT"
    )


def _run_due(files: list[Path], releases: list[Release], now: datetime, github_output: bool) -> int:
    from ..bringup import decide
    from ..changes import matrix

    due: list[str] = []
    for path, release in zip(files, releases, strict=True):
        ok, why = decide(release, now)
        print(f"{path}: {'due' if ok else 'not due'}: {why}", file=sys.stderr)
        if ok:
            due.append(str(path))
    text = json.dumps(matrix(due), separators=(",", ":"))
    print(text)
    if github_output:
        from ..ghoutput import append_github_output

        append_github_output({"matrix": text, "any": "true" if due else "false"})
    return 0


def run(args: argparse.Namespace) -> int:
    from ..bringup import bring_up
    from ..clock import cutoff_clock
    from ..context import Context
    from ..release import load_release

    if args.github_output and not args.due:
        raise UserError("--github-output goes with --due (the workflow's matrix of releases due now)")
    files = _release_files(list(args.release), args.releases)
    now = cutoff_clock(args.now)
    releases = [load_release(path) for path in files]  # every file valid before anything changes (exit 2)
    if args.due:
        return _run_due(files, releases, now(), args.github_output)
    entries = [bring_up(release, Context.for_release(release), now, timeout=args.timeout) for release in releases]
    code = max((e.exit_code for e in entries), default=0)
    if args.json:
        print(json.dumps({"ok": code == 0, "releases": [asdict(e) for e in entries]}, indent=2))
        return code
    for e in entries:
        mark = "ok" if e.ok else "FAILED"
        detail = f"; configuration {e.endpoint_config}" if e.endpoint_config else ""
        if e.plan_after_apply_empty is not None:
            detail += f"; plan after apply {'empty' if e.plan_after_apply_empty else 'NOT EMPTY'}"
        if e.action in ("brought up", "failed"):
            detail += f"; {e.seconds:.1f} s, no training"
        out = sys.stdout if e.ok else sys.stderr
        print(f"{e.release}: {e.action} ({mark}): endpoint {e.endpoint}: {e.reason}{detail}", file=out)
        for problem in e.problems:
            print(f"  problem: {problem}", file=out)
    return code
