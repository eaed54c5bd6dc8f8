"""A production install has no emulator: moto and the emulator's other libraries are the optional extra
``smgitops[local]``. Each check runs the real console script in a child process whose imports of those libraries
fail, as they would where the extra is not installed (a ``sitecustomize`` on ``PYTHONPATH`` puts an import hook
first on ``sys.meta_path``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMGITOPS = ROOT / ".venv" / "bin" / "smgitops"
# boto3 (and its s3transfer) only through moto: smgitops' own AWS adapter is botocore alone
LOCAL_ONLY = ("moto", "werkzeug", "flask", "flask_cors", "cryptography", "boto3", "s3transfer")

BLOCKER = f"""
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {LOCAL_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.fixture
def without_local_extra(tmp_path: Path) -> dict[str, str]:
    """The environment of a child process that cannot import the ``local`` extra's libraries."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMGITOPS_"))}
    env["PYTHONPATH"] = str(hook)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)


def test_the_hook_really_hides_the_extra(without_local_extra: dict[str, str]) -> None:
    for module in LOCAL_ONLY:
        done = _run(without_local_extra, sys.executable, "-c", f"import {module}")
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, module


def test_every_non_local_command_imports_and_validate_runs_without_the_extra(
    without_local_extra: dict[str, str],
) -> None:
    # every command module the CLI can load (its arguments too) and every stage module, except the emulator's
    script = (
        "import argparse, importlib, pkgutil, sys\n"
        "import smgitops\n"
        "from smgitops.commands import COMMANDS, load\n"
        "for name in COMMANDS:\n"
        "    if name not in ('emulator', 'demo'):\n"
        "        load(name).configure(argparse.ArgumentParser())\n"
        "for m in pkgutil.iter_modules(smgitops.__path__):\n"
        "    if m.name != 'demo':\n"
        "        importlib.import_module('smgitops.' + m.name)\n"
        f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {LOCAL_ONLY!r}))\n"
    )
    done = _run(without_local_extra, sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

    done = _run(without_local_extra, str(SMGITOPS), "validate", "releases/dev.yaml", "releases/prod.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["releases/dev.yaml: ok", "releases/prod.yaml: ok"]


@pytest.mark.parametrize("command", [["emulator"], ["demo"]])
def test_local_commands_name_the_extra_to_install(without_local_extra: dict[str, str], command: list[str]) -> None:
    done = _run(without_local_extra, str(SMGITOPS), *command)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "install smgitops[local]" in done.stderr
    assert "Traceback" not in done.stderr
    assert "moto" in done.stderr  # names what is missing


def test_the_emulator_libraries_are_the_local_extra_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for r in requirements}

    assert names(project["dependencies"]).isdisjoint({"moto", "cryptography", "werkzeug", "flask", "boto3"})
    assert {"moto", "cryptography"} <= names(project["optional-dependencies"]["local"])
