"""The ``smgitops`` console script.

Every workflow step is one call of this CLI. Each command is a module of :mod:`smgitops.commands` named after
it, with its help line ``HELP``, ``configure(parser)`` and ``run(args) -> int``; the stages it calls are imported
only when it runs, so ``smgitops validate`` never pays for scikit-learn, botocore or moto.

Exit codes: 0 ok, 1 a check failed (canary breach, policy finding, drift), 2 bad input or usage.
A failure of the environment (AWS unreachable or silent, credentials missing, expired or denied, throttling, a
missing bootstrap resource, a full disk: :mod:`smgitops.envfaults`) is one line and exit 2 as well. ``--debug``
(anywhere before a ``--``) adds the traceback of any reported error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import NoReturn

from . import __version__
from .commands import COMMANDS, load
from .errors import InvalidRelease, SmgitopsError


def _top_level_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        f"usage: smgitops COMMAND [options]   (smgitops {__version__})",
        "",
        "GitOps pipeline for scikit-learn models on SageMaker endpoints.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {load(name).HELP}" for name in COMMANDS]
    lines += [
        "",
        "Run 'smgitops COMMAND --help' for a command's options; add --debug for the traceback of an error.",
        "Exit codes: 0 ok, 1 a check failed, 2 bad input or usage (or a failure of the environment: AWS, disk).",
    ]
    return "\n".join(lines)


def _take_debug(args: list[str]) -> bool:
    """Remove ``--debug`` (before any ``--``) from ``args``; True when it was there."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (how GitHub cancels a job, after SIGINT) interrupts like Ctrl-C instead of killing the process
    silently: the command reports it and exits 130. While Terraform runs, both are passed to it instead
    (:func:`smgitops.terraform.subprocess_runner`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _take_debug(args)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_top_level_help())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"smgitops {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(_top_level_help(), file=sys.stderr)
        print(f"\nsmgitops: error: unknown command {name!r}", file=sys.stderr)
        return 2
    command = load(name)
    parser = argparse.ArgumentParser(prog=f"smgitops {name}", description=command.HELP)
    command.configure(parser)
    ns = parser.parse_args(rest)
    try:
        with _sigterm_interrupts():
            return command.run(ns)
    except InvalidRelease as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"smgitops {name}: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"smgitops {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from .envfaults import EXIT_CODE, classify

        fault = classify(exc)
        if fault is None and not isinstance(exc, SmgitopsError):
            raise  # a bug: the traceback is the report
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        if fault is not None:
            print(f"smgitops {name}: error: {fault}", file=sys.stderr)
            return EXIT_CODE
        assert isinstance(exc, SmgitopsError)
        print(f"smgitops {name}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run_and_exit() -> NoReturn:
    """The console script (``smgitops``, ``python -m smgitops.cli``): :func:`main`, then the process ends without
    the interpreter's teardown, which frees every module and object one by one (botocore's service models,
    scikit-learn): 0.1 to 0.4 s of a command after its work was done. What an ordinary exit does that matters still
    happens, in the same order: the other non-daemon threads are waited for (idle thread pools told to stop first,
    as ``threading`` does at exit), the exit handlers run (the shared AWS provider is stopped, logging flushed),
    then stdout and stderr are flushed. An exception out of :func:`main` (argparse's usage exit, a bug's traceback)
    ends the process the ordinary way."""
    code = main()
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls first when it exits
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exit_handlers is None:  # another Python: exit the ordinary way
        sys.exit(code)
    shutdown()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that went away: nothing left to tell it
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run_and_exit()
