"""Retiring an environment, with real Terraform on the emulator and real git: a commit deletes releases/dev.yaml;
``changed-releases`` reports it as retired (not deployed), ``retire dev --plan-only`` plans the destroy of every
resource in dev's state (read-only, lock free), ``retire dev`` destroys them: no endpoint, configuration, model or
alarm of dev is left live, the state is empty, the lock free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_recovery import _lock, journey  # noqa: F401  (journey: the fixture, v1 deployed)
from test_rollout import Journey, sh, terraform_needed

pytestmark = [terraform_needed, pytest.mark.terraform]


def _live() -> dict[str, list[str]]:
    """Everything the emulator holds that an environment's Terraform root makes."""
    import boto3

    sm = boto3.client("sagemaker", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    return {
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "configs": sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
        "alarms": sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]),
    }


def test_deleting_a_release_file_plans_then_destroys_its_environment(
    journey: Journey,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from smgitops import cli
    from smgitops.changes import changed_releases, deleted_releases
    from smgitops.context import Context
    from smgitops.release import load_release

    j = journey
    before = _live()
    assert before["endpoints"] == ["smgitops-dev"] and before["configs"] and before["models"] and before["alarms"]
    in_state = sorted(Context.for_release(release := load_release(j.path)).workspace(release).terraform.state_list())
    assert "aws_sagemaker_endpoint.this" in in_state and len(in_state) >= 4

    base = sh(j.repo, "rev-parse", "HEAD")
    sh(j.repo, "rm", "-q", "releases/dev.yaml")
    sh(j.repo, "commit", "-q", "-m", "retire dev")
    head = sh(j.repo, "rev-parse", "HEAD")

    # the pull request: dev is not deployed but retired; prod (untouched) is neither
    assert changed_releases(j.repo, base, head) == []
    assert deleted_releases(j.repo, base, head) == ["releases/dev.yaml"]
    monkeypatch.chdir(j.repo)
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert cli.main(["changed-releases", "--base", base, "--github-output"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "[]"
    assert "releases/dev.yaml deleted: environment dev retires (smgitops retire dev)" in captured.err
    written = output.read_text()
    assert 'retired=[{"release":"releases/dev.yaml","environment":"dev"}]' in written
    assert "any_retired=true" in written and "any=false" in written

    # its plan: the destroy of everything in dev's state, read-only (no lock taken), nothing changed
    plan_json, plan_md = tmp_path / "retire.json", tmp_path / "comment" / "dev.md"
    assert cli.main(["retire", "dev", "--plan-only", "--report", str(plan_json), "--markdown", str(plan_md)]) == 0
    out = capsys.readouterr().out
    n = len(in_state)
    planned = json.loads(plan_json.read_text())
    assert sorted(d["address"] for d in planned["destroy"]) == in_state
    assert planned["retired_from"] == base and planned["plan_only"] is True
    assert f"retire: {n} resources destroyed on merge (plan)" in out
    markdown = plan_md.read_text()
    assert markdown.startswith("<!-- smgitops:dev -->\n") and f"retire: {n} resources destroyed" in markdown
    assert "| `aws_sagemaker_endpoint.this` | `smgitops-dev` |" in markdown
    assert _live() == before and _lock(j) is None

    # the merge: destroyed, nothing of dev left live, the state empty, the lock free
    assert cli.main(["retire", "dev"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"retire: {n} resources destroyed")
    assert _live() == {"endpoints": [], "configs": [], "models": [], "alarms": []}
    assert _lock(j) is None
    # once more: nothing to do (a re-run of the job)
    assert cli.main(["retire", "dev"]) == 0
    assert "retire: 0 resources destroyed" in capsys.readouterr().out

    # a release file still there is not retired: deleting it in a reviewed commit is the way
    assert cli.main(["retire", "prod"]) == 2
    assert "releases/prod.yaml exists at HEAD" in capsys.readouterr().err
