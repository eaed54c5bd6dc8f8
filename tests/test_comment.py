"""The pull-request comment: what it says, and that --post keeps exactly one comment per environment."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smgitops import comment, pricing
from smgitops.cli import main
from smgitops.release import load_release, release_from_mapping
from support.fake_github import FakeGitHub, serve
from support.promotion import CANARY_ID, PromotionRepo, add_canary, edit, make_promotion_repo

ROOT = Path(__file__).resolve().parents[1]
DIGEST_A = "a1" * 32
DIGEST_B = "b2" * 32


def canary_summary() -> dict[str, Any]:
    return {
        "release": "releases/dev.yaml",
        "environment": "dev",
        "endpoint": "smgitops-dev",
        "endpoint_config": {"before": "smgitops-dev-1a2b3c4d", "after": "smgitops-dev-5e6f7a8b"},
        "variants": [
            {
                "name": "primary",
                "model": "logreg",
                "model_name": f"logreg-{DIGEST_A[:12]}",
                "digest": DIGEST_A,
                "weight_before": 100,
                "weight_after": 90,
            },
            {
                "name": "canary",
                "model": "forest",
                "model_name": f"forest-{DIGEST_B[:12]}",
                "digest": DIGEST_B,
                "weight_before": None,
                "weight_after": 10,
            },
        ],
        "models_added": [{"id": "forest", "digest": DIGEST_B, "name": f"forest-{DIGEST_B[:12]}"}],
        "models_removed": [],
        "resources": {
            "add": 2,
            "change": 1,
            "destroy": 1,
            "replace": 1,
            "changes": [
                {"address": 'aws_sagemaker_model.this["forest"]', "actions": ["create"]},
                {"address": "aws_sagemaker_endpoint_configuration.this", "actions": ["create", "delete"]},
                {"address": "aws_sagemaker_endpoint.this", "actions": ["update"]},
            ],
        },
        "instance_type": "ml.t2.large",
        "instance_count": 1,
        "no_changes": False,
        "plan_file": ".smgitops/work/dev/dev.tfplan",
        "generated_at": "2026-11-25T14:30:00+00:00",
    }


POLICY_OK = {
    "ok": True,
    "findings": [],
    "release_rules": ["RP001", "RP002", "RP003", "RP004", "RP005"],
    "checkov": {"version": "3.3.30", "passed": 214, "failed": 0, "skipped": [{"id": "CKV_AWS_144"}]},
}
POLICY_BAD = {
    "ok": False,
    "release_rules": ["RP001"],
    "checkov": None,
    "findings": [
        {
            "source": "release",
            "check_id": "RP001",
            "title": "models never served before get more than the canary cap",
            "resource": "canary=forest",
            "where": "releases/dev.yaml",
            "detail": "20 % to new models; cap 10 %",
        }
    ],
}
AFTERNOON = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # 15:30 in Berlin: 4 h to the 19:30 teardown
PYTHON_VALUES = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['")


def releases(instance_type: str = "ml.t2.large") -> tuple[Any, Any]:
    """The repository's dev release (the base) and the same with a canary at 10 %."""
    base = load_release(ROOT / "releases" / "dev.yaml")
    doc = copy.deepcopy(base.raw)
    add_canary(doc, DIGEST_B)
    doc["endpoint"]["instance_type"] = instance_type
    return base, release_from_mapping(doc, base.path)


def cost_at(now: datetime = AFTERNOON, instance_type: str = "ml.t2.large") -> dict[str, Any]:
    base, canary = releases(instance_type)
    return pricing.compare_cost(canary, base, now)


