"""The policy gate: custom checkov checks on their fixtures, the real roots, the plan scan, the release policy."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops import policy
from smgitops.cli import main
from smgitops.release import Release, release_from_mapping
from support.promotion import PromotionRepo, add_canary, edit, make_promotion_repo, sh

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "policy_fixtures"
POLICIES = ROOT / "policies"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"

# fixture directory -> (check id, resources that must PASS in pass/, resources that must FAIL in fail/)
EXPECTED: dict[str, tuple[str, set[str], set[str]]] = {
    "instance_type": (
        "CKV_SMG_1",
        {"aws_sagemaker_endpoint_configuration.allowed"},
        {"aws_sagemaker_endpoint_configuration.gpu", "aws_sagemaker_endpoint_configuration.t3"},
    ),
    "required_tags": (
        "CKV_SMG_2",
        {"aws_sagemaker_model.m", "aws_sagemaker_endpoint_configuration.c", "aws_sagemaker_endpoint.e"},
        {
            "aws_sagemaker_model.no_digest",
            "aws_sagemaker_endpoint_configuration.untagged",
            "aws_sagemaker_endpoint.wrong_owner",
        },
    ),
    "data_capture": (
        "CKV_SMG_3",
        {"aws_sagemaker_endpoint_configuration.captured"},
        {
            "aws_sagemaker_endpoint_configuration.no_capture",
            "aws_sagemaker_endpoint_configuration.capture_off",
            "aws_sagemaker_endpoint_configuration.zero_sampling",
        },
    ),
    "kms": (
        "CKV_SMG_4",
        {"aws_sagemaker_endpoint_configuration.encrypted"},
        {"aws_sagemaker_endpoint_configuration.no_key", "aws_sagemaker_endpoint_configuration.capture_unencrypted"},
    ),
    "network_isolation": (
        "CKV_SMG_5",
        {"aws_sagemaker_model.isolated"},
        {"aws_sagemaker_model.default_off", "aws_sagemaker_model.explicit_off"},
    ),
    "tls_only": (
        "CKV_SMG_6",
        {"aws_s3_bucket_policy.inline", "aws_s3_bucket_policy.document"},
        {"aws_s3_bucket_policy.allow_only", "aws_s3_bucket_policy.objects_only", "aws_s3_bucket_policy.inverted"},
    ),
    "prevent_destroy": ("CKV_SMG_7", {"aws_s3_bucket.state"}, {"aws_s3_bucket.state", "aws_s3_bucket.tf_state"}),
    "oidc_trust": (
        "CKV_SMG_8",
        {"aws_iam_role.plan", "aws_iam_role.apply", "aws_iam_role.plan_pull_requests"},
        {
            "aws_iam_role.wildcard_sub",
            "aws_iam_role.no_aud",
            "aws_iam_role.no_sub",
            "aws_iam_role.pull_request_any_workflow",
        },
    ),
    "public_access_block": (
        "CKV2_SMG_1",
        {"aws_s3_bucket.artifacts"},
        {"aws_s3_bucket.no_block", "aws_s3_bucket.partial"},
    ),
    "bucket_policy_attached": ("CKV2_SMG_2", {"aws_s3_bucket.artifacts"}, {"aws_s3_bucket.artifacts"}),
}

# checkov is part of the set-up (conftest stops the run without it): the mark only labels the tests.
needs_checkov = pytest.mark.checkov


# ---------------------------------------------------------------------------------------------------------------
# Custom checks on their fixtures (one checkov run for all of them)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_scan() -> policy.CheckovResult:
    ids = sorted({check for check, _, _ in EXPECTED.values()})
    return policy.run_checkov({"policy_fixtures": FIXTURES}, policies_dir=POLICIES, checks=ids, require_coverage=False)


def test_every_custom_check_has_fixtures() -> None:
    declared = set(policy.custom_check_ids(POLICIES))
    assert declared == {check for check, _, _ in EXPECTED.values()}
    for name in EXPECTED:
        assert (FIXTURES / name / "pass" / "main.tf").is_file()
        assert (FIXTURES / name / "fail" / "main.tf").is_file()


def test_instance_type_check_applies_the_release_default_allowlist() -> None:
    """CKV_SMG_1 runs inside checkov's environment and cannot import smgitops: its copy of the list must agree."""
    import ast

    from smgitops.release_checks import DEFAULT_ALLOWED_INSTANCE_TYPES

    tree = ast.parse((POLICIES / "sagemaker_instance_type.py").read_text(encoding="utf-8"))
    [value] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "ALLOWED_INSTANCE_TYPES" for t in node.targets)
    ]
    assert ast.literal_eval(value) == DEFAULT_ALLOWED_INSTANCE_TYPES


