"""The release journey with real Terraform against the emulator, in a scratch git repository.

bootstrap → train → publish → plan + apply dev → verify → plan shows no changes; a commit adding a second model
at 10 % (trained and published) → plan (weights before → after) → apply → verify; ``git revert`` of that commit
→ apply → the endpoint is back on the very same configuration name. After every apply the plan is empty.

One emulator for the module and one ``terraform init`` per environment for the whole journey: ``init`` only runs
again when the root, the lock file or the backend configuration changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures_terraform import CountingRunner, LocalStack, edit_release, git, local_stack, make_scratch_repo
from smgitops import cli, naming
from smgitops.deploy import apply_plan, apply_release
from smgitops.errors import CheckFailed, UserError
from smgitops.localmode import ensure_bootstrap
from smgitops.plan import plan_release
from smgitops.release import Release, load_release

pytestmark = pytest.mark.terraform

IDENTITY = {
    "GIT_AUTHOR_NAME": "smgitops tests",
    "GIT_AUTHOR_EMAIL": "tests@smgitops.invalid",
    "GIT_COMMITTER_NAME": "smgitops tests",
    "GIT_COMMITTER_EMAIL": "tests@smgitops.invalid",
}
CANARY_MODEL = "cancer-logreg-c01"


@dataclass
class Journey:
    stack: LocalStack
    repo: Path
    runner: CountingRunner

    @property
    def release_path(self) -> Path:
        return self.repo / "releases" / "dev.yaml"

    def release(self) -> Release:
        return load_release(self.release_path)

    def expected_config(self, release: Release) -> str:
        s = self.stack.settings
        return naming.endpoint_config_name(release, artifact_bucket=s.artifact_bucket, kms_key_arn=s.kms_key_arn)


def _train(release_path: Path, model_id: str) -> str:
    """Train one model for real (``smgitops train``, its own process) and pin its digest in the release file."""
    proc = subprocess.run(
        [sys.executable, "-m", "smgitops.cli", "train", str(release_path), "--model", model_id, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (trained,) = json.loads(proc.stdout)["models"]
    digest: str = trained["digest"]

    def pin(doc: dict[str, Any]) -> None:
        doc["models"][model_id]["artifact_sha256"] = digest

    edit_release(release_path, pin)
    return digest


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    tmp = tmp_path_factory.mktemp("journey")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in IDENTITY.items():
            mp.setenv(key, value)
        repo = make_scratch_repo(tmp / "repo")
        runner = CountingRunner()
        with local_stack(tmp, repo, runner=runner) as stack:
            yield Journey(stack, repo, runner)


def _publish(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli.main(["publish", str(path), "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_release_journey(journey: Journey, capsys: pytest.CaptureFixture[str]) -> None:
    j, runner = journey, journey.runner
    assert runner.count("apply") == 1 and runner.count("init") == 1  # bootstrap/, applied to the emulator
    runner.reset()

    # -- v1: one model, 100 % ---------------------------------------------------------------------------------------
    _train(j.release_path, "cancer-logreg")
    git(j.repo, "commit", "-qam", "dev: serve cancer-logreg")
    assert _publish(j.release_path, capsys)["published"] == 1

    v1 = j.release()
    planned = plan_release(v1, runner=runner)
    s = planned.summary
    assert s["endpoint_config"] == {"before": None, "after": j.expected_config(v1)}
    assert [(v["name"], v["weight_before"], v["weight_after"]) for v in s["variants"]] == [("primary", None, 100)]
    assert [m["id"] for m in s["models_added"]] == ["cancer-logreg"] and s["models_removed"] == []
    assert not s["no_changes"] and s["resources"]["destroy"] == 0

    applied = apply_plan(v1, runner=runner)
    assert applied.ok and applied.verify is not None and applied.verify.ok, applied.as_dict()
    assert applied.plan_after_apply_empty
    config_v1 = applied.endpoint_config
    assert config_v1 == j.expected_config(v1)

    again = plan_release(v1, runner=runner)
    assert again.no_changes
    assert again.summary["endpoint_config"] == {"before": config_v1, "after": config_v1}
    assert [(v["weight_before"], v["weight_after"]) for v in again.summary["variants"]] == [(100, 100)]

    # -- canary: a second model at 10 % -----------------------------------------------------------------------------
    def add_canary(doc: dict[str, Any]) -> None:
        base = json.loads(json.dumps(doc["models"]["cancer-logreg"]))
        base["params"] = {"C": 0.1, "max_iter": 1000}
        doc["models"][CANARY_MODEL] = base
        doc["variants"] = [
            {"name": "primary", "model": "cancer-logreg", "weight": 90},
            {"name": "canary", "model": CANARY_MODEL, "weight": 10},
        ]

    edit_release(j.release_path, add_canary)
    canary_digest = _train(j.release_path, CANARY_MODEL)
    git(j.repo, "commit", "-qam", "dev: canary cancer-logreg-c01 at 10 %")
    published = _publish(j.release_path, capsys)
    assert (published["published"], published["already_present"]) == (1, 1)

    summary_file, markdown_file = j.repo / "out" / "plan.json", j.repo / "out" / "plan.md"
    assert cli.main(["plan", str(j.release_path), "--json", str(summary_file), "--markdown", str(markdown_file)]) == 0
    canary = j.release()
    s = json.loads(summary_file.read_text())
    assert s["endpoint_config"] == {"before": config_v1, "after": j.expected_config(canary)}
    assert [(v["name"], v["model"], v["weight_before"], v["weight_after"]) for v in s["variants"]] == [
        ("primary", "cancer-logreg", 100, 90),
        ("canary", CANARY_MODEL, None, 10),
    ]
    assert s["models_added"] == [
        {"id": CANARY_MODEL, "digest": canary_digest, "name": naming.model_name(CANARY_MODEL, canary_digest)}
    ]
    assert s["resources"]["replace"] == 1  # the endpoint configuration, created before the old one goes
    assert "aws_sagemaker_endpoint_configuration.this" in {c["address"] for c in s["resources"]["changes"]}
    assert markdown_file.read_text().strip()
    capsys.readouterr()

    assert cli.main(["apply", str(j.release_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["plan_after_apply_empty"]
    assert result["endpoint_config"] == j.expected_config(canary) != config_v1
    assert cli.main(["verify", str(j.release_path), "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert [(v["name"], v["weight"]) for v in live["variants"]] == [("primary", 90.0), ("canary", 10.0)]

    # -- revert: back on the very same configuration ----------------------------------------------------------------
    git(j.repo, "revert", "--no-edit", "HEAD")
    reverted = j.release()
    assert CANARY_MODEL not in reverted.models
    planned, applied = apply_release(reverted, runner=runner)
    assert [m["id"] for m in planned.summary["models_removed"]] == [CANARY_MODEL]
    assert [(v["name"], v["weight_before"], v["weight_after"]) for v in planned.summary["variants"]] == [
        ("primary", 90, 100),
        ("canary", 10, None),
    ]
    assert applied.ok and applied.plan_after_apply_empty
    assert applied.endpoint_config == config_v1

    # One init for the environment over the whole journey: later runs (the CLI's included) reuse the working copy.
    assert runner.count("init") == 1
    assert runner.count("apply") == 2  # the CLI's apply ran through its own runner


def test_bootstrap_is_reused(journey: Journey) -> None:
    runner = CountingRunner()
    settings = ensure_bootstrap(region="us-east-1", repo_root=journey.repo, runner=runner)
    assert settings == journey.stack.settings
    assert runner.commands == []


def test_plan_refuses_unpublished_artifacts(journey: Journey, tmp_path: Path) -> None:
    path = tmp_path / "releases" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(journey.release_path.read_text())
    shutil.copytree(journey.repo / "data", tmp_path / "data")

    def unpublished(doc: dict[str, Any]) -> None:
        doc["models"]["cancer-logreg"]["artifact_sha256"] = "e" * 64

    edit_release(path, unpublished)
    runner = CountingRunner()
    with pytest.raises(CheckFailed, match="publish first") as info:
        plan_release(load_release(path), runner=runner)
    assert "cancer-logreg" in str(info.value)
    assert runner.commands == []  # refused before Terraform ran


def test_apply_refuses_stale_plans(journey: Journey, capsys: pytest.CaptureFixture[str]) -> None:
    j, runner = journey, journey.runner
    original = j.release_path.read_text()
    edit_release(j.release_path, lambda doc: doc["endpoint"].update(instance_count=2))
    reviewed = j.release_path.read_text()
    plan_file = j.repo / "out" / "reviewed.tfplan"
    plan_release(j.release(), out=plan_file, runner=runner)

    # The release file changed after the plan was reviewed (even a comment): refused before Terraform runs.
    j.release_path.write_text(reviewed + "# edited after review\n")
    before = len(runner.commands)
    with pytest.raises(UserError, match="releases/dev.yaml changed since the plan was made"):
        apply_plan(j.release(), plan_file=plan_file, runner=runner)
    assert len(runner.commands) == before
    assert cli.main(["apply", str(j.release_path), "--plan", str(plan_file)]) == 2
    assert "stale plan" in capsys.readouterr().err

    # The state changed after the plan was made (another apply ran): Terraform refuses, the message says why.
    j.release_path.write_text(reviewed)
    apply_release(j.release(), runner=runner)
    with pytest.raises(UserError, match="the Terraform state changed since the plan was made"):
        apply_plan(j.release(), plan_file=plan_file, runner=runner)

    j.release_path.write_text(original)
    _, restored = apply_release(j.release(), runner=runner)
    assert restored.ok and restored.plan_after_apply_empty