def test_the_comment_tells_the_whole_change() -> None:
    summary = dict(canary_summary(), plan_file="/home/runner/work/_temp/dev.tfplan")  # a runner path
    links = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "octo/models",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": "c0ffee" + "0" * 34,
    }
    body = comment.render_markdown(summary, policy=POLICY_OK, cost=cost_at(), env=links)
    assert body.startswith("<!-- smgitops:dev -->\n")
    # release diff in words, with digests
    assert f"**Model added:** `forest` `{DIGEST_B[:12]}`" in body
    assert "variant `primary` (`logreg` `a1a1a1a1a1a1`): 100 % → 90 %" in body
    assert "variant `canary`" in body and "new variant at 10 %" in body
    assert "`smgitops-dev-1a2b3c4d` → `smgitops-dev-5e6f7a8b`" in body
    # one compact traffic picture, no pie charts
    assert "mermaid" not in body
    (picture,) = re.findall(r"```text\n(.*?)```", body, flags=re.S)
    primary, canary = picture.splitlines()[1:]
    assert primary.startswith("primary") and "100 %  →" in primary and primary.rstrip().endswith("changes")
    assert "█" * 18 + "░░  90 %" in primary
    assert canary.startswith("canary") and "—  →  ██" + "░" * 18 + "  10 %" in canary
    # plan, policy, cost per day and month with the change against the base, today's hours
    assert "**Plan:** 2 to add, 1 to change, 1 to destroy (1 replaced)" in body
    assert "`create/delete` `aws_sagemaker_endpoint_configuration.this`" in body
    assert "**Policy:** ✅ passed — checkov 3.3.30: 214 passed, 0 failed, 1 skipped with reasons" in body
    price = pricing.price_table()["instance_types"]["ml.t2.large"]["usd_per_hour"]
    assert f"**${11.5 * 2 * price:.2f} a day, ${11.5 * 2 * price * 5 * 52 / 12:,.2f} a month** at the new" in body
    assert f"**+${11.5 * price:.2f} a day, +${11.5 * price * 5 * 52 / 12:,.2f} a month**" in body
    assert "08:00–19:30 Europe/Berlin, Monday to Friday; no `schedule.up`" in body
    assert f"Today: 4.0 h until the 19:30 Europe/Berlin teardown (${4 * 2 * price:.2f})" in body
    # links to the run and the commit; no local path; no Python values
    assert "[workflow run 4242](https://github.com/octo/models/actions/runs/4242)" in body
    assert f"commit [`c0ffee00`](https://github.com/octo/models/commit/c0ffee{'0' * 34})" in body
    assert "/home/runner" not in body and ".tfplan" not in body
    assert not PYTHON_VALUES.search(body), PYTHON_VALUES.search(body)


def test_policy_findings_and_unknown_cost_are_shown_not_hidden() -> None:
    summary = canary_summary()
    body = comment.render_markdown(summary, policy=POLICY_BAD, cost=cost_at(instance_type="ml.m5.large"))
    assert "**Policy:** ❌ 1 finding" in body
    assert "| `RP001` | canary=forest | releases/dev.yaml | models never served before" in body
    assert "**Cost:** unknown" in body and "no price for ml.m5.large" in body
    assert "**Policy:** not run." in comment.render_markdown(summary)
    assert "**Cost:** not estimated." in comment.render_markdown(summary)


def test_a_new_endpoint_and_no_changes() -> None:
    summary = canary_summary()
    for v in summary["variants"]:
        v["weight_before"] = None
    summary["endpoint_config"]["before"] = None
    body = comment.render_markdown(summary)
    (picture,) = re.findall(r"```text\n(.*?)```", body, flags=re.S)
    assert all("·" * 20 + "    —  →" in line for line in picture.splitlines()[1:])  # nothing served before
    quiet = canary_summary()
    quiet["variants"][1]["weight_before"] = 10
    quiet["variants"][0]["weight_before"] = 90
    quiet["models_added"] = []
    quiet["endpoint_config"]["before"] = quiet["endpoint_config"]["after"]
    quiet["no_changes"] = True
    body = comment.render_markdown(quiet)
    assert "No change to models or traffic." in body and "**Plan:** no changes." in body
    assert "changes" not in re.findall(r"```text\n(.*?)```", body, flags=re.S)[0]


def test_after_the_cut_off_the_daily_cost_still_shows() -> None:
    evening = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # 20:00 in Berlin
    body = comment.render_markdown(canary_summary(), cost=cost_at(evening))
    assert "today's teardown (19:30 Europe/Berlin) has passed: $0.00 more" in body
    assert re.search(r"\*\*\$[1-9][0-9.]* a day, \$[0-9,.]+ a month\*\* at the new weights", body)
    assert re.search(r"\*\*\+\$[1-9][0-9.]* a day", body)  # the canary's instance, whatever the hour


