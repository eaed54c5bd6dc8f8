"""Human output: one place that decides how tables, progress and values look.

In a terminal, rich draws as usual (colour, the terminal's width, a spinner for waits). Without one -- a CI log,
a pipe, a file, or whenever ``CI=true`` -- output is plain: no ANSI codes, no cursor movement, no wrapping at 80
columns and no cell cut to ``smgitop…``. Every table and status line of the package goes through
:func:`make_console`; every wait reports through :func:`progress`. ``SMGITOPS_PROGRESS=quiet`` silences the
heartbeats and the echo of Terraform's output (the demo, which tells its own story, sets it).

Values are written the way people read them (:func:`human`): ``—`` for nothing, ``yes``/``no``, ``50 %``,
``a 10 %, b 90 %`` for a mapping -- never ``None``, ``True`` or ``{'a': 0.1}``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# Wide enough that no table of the package is cut or wrapped in a log; rich sizes tables to their content, so a
# narrow table stays narrow.
PLAIN_WIDTH = 1000

_WRITE = threading.Lock()  # Terraform's output arrives from reader threads: one whole line at a time


def is_interactive(stream: IO[str] | None = None) -> bool:
    """A person watches ``stream`` (stdout by default): a terminal, and not a CI run (``CI=true``)."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """The rich Console every human renderer prints with: the terminal's own in a terminal; otherwise plain text,
    :data:`PLAIN_WIDTH` columns, no colour, no highlighting, lines never wrapped."""
    from rich.console import Console

    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if is_interactive(stream):
        return Console(file=stream, soft_wrap=True)
    return Console(
        file=stream,
        width=PLAIN_WIDTH,
        color_system=None,
        no_color=True,
        force_terminal=False,
        force_interactive=False,
        highlight=False,
        emoji=False,
        soft_wrap=True,
    )


PROGRESS_ENV = "SMGITOPS_PROGRESS"


def quiet() -> bool:
    """``SMGITOPS_PROGRESS=quiet``: no heartbeats and no echo of Terraform's output (results are still printed)."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() in ("quiet", "off", "0", "false", "no")


def say(text: str, *, label: str = "") -> None:
    """One plain progress line on stderr (``[label] text``), written whole even from several threads."""
    line = f"[{label}] {text}" if label else text
    with _WRITE:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """A heartbeat for a wait, as a function taking the latest news: a spinner line that updates in place in a
    terminal, one plain ``[label] text`` line per call on stderr otherwise (CI logs keep every beat); nothing
    when :func:`quiet`."""
    if quiet():
        yield lambda text: None
        return
    if not is_interactive(sys.stderr):
        yield lambda text: say(text, label=label)
        return
    console = make_console(stderr=True)
    status = console.status(f"[bold]{label}[/] starting")
    started = False

    def update(text: str) -> None:
        nonlocal started
        from rich.markup import escape

        status.update(f"[bold]{escape(label)}[/] {escape(text)}")
        if not started:
            status.start()
            started = True

    try:
        yield update
    finally:
        if started:
            status.stop()


HEARTBEAT_SECONDS = 30.0


class Heartbeat:
    """Passes news on to ``sink`` at the first call and then at most every ``every`` seconds of ``clock`` (the
    caller's injected clock, so a wait in virtual time beats in virtual time)."""

    def __init__(self, sink: Callable[[str], None], clock: Callable[[], float], every: float = HEARTBEAT_SECONDS):
        self.sink = sink
        self.clock = clock
        self.every = every
        self.last: float | None = None
        self.beats = 0

    def __call__(self, text: str) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        self.beats += 1
        self.sink(text)


# -- values as people read them ----------------------------------------------------------------------------------


def human(value: Any) -> str:
    """A value for a person: ``—`` for None/empty, ``yes``/``no``, numbers without a trailing ``.0``, mappings as
    ``key value, …`` and sequences as ``a, b``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {human(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(human(v) for v in value) or "—"
    return str(value)


def percent(value: Any) -> str:
    """A traffic weight in percent (``—`` when there is none): ``10 %``, ``—``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return human(value)
    number = float(value)
    return f"{number:g} %"


def weights_text(mapping: Mapping[str, Any]) -> str:
    """Variant weights: ``primary 90 %, canary 10 %`` (``—`` when there are none)."""
    return ", ".join(f"{name} {percent(w)}" for name, w in mapping.items()) or "—"
