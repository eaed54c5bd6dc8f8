"""``smgitops rollback --to REV`` leaves Git able to match what is live: it writes the revert branch as ``deploy``
does (one commit on HEAD whose release file is REV's) and prints the exact commands that land it; where it cannot
commit (no git identity), the exact commands that do the same by hand. Landing them makes the plan of HEAD empty."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fixtures_terraform import git, local_stack, make_scratch_repo
from smgitops import cli
from smgitops.rollout import Git, RollbackResult, match_git_to_live

REL = "releases/dev.yaml"


def _two_instances(repo: Path) -> str:
    path = repo / REL
    text = path.read_text(encoding="utf-8")
    assert text.count("  instance_count: 1 ") == 1
    path.write_text(text.replace("  instance_count: 1 ", "  instance_count: 2 "), encoding="utf-8")
    git(repo, "commit", "-qam", "dev: two instances")
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.terraform
def test_rollback_writes_the_revert_branch_and_landing_it_makes_git_equal_live(
    tmp_path: Path, git_identity: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_scratch_repo(tmp_path / "repo")
    v1 = git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("SMGITOPS_NOW", "2026-11-25T10:00:00Z")  # before the evening cut-off, whenever this runs
    with local_stack(tmp_path, repo_root=repo):
        assert cli.main(["train", REL, "--check"]) == 0  # the shipped release pins what training produces
        assert cli.main(["publish", REL]) == 0
        assert cli.main(["apply", REL, "--auto-approve"]) == 0
        head = _two_instances(repo)
        assert cli.main(["apply", REL, "--auto-approve"]) == 0
        capsys.readouterr()

        assert cli.main(["rollback", REL, "--to", v1[:10], "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["ok"] and out["sha"] == v1
        branch = f"smgitops/rollback-dev-{head[:8]}"
        assert out["git"] == {
            "matches": False,
            "branch": branch,
            "commit": git(repo, "rev-parse", branch),
            "commands": [
                f"git push origin {branch}",
                f"git merge --ff-only {branch}  # instead of a pull request, on main",
            ],
        }
        assert git(repo, "rev-parse", f"{branch}^") == head  # on top of HEAD, as a pull request needs
        assert git(repo, "show", f"{branch}:{REL}") == git(repo, "show", f"{v1}:{REL}")
        message = git(repo, "log", "-1", "--format=%B", branch)
        assert f"smgitops rollback --to {v1[:10]} applied the release file of {v1[:8]}" in message
        assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""  # nothing else

        # the printed command, run as printed: Git equals live, the plan of HEAD is empty
        subprocess.run(out["git"]["commands"][1], shell=True, cwd=repo, check=True, capture_output=True)
        assert cli.main(["plan", REL, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["no_changes"] is True

        # rolling back to what HEAD already holds: nothing to write, and the output says so
        assert cli.main(["rollback", REL, "--to", v1]) == 0
        printed = capsys.readouterr().out
        assert f"git matches live: {REL} at HEAD is the file of {v1[:8]}" in printed
        assert git(repo, "branch", "--list", "smgitops/rollback-*").split() == [branch]


def test_without_a_git_identity_the_exact_commands_are_printed(
    tmp_path: Path, git_identity: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_scratch_repo(tmp_path / "repo")
    v1 = git(repo, "rev-parse", "HEAD")
    head = _two_instances(repo)
    result = RollbackResult(REL, v1, v1, True, "smgitops-dev-0123abcd", True)
    anonymous = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))}
    anonymous.update(
        HOME=str(tmp_path),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="user.useConfigOnly",
        GIT_CONFIG_VALUE_0="true",
    )
    state = match_git_to_live(Git(repo, anonymous), result)
    assert state["matches"] is False and "branch" not in state
    assert state["commands"] == [
        f"git checkout {v1} -- {REL}",
        f'git commit -m "Roll back {REL} to {v1[:8]}" -- {REL}',
        "git push",
    ]
    assert git(repo, "branch", "--list", "smgitops/rollback-*") == ""
    for command in state["commands"][:2]:  # run as printed (with an identity): HEAD's file is v1's
        subprocess.run(command, shell=True, cwd=repo, check=True, capture_output=True)
    assert git(repo, "rev-parse", "HEAD^") == head
    assert git(repo, "show", f"HEAD:{REL}") == git(repo, "show", f"{v1}:{REL}")
    assert match_git_to_live(Git(repo), result) == {"matches": True}
