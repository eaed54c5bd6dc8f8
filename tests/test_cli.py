"""The console script's contract: help, unknown commands and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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


def test_the_console_script_ends_as_an_ordinary_exit_would_without_the_teardown(tmp_path: Path) -> None:
    """run_and_exit (the console script) skips the interpreter's teardown (a module's objects are not freed one by
    one) but keeps what an exit must do: a
    non-daemon thread still working is waited for, an idle thread pool never shut down does not hold the process,
    exit handlers run after both, and everything printed (more than a pipe's buffer) arrives, with main's code."""
    probe = f"""
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from smgitops import cli

out = Path({str(tmp_path)!r})
def late_writer():
    time.sleep(0.5)
    (out / "thread").write_text("done")
threading.Thread(target=late_writer).start()
pool = ThreadPoolExecutor(2)
pool.submit(int, "1").result()  # its workers now idle, never shut down
atexit.register(lambda: (out / "handler").write_text(str((out / "thread").exists())))
class Freed:
    def __del__(self):
        (out / "teardown").write_text("the interpreter freed a module's objects")
kept = Freed()
cli.main = lambda: print("x" * 200_000) or 3
cli.run_and_exit()
"""
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stderr
    assert res.stdout == "x" * 200_000 + "\n"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "handler").read_text() == "True"  # the handler ran after the thread had finished
    assert not (tmp_path / "teardown").exists()  # no teardown: a module's objects were never freed one by one


def test_the_installed_script_is_run_and_exit() -> None:
    script = Path(sys.executable).parent / "smgitops"
    assert "from smgitops.cli import run_and_exit" in script.read_text()
