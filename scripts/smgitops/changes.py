"""``smgitops changed-releases``: which release files a change touches, as a workflow's job matrix.

A change to ``releases/<env>.yaml`` concerns that environment; a change to anything every environment is built
from (``terraform/``, ``scripts/``, ``data/``, ``policies/``) concerns all of them. A deleted release file is not
planned or deployed: it retires its environment (:mod:`smgitops.retire`), listed apart (``retired``) so that the pull
request plans the destroy of its resources and the merge destroys them. Without a usable base
revision (the first push of a branch: GitHub sends forty zeros) every release is included. A base that is not in
the repository (after a force-push GitHub's ``before`` is a commit nobody fetched) is replaced, per release, by its
last good tag (``smgitops/good/<env>/<sha>``, the newest one reachable from ``head``); a release without one is
included. Either way stderr says which comparison was made.

Output: a JSON list of ``{"release": "releases/dev.yaml", "environment": "dev"}`` on stdout; with
``--github-output`` also ``matrix=<that JSON>`` and ``any=true|false`` appended to ``$GITHUB_OUTPUT``, and the
release files the change deletes as ``retired=<JSON list of the same rows>`` and ``any_retired=true|false``. A
deletion is seen only against a base in the repository (not on a first push, nor after a force-push).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import UserError
from .git import Git, GitError, Runner
from .naming import RELEASE_SCHEMA_FILE, release_file_problem

RELEASE_DIR = "releases"
GOOD_TAG_PREFIX = "smgitops/good"  # rollout.GOOD_TAG_PREFIX; not imported: the changes job runs on a bare Python
SHARED_PREFIXES = ("terraform/", "scripts/", "data/", "policies/")
_NULL_SHA = "0" * 40


def _git(git: Git, *args: str) -> str:
    """stdout of ``git ARGS``; a failure is the user's (a revision or a repository given that is not one): exit 2."""
    try:
        return git.run(*args)
    except GitError as exc:
        raise UserError(str(exc)) from exc


def release_files(repo: Path, rev: str = "HEAD", *, runner: Runner = subprocess.run) -> list[str]:
    """Release files present at ``rev`` (``releases/<environment>.yaml``), sorted. Any other entry of
    ``releases/`` but the schema (``dev.yml``, ``Dev.yaml``, ``dev.yaml.bak``) is a UserError naming it and the
    rule: it would otherwise never be planned or deployed, and nobody would be told."""
    listing = _git(Git(repo, runner=runner), "ls-tree", "-z", "--name-only", f"{rev}:{RELEASE_DIR}")
    names = [n for n in listing.split("\0") if n]
    misnamed = [f"{RELEASE_DIR}/{n}: {why}" for n in names if (why := release_file_problem(n)) is not None]
    if misnamed:
        raise UserError("\n".join(misnamed))
    return sorted(f"{RELEASE_DIR}/{n}" for n in names if n != RELEASE_SCHEMA_FILE)


def _changed_paths(git: Git, base: str, head: str) -> set[str]:
    diff = _git(git, "diff", "--name-only", "--no-renames", f"{base}...{head}").split("\n")
    return {line.strip() for line in diff if line.strip()}


def _concerns(path: str, changed: set[str]) -> bool:
    return path in changed or any(c.startswith(SHARED_PREFIXES) for c in changed)


def last_good_tag(repo: Path, environment: str, head: str, *, runner: Runner = subprocess.run) -> str | None:
    """The newest ``smgitops/good/<environment>/*`` tag reachable from ``head``, or None."""
    git = Git(repo, runner=runner)
    tag = git.try_run("describe", "--tags", "--abbrev=0", "--match", f"{GOOD_TAG_PREFIX}/{environment}/*", head)
    return (tag or "").strip() or None


def changed_releases(
    repo: Path,
    base: str | None,
    head: str = "HEAD",
    *,
    runner: Runner = subprocess.run,
    err: TextIO | None = None,
) -> list[str]:
    """Release files (present at ``head``) that the change ``base..head`` concerns."""
    present = release_files(repo, head, runner=runner)
    if not base or base == _NULL_SHA:
        return present
    git = Git(repo, runner=runner)
    if git.is_commit(base):
        changed = _changed_paths(git, base, head)
        return [p for p in present if _concerns(p, changed)]
    out = err if err is not None else sys.stderr
    print(f"changed-releases: base {base} is not in this repository (a force-push?);", file=out)
    selected = []
    for path in present:
        environment = Path(path).stem
        tag = last_good_tag(repo, environment, head, runner=runner)
        if tag is None:
            print(f"  {path}: no good tag {GOOD_TAG_PREFIX}/{environment}/* before {head}: included", file=out)
            selected.append(path)
        elif _concerns(path, _changed_paths(git, tag, head)):
            print(f"  {path}: changed since its last good tag {tag}: included", file=out)
            selected.append(path)
        else:
            print(f"  {path}: unchanged since its last good tag {tag}", file=out)
    return selected


def deleted_releases(repo: Path, base: str | None, head: str = "HEAD", *, runner: Runner = subprocess.run) -> list[str]:
    """Release files present at ``base`` and deleted by ``head`` (their environments retire), sorted."""
    if not base or base == _NULL_SHA:
        return []
    git = Git(repo, runner=runner)
    if not git.is_commit(base):
        return []
    diff = _git(git, "diff", "--name-only", "--no-renames", "--diff-filter=D", f"{base}...{head}", "--", RELEASE_DIR)
    present = set(release_files(repo, head, runner=runner)) if has_release_dir(repo, head, runner=runner) else set()
    return sorted(p for p in (line.strip() for line in diff.splitlines()) if _is_release(p) and p not in present)


def _is_release(path: str) -> bool:
    return path.startswith(f"{RELEASE_DIR}/") and path.endswith(".yaml") and path.count("/") == 1


def has_release_dir(repo: Path, rev: str, *, runner: Runner = subprocess.run) -> bool:
    """Whether ``rev`` has a ``releases/`` directory (git keeps none once its last release file is deleted)."""
    return Git(repo, runner=runner).ok("cat-file", "-e", f"{rev}:{RELEASE_DIR}")


def matrix(paths: Sequence[str]) -> list[dict[str, Any]]:
    return [{"release": p, "environment": Path(p).stem} for p in paths]
