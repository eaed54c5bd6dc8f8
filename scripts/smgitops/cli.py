"""The ``smgitops`` console script.

Every workflow step is one call of this CLI. Sub-commands live in the module of the pipeline stage that owns
them; a module is imported only when its command runs, so ``smgitops validate`` never pays for scikit-learn,
boto3 or moto. Each owning module defines ``configure_<command>(parser)`` and ``run_<command>(args) -> int``.

Exit codes: 0 ok, 1 a check failed (canary breach, policy finding, drift), 2 bad input or usage.
A failure of the environment (AWS unreachable or silent, credentials missing, expired or denied, throttling, a
missing bootstrap resource, a full disk: :mod:`smgitops.envfaults`) is one line and exit 2 as well. ``--debug``
(anywhere before a ``--``) adds the traceback of any reported error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from . import __version__
from .errors import InvalidRelease, SmgitopsError


class Command(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "validate": Command("release", "check release files: schema and semantics, before any AWS call"),
    "train": Command("training", "train deterministically and package byte-identical model.tar.gz artifacts"),
    "publish": Command("artifacts", "upload artifacts not yet in the content-addressed store (never overwrite)"),
    "plan": Command("plan", "terraform plan of a release, summarised (variants, weights, cost)"),
    "policy": Command("policy", "checkov, custom checks and the release policy"),
    "apply": Command("deploy", "apply the reviewed plan, then verify"),
    "verify": Command("deploy", "check that the live endpoint equals the release"),
    "canary": Command("canary", "analyse per-variant CloudWatch metrics over the bake window"),
    "rollback": Command("rollout", "apply the release file as it was at a git revision (no training)"),
    "deploy": Command("rollout", "apply, verify, smoke, canary; roll back to the last good release on failure"),
    "teardown": Command("teardown", "delete managed endpoints alive past their release's teardown time"),
    "bring-up": Command("bringup", "re-create endpoints whose schedule.up has come (working hours; no training)"),
    "retire": Command("retire", "destroy what an environment whose release file was deleted still has (--plan-only)"),
    "unlock": Command("locks", "release the state lock a cancelled or lost run left behind (refuses a young lock)"),
    "emulator": Command("emulator.server", "run the local AWS emulator in the foreground"),
    "demo": Command("demo", "the whole story on the emulator, in a scratch git repository"),
    "comment": Command("comment", "render (and post) the pull-request comment: plan, traffic, policy, cost"),
    "post-comment": Command("comment", "post rendered pull-request comments (a job without AWS credentials)"),
    "record": Command("record", "push a deploy's good tag and revert branch, open the revert PR (no AWS credentials)"),
    "changed-releases": Command("changes", "release files a git change concerns, as a workflow job matrix"),
    "oidc-check": Command("oidc", "can the job assume its role (OIDC token, role variable)? else say why, skip"),
    "github-setup": Command("github_setup", "configure the GitHub repository from bootstrap/'s outputs (REST API)"),
    "github-check": Command("github_setup", "read the repository's GitHub configuration back: ok, missing or wrong"),
}


def _top_level_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        f"usage: smgitops COMMAND [options]   (smgitops {__version__})",
        "",
        "GitOps pipeline for scikit-learn models on SageMaker endpoints.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.help}" for name, cmd in COMMANDS.items()]
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
    command = COMMANDS.get(name)
    if command is None:
        print(_top_level_help(), file=sys.stderr)
        print(f"\nsmgitops: error: unknown command {name!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"smgitops.{command.module}")
    attr = name.replace("-", "_")
    configure: Callable[[argparse.ArgumentParser], None] = getattr(module, f"configure_{attr}")
    run: Callable[[argparse.Namespace], int] = getattr(module, f"run_{attr}")
    parser = argparse.ArgumentParser(prog=f"smgitops {name}", description=command.help)
    configure(parser)
    ns = parser.parse_args(rest)
    try:
        with _sigterm_interrupts():
            return run(ns)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