@needs_checkov
@pytest.mark.checkov
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_custom_check_fails_and_passes_its_fixtures(fixture_scan: policy.CheckovResult, name: str) -> None:
    check_id, must_pass, must_fail = EXPECTED[name]
    assert not [f for f in fixture_scan.findings if f.check_id == "LOAD"], "a custom check did not load"
    seen: dict[str, dict[str, str]] = {"pass": {}, "fail": {}}
    for r in fixture_scan.results:
        prefix = f"policy_fixtures/{name}/"
        if r["id"] == check_id and r["file"].startswith(prefix):
            seen[r["file"][len(prefix) :].split("/")[0]][r["resource"]] = r["result"]
    assert seen["pass"] == dict.fromkeys(must_pass, "PASSED")
    assert seen["fail"] == dict.fromkeys(must_fail, "FAILED")


# ---------------------------------------------------------------------------------------------------------------
# The real roots and the plan scan
# ---------------------------------------------------------------------------------------------------------------


@needs_checkov
@pytest.mark.checkov
def test_real_roots_have_no_findings_and_every_skip_has_a_reason(tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    code = main(["policy", "--root", str(ROOT), "--report", str(out)])
    report = json.loads(out.read_text())
    assert report["findings"] == [], report["findings"]
    assert code == 0
    ck = report["checkov"]
    assert ck["failed"] == 0 and ck["passed"] > 100
    assert ck["targets"] == ["terraform/", "bootstrap/"]
    for skip in ck["skipped"]:
        assert skip["reason"] and skip["reason"].lower() != "no comment provided", skip
    # the checks that HCL can decide did decide (the others need the plan)
    for check in ("CKV_SMG_2", "CKV_SMG_4", "CKV_SMG_5", "CKV_SMG_6", "CKV_SMG_7", "CKV_SMG_8", "CKV2_SMG_1"):
        assert ck["custom_checks"][check] > 0, check


def _offline_plans(tmp_path: Path, *releases: str) -> list[Path]:
    """Real ``terraform show -json`` plans of the plan_scan fixture, planned without any AWS call.

    A private CLI config (the set-up's mirror, no shared plugin cache: a concurrent init elsewhere may be
    writing it) and one ``init`` for all plans.
    """
    work = tmp_path / "plan_scan"
    shutil.copytree(FIXTURES / "plan_scan", work)
    rc = (ROOT / ".cache" / "terraform" / "terraformrc").read_text()
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text("\n".join(line for line in rc.splitlines() if "plugin_cache_dir" not in line) + "\n")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    env.pop("AWS_CA_BUNDLE", None)

    def tf(*args: str) -> str:
        proc = subprocess.run(["terraform", *args], cwd=work, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    tf("init", "-input=false", "-no-color")
    plans = []
    for release in releases:
        tf("plan", "-input=false", "-no-color", "-refresh=false", "-out=p.tfplan", f"-var=release_file={release}")
        plan = tmp_path / release.replace(".yaml", ".json")
        plan.write_text(tf("show", "-json", "p.tfplan"))
        plans.append(plan)
    return plans


@needs_checkov
@pytest.mark.checkov
@pytest.mark.terraform
def test_plan_scan_decides_what_hcl_cannot(tmp_path: Path) -> None:
    ids = ["CKV_SMG_1", "CKV_SMG_2", "CKV_SMG_3", "CKV_SMG_4"]
    roots = {"plan_scan": FIXTURES / "plan_scan"}
    ok_plan, bad_plan = _offline_plans(tmp_path, "release_ok.yaml", "release_bad.yaml")
    good = policy.run_checkov(roots, plan_json=ok_plan, policies_dir=POLICIES, checks=ids)
    assert good.findings == []
    # HCL left the release-driven values unresolved; the plan decided them
    assert good.evaluated["CKV_SMG_1"] == 1 and good.evaluated["CKV_SMG_3"] == 1
    bad = policy.run_checkov(roots, plan_json=bad_plan, policies_dir=POLICIES, checks=ids)
    failed = {(f.check_id, f.resource) for f in bad.findings}
    assert failed == {
        ("CKV_SMG_1", "aws_sagemaker_endpoint_configuration.this"),
        ("CKV_SMG_3", "aws_sagemaker_endpoint_configuration.this"),
    }
    assert all(f.file == "plan/tfplan.json" for f in bad.findings)


# ---------------------------------------------------------------------------------------------------------------
# Report parsing (checkov's JSON, fed through a recording runner)
# ---------------------------------------------------------------------------------------------------------------


class FakeCheckov:
    def __init__(self, report: Any, stderr: str = "", returncode: int = 1) -> None:
        self.report, self.stderr, self.returncode = report, stderr, returncode
        self.commands: list[list[str]] = []

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(cmd)
        scan = cmd[cmd.index("-d") + 1]
        text = json.dumps(self.report).replace("@SCAN@", scan)
        return subprocess.CompletedProcess(cmd, self.returncode, text, self.stderr)


def _item(check_id: str, resource: str, file: str, **extra: Any) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "check_name": f"name of {check_id}",
        "resource": resource,
        "file_abs_path": f"@SCAN@/{file}",
        "file_line_range": [3, 9],
        **extra,
    }


def test_report_parsing_fails_closed(tmp_path: Path) -> None:
    for name in ("terraform", "bootstrap"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.tf").write_text("# empty\n")
    report = {
        "check_type": "terraform",
        "summary": {"checkov_version": "3.3.30"},
        "results": {
            "passed_checks": [_item("CKV_SMG_5", "aws_sagemaker_model.m", "terraform/models.tf")],
            "failed_checks": [_item("CKV_AWS_20", "aws_s3_bucket.b", "bootstrap/buckets.tf")],
            "skipped_checks": [
                _item(
                    "CKV_AWS_18",
                    "aws_s3_bucket.logs",
                    "bootstrap/buckets.tf",
                    check_result={"result": "SKIPPED", "suppress_comment": "No comment provided"},
                ),
                _item(
                    "CKV_SMG_6",
                    "aws_s3_bucket_policy.p",
                    "bootstrap/buckets.tf",
                    check_result={"result": "SKIPPED", "suppress_comment": "trust me"},
                ),
                _item(
                    "CKV_AWS_144",
                    "aws_s3_bucket.state",
                    "bootstrap/buckets.tf",
                    check_result={"result": "SKIPPED", "suppress_comment": "single region"},
                ),
            ],
            "parsing_errors": ["@SCAN@/terraform/broken.tf"],
        },
    }
    fake = FakeCheckov(report, stderr="[ERROR]  Cannot load external check 's3_tls_only' from /x/s3_tls_only.py\n")
    exe = tmp_path / "checkov"
    exe.write_text("")
    result = policy.run_checkov(
        {"terraform": tmp_path / "terraform", "bootstrap": tmp_path / "bootstrap"},
        plan_json=None,
        policies_dir=POLICIES,
        checkov=exe,
        runner=fake,
    )
    got = {(f.check_id, f.title, f.file) for f in result.findings}
    assert got == {
        ("CKV_AWS_20", "name of CKV_AWS_20", "bootstrap/buckets.tf"),
        ("CKV_AWS_18", "skipped without a reason", "bootstrap/buckets.tf"),
        ("CKV_SMG_6", "a smgitops policy check may not be skipped", "bootstrap/buckets.tf"),
        ("PARSE", "checkov could not parse the file", "terraform/broken.tf"),
        ("LOAD", "a custom check failed to load", "policies/s3_tls_only.py"),
    }
    assert [s["id"] for s in result.skipped] == ["CKV_AWS_18", "CKV_SMG_6", "CKV_AWS_144"]
    cmd = fake.commands[0]
    assert cmd[:2] == [str(exe), "--skip-download"] and cmd.count("-d") == 1
    assert cmd[cmd.index("--framework") + 1 :][:1] == ["terraform"]


def test_coverage_with_a_plan_flags_checks_that_judged_nothing(tmp_path: Path) -> None:
    (tmp_path / "terraform").mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "planned_values": {}}))
    report = {"summary": {}, "results": {"passed_checks": [_item("CKV_SMG_1", "x.y", "plan/tfplan.json")]}}
    exe = tmp_path / "checkov"
    exe.write_text("")
    fake = FakeCheckov(report, returncode=0)
    result = policy.run_checkov(
        {"terraform": tmp_path / "terraform"}, plan_json=plan, policies_dir=POLICIES, checkov=exe, runner=fake
    )
    uncovered = {f.check_id for f in result.findings}
    assert uncovered == set(policy.custom_check_ids(POLICIES)) - {"CKV_SMG_1"}
    assert "terraform_plan" in fake.commands[0]


