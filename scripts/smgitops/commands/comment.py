"""``smgitops comment PLAN_JSON``: render the pull request's comment for one environment (release diff, traffic
before and after, metrics of the models gaining traffic, plan, policy, cost) and with ``--post`` create or update
it; ``--markdown F`` writes it for ``post-comment``, ``--summary`` appends it to the job summary.

Stages: :mod:`smgitops.release` and :mod:`smgitops.policy` (the release and its base at ``--base-rev``, promotion
evidence), :mod:`smgitops.record` (this environment's canary evidence), :mod:`smgitops.pricing` (cost),
:mod:`smgitops.comment` (the review built, the Markdown rendered and posted).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import UserError

HELP = "render (and post) the pull-request comment: plan, traffic, policy, cost"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_json", type=Path, metavar="PLAN_JSON", help="plan summary from `smgitops plan --json`")
    parser.add_argument("--policy", type=Path, default=None, metavar="F", help="report from `smgitops policy --json`")
    parser.add_argument(
        "--release",
        type=Path,
        default=None,
        help="release file for the cost estimate (default: the one the summary names)",
    )
    parser.add_argument("--now", default=None, help="ISO-8601 instant with offset for the cost estimate (default: now)")
    parser.add_argument(
        "--base-rev",
        default=None,
        metavar="REV",
        help="git revision whose copy of the release is the base (the PR's base commit): traffic moved, metrics "
        "beside the models it moves from, parameter changes and the cost change are against it",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="where `smgitops train` wrote the archives whose manifests hold the held-out metrics "
        "(default: out/artifacts in the release's repository)",
    )
    parser.add_argument(
        "--store",
        action="store_true",
        help="also read archives not in DIR (e.g. the base's models) from the artifact store (read-only credentials)",
    )
    parser.add_argument("--markdown", type=Path, default=None, metavar="F", help="also write the Markdown to F")
    parser.add_argument("--post", action="store_true", help="create or update the pull request's comment")
    parser.add_argument("--summary", action="store_true", help="append the Markdown to $GITHUB_STEP_SUMMARY")
    parser.add_argument(
        "--json", action="store_true", help="print what was posted as JSON on stdout (instead of the Markdown)"
    )
    parser.add_argument("--report", type=Path, default=None, metavar="F", help="write what was posted as JSON to F")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such {what} file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: the {what} must be a JSON object")
    return data


_SUMMARY_KEYS = ("release", "environment", "endpoint", "endpoint_config", "variants", "resources", "no_changes")


def _own_evidence(release: Any) -> list[dict[str, Any]]:
    """The canary evidence of the release's own environment (none outside a git repository)."""
    from ..git import Git
    from ..record import read_evidence

    try:
        git = Git.for_path(Path(release.path))
    except UserError:
        return []
    return read_evidence(git, str(release.environment))


def run(args: argparse.Namespace) -> int:
    from ..clock import parse_instant, utc_now
    from ..comment import build_review, local_manifests, post, render_markdown, store_manifests
    from ..files import write_atomic

    summary = _read_json(args.plan_json, "plan summary")
    missing = [k for k in _SUMMARY_KEYS if k not in summary]
    if missing:
        raise UserError(f"{args.plan_json}: not a plan summary (missing {', '.join(missing)})")
    policy = _read_json(args.policy, "policy report") if args.policy is not None else None
    now: datetime = parse_instant(args.now) if args.now else utc_now()

    cost: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    release_path = args.release or Path(str(summary["release"]))
    if release_path.is_file():
        from ..context import Context
        from ..policy import base_from_rev, promotion_evidence
        from ..pricing import compare_cost
        from ..release import load_release

        release = load_release(release_path)
        base = base_from_rev(release_path, args.base_rev) if args.base_rev else None
        sources = [local_manifests(args.artifacts or release.repo_root / "out" / "artifacts")]
        if args.store:
            sources.append(store_manifests(release, Context.for_release(release)))
        review = build_review(
            summary,
            release,
            base,
            manifests=sources,
            evidence=promotion_evidence(release),
            own_evidence=_own_evidence(release),
            base_label=f"base {args.base_rev[:8]}" if args.base_rev else "the base release",
        )
        cost = compare_cost(release, base, now)
    elif args.release is not None:
        raise UserError(f"{args.release}: no such release file")
    else:
        print(f"smgitops comment: {release_path} not found; no cost estimate or review", file=sys.stderr)

    body = render_markdown(summary, policy=policy, cost=cost, review=review, env=os.environ)
    if args.markdown is not None:
        write_atomic(args.markdown, body)
    if args.summary:
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not step_summary:
            raise UserError("--summary needs GITHUB_STEP_SUMMARY in the environment (set by GitHub Actions)")
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(body + "\n")
    result: dict[str, Any] = {"environment": summary["environment"], "posted": None}
    if args.post:
        result["posted"] = post(body, str(summary["environment"]), env=os.environ)
        posted = result["posted"]
        print(f"comment {posted['action']}: {posted['url'] or posted['id']}", file=sys.stderr if args.json else None)
    if args.report is not None:
        write_atomic(args.report, json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    elif not (args.post or args.summary or args.markdown):
        sys.stdout.write(body)
    return 0
