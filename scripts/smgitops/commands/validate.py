"""``smgitops validate``: check release files (schema and semantics) before any AWS call.

Stages: :mod:`smgitops.release_checks` (strict loading by :mod:`smgitops.yamlload`, JSON Schema, semantic checks).
Every problem is printed as ``file:line:col: field: message``; any problem is exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InvalidRelease

HELP = "check release files: schema and semantics, before any AWS call"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..release_checks import ALLOWED_REGIONS, DEFAULT_ALLOWED_INSTANCE_TYPES, INSTANCE_TYPES_ENV

    parser.add_argument("releases", nargs="+", metavar="RELEASE", help="release files, e.g. releases/*.yaml")
    parser.add_argument("--json", action="store_true", help="print a JSON list of per-file results on stdout")
    parser.epilog = (
        f"Instance types allowed: {', '.join(DEFAULT_ALLOWED_INSTANCE_TYPES)} (override with {INSTANCE_TYPES_ENV}, "
        f"comma-separated); regions: {', '.join(ALLOWED_REGIONS)}. Exit codes: 0 all valid, 2 any problem."
    )


def run(args: argparse.Namespace) -> int:
    from ..release_checks import validate_path

    results = [validate_path(p) for p in dict.fromkeys(args.releases)]  # each file once, in the order given
    if args.json:
        json.dump([r.to_json() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if all(r.ok for r in results) else 2
    for r in results:
        for note in r.notes:
            print(f"{r.file}: note: {note}")
        if r.ok:
            print(f"{r.file}: ok")
    problems = [p for r in results for p in r.problems]
    if problems:
        raise InvalidRelease(problems)
    return 0
