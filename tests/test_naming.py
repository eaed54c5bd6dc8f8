"""Content-derived names: the Python side (smgitops.naming) and the Terraform side (terraform/locals.tf) agree.

The endpoint-configuration name is computed twice: by Terraform when it deploys, and by the pipeline when it
summarises a plan, verifies a live endpoint or checks that a rollback lands on the configuration it left. These
tests evaluate terraform/'s locals with real Terraform (``terraform console`` in a copy of the root with local
state, no AWS call) and hold Python to the same answers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops import naming
from smgitops.release import Release, load_release, release_from_mapping
from terraform_helpers import (
    ROOT,
    console_json,
    copy_root,
    init,
    terraform,
    tf_env,
    write_local_backend_override,
    write_local_override,
)

BUCKET = "smgitops-artifacts-123456789012"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab"
TREE_DIGEST = hashlib.sha256(b"a second model").hexdigest()
SHIPPED = sorted((ROOT / "releases").glob("*.yaml"))

NAMES_EXPRESSION = (  # terraform console reads one line per expression
    "{"
    "endpoint_config_name = local.endpoint_config_name, "
    "model_names = { for id, m in local.models : id => m.name }, "
    "model_data_urls = { for id, m in local.models : id => m.model_data_url }, "
    "image_uri = local.image_uri, "
    "content = local.endpoint_config_content"
    "}"
)


@pytest.fixture(scope="module")
def console_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """terraform/ with local state and the provider's offline switches: locals evaluate without any AWS call."""
    workdir = copy_root("terraform", tmp_path_factory.mktemp("naming") / "terraform")
    write_local_backend_override(workdir)
    write_local_override(workdir, endpoint_url=None)
    init(workdir, env=tf_env())
    yield workdir


def terraform_names(root: Path, release_file: Path, kms_key_arn: str = KMS_KEY) -> dict[str, Any]:
    variables = {
        "release_file": str(release_file),
        "artifact_bucket": BUCKET,
        "execution_role_arn": "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution",
        "kms_key_arn": kms_key_arn,
    }
    result: dict[str, Any] = console_json(root, NAMES_EXPRESSION, variables, tf_env())
    return result


def write_release(doc: dict[str, Any], path: Path) -> Release:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return release_from_mapping(doc, path)


def dev_doc() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "releases" / "dev.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def canary_doc(canary_weight: int) -> dict[str, Any]:
    """dev.yaml with a second model taking ``canary_weight`` percent of the traffic."""
    doc = copy.deepcopy(dev_doc())
    base_id = doc["variants"][0]["model"]
    tree = copy.deepcopy(doc["models"][base_id])
    tree.update(estimator="sklearn.tree.DecisionTreeClassifier", params={"max_depth": 3}, artifact_sha256=TREE_DIGEST)
    doc["models"]["cancer-tree"] = tree
    doc["variants"] = [
        {"name": "primary", "model": base_id, "weight": 100 - canary_weight},
        {"name": "canary", "model": "cancer-tree", "weight": canary_weight},
    ]
    return doc


def assert_python_matches_terraform(release: Release, tf: dict[str, Any], kms_key_arn: str = KMS_KEY) -> None:
    python_name = naming.endpoint_config_name(release, artifact_bucket=BUCKET, kms_key_arn=kms_key_arn)
    assert python_name == tf["endpoint_config_name"], (
        f"Python {python_name} != Terraform {tf['endpoint_config_name']}\n"
        f"Python content:    {naming.canonical_json(python_content(release, kms_key_arn))}\n"
        f"Terraform content: {naming.canonical_json(tf['content'])}"
    )
    served = release.served_models()
    assert tf["model_names"] == {
        mid: naming.model_name(mid, release.environment, m.artifact_sha256) for mid, m in served.items()
    }
    assert tf["model_data_urls"] == {
        mid: f"s3://{BUCKET}/{naming.artifact_key(mid, m.artifact_sha256)}" for mid, m in served.items()
    }
    assert tf["image_uri"] == naming.image_uri(release.region, release.image)


