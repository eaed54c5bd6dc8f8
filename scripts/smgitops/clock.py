"""Time, injected.

Commands that depend on the time of day (canary bake windows, the evening teardown) take a ``clock`` and a
``sleep`` function instead of calling ``datetime.now`` / ``time.sleep`` themselves, so tests and the demo can
move time without waiting. ``--now`` options are parsed here: an instant must say which time zone it is in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from .errors import UserError

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utc_now() -> datetime:
    """The real clock: an aware datetime in UTC."""
    return datetime.now(UTC)


def real_sleep(seconds: float) -> None:
    time.sleep(seconds)


def fixed_clock(instant: datetime) -> Clock:
    """A clock that always answers ``instant`` (what ``--now`` means)."""
    return lambda: instant


def parse_instant(text: str, option: str = "--now") -> datetime:
    """Parse an ISO-8601 instant with an explicit offset (``2026-11-25T19:30:00+01:00`` or ``...Z``).

    A time without an offset is refused: the teardown cut-off is a local time in a named zone, and guessing the
    zone of ``--now`` is how an endpoint survives the night.
    """
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not an ISO-8601 date-time (e.g. 2026-11-25T19:30:00Z)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise UserError(f"{option}: {text!r} has no UTC offset; write e.g. {raw}Z or {raw}+01:00")
    return parsed.astimezone(UTC)


NOW_ENV = "SMGITOPS_NOW"


def cutoff_clock(option: str | None = None, environ: Mapping[str, str] | None = None) -> Clock:
    """The clock the evening teardown cut-off is judged by (``teardown``, ``deploy``, ``rollback``): ``--now`` when
    given, else ``SMGITOPS_NOW`` (an ISO-8601 instant with offset), else the real clock.

    Separate from the canary's bake clock (:func:`bake_clock`): moving the cut-off's "now" must not move a bake
    window, and the other way round. A fixed instant is what tests and rehearsals need ("deploy at 19:45 Berlin").
    """
    import os

    if option:
        return fixed_clock(parse_instant(option, "--now"))
    value = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    if value:
        return fixed_clock(parse_instant(value, NOW_ENV))
    return utc_now


class VirtualClock:
    """A clock that starts at real time and moves only when ``sleep`` is called, by exactly that much.

    Local runs and tests pass ``clock`` and ``sleep`` to code that waits (a canary baking for ten minutes)
    so that the waiting is done in virtual time, instantly; everything recorded meanwhile (metrics) keeps real
    timestamps, which lie inside the virtual windows.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utc_now()
        self.slept = 0.0

    def now(self) -> datetime:
        real = utc_now()
        if real > self._now:  # never behind real time, so that what just happened is not in the future
            self._now = real
        return self._now

    def sleep(self, seconds: float) -> None:
        from datetime import timedelta

        self.slept += seconds
        self._now = self.now() + timedelta(seconds=seconds)


def bake_clock(environ: Mapping[str, str] | None = None) -> tuple[Clock, Sleep, str | None]:
    """The clock a canary bakes on: real time against AWS, virtual time in local mode.

    Against the emulator every request is synthetic and already sent when the analysis starts; waiting out a real
    ten-minute window would only make local runs (and the workflow tests that run the deploy step) slow. Returns
    ``(clock, sleep, note)``; the note says so whenever the window is virtual, so nobody mistakes it for a real bake.

    ``AWS_ENDPOINT_URL`` alone is not enough: it also points real AWS SDKs at VPC endpoints or proxies. Time is
    virtual only when the endpoint answers the smgitops emulator's own health route.
    """
    if not _is_emulator(environ):
        return utc_now, real_sleep, None
    virtual = VirtualClock()
    return virtual.now, virtual.sleep, "local mode: the bake window passes in virtual time (all traffic is synthetic)"


def announce(note: str | None, json_output: bool) -> None:
    """Print ``bake_clock``'s note: on stdout before a table, on stderr when stdout carries JSON -- a virtual bake
    must be visible in every log, machine-readable runs (the deploy workflow's ``--json``) included."""
    if note:
        print(note, file=sys.stderr if json_output else sys.stdout, flush=True)


def _is_emulator(environ: Mapping[str, str] | None) -> bool:
    """True when ``AWS_ENDPOINT_URL`` names a running smgitops emulator (its admin health route answers)."""
    import os

    env = os.environ if environ is None else environ
    url = env.get("AWS_ENDPOINT_URL", "").strip()
    if not url:
        return False
    from .emulator.admin import AdminClient

    try:
        return AdminClient(url, env.get("AWS_CA_BUNDLE") or None, timeout=5.0).health()
    except Exception:  # anything that is not our emulator's answer: real time
        return False
