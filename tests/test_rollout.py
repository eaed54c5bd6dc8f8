"""Rollouts: the git records (good revisions, revert branches), smoke judging, and the end-to-end journeys --
deploy → canary breach → automatic rollback → revert branch; rollback without training; a missing artifact refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from smgitops.rollout import (
    Git,
    GoodRevision,
    Invocation,
    _judge_smoke,
    good_tag,
    last_good_revision,
    record_good,
    write_revert_branch,
)


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        sh(repo, "add", name)
    sh(repo, "commit", "-q", "-m", message)
    return sh(repo, "rev-parse", "HEAD")


@pytest.fixture()
def history(tmp_path: Path, git_identity: dict[str, str]) -> tuple[Git, list[str]]:
    """v1 → canary → promote → a commit that does not touch the release file."""
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    shas = [
        commit(repo, {"releases/dev.yaml": "v: 1\n"}, "v1"),
        commit(repo, {"releases/dev.yaml": "v: 2\n"}, "canary"),
        commit(repo, {"releases/dev.yaml": "v: 3\n"}, "promote"),
        commit(repo, {"README.md": "docs\n"}, "docs"),
    ]
    return Git(repo), shas


REL = "releases/dev.yaml"


def test_last_good_is_the_newest_recorded_ancestor(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    git.create_tag(good_tag("dev", v1), v1)
    git.create_tag(good_tag("dev", canary), canary)
    git.create_tag(good_tag("prod", promote), promote)  # another environment's record does not count
    good = last_good_revision(git, "dev", REL, promote)
    assert good == GoodRevision(canary, f"last recorded good (tag smgitops/good/dev/{canary})")
    # the deployed commit itself never counts, even if recorded good by an earlier run
    git.create_tag(good_tag("dev", promote), promote)
    assert last_good_revision(git, "dev", REL, promote) == good
    assert last_good_revision(git, "dev", REL, docs) == GoodRevision(
        promote, f"last recorded good (tag smgitops/good/dev/{promote})"
    )


def test_without_records_the_previous_different_revision_is_used_and_said_so(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    fallback = last_good_revision(git, "dev", REL, docs)  # docs has promote's content: skip to canary
    assert fallback is not None and fallback.sha == canary
    assert "no good revision recorded" in fallback.how
    assert last_good_revision(git, "dev", REL, v1) is None  # nothing before the first revision


def test_good_is_recorded_only_for_a_committed_file(history: tuple[Git, list[str]]) -> None:
    git, (*_, docs) = history
    (git.repo / REL).write_text("v: 99\n")  # deployed content is not a revision
    assert record_good(git, "dev", REL, docs) is None
    assert git.tags("smgitops/good/") == {}
    (git.repo / REL).write_text("v: 3\n")
    assert record_good(git, "dev", REL, docs) == good_tag("dev", docs)
    assert git.tags("smgitops/good/dev/") == {good_tag("dev", docs): docs}


def test_revert_branch_holds_the_good_content_on_top_of_the_failed_commit(history: tuple[Git, list[str]]) -> None:
    git, (v1, canary, promote, docs) = history
    before_status = sh(git.repo, "status", "--porcelain")
    good = GoodRevision(canary, "last recorded good")
    branch, sha = write_revert_branch(git, "dev", REL, promote, good, "canary breach: error rate 40%")
    assert branch == f"smgitops/rollback-dev-{promote[:8]}"
    assert sh(git.repo, "rev-parse", f"refs/heads/{branch}") == sha
    assert sh(git.repo, "rev-parse", f"{sha}^") == promote
    assert sh(git.repo, "show", f"{sha}:{REL}") + "\n" == "v: 2\n"
    assert sh(git.repo, "diff", "--name-only", promote, sha) == REL  # nothing else changes
    message = sh(git.repo, "log", "-1", "--format=%B", sha)
    assert message.startswith(f"Roll back {REL} to {canary[:8]}") and "error rate 40%" in message
    # the person's checkout is untouched: same branch, same files, nothing staged
    assert sh(git.repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert sh(git.repo, "status", "--porcelain") == before_status
    assert (git.repo / REL).read_text() == "v: 3\n"
    again, _ = write_revert_branch(git, "dev", REL, promote, good, "again")
    assert again == f"{branch}-2"


def test_unknown_revision_and_missing_file_are_user_errors(history: tuple[Git, list[str]]) -> None:
    from smgitops.errors import UserError

    git, (v1, *_) = history
    with pytest.raises(UserError, match="is not a commit"):
        git.rev_parse("no-such-rev")
    with pytest.raises(UserError, match="does not exist at revision"):
        git.show(v1, "releases/prod.yaml")


# ---------------------------------------------------------------------------------------------------------------
# smoke judging
# ---------------------------------------------------------------------------------------------------------------


def _answer(model: str, predictions: list[int]) -> Invocation:
    import json

    return Invocation(True, 200, "canary", json.dumps({"model": model, "classes": [0, 1], "predictions": predictions}))


def test_smoke_requires_the_variants_own_model_and_mostly_right_labels() -> None:
    labels = [0, 1, 1, 0, 1, 1, 0, 1]
    assert _judge_smoke("canary", "m2", _answer("m2", labels), labels) == "ok"
    assert "served by model 'm1'" in _judge_smoke("canary", "m2", _answer("m1", labels), labels)
    wrong = [1 - y for y in labels]
    assert "only 0% of 8 held-out rows" in _judge_smoke("canary", "m2", _answer("m2", wrong), labels)
    assert "7 predictions for 8 rows" in _judge_smoke("canary", "m2", _answer("m2", labels[:7]), labels)
    failed = Invocation(False, 500, "canary", "boom")
    assert _judge_smoke("canary", "m2", failed, labels) == "HTTP 500: boom"
    other = Invocation(True, 200, "primary", "{}")
    assert _judge_smoke("canary", "m2", other, labels) == "answered by variant primary, not canary"