def test_inline_skips_of_the_plan_s_root_apply_to_the_plan(tmp_path: Path) -> None:
    (tmp_path / "terraform").mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "planned_values": {}}))
    skip = {"result": "SKIPPED", "suppress_comment": "endpoint storage is encrypted by CKV_SMG_4's key"}
    report = [
        {
            "summary": {},
            "results": {
                "skipped_checks": [
                    _item(
                        "CKV_AWS_98",
                        "aws_sagemaker_endpoint_configuration.this",
                        "terraform/endpoint.tf",
                        check_result=skip,
                    )
                ]
            },
        },
        {
            "summary": {},
            "results": {
                "failed_checks": [
                    _item("CKV_AWS_98", "aws_sagemaker_endpoint_configuration.this", "plan/tfplan.json"),
                    _item("CKV_AWS_99", 'aws_sagemaker_model.this["m"]', "plan/tfplan.json"),
                ]
            },
        },
    ]
    exe = tmp_path / "checkov"
    exe.write_text("")
    result = policy.run_checkov(
        {"terraform": tmp_path / "terraform"},
        plan_json=plan,
        policies_dir=POLICIES,
        checkov=exe,
        runner=FakeCheckov(report),
        require_coverage=False,
    )
    assert [(f.check_id, f.file) for f in result.findings] == [("CKV_AWS_99", "plan/tfplan.json")]
    assert result.failed == 1
    carried = [s for s in result.skipped if s["file"] == "plan/tfplan.json"]
    assert carried and "terraform/endpoint.tf" in carried[0]["reason"]


