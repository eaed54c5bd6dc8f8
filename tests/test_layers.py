"""The import contracts of ``.importlinter`` (run by ``make lint``) hold for the package, and each one fails when a
module breaks it: a copy of the package with one offending import added, checked by the same ``lint-imports``."""

from __future__ import annotations

import ast
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
    # the context a command hands down sits below the stages it is handed to
    ("context.py", "def _f():\n    from smgitops import deploy", "Layers", "smgitops.context -> smgitops.deploy"),
    # the git adapter is an adapter: it knows nothing of the stages that run git through it, nor of aws
    ("git.py", "def _f():\n    from smgitops import rollout", "Layers", "smgitops.git -> smgitops.rollout"),
    ("git.py", "from smgitops import aws", "Layers", "smgitops.git -> smgitops.aws"),
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
    # the strict YAML loader is core: it knows nothing of the release checks it serves
    ("yamlload.py", "from smgitops import release_checks", "Layers", "smgitops.yamlload -> smgitops.release_checks"),
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


# One copy of the package per contract, with every offending import of that contract added: that contract and no
# other breaks, and each added import is named (an edge the package keeps none of, see the test above). One
# lint-imports run per contract instead of one per import (about 0.4 s of CPU each).
CONTRACTS = list(dict.fromkeys(v[2] for v in VIOLATIONS))


@pytest.mark.parametrize("contract", CONTRACTS, ids=["-".join(c.replace("'", "").split()[:3]) for c in CONTRACTS])
def test_a_broken_contract_fails_and_names_each_import(tmp_path: Path, contract: str) -> None:
    violations = [v for v in VIOLATIONS if v[2] == contract]
    src = tmp_path / "src"
    shutil.copytree(ROOT / "scripts" / "smgitops", src / "smgitops", ignore=shutil.ignore_patterns("__pycache__"))
    for module, line, _, _ in violations:
        target = src / "smgitops" / module
        target.write_text(target.read_text() + "\n\n" + line + "\n")
    done = _lint(src, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [ln for ln in done.stdout.splitlines() if " BROKEN" in ln]  # "... BROKEN (1 ignored import)"
    assert len(broken) == 1 and broken[0].startswith(contract), broken
    for module, _, _, named in violations:
        assert named in done.stdout, f"{module}: {named} not reported\n{done.stdout}"


# -- git runs only in the adapter -------------------------------------------------------------------------------------

_PROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call", "system", "which", "runner"}


def git_outside_the_adapter(package: Path) -> list[str]:
    """``path:line`` of every place in ``package`` but ``git.py`` that starts git itself: an argv literal whose first
    word is ``"git"`` (``["git", ...]``, ``("git", ...)``), or a process call (``subprocess.run``, ``os.system``,
    ``shutil.which``, a ``runner``) whose first argument is ``"git"`` or a command line beginning ``"git "``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel == "git.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            first: ast.expr | None = None
            if isinstance(node, ast.List | ast.Tuple) and node.elts:
                first = node.elts[0]
            elif isinstance(node, ast.Call) and node.args:
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in _PROCESS_CALLS:
                    first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if first.value == "git" or (isinstance(node, ast.Call) and first.value.startswith("git ")):
                    found.append(f"{rel}:{node.lineno}")
    return found


def test_only_the_git_adapter_runs_git() -> None:
    assert git_outside_the_adapter(ROOT / "scripts" / "smgitops") == []


@pytest.mark.parametrize(
    "line",
    [
        'subprocess.run(["git", "rev-parse", "HEAD"], check=True)',
        'subprocess.check_output(("git", "status"))',
        'os.system("git fetch origin")',
        'runner(["git", *args], cwd=repo)',
        'cmd = ["git", "show", f"{rev}:{path}"]',
        'shutil.which("git")',
    ],
)
def test_a_stage_running_git_itself_is_found(tmp_path: Path, line: str) -> None:
    package = tmp_path / "smgitops"
    (package / "commands").mkdir(parents=True)
    body = f"def _f(args, repo, rev, path, runner):\n    {line}\n"
    (package / "git.py").write_text(body)  # the adapter may
    (package / "commands" / "stage.py").write_text(body)
    (package / "quiet.py").write_text('HELP = "git show REV:PATH"\nKEYS = {"git": 1}\n')  # words, not processes
    assert git_outside_the_adapter(package) == ["commands/stage.py:2"]
