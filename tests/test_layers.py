"""The import contracts of ``.importlinter`` (run by ``make lint``) hold for the package, and each one fails when a
module breaks it: a copy of the package with one offending import added, checked by the same ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = ROOT / ".venv-tools" / "bin" / "lint-imports"
CONFIG = ROOT / ".importlinter"


def _lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(package_parent)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(CONFIG)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(ROOT / "scripts", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# (file, the import added at its end, the contract that must break, the import it must name)
VIOLATIONS = [
    ("errors.py", "from smgitops import release", "Layers", "smgitops.errors -> smgitops.release"),
    ("paths.py", "def _f():\n    from smgitops import cli", "Layers", "smgitops.paths -> smgitops.cli"),
    (
        "emulator/state.py",
        "def _f():\n    from smgitops import plan",
        "Layers",
        "smgitops.emulator.state -> smgitops.plan",
    ),
    ("aws.py", "from smgitops import settings", "Layers", "smgitops.aws -> smgitops.settings"),
    # the localmode <-> settings cycle is gone: settings reads the variables, localmode decides above it
    (
        "settings.py",
        "def _f():\n    from smgitops import localmode",
        "Layers",
        "smgitops.settings -> smgitops.localmode",
    ),
    (
        "plan.py",
        "def _f():\n    from smgitops.emulator.server import Emulator",
        "Only the demo imports the emulator's server side",
        "smgitops.plan -> smgitops.emulator.server",
    ),
    ("release.py", "import moto", "Only the demo imports the emulator's server side", "smgitops.release -> moto"),
    (
        "serving/inference.py",
        "from smgitops import paths",
        "The serving code imports nothing of smgitops",
        "smgitops.serving.inference -> smgitops.paths",
    ),
    (
        "emulator/policy.py",
        "from smgitops.emulator import app",
        "The emulator's modules form no import cycle",
        "- .policy -> .app",
    ),
    # a command's code is in its module: not in another command's, not in the CLI's
    (
        "commands/validate.py",
        "def _f():\n    from smgitops.commands import train",
        "Command modules do not import each other",
        "smgitops.commands.validate -> smgitops.commands.train",
    ),
    (
        "commands/validate.py",
        "def _f():\n    from smgitops import cli",
        "Layers",
        "smgitops.commands.validate -> smgitops.cli",
    ),
    # the emulator command may run the server; no other command may
    (
        "commands/verify.py",
        "def _f():\n    from smgitops.emulator.server import Emulator",
        "Only the demo imports the emulator's server side",
        "smgitops.commands.verify -> smgitops.emulator.server",
    ),
]


@pytest.mark.parametrize(
    ("module", "line", "contract", "named"), VIOLATIONS, ids=[f"{v[0]}-{v[2].split()[0]}" for v in VIOLATIONS]
)
def test_a_broken_contract_fails_and_names_the_import(
    tmp_path: Path, module: str, line: str, contract: str, named: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "scripts" / "smgitops", src / "smgitops", ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "smgitops" / module
    target.write_text(target.read_text() + "\n\n" + line + "\n")
    done = _lint(src, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [ln for ln in done.stdout.splitlines() if " BROKEN" in ln]  # "... BROKEN (1 ignored import)"
    assert len(broken) == 1 and broken[0].startswith(contract), broken
    assert named in done.stdout, done.stdout
