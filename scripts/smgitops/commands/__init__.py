"""The commands of the ``smgitops`` console script: one module per command, named after it (dashes become
underscores: ``bring-up`` is :mod:`smgitops.commands.bring_up`).

A command module holds what makes the command a command: its help line ``HELP``, its arguments
(``configure(parser)``) and ``run(args) -> int``, which reads the arguments, builds what the stages need, prints
and chooses the exit code. The work is done by the stage modules it calls (release, training, artifacts, plan,
deploy, rollout, ...). A command module imports its stages inside ``configure`` and ``run``: ``smgitops --help``
reads every ``HELP`` without loading a stage (botocore, scikit-learn and moto stay unloaded), and a command loads only
the stages it uses. Command modules do not import each other (an import contract in ``.importlinter``).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Protocol, cast

# In the order of ``smgitops --help``.
COMMANDS: tuple[str, ...] = (
    "validate",
    "train",
    "publish",
    "plan",
    "policy",
    "apply",
    "verify",
    "canary",
    "rollback",
    "deploy",
    "teardown",
    "bring-up",
    "retire",
    "unlock",
    "emulator",
    "demo",
    "comment",
    "post-comment",
    "record",
    "changed-releases",
    "oidc-check",
    "github-setup",
    "github-check",
)


class Command(Protocol):
    """What :mod:`smgitops.cli` reads from a command module."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def module_name(command: str) -> str:
    """The module of ``command``: ``smgitops.commands.bring_up`` for ``bring-up``."""
    return f"{__name__}.{command.replace('-', '_')}"


def load(command: str) -> Command:
    """Import the module of ``command`` (one of :data:`COMMANDS`)."""
    return cast(Command, importlib.import_module(module_name(command)))