def test_checkov_crash_is_an_external_error(tmp_path: Path) -> None:
    (tmp_path / "terraform").mkdir()
    exe = tmp_path / "checkov"
    exe.write_text("")
    fake = FakeCheckov({}, stderr="Traceback: boom", returncode=2)
    with pytest.raises(policy.ExternalError, match="checkov exited 2"):
        policy.run_checkov({"terraform": tmp_path / "terraform"}, policies_dir=POLICIES, checkov=exe, runner=fake)


def test_bad_plan_json_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"not": "a plan"}')
    assert main(["policy", "--root", str(ROOT), "--plan-json", str(bad)]) == 2
    assert "not a Terraform plan" in capsys.readouterr().err
    bad.write_text("{")
    assert main(["policy", "--root", str(ROOT), "--plan-json", str(bad)]) == 2


# ---------------------------------------------------------------------------------------------------------------
# The release policy
# ---------------------------------------------------------------------------------------------------------------

D = {name: (name * 64)[:64] for name in "abcdef"}


def make_release(
    variants: list[tuple[str, str, int]], models: dict[str, str], *, at: str = "19:30", cap: int | None = None
) -> Release:
    canary: dict[str, Any] = {
        "bake_minutes": 10,
        "min_invocations": 50,
        "max_error_rate": 0.01,
        "max_p99_latency_ms": 300,
    }
    if cap is not None:
        canary["max_initial_weight"] = cap
    doc = {
        "environment": "dev",
        "region": "us-east-1",
        "image": "1.2-1-cpu-py3",
        "endpoint": {
            "name": "smgitops-dev",
            "instance_type": "ml.t2.large",
            "instance_count": 1,
            "data_capture": {"enabled": True, "sampling_percentage": 100},
        },
        "teardown": {"at": at, "timezone": "Europe/Berlin"},
        "models": {
            mid: {
                "data": {"path": "data/x.csv", "sha256": "0" * 64},
                "estimator": "e",
                "params": {},
                "seed": 1,
                "artifact_sha256": digest,
            }
            for mid, digest in models.items()
        },
        "variants": [{"name": n, "model": m, "weight": w} for n, m, w in variants],
        "canary": canary,
    }
    return release_from_mapping(doc, Path("releases/dev.yaml"))


