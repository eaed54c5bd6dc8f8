"""``smgitops changed-releases``: which release files a change touches, as a workflow's job matrix.

A change to ``releases/<env>.yaml`` concerns that environment; a change to anything every environment is built
from (``terraform/``, ``scripts/``, ``data/``, ``policies/``) concerns all of them. A deleted release file is not
planned or deployed (nothing is left to apply; the evening teardown removes its endpoint). Without a usable base
revision (the first push of a branch: GitHub sends forty zeros) every release is included.

Output: a JSON list of ``{"release": "releases/dev.yaml", "environment": "dev"}`` on stdout; with
``--github-output`` also ``matrix=<that JSON>`` and ``any=true|false`` appended to ``$GITHUB_OUTPUT``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import UserError
from .ghoutput import append_github_output

RELEASE_DIR = "releases"
SHARED_PREFIXES = ("terraform/", "scripts/", "data/", "policies/")
_NULL_SHA = "0" * 40

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _git(repo: Path, *args: str, runner: Runner = subprocess.run) -> str:
    proc = runner(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UserError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return str(proc.stdout)


def release_files(repo: Path, rev: str = "HEAD", *, runner: Runner = subprocess.run) -> list[str]:
    """Release files present at ``rev`` (``releases/*.yaml``), sorted."""
    listing = _git(repo, "ls-tree", "--name-only", f"{rev}:{RELEASE_DIR}", runner=runner)
    return sorted(f"{RELEASE_DIR}/{n}" for n in listing.split() if n.endswith(".yaml"))


def changed_releases(repo: Path, base: str | None, head: str = "HEAD", *, runner: Runner = subprocess.run) -> list[str]:
    """Release files (present at ``head``) that the change ``base..head`` concerns."""
    present = release_files(repo, head, runner=runner)
    if not base or base == _NULL_SHA:
        return present
    if subprocess_ok(repo, ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], runner) is False:
        raise UserError(f"--base {base}: no such commit (fetch enough history: actions/checkout fetch-depth: 0)")
    diff = _git(repo, "diff", "--name-only", "--no-renames", f"{base}...{head}", runner=runner).split("\n")
    changed = {line.strip() for line in diff if line.strip()}
    if any(path.startswith(SHARED_PREFIXES) for path in changed):
        return present
    return [p for p in present if p in changed]


def subprocess_ok(repo: Path, cmd: Sequence[str], runner: Runner) -> bool:
    return runner(list(cmd), cwd=repo, capture_output=True, text=True, check=False).returncode == 0


def matrix(paths: Sequence[str]) -> list[dict[str, Any]]:
    return [{"release": p, "environment": Path(p).stem} for p in paths]


def configure_changed_releases(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default=None, help="base revision (a PR's base SHA; a push's `before`)")
    parser.add_argument("--head", default="HEAD", help="head revision (default HEAD)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository (default: current directory)")
    parser.add_argument("--github-output", action="store_true", help="append matrix= and any= to $GITHUB_OUTPUT")


def run_changed_releases(args: argparse.Namespace) -> int:
    rows = matrix(changed_releases(args.repo, args.base, args.head))
    text = json.dumps(rows, separators=(",", ":"))
    print(text)
    if args.github_output:
        append_github_output({"matrix": text, "any": "true" if rows else "false"})
    return 0
