"""``smgitops canary RELEASE``: judge each variant of the live endpoint on its CloudWatch metrics (invocations,
error rate, p99 latency) over the release's bake window; ``--wait`` polls until enough invocations arrive.

Stages: :mod:`smgitops.release`, :mod:`smgitops.canary` (the window from the endpoint's last update, metrics
collected and judged against the release's thresholds). Exit 1 when the canary fails or is inconclusive.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC

from ..errors import UserError

HELP = "analyse per-variant CloudWatch metrics over the bake window"


def configure(parser: argparse.ArgumentParser) -> None:
    from ..canary import DEFAULT_POLL_SECONDS, DEFAULT_TIMEOUT_SECONDS

    parser.add_argument("release", help="release file, e.g. releases/dev.yaml")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--now", help="end of the bake window (ISO-8601 with offset; default: now)")
    parser.add_argument(
        "--since",
        help="start the window no earlier than this (ISO-8601 with offset; default: the endpoint's last update, "
        "DescribeEndpoint's LastModifiedTime, so traffic served before it never counts)",
    )
    parser.add_argument("--wait", action="store_true", help="poll until enough invocations arrive or --timeout")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait (--wait)")
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS, help="seconds between polls (--wait)")


def run(args: argparse.Namespace) -> int:
    from ..canary import CloudWatchMetrics, analyse, live_since, render
    from ..clock import Sleep, announce, bake_clock, fixed_clock, parse_instant, real_sleep, utc_now
    from ..console import progress
    from ..context import Context
    from ..release import load_release

    if args.now and args.wait:
        raise UserError("--now fixes the end of the window; it cannot be combined with --wait")
    if args.timeout < 0 or args.poll <= 0:
        raise UserError("--timeout must be >= 0 and --poll > 0")
    release = load_release(args.release)
    sleep: Sleep = real_sleep
    if args.now:
        clock = fixed_clock(parse_instant(args.now))
    elif args.wait:
        clock, sleep, note = bake_clock()
        announce(note, args.json)
    else:
        clock = utc_now
    ctx = Context.for_release(release, clock=clock, sleep=sleep)
    if args.since:
        since, since_from = parse_instant(args.since, "--since"), f"--since {args.since}"
    else:
        since = live_since(release, ctx.aws)
        since_from = f"the endpoint's last update ({since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, LastModifiedTime)"
    with progress("canary") as beat:
        report = analyse(
            release,
            CloudWatchMetrics(ctx.aws),
            clock=ctx.clock,
            sleep=ctx.sleep,
            wait=args.wait,
            timeout_seconds=args.timeout,
            poll_seconds=args.poll,
            since=since,
            since_from=since_from,
            progress=beat,
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render(report)
    return 0 if report.ok else 1