BASE = make_release([("primary", "m1", 100)], {"m1": D["a"]})


def ids(findings: list[policy.Finding]) -> list[str]:
    return sorted(f.check_id for f in findings)


def test_canary_at_the_cap_passes_and_above_fails() -> None:
    ok = make_release([("primary", "m1", 90), ("canary", "m2", 10)], {"m1": D["a"], "m2": D["b"]})
    assert policy.release_findings(ok, BASE) == []
    big = make_release([("primary", "m1", 80), ("canary", "m2", 20)], {"m1": D["a"], "m2": D["b"]})
    (finding,) = policy.release_findings(big, BASE)
    assert finding.check_id == "RP001" and "20 %" in finding.detail and "10 %" in finding.detail


def test_the_cap_is_the_release_s_own_and_counts_all_new_models_together() -> None:
    two = make_release([("p", "m1", 84), ("c1", "m2", 8), ("c2", "m3", 8)], {"m1": D["a"], "m2": D["b"], "m3": D["c"]})
    assert ids(policy.release_findings(two, BASE)) == ["RP001"]
    raised = make_release([("p", "m1", 80), ("c", "m2", 20)], {"m1": D["a"], "m2": D["b"]}, cap=20)
    assert policy.release_findings(raised, BASE) == []


def test_a_retrained_model_under_the_same_id_is_new() -> None:
    retrained = make_release([("primary", "m1", 100)], {"m1": D["b"]})
    (finding,) = policy.release_findings(retrained, BASE)
    assert finding.check_id == "RP001" and D["b"][:12] in finding.resource


def test_promotion_and_revert_between_known_models_pass() -> None:
    canary = make_release([("primary", "m1", 90), ("canary", "m2", 10)], {"m1": D["a"], "m2": D["b"]})
    promoted = make_release([("primary", "m1", 0), ("canary", "m2", 100)], {"m1": D["a"], "m2": D["b"]})
    assert policy.release_findings(promoted, canary) == []
    assert policy.release_findings(canary, promoted) == []  # the revert: 0 -> 90 for a known model


def test_a_canary_pr_may_not_also_promote_a_known_model() -> None:
    base = make_release([("a", "m1", 50), ("b", "m2", 50)], {"m1": D["a"], "m2": D["b"]})
    both = make_release([("a", "m1", 80), ("b", "m2", 10), ("c", "m3", 10)], {"m1": D["a"], "m2": D["b"], "m3": D["c"]})
    (finding,) = policy.release_findings(both, base)
    assert finding.check_id == "RP002" and "50 % -> 80 %" in finding.detail


def test_teardown_after_23_00_is_refused() -> None:
    assert policy.release_findings(make_release([("p", "m1", 100)], {"m1": D["a"]}, at="23:00"), BASE) == []
    late = make_release([("p", "m1", 100)], {"m1": D["a"]}, at="23:30")
    assert ids(policy.release_findings(late, BASE)) == ["RP003"]