def python_content(release: Release, kms_key_arn: str) -> dict[str, Any]:
    ep = release.endpoint
    return naming.endpoint_config_content(
        artifact_bucket=BUCKET,
        environment=release.environment,
        endpoint=ep.name,
        variants=naming.release_config_variants(release),
        data_capture_enabled=ep.data_capture.enabled,
        sampling_percentage=ep.data_capture.sampling_percentage,
        kms_key_arn=kms_key_arn,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Python == Terraform
# ---------------------------------------------------------------------------------------------------------------------


def test_the_shipped_releases_load_and_never_share_a_name() -> None:
    """dev and prod are shipped (the Terraform comparison below runs for each), each loads through the strict loader
    and its checks, is the environment its file name says, and owns its names: no endpoint, endpoint
    configuration or SageMaker model name of one environment is another's (model names are account-wide)."""
    releases = {path.stem: load_release(path) for path in SHIPPED}
    assert set(releases) >= {"dev", "prod"}
    configs: dict[str, str] = {}
    models: dict[str, set[str]] = {}
    for env, release in releases.items():
        assert release.environment == env and release.endpoint.name == f"smgitops-{env}"
        served = release.served_models()
        assert served, f"{env}: serves no model"
        models[env] = set()
        for mid, m in served.items():
            name = naming.model_name(mid, env, m.artifact_sha256)
            assert naming.split_model_name(name) == (mid, env, m.artifact_sha256[:12])
            models[env].add(name)
        configs[env] = naming.endpoint_config_name(release, artifact_bucket=BUCKET, kms_key_arn=KMS_KEY)
    assert len(set(configs.values())) == len(configs), configs
    assert len({r.endpoint.name for r in releases.values()}) == len(releases)
    assert sum(len(names) for names in models.values()) == len(set().union(*models.values())), models


@pytest.mark.parametrize("release_file", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_release_names_match_terraform(console_root: Path, release_file: Path) -> None:
    release = load_release(release_file)
    tf = terraform_names(console_root, release_file)
    assert_python_matches_terraform(release, tf)
    assert tf["endpoint_config_name"].startswith(release.endpoint.name + "-")
    assert len(tf["endpoint_config_name"]) <= 63


def test_canary_weights_revert_and_kms_key(console_root: Path, tmp_path: Path) -> None:
    """The rollback guarantee: a weight change gives a new name, going back gives the old name again."""
    canary10 = write_release(canary_doc(10), tmp_path / "canary10.yaml")
    tf10 = terraform_names(console_root, canary10.path)
    assert_python_matches_terraform(canary10, tf10)
    assert [v["weight"] for v in tf10["content"]["variants"]] == [90, 10]
    assert set(tf10["model_names"]) == {canary10.variants[0].model, "cancer-tree"}

    canary50 = write_release(canary_doc(50), tmp_path / "canary50.yaml")
    tf50 = terraform_names(console_root, canary50.path)
    assert_python_matches_terraform(canary50, tf50)
    assert tf50["endpoint_config_name"] != tf10["endpoint_config_name"]

    reverted = write_release(canary_doc(10), tmp_path / "reverted.yaml")
    tf_reverted = terraform_names(console_root, reverted.path)
    assert tf_reverted["endpoint_config_name"] == tf10["endpoint_config_name"]
    assert (
        naming.endpoint_config_name(reverted, artifact_bucket=BUCKET, kms_key_arn=KMS_KEY)
        == (tf10["endpoint_config_name"])
    )

    tf_other_key = terraform_names(console_root, canary10.path, kms_key_arn=OTHER_KMS_KEY)
    assert_python_matches_terraform(canary10, tf_other_key, kms_key_arn=OTHER_KMS_KEY)
    assert tf_other_key["endpoint_config_name"] != tf10["endpoint_config_name"]


def test_defaults_and_disabled_capture_match_terraform(console_root: Path, tmp_path: Path) -> None:
    """Optional fields left out: both sides apply the same defaults (one instance, capture on at 100 %)."""
    doc = dev_doc()
    del doc["endpoint"]["instance_count"]
    del doc["endpoint"]["data_capture"]
    defaults = write_release(doc, tmp_path / "defaults.yaml")
    tf_defaults = terraform_names(console_root, defaults.path)
    assert_python_matches_terraform(defaults, tf_defaults)
    assert tf_defaults["content"]["data_capture"]["enabled"] is True
    assert tf_defaults["content"]["data_capture"]["sampling_percentage"] == 100
    assert tf_defaults["content"]["variants"][0]["instance_count"] == 1

    doc = dev_doc()
    doc["endpoint"]["data_capture"] = {"enabled": False, "sampling_percentage": 100}
    off = write_release(doc, tmp_path / "capture-off.yaml")
    tf_off = terraform_names(console_root, off.path)
    assert_python_matches_terraform(off, tf_off)
    assert tf_off["endpoint_config_name"] != tf_defaults["endpoint_config_name"]


def test_one_artifact_in_two_environments_gets_two_model_names(console_root: Path, tmp_path: Path) -> None:
    """Promotion: dev and prod serve the same model id and digest in one account, each from its own state.

    SageMaker model names are account-wide, so the two states must not own the same name (the second apply would
    fail with "Cannot create already existing model"); the endpoint-config names differ with them.
    """
    names: dict[str, dict[str, Any]] = {}
    for environment in ("dev", "prod"):
        doc = dev_doc()
        doc["environment"] = environment
        doc["endpoint"]["name"] = f"smgitops-{environment}"
        release = write_release(doc, tmp_path / f"{environment}.yaml")
        names[environment] = terraform_names(console_root, release.path)
        assert_python_matches_terraform(release, names[environment])
    [(dev_id, dev_model)] = names["dev"]["model_names"].items()
    [(prod_id, prod_model)] = names["prod"]["model_names"].items()
    assert dev_id == prod_id and names["dev"]["model_data_urls"] == names["prod"]["model_data_urls"]
    assert dev_model != prod_model
    assert (dev_model.split("-")[-2], prod_model.split("-")[-2]) == ("dev", "prod")
    assert names["dev"]["endpoint_config_name"] != names["prod"]["endpoint_config_name"]


def test_canonical_json_is_terraforms_jsonencode(console_root: Path) -> None:
    """Characters Terraform escapes (Go's HTML-safe encoder) and numbers it writes without a fraction."""
    value = {"b": 1, "a": "x<y>&z\u2028\u2029\n\t\u0001é", "c": [10, 2.5, True, 1000, 0.1], "d": {"z": [], "y": {}}}
    hcl = '{b = 1, a = "x<y>&z\\u2028\\u2029\\n\\t\\u0001é", c = [10, 2.5, true, 1e3, 0.1], d = {z = [], y = {}}}'
    proc = terraform(console_root, "console", *_dummy_vars(), env=tf_env(), stdin=f"base64encode(jsonencode({hcl}))\n")
    encoded = base64.b64decode(proc.stdout.strip().splitlines()[-1].strip().strip('"')).decode("utf-8")
    assert naming.canonical_json(value) == encoded


def _dummy_vars() -> list[str]:
    return [
        f"-var=release_file={ROOT / 'releases' / 'dev.yaml'}",
        f"-var=artifact_bucket={BUCKET}",
        "-var=execution_role_arn=arn:aws:iam::123456789012:role/x",
        f"-var=kms_key_arn={KMS_KEY}",
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Python alone
# ---------------------------------------------------------------------------------------------------------------------


def test_name_is_stable_and_sensitive_to_every_input(tmp_path: Path) -> None:
    base = write_release(canary_doc(10), tmp_path / "base.yaml")
    name = naming.endpoint_config_name(base, artifact_bucket=BUCKET, kms_key_arn=KMS_KEY)
    assert name == naming.endpoint_config_name(base, artifact_bucket=BUCKET, kms_key_arn=KMS_KEY)
    assert name.startswith(f"{base.endpoint.name}-") and len(name) == len(base.endpoint.name) + 9

    def variant_of(mutate: Any) -> str:
        doc = canary_doc(10)
        mutate(doc)
        return naming.endpoint_config_name(
            release_from_mapping(doc, tmp_path / "x.yaml"), artifact_bucket=BUCKET, kms_key_arn=KMS_KEY
        )

    mutations = {
        "weight": lambda d: d["variants"][1].update(weight=20) or d["variants"][0].update(weight=80),
        "variant order": lambda d: d["variants"].reverse(),
        "variant name": lambda d: d["variants"][1].update(name="challenger"),
        "model digest": lambda d: d["models"]["cancer-tree"].update(artifact_sha256="ab" * 32),
        "instance type": lambda d: d["endpoint"].update(instance_type="ml.t2.medium"),
        "instance count": lambda d: d["endpoint"].update(instance_count=2),
        "sampling": lambda d: d["endpoint"]["data_capture"].update(sampling_percentage=50),
        "capture off": lambda d: d["endpoint"]["data_capture"].update(enabled=False),
    }
    names = {what: variant_of(mutate) for what, mutate in mutations.items()}
    for what, changed in names.items():
        assert changed != name, f"changing the {what} must change the endpoint-config name"
    assert len(set(names.values())) == len(names)
    assert naming.endpoint_config_name(base, artifact_bucket="other-bucket", kms_key_arn=KMS_KEY) != name

    # Things that are not part of the configuration leave the name alone.
    unrelated = {
        "canary threshold": lambda d: d["canary"].update(max_error_rate=0.5),
        "teardown": lambda d: d["teardown"].update(at="18:00"),
        "unserved model": lambda d: d["models"].update(spare=copy.deepcopy(d["models"]["cancer-tree"])),
    }
    for what, mutate in unrelated.items():
        assert variant_of(mutate) == name, f"changing the {what} must not change the endpoint-config name"


def test_model_name_and_artifact_key() -> None:
    digest = "0123456789abcdef" * 4
    assert naming.model_name("cancer-logreg", "dev", digest) == "cancer-logreg-dev-0123456789ab"
    assert naming.split_model_name("cancer-logreg-dev-0123456789ab") == ("cancer-logreg", "dev", "0123456789ab")
    for other in ("cancer-logreg-dev-0123456789AB", "cancer-logreg-dev-0123456789a", "dev-0123456789ab", "x"):
        assert naming.split_model_name(other) is None, other
    assert naming.artifact_key("cancer-logreg", digest) == f"models/cancer-logreg/sha256={digest}/model.tar.gz"
    assert naming.image_uri("us-east-1", "1.2-1-cpu-py3") == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
