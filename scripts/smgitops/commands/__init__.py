"""The commands of the ``smgitops`` console script: one module per command, named after it (dashes become
underscores: ``bring-up`` is :mod:`smgitops.commands.bring_up`).

A command module holds what makes the command a command: its help line ``HELP``, its arguments
(``configure(parser)``) and ``run(args) -> int``, which reads the arguments, builds what the stages need, prints
and chooses the exit code. The work is done by the stage modules it calls (release, training, artifacts, plan,
deploy, rollout, ...). A command module imports its stages inside ``configure`` and ``run``: ``smgitops --help``
reads every ``HELP`` without loading a stage (boto3, scikit-learn and moto stay unloaded), and a command loads only
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
    if command in _IN_STAGE:
        return _StageCommand(command, *_IN_STAGE[command])
    return cast(Command, importlib.import_module(module_name(command)))


# Commands whose code is still in their stage module (``configure_<cmd>``, ``run_<cmd>``): a temporary state while
# they move here, one family at a time.
_IN_STAGE: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the whole story on the emulator, in a scratch git repository"),
}


class _StageCommand:
    def __init__(self, command: str, module: str, help_line: str) -> None:
        self.HELP = help_line
        self._module = f"smgitops.{module}"
        self._attr = command.replace("-", "_")

    def configure(self, parser: argparse.ArgumentParser) -> None:
        module = importlib.import_module(self._module)
        getattr(module, f"configure_{self._attr}")(parser)

    def run(self, args: argparse.Namespace) -> int:
        module = importlib.import_module(self._module)
        code: int = getattr(module, f"run_{self._attr}")(args)
        return code
