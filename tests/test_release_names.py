"""Release file names: ``releases/<environment>.yaml`` (DESIGN.md section 1). A file in ``releases/`` that does not
fit (``dev.yml``, ``Dev.yaml``, ``dev.yaml.bak``) used to validate by hand and then be ignored by
``changed-releases``, so it was never planned or deployed and nobody was told. Both commands now refuse it (exit 2),
naming the file and the rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures_terraform import git, make_scratch_repo
from smgitops import cli
from smgitops.naming import release_file_problem

MISNAMED = ["dev.yml", "Dev.yaml", "dev.yaml.bak", "dev.YAML", "my-env.yaml", "dev"]
RULE = "releases/<environment>.yaml"


@pytest.mark.parametrize("name", MISNAMED)
def test_names_outside_the_rule_are_refused_with_the_rule(name: str) -> None:
    reason = release_file_problem(name)
    assert reason is not None and RULE in reason


@pytest.mark.parametrize("name", ["dev.yaml", "prod.yaml", "staging2.yaml", "release.schema.json"])
def test_release_names_and_the_schema_fit(name: str) -> None:
    assert release_file_problem(name) is None


def test_the_fix_is_named_when_it_is_obvious() -> None:
    assert "rename it to releases/dev.yaml" in str(release_file_problem("dev.yml"))
    assert "rename it to releases/dev.yaml" in str(release_file_problem("Dev.yaml"))
    assert "backup" in str(release_file_problem("dev.yaml.bak"))


@pytest.mark.parametrize("name", ["dev.yml", "Dev.yaml", "dev.yaml.bak"])
def test_changed_releases_refuses_a_misnamed_file(
    name: str, git_identity: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_scratch_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    assert cli.main(["changed-releases", "--repo", str(repo), "--base", "0" * 40]) == 0
    assert [r["release"] for r in json.loads(capsys.readouterr().out)] == ["releases/dev.yaml", "releases/prod.yaml"]

    shutil.copy(repo / "releases" / "dev.yaml", repo / "releases" / name)
    git(repo, "add", f"releases/{name}")
    git(repo, "commit", "-q", "-m", f"add releases/{name}")

    assert cli.main(["changed-releases", "--repo", str(repo), "--base", base]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no matrix: the workflow's changes job fails instead of planning nothing
    assert f"releases/{name}: not a release file name" in captured.err and RULE in captured.err


@pytest.mark.parametrize("name", ["dev.yml", "Dev.yaml", "dev.yaml.bak"])
def test_validate_refuses_a_misnamed_release_file(
    name: str,
    git_identity: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_scratch_repo(tmp_path / "repo")
    good = repo / "releases" / "dev.yaml"
    assert cli.main(["validate", str(good)]) == 0
    misnamed = repo / "releases" / name
    shutil.copy(good, misnamed)
    capsys.readouterr()

    assert cli.main(["validate", str(misnamed)]) == 2
    err = capsys.readouterr().err
    assert f"{misnamed}: (document): not a release file name" in err and RULE in err
    assert "does not match the file name" not in err  # one problem about the name, not two

    monkeypatch.chdir(repo / "releases")  # named from inside releases/: the same rule
    assert cli.main(["validate", name]) == 2
    assert f"{name}: (document): not a release file name" in capsys.readouterr().err
