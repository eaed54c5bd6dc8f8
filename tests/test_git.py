"""The git adapter (smgitops.git) against real git in scratch repositories: text and bytes, probes, errors that name
the command and git's message, the repository found from a directory, the environment and the runner it is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from smgitops.errors import ExternalError, UserError
from smgitops.git import Git, GitError

BLOB = b"line one\r\nnot utf-8: \xff\xfe\x00 end"


@pytest.fixture()
def repo(tmp_path: Path, git_identity: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    (repo / "releases").mkdir(parents=True)
    (repo / "releases" / "dev.yaml").write_text("v: 1\n")
    (repo / "blob.bin").write_bytes(BLOB)
    git = Git(repo)
    git.run("init", "-q", "-b", "main")
    git.run("add", ".")
    git.run("commit", "-q", "-m", "first")
    return repo


def test_text_and_bytes(repo: Path) -> None:
    git = Git(repo)
    assert git.file_at("HEAD", "releases/dev.yaml") == "v: 1\n"
    assert git.file_at("HEAD", "releases/prod.yaml") is None  # a lookup that finds nothing
    assert git.run_bytes("cat-file", "blob", "HEAD:blob.bin") == BLOB  # exact: no decoding, no newline translation
    assert git.run_bytes("hash-object", "--stdin", input_bytes=BLOB) == git.run("rev-parse", "HEAD:blob.bin").encode()
    assert git.blob_id("HEAD", "blob.bin") == git.run("rev-parse", "HEAD:blob.bin").strip()
    assert git.blob_id("HEAD", "missing") is None


def test_probes_answer_by_exit_status(repo: Path) -> None:
    git = Git(repo)
    assert git.ok("cat-file", "-e", "HEAD:releases/dev.yaml")
    assert not git.ok("cat-file", "-e", "HEAD:releases/prod.yaml")
    assert git.is_commit("HEAD") and not git.is_commit("no-such-rev")
    assert git.try_run("rev-parse", "--verify", "--quiet", "no-such-rev") is None


def test_a_failing_command_names_itself_and_what_git_said(repo: Path) -> None:
    with pytest.raises(GitError) as caught:
        Git(repo).run("show", "no-such-rev:releases/dev.yaml")
    assert isinstance(caught.value, ExternalError) and caught.value.exit_code == 1
    message = str(caught.value)
    assert message.startswith("git show no-such-rev:releases/dev.yaml: fatal: ")
    assert "no-such-rev" in message.split(": fatal: ", 1)[1]
    assert caught.value.command == ("git", "show", "no-such-rev:releases/dev.yaml")
    with pytest.raises(UserError, match=r"'no-such-rev' is not a commit in "):
        Git(repo).rev_parse("no-such-rev")


def test_without_git_on_the_path_the_error_says_git_cannot_run(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    git = Git(repo, env={"PATH": str(empty)})
    with pytest.raises(GitError, match=r"^git status: cannot run git in .*repo"):
        git.run("status")
    with pytest.raises(GitError):
        git.ok("status")  # a probe that cannot run is not a "no"


def test_the_repository_is_found_from_any_directory_in_it(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    assert Git.toplevel(repo / "releases") == repo.resolve()
    assert Git.toplevel(outside) is None
    assert Git.toplevel(tmp_path / "gone") is None
    found = Git.for_path(repo / "releases" / "dev.yaml")
    assert found.repo == repo.resolve() and found.relpath(repo / "releases" / "dev.yaml") == "releases/dev.yaml"
    with pytest.raises(UserError) as caught:
        Git.for_path(outside / "dev.yaml", why="needed for --base-rev")
    assert str(caught.value) == f"{outside / 'dev.yaml'}: not inside a git repository (needed for --base-rev)"
    with pytest.raises(UserError) as caught:
        Git.containing(outside)
    assert str(caught.value) == f"{outside}: not inside a git repository"


def test_the_environment_is_the_processs_at_each_call_unless_given(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git = Git(repo)  # made before the identity changes, as the demo's story is
    monkeypatch.setenv("GIT_AUTHOR_NAME", "changed later")
    git.run("commit", "-q", "--allow-empty", "-m", "second")
    assert git.run("log", "-1", "--format=%an").strip() == "changed later"

    given = Git(repo, env={**os.environ, "GIT_AUTHOR_NAME": "given"})
    given.run("commit", "-q", "--allow-empty", "-m", "third")
    assert given.run("log", "-1", "--format=%an").strip() == "given"


def test_a_commit_beside_the_working_tree_leaves_index_and_files_alone(repo: Path) -> None:
    git = Git(repo)
    head = git.head()
    commit = git.commit_file(head, "releases/dev.yaml", "v: 2\n", "v2 beside")
    git.create_branch("beside", commit)
    assert git.file_at("beside", "releases/dev.yaml") == "v: 2\n"
    assert git.head() == head and (repo / "releases" / "dev.yaml").read_text() == "v: 1\n"
    assert git.is_clean("releases/dev.yaml") and git.branch_exists("beside")
    with pytest.raises(GitError):
        git.create_branch("beside", head)  # never moves an existing branch


def test_an_injected_runner_starts_every_git_process(repo: Path) -> None:
    calls: list[tuple[list[str], Any]] = []

    def recording(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        calls.append((argv, kwargs["cwd"]))
        return subprocess.run(argv, **kwargs)

    git = Git.for_path(repo / "releases" / "dev.yaml", runner=recording)
    assert git.file_at("HEAD", "releases/dev.yaml") == "v: 1\n"
    assert [argv for argv, _ in calls] == [
        ["git", "rev-parse", "--show-toplevel"],
        ["git", "show", "HEAD:releases/dev.yaml"],
    ]
    assert calls[0][1] == (repo / "releases").resolve() and calls[1][1] == repo.resolve()