def test_values_read_as_the_release_file_writes_them() -> None:
    assert comment.human(None) == "null" and comment.human(True) == "true" and comment.human(False) == "false"
    assert comment.human({"primary": 0.0}) == "{primary: 0.0}" and comment.human(["l1", None]) == "[l1, null]"


# ---------------------------------------------------------------------------------------------------------------
# The review sections from real components: trained archives, release files and git history
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def promo(tmp_path: Path, git_identity: dict[str, str]) -> PromotionRepo:
    return make_promotion_repo(tmp_path)


def _summary_for(release_path: Path, before: dict[str, int]) -> dict[str, Any]:
    """The plan summary's shape for a release (what `smgitops plan --json` writes), weights before as given."""
    release = load_release(release_path)
    variants = [
        {
            "name": v.name,
            "model": v.model,
            "model_name": f"{v.model}-{release.environment}-{release.models[v.model].artifact_sha256[:12]}",
            "digest": release.models[v.model].artifact_sha256,
            "weight_before": before.get(v.name),
            "weight_after": v.weight,
        }
        for v in release.variants
    ]
    return dict(
        canary_summary(),
        environment=release.environment,
        release=f"releases/{release_path.name}",
        endpoint=release.endpoint.name,
        variants=variants,
        models_added=[],
        plan_file="/home/runner/work/_temp/x.tfplan",
    )


def _comment(release_path: Path, tmp_path: Path, *extra: str) -> str:
    plan_json = tmp_path / "plan.json"
    plan_json.write_text(json.dumps(_summary_for(release_path, {"primary": 100})))
    out = tmp_path / "comment.md"
    args = ["comment", str(plan_json), "--release", str(release_path), "--base-rev", "HEAD"]
    assert main([*args, "--now", "2026-11-25T14:30:00Z", "--markdown", str(out), *extra]) == 0
    return out.read_text()


