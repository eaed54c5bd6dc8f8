"""Git: every git command smgitops runs goes through :class:`Git` (one repository, one environment).

Callers ask in git's own terms (``rev-parse``, ``show``, ``update-ref`` ...) and get text, bytes, an exit-status
probe (:meth:`Git.ok`), or the output of a command allowed to fail (:meth:`Git.try_run`). A command that fails raises
:class:`GitError` (an :class:`~smgitops.errors.ExternalError`: exit 1) naming the command and git's message; a
stage that knows the failure is the user's input turns it into a :class:`~smgitops.errors.UserError`.

Plumbing only: nothing here touches the working tree or the index unless a caller asks for a porcelain command
(the demo's scratch repository commits and merges). Standard library only, as are the jobs that run
``changed-releases`` and ``record`` on a runner's bare Python.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ExternalError, UserError

Runner = Callable[..., "subprocess.CompletedProcess[Any]"]
"""What runs a git process: :func:`subprocess.run` or a stand-in with its signature (tests wrap it to count)."""


class GitError(ExternalError):
    """A git command failed (or git could not be started): the command and git's own message."""

    def __init__(self, args: Sequence[str], message: str) -> None:
        self.command = ("git", *args)
        super().__init__(f"git {' '.join(args)}: {message}")


class Git:
    """The git commands smgitops needs, run in the repository ``repo``.

    ``env`` is the whole environment of each git process (default: the process's environment at the time of the
    call); ``runner`` starts it (default :func:`subprocess.run`).
    """

    def __init__(self, repo: Path, env: Mapping[str, str] | None = None, *, runner: Runner = subprocess.run) -> None:
        self.repo = repo
        self._env = None if env is None else dict(env)
        self._runner = runner

    # -- running -------------------------------------------------------------------------------------------------

    def _call(
        self, args: Sequence[str], *, text: bool, stdin: str | bytes | None = None, extra_env: Mapping[str, str] | None
    ) -> subprocess.CompletedProcess[Any]:
        env: dict[str, str] | None = self._env
        if extra_env:
            env = {**(os.environ if env is None else env), **extra_env}
        try:
            proc: subprocess.CompletedProcess[Any] = self._runner(
                ["git", *args], cwd=self.repo, env=env, input=stdin, capture_output=True, text=text, check=False
            )
        except OSError as exc:  # no git on PATH, or the directory is gone
            raise GitError(args, f"cannot run git in {self.repo} ({exc.strerror or exc})") from exc
        return proc

    def _checked(
        self, args: Sequence[str], *, text: bool, stdin: str | bytes | None, extra_env: Mapping[str, str] | None
    ) -> subprocess.CompletedProcess[Any]:
        proc = self._call(args, text=text, stdin=stdin, extra_env=extra_env)
        if proc.returncode != 0:
            err, out = proc.stderr, proc.stdout
            if not text:
                err, out = err.decode(errors="replace"), out.decode(errors="replace")
            raise GitError(args, err.strip() or out.strip() or f"exit status {proc.returncode}")
        return proc

    def run(self, *args: str, input_text: str | None = None, extra_env: Mapping[str, str] | None = None) -> str:
        """stdout of ``git ARGS`` as text; :class:`GitError` when it fails."""
        return str(self._checked(args, text=True, stdin=input_text, extra_env=extra_env).stdout)

    def run_bytes(self, *args: str, input_bytes: bytes | None = None) -> bytes:
        """stdout of ``git ARGS`` as bytes, unchanged (a blob's exact content); :class:`GitError` when it fails."""
        out: bytes = self._checked(args, text=False, stdin=input_bytes, extra_env=None).stdout
        return out

    def ok(self, *args: str) -> bool:
        """Whether ``git ARGS`` exits 0 (a probe: ``cat-file -e``, ``rev-parse --verify --quiet`` ...)."""
        return self._call(args, text=False, extra_env=None).returncode == 0

    def try_run(self, *args: str) -> str | None:
        """stdout of ``git ARGS`` as text, or None when it exits non-zero (a lookup that may find nothing)."""
        proc = self._call(args, text=True, extra_env=None)
        return str(proc.stdout) if proc.returncode == 0 else None

    # -- finding the repository --------------------------------------------------------------------------------

    @staticmethod
    def toplevel(directory: Path, *, runner: Runner = subprocess.run) -> Path | None:
        """The top of the work tree that holds ``directory``, or None outside one (or when it does not exist)."""
        if not directory.is_dir():
            return None
        top = Git(directory, runner=runner).try_run("rev-parse", "--show-toplevel")
        return Path(top.strip()) if top is not None else None

    @classmethod
    def containing(
        cls,
        directory: Path,
        *,
        why: str = "",
        env: Mapping[str, str] | None = None,
        runner: Runner = subprocess.run,
        named: Path | None = None,
    ) -> Git:
        """The repository whose work tree holds ``directory``; outside one a UserError naming ``named`` (default
        ``directory``) and, in parentheses, ``why`` git is needed."""
        top = cls.toplevel(directory, runner=runner)
        if top is None:
            raise UserError(f"{named or directory}: not inside a git repository" + (f" ({why})" if why else ""))
        return cls(top, env, runner=runner)

    @classmethod
    def for_path(
        cls, path: Path, env: Mapping[str, str] | None = None, *, why: str = "", runner: Runner = subprocess.run
    ) -> Git:
        """The repository that holds the file ``path``."""
        return cls.containing(path.resolve().parent, why=why, env=env, runner=runner, named=path)

    def relpath(self, path: Path) -> str:
        return path.resolve().relative_to(self.repo.resolve()).as_posix()

    # -- revisions and files -----------------------------------------------------------------------------------

    def is_commit(self, rev: str) -> bool:
        return self.ok("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")

    def rev_parse(self, rev: str) -> str:
        """The full sha of the commit ``rev``; a UserError when there is none."""
        if not self.is_commit(rev):
            raise UserError(f"{rev!r} is not a commit in {self.repo}")
        return self.run("rev-parse", "--verify", f"{rev}^{{commit}}").strip()

    def short(self, sha: str) -> str:
        return self.run("rev-parse", "--short=8", sha).strip()

    def head(self) -> str:
        return self.rev_parse("HEAD")

    def file_at(self, rev: str, relpath: str) -> str | None:
        """The text of ``relpath`` at revision ``rev``, or None when it does not exist there."""
        return self.try_run("show", f"{rev}:{relpath}")

    def show(self, sha: str, relpath: str) -> str:
        """The text of ``relpath`` at ``sha``; a UserError when the file does not exist there."""
        if not self.ok("cat-file", "-e", f"{sha}:{relpath}"):
            raise UserError(f"{relpath} does not exist at revision {self.short(sha)}")
        return self.run("show", f"{sha}:{relpath}")

    def blob_id(self, sha: str, relpath: str) -> str | None:
        if not self.ok("cat-file", "-e", f"{sha}:{relpath}"):
            return None
        return self.run("rev-parse", f"{sha}:{relpath}").strip()

    def is_clean(self, relpath: str) -> bool:
        """The working-tree file equals HEAD's (nothing staged or modified)."""
        return self.run("status", "--porcelain", "--", relpath).strip() == ""

    def ancestors(self, sha: str, limit: int = 10_000) -> list[str]:
        """Commits reachable from ``sha``, newest first, ``sha`` itself excluded."""
        out = self.run("rev-list", f"--max-count={limit + 1}", sha).split()
        return out[1:]

    # -- refs ----------------------------------------------------------------------------------------------------

    def tags(self, prefix: str) -> dict[str, str]:
        """tag name -> object for every tag under ``prefix``."""
        out = self.run("for-each-ref", "--format=%(refname:strip=2) %(objectname)", f"refs/tags/{prefix}")
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())

    def branch_exists(self, name: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/heads/{name}")

    def commit_file(self, base: str, relpath: str, content: str, message: str) -> str:
        """A commit on top of ``base`` whose tree is ``base``'s with ``relpath`` replaced; returns its sha. The
        working tree and the index are not touched (a throw-away index file)."""
        blob = self.run("hash-object", "-w", "--stdin", input_text=content).strip()
        with tempfile.TemporaryDirectory() as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.run("read-tree", base, extra_env=index)
            self.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{relpath}", extra_env=index)
            tree = self.run("write-tree", extra_env=index).strip()
        return self.run("commit-tree", tree, "-p", base, "-F", "-", input_text=message).strip()

    def create_branch(self, name: str, sha: str) -> None:
        self.run("update-ref", f"refs/heads/{name}", sha, "")  # "" = the branch must not exist yet

    def create_tag(self, name: str, sha: str) -> None:
        self.run("update-ref", f"refs/tags/{name}", sha)
