"""The console script's contract: help, unknown commands and exit codes."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smgitops.cli", *args], capture_output=True, text=True)


def test_help_lists_every_command() -> None:
    from smgitops.cli import COMMANDS

    res = run("--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert f"  {name}" in res.stdout


def test_unknown_command_is_usage_error() -> None:
    res = run("frobnicate")
    assert res.returncode == 2
    assert "unknown command 'frobnicate'" in res.stderr


def test_no_arguments_is_usage_error() -> None:
    assert run().returncode == 2