def test_a_canary_pr_shows_both_models_metrics_and_the_delta(
    promo: PromotionRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(promo.dev, lambda doc: add_canary(doc, "0" * 64))
    capsys.readouterr()
    main(["train", str(promo.dev), "--json"])  # the real training; the placeholder digest differs (exit 1)
    trained = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    forest, logreg = trained[CANARY_ID], trained["cancer-logreg"]
    edit(promo.dev, lambda doc: doc["models"][CANARY_ID].update(artifact_sha256=forest["digest"]))

    body = _comment(promo.dev, tmp_path)
    assert "#### Models that gain traffic" in body
    head = f"**`{CANARY_ID}` `{forest['digest'][:12]}`: 0 % → 10 %**, taking traffic from `cancer-logreg`"
    assert head in body and "(100 % → 90 %)" in body
    for key in ("accuracy", "f1", "roc_auc"):
        new, old = forest["metrics"][key], logreg["metrics"][key]
        assert new != old
        row = f"| {key} | {new:.4f} | {old:.4f} | **{new - old:+.4f}** |"
        assert row in body, (row, body)
    assert "Δ against `cancer-logreg`" in body
    # estimator and parameter changes against the model it takes traffic from
    assert "- estimator: `sklearn.linear_model.LogisticRegression` → `sklearn.ensemble.RandomForestClassifier`" in body
    assert "- params.n_estimators: added `20`" in body and "- params.max_iter: `5000` removed" in body
    # the canary the merge enforces, from the release
    assert "for 10 min after the apply" in body and "at least 50 invocations" in body
    assert "error rate of at most 1 %" in body and "p99 model latency of at most 300 ms" in body
    # dev is promoted from nowhere: no promotion section; no local paths, no Python values
    assert "Promotion evidence" not in body
    assert str(tmp_path) not in body and "/home/runner" not in body
    assert not PYTHON_VALUES.search(body), PYTHON_VALUES.search(body)


def test_a_promotion_pr_shows_the_candidate_s_dev_canary(promo: PromotionRepo, tmp_path: Path) -> None:
    tested = "c" * 64
    edit(promo.dev, lambda doc: add_canary(doc, tested))
    dev_canary = promo.commit("dev: canary at 10 %")
    promo.record_dev_canary(dev_canary, invocations=180, errors=1)

    pr = promo.pull_request_checkout("pr")
    prod = pr / "releases" / "prod.yaml"
    edit(prod, lambda doc: add_canary(doc, tested))
    policy_json = tmp_path / "policy.json"
    assert main(["policy", str(prod), "--release-only", "--base-rev", "HEAD", "--report", str(policy_json)]) == 0
    body = _comment(prod, tmp_path, "--policy", str(policy_json))
    assert "#### Promotion evidence (from dev)" in body
    (row,) = [line for line in body.splitlines() if line.startswith(f"| `{CANARY_ID}` | `{tested[:12]}`")]
    assert f"✅ passed the dev canary of `{dev_canary[:8]}` (2026-11-25 09:30–09:40 UTC)" in row
    assert "variant `canary` at 10 %, 180 invocations, 1 errors (0.56 %), p99 42 ms" in row
    assert "| 10 % |" in row
    assert "release policy RP001, RP002, RP003, RP004, RP005: ok" in body

    # promoting the canary within dev (10 % -> 100 %): its last canary in dev, beside its gain
    dev = pr / "releases" / "dev.yaml"
    edit(dev, lambda doc: [v.update(weight=100 if v["name"] == "canary" else 0) for v in doc["variants"]])
    body = _comment(dev, tmp_path)
    assert f"**`{CANARY_ID}` `{tested[:12]}`: 10 % → 100 %**, taking traffic from `cancer-logreg`" in body
    assert f"Last canary in dev: ✅ passed the dev canary of `{dev_canary[:8]}`" in body
    assert "variant `canary` at 10 %, 180 invocations, 1 errors (0.56 %)" in body
    assert "Promotion evidence" not in body


def test_an_untested_digest_fails_rp005_and_an_override_shows_its_reason(promo: PromotionRepo, tmp_path: Path) -> None:
    untested = "e" * 64
    edit(promo.prod, lambda doc: add_canary(doc, untested))
    policy_json = tmp_path / "policy.json"
    args = ["policy", str(promo.prod), "--release-only", "--base-rev", "HEAD", "--report", str(policy_json)]
    assert main(args) == 1
    body = _comment(promo.prod, tmp_path, "--policy", str(policy_json))
    assert "❌ no passed dev canary on record: release policy RP005 fails" in body
    (finding,) = [line for line in body.splitlines() if line.startswith("| `RP005` |")]
    assert untested in finding

    reason = "hotfix INC-42 | dev is down; approved by the on-call lead"
    edit(promo.prod, lambda doc: doc["models"][CANARY_ID].update(promotion_override={"reason": reason}))
    assert main(args) == 0
    body = _comment(promo.prod, tmp_path, "--policy", str(policy_json))
    (row,) = [line for line in body.splitlines() if line.startswith(f"| `{CANARY_ID}` | `{untested[:12]}`")]
    assert "⚠️ no dev canary on record; **override**: “hotfix INC-42 \\| dev is down" in row
    (kept,) = [line for line in body.splitlines() if line.startswith("| `cancer-logreg` |")]
    assert "served in prod before this change" in kept


# ---------------------------------------------------------------------------------------------------------------
# --post against a local fake of the GitHub REST API
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub("octo/models", "t0ken")
    fake.comment_page_size = 2  # a handful of comments spans pages
    with serve(fake) as url:
        yield fake, url


@pytest.fixture()
def pr_env(tmp_path: Path, github: tuple[FakeGitHub, str], monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake, url = github
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    for k, v in {
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "octo/models",
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }.items():
        monkeypatch.setenv(k, v)
    return fake


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_post_creates_then_updates_one_comment(
    tmp_path: Path, pr_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = pr_env
    # other people's comments, some mentioning smgitops, across several pages
    fake.add_comment(7, "LGTM")
    fake.add_comment(7, "what does <!-- smgitops:dev --> mean?")  # not at the start: not ours
    fake.add_comment(7, "<!-- smgitops:prod -->\nthe prod comment")
    summary = _write(tmp_path, "plan.json", canary_summary())
    policy = _write(tmp_path, "policy.json", POLICY_OK)
    out = tmp_path / "posted.json"
    args = [
        "comment",
        str(summary),
        "--policy",
        str(policy),
        "--post",
        "--summary",
        "--report",
        str(out),
        "--now",
        "2026-11-25T14:30:00Z",
    ]
    assert main(args) == 0
    first = json.loads(out.read_text())["posted"]
    assert first["action"] == "created" and first["pull_request"] == 7
    assert main(args) == 0
    second = json.loads(out.read_text())["posted"]
    assert second == dict(first, action="updated")

    ours = [c for c in fake.comments[7] if c["body"].startswith("<!-- smgitops:dev -->")]
    assert len(ours) == 1 and ours[0]["id"] == first["id"]
    assert "```text\nvariant" in ours[0]["body"]
    assert "Today: 4.0 h until the 19:30 Europe/Berlin teardown" in ours[0]["body"]  # 15:30 in Berlin
    assert fake.comments[7][2]["body"] == "<!-- smgitops:prod -->\nthe prod comment"  # untouched
    methods = [method for method, _, _ in fake.calls]
    assert methods.count("POST") == 1 and methods.count("PATCH") == 1
    assert any("page=2" in target for _, target, _ in fake.calls)  # followed the Link header
    # the job summary got the same Markdown, once per run
    assert (tmp_path / "summary.md").read_text().count("<!-- smgitops:dev -->") == 2
    # --json: what was posted, on stdout and alone there (the "comment updated" line goes to stderr)
    capsys.readouterr()
    assert main(["comment", str(summary), "--policy", str(policy), "--post", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["posted"] == second
    assert "comment updated" in printed.err


def test_post_errors_are_reported(
    tmp_path: Path, pr_env: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _write(tmp_path, "plan.json", canary_summary())
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert main(["comment", str(summary), "--post"]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["comment", str(summary), "--post"]) == 2
    assert "GITHUB_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(_write(tmp_path, "push.json", {"ref": "refs/heads/main"})))
    assert main(["comment", str(summary), "--post"]) == 2
    assert "not a pull-request event" in capsys.readouterr().err


def test_bad_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comment", str(tmp_path / "missing.json")]) == 2
    bad = _write(tmp_path, "bad.json", {"release": "x"})
    assert main(["comment", str(bad)]) == 2
    assert "not a plan summary" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert main(["comment", str(tmp_path / "broken.json")]) == 2


def test_a_retrained_model_is_compared_with_its_published_predecessor(
    promo: PromotionRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same id, new parameters: the base's archive is no longer in the training output, so --store reads it."""
    import boto3
    from moto import mock_aws

    from smgitops.naming import artifact_key

    assert main(["train", str(promo.dev)]) == 0  # the base's model, as its merge published it
    base_digest = load_release(promo.dev).models["cancer-logreg"].artifact_sha256
    published = (promo.repo / "out" / "artifacts" / "cancer-logreg" / "model.tar.gz").read_bytes()

    edit(promo.dev, lambda doc: doc["models"]["cancer-logreg"]["params"].update(C=0.5))
    capsys.readouterr()
    main(["train", str(promo.dev), "--json"])
    (retrained,) = json.loads(capsys.readouterr().out)["models"]
    edit(promo.dev, lambda doc: doc["models"]["cancer-logreg"].update(artifact_sha256=retrained["digest"]))

    body = _comment(promo.dev, tmp_path)  # no store: the predecessor's metrics are missing, and it says so
    assert f"no metrics for `cancer-logreg` `{base_digest[:12]}`" in body

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SMGITOPS_ARTIFACT_BUCKET", "smgitops-artifacts-test")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="smgitops-artifacts-test")
        s3.put_object(Bucket="smgitops-artifacts-test", Key=artifact_key("cancer-logreg", base_digest), Body=published)
        body = _comment(promo.dev, tmp_path, "--store")
    head = f"**`cancer-logreg` `{retrained['digest'][:12]}`: 0 % → 100 %**, taking traffic from `cancer-logreg`"
    assert head in body
    base_metrics = comment.archive_manifest(published)
    assert base_metrics is not None
    for key in ("accuracy", "f1", "roc_auc"):
        new, old = retrained["metrics"][key], base_metrics["metrics"][key]
        assert f"| {key} | {new:.4f} | {old:.4f} |" in body
    assert "no metrics for" not in body
    assert "- params.C: `1.0` → `0.5`" in body