def test_a_release_never_removes_all_variants() -> None:
    empty = make_release([], {"m1": D["a"]})
    assert "RP004" in ids(policy.release_findings(empty, BASE))
    silent = make_release([("p", "m1", 0)], {"m1": D["a"]})
    assert "RP004" in ids(policy.release_findings(silent, BASE))


def test_a_first_release_has_no_base_to_canary_against() -> None:
    first = make_release([("primary", "m1", 100)], {"m1": D["a"]})
    assert policy.release_findings(first, None) == []


# ---------------------------------------------------------------------------------------------------------------
# The command: base from git, exit codes, JSON
# ---------------------------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path, git_identity: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    (repo / "releases").mkdir(parents=True)
    shutil.copy(ROOT / "releases" / "release.schema.json", repo / "releases")
    shutil.copytree(ROOT / "data", repo / "data")
    shutil.copy(ROOT / "releases" / "dev.yaml", repo / "releases" / "dev.yaml")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    return repo


def _add_canary(path: Path, weight: int) -> None:
    doc = yaml.safe_load(path.read_text())
    ((mid, model),) = doc["models"].items()
    new = dict(copy.deepcopy(model), seed=model["seed"] + 1, artifact_sha256="f" * 64)
    doc["models"][f"{mid}-v2"] = new
    doc["variants"][0]["weight"] = 100 - weight
    doc["variants"].append({"name": "canary", "model": f"{mid}-v2", "weight": weight})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_base_rev_from_git_and_the_json_report(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = repo / "releases" / "dev.yaml"
    _add_canary(rel, 30)
    out = tmp_path / "p.json"
    code = main(["policy", str(rel), "--release-only", "--base-rev", "HEAD", "--report", str(out)])
    report = json.loads(out.read_text())
    assert code == 1 and report["ok"] is False
    assert "RP001" in capsys.readouterr().out  # --report keeps the table on stdout
    # --json: the same report on stdout, and nothing else there
    assert main(["policy", str(rel), "--release-only", "--base-rev", "HEAD", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == report
    assert [f["check_id"] for f in report["findings"]] == ["RP001"]
    assert report["base"] == f"HEAD:{rel}"
    doc = yaml.safe_load(rel.read_text())
    doc["variants"][0]["weight"], doc["variants"][1]["weight"] = 90, 10
    rel.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["policy", str(rel), "--release-only", "--base-rev", "HEAD", "--report", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True


def test_a_release_file_new_at_the_base_revision_is_exempt(repo: Path, tmp_path: Path) -> None:
    stage = repo / "releases" / "stage.yaml"
    doc = yaml.safe_load((repo / "releases" / "dev.yaml").read_text())
    doc["environment"] = "stage"
    doc["endpoint"]["name"] = "smgitops-stage"
    stage.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "p.json"
    assert main(["policy", str(stage), "--release-only", "--base-rev", "HEAD", "--report", str(out)]) == 0
    assert "absent: new release" in json.loads(out.read_text())["base"]
    # ... from RP001, not from RP005: a first prod release serves only digests that passed dev's canary
    prod = repo / "releases" / "prod.yaml"
    prod.write_text(
        yaml.safe_dump(
            dict(doc, environment="prod", endpoint=dict(doc["endpoint"], name="smgitops-prod")), sort_keys=False
        )
    )
    assert main(["policy", str(prod), "--release-only", "--base-rev", "HEAD", "--report", str(out)]) == 1
    assert [f["check_id"] for f in json.loads(out.read_text())["findings"]] == ["RP005"]


def test_bad_base_input_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = str(repo / "releases" / "dev.yaml")
    assert main(["policy", rel, "--release-only", "--base-rev", "no-such-rev"]) == 2
    assert "no such commit" in capsys.readouterr().err
    assert main(["policy", rel, "--release-only", "--base-release", str(repo / "missing.yaml")]) == 2
    assert main(["policy", "--release-only"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["policy", rel, "--base-rev", "HEAD", "--base-release", rel])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------------------------
# RP005: promotion by digest, against canary evidence recorded in git as the deploy workflow records it
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def promo(tmp_path: Path, git_identity: dict[str, str]) -> PromotionRepo:
    return make_promotion_repo(tmp_path)


def _policy(release: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["policy", str(release), "--release-only", "--base-rev", "HEAD", "--report", str(out), *extra])
    return code, json.loads(out.read_text())


def test_rp005_prod_serves_only_digests_that_passed_a_dev_canary(
    promo: PromotionRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tested, untested = "c" * 64, "e" * 64
    edit(promo.dev, lambda doc: add_canary(doc, tested))
    dev_canary = promo.commit("dev: canary cancer-forest at 10 %")
    done = promo.record_dev_canary(dev_canary)
    assert done == [
        f"dev: pushed refs/tags/smgitops/good/dev/{dev_canary}",
        f"dev: pushed refs/tags/smgitops/canary/dev/{dev_canary}",
    ]

    pr = promo.pull_request_checkout("pr")  # tags come with the clone, as with fetch-depth: 0
    prod = pr / "releases" / "prod.yaml"
    edit(prod, lambda doc: add_canary(doc, tested))
    code, report = _policy(prod, tmp_path / "ok.json")
    assert code == 0, report["findings"]
    (entry,) = [e for e in report["promotion"] if e["digest"] == tested]
    assert entry["status"] == "passed" and entry["canary"]["revision"] == dev_canary
    assert entry["canary"]["variant"]["name"] == "canary" and entry["canary"]["variant"]["invocations"] == 200
    (kept,) = [e for e in report["promotion"] if e["digest"] != tested]
    assert kept["status"] == "passed"  # prod's own model was dev's primary in that canary
    assert "RP005" in report["release_rules"]

    # a digest dev never ran: refused, naming the digest
    edit(prod, lambda doc: doc["models"]["cancer-forest"].update(artifact_sha256=untested))
    capsys.readouterr()
    code, report = _policy(prod, tmp_path / "bad.json")
    assert code == 1
    (finding,) = report["findings"]
    assert finding["check_id"] == "RP005" and untested in finding["title"] and untested in finding["detail"]
    assert "promotion_override" in finding["detail"]
    assert untested[:12] in capsys.readouterr().out  # the printed table names it too

    # a dev release with a good tag but whose evidence is missing does not count either
    sh(promo.origin, "tag", "-d", f"smgitops/good/dev/{dev_canary}")
    again = promo.pull_request_checkout("pr-without-good-tag")
    prod2 = again / "releases" / "prod.yaml"
    edit(prod2, lambda doc: add_canary(doc, tested))
    code, report = _policy(prod2, tmp_path / "nogood.json")
    assert code == 1 and [f["check_id"] for f in report["findings"]] == ["RP005"]


def test_rp005_override_passes_with_its_reason(promo: PromotionRepo, tmp_path: Path) -> None:
    untested = "e" * 64
    reason = "hotfix INC-42: dev is down; approved by the on-call lead"
    edit(promo.prod, lambda doc: add_canary(doc, untested, promotion_override={"reason": reason}))
    code, report = _policy(promo.prod, tmp_path / "p.json")
    assert code == 0, report["findings"]
    (entry,) = [e for e in report["promotion"] if e["digest"] == untested]
    assert entry["status"] == "override" and entry["override"] == reason
    (kept,) = [e for e in report["promotion"] if e["digest"] != untested]
    assert kept["status"] == "served" and kept["canary"] is None  # no dev evidence, but prod served it before


def test_rp005_outside_git_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loose = tmp_path / "loose"
    (loose / "releases").mkdir(parents=True)
    shutil.copy(ROOT / "releases" / "release.schema.json", loose / "releases")
    shutil.copy(ROOT / "releases" / "prod.yaml", loose / "releases")
    shutil.copytree(ROOT / "data", loose / "data")
    assert main(["policy", str(loose / "releases" / "prod.yaml"), "--release-only"]) == 2
    assert "RP005" in capsys.readouterr().err
