"""Names derived from content (DESIGN.md section 4). Terraform computes the same names from the release file;
``tests/test_naming.py`` holds both sides to each other.

* SageMaker model: ``<model-id>-<environment>-<12 hex of the artifact digest>`` (:func:`model_name`);
* endpoint configuration: ``<endpoint>-<8 hex of its content>`` (:func:`endpoint_config_name`);
* artifact: ``models/<model-id>/sha256=<digest>/model.tar.gz`` (:func:`artifact_key`), shared by every environment;
* release file: ``releases/<environment>.yaml`` (:func:`release_file_problem`), the one name every tool agrees on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .release import Release

MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "smgitops"
RELEASE_TAG = "release"
DIGEST_TAG = "model-digest"
MODEL_ID_TAG = "model-id"

# The SageMaker scikit-learn images are published from this AWS-owned registry account in us-east-1.
SKLEARN_IMAGE_REGISTRY = {"us-east-1": "683313688378.dkr.ecr.us-east-1.amazonaws.com"}


# SageMaker names (models, endpoint configurations, endpoints) are at most 63 characters. The release schema keeps
# every part short enough that the names below always fit: model id <= 36, environment <= 12, endpoint <= 54.
MAX_NAME_LENGTH = 63
DIGEST_NAME_HEX = 12


def model_name(model_id: str, environment: str, digest: str) -> str:
    """SageMaker model name: ``<model-id>-<environment>-<first 12 hex of the artifact digest>``.

    Model names are unique per account and region, not per Terraform state. Promotion serves the very same artifact
    (same model id, same digest) in two environments of one account, each environment with a state of its own; with
    the environment in the name the two states never own the same model. The environment is letters and digits
    only (the release schema), so :func:`split_model_name` reads a name back unambiguously.
    """
    return f"{model_id}-{environment}-{digest[:DIGEST_NAME_HEX]}"


def split_model_name(name: str) -> tuple[str, str, str] | None:
    """``(model id, environment, 12 hex of the digest)`` of a :func:`model_name`, or None for any other name."""
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    model_id, environment, digest12 = parts
    if len(digest12) != DIGEST_NAME_HEX or any(c not in "0123456789abcdef" for c in digest12):
        return None
    return model_id, environment, digest12


RELEASE_DIR = "releases"
RELEASE_SCHEMA_FILE = "release.schema.json"
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")  # the release schema's `environment` pattern
RELEASE_FILE_RULE = (
    "a file in releases/ is releases/<environment>.yaml, <environment> 1-12 lowercase letters and digits starting "
    "with a letter, extension exactly .yaml (besides releases/release.schema.json)"
)


def release_file_problem(name: str) -> str | None:
    """Why the entry ``name`` of ``releases/`` is not a release file name, with the rule and a fix; None when it
    is one (or is the schema). A misnamed file would otherwise be validated by hand yet never planned or deployed
    (``changed-releases`` lists ``<environment>.yaml`` only), and its environment is the file name's stem."""
    if name == RELEASE_SCHEMA_FILE:
        return None
    stem, dot, ext = name.partition(".")
    if ext == "yaml" and ENVIRONMENT_NAME.fullmatch(stem):
        return None
    fix = "rename it or move it out of releases/"
    if ENVIRONMENT_NAME.fullmatch(stem.lower()) and ext in ("yaml", "yml"):
        fix = f"rename it to {RELEASE_DIR}/{stem.lower()}.yaml"
    elif ENVIRONMENT_NAME.fullmatch(stem.lower()) and dot and ext.startswith(("yaml.", "yml.")):
        fix = "a copy or backup of a release does not belong in releases/: move it out or delete it"
    return f"not a release file name: {RELEASE_FILE_RULE}; {fix}"


def artifact_key(model_id: str, digest: str) -> str:
    """Content-addressed S3 key of a model artifact, written once."""
    return f"models/{model_id}/sha256={digest}/model.tar.gz"


def image_uri(region: str, tag: str) -> str:
    registry = SKLEARN_IMAGE_REGISTRY.get(region, f"683313688378.dkr.ecr.{region}.amazonaws.com")
    return f"{registry}/sagemaker-scikit-learn:{tag}"


# Constants of the endpoint configuration's data capture; terraform/locals.tf (local.data_capture) sets the same.
DATA_CAPTURE_MODES = ("Input", "Output")
DATA_CAPTURE_CSV_CONTENT_TYPES = ("text/csv",)
DATA_CAPTURE_JSON_CONTENT_TYPES = ("application/json",)


@dataclass(frozen=True)
class ConfigVariant:
    """One production variant as the endpoint configuration holds it."""

    name: str
    model_name: str
    weight: int
    instance_type: str
    instance_count: int


def data_capture_uri(artifact_bucket: str, environment: str, endpoint: str) -> str:
    """Where an endpoint's captured requests and responses go: under its environment's prefix, the only one that
    environment's SageMaker execution role may write (bootstrap/roles.tf)."""
    return f"s3://{artifact_bucket}/data-capture/{environment}/{endpoint}"


def endpoint_config_content(
    *,
    artifact_bucket: str,
    environment: str,
    endpoint: str,
    variants: Sequence[ConfigVariant],
    data_capture_enabled: bool,
    sampling_percentage: int,
    kms_key_arn: str,
) -> dict[str, Any]:
    """The content an endpoint configuration's name is derived from (recipe: terraform/locals.tf)."""
    return {
        "data_capture": {
            "capture_modes": list(DATA_CAPTURE_MODES),
            "csv_content_types": list(DATA_CAPTURE_CSV_CONTENT_TYPES),
            "destination": data_capture_uri(artifact_bucket, environment, endpoint),
            "enabled": bool(data_capture_enabled),
            "json_content_types": list(DATA_CAPTURE_JSON_CONTENT_TYPES),
            "sampling_percentage": int(sampling_percentage),
        },
        "kms_key_arn": kms_key_arn,
        "variants": [
            {
                "instance_count": int(v.instance_count),
                "instance_type": v.instance_type,
                "model_name": v.model_name,
                "name": v.name,
                "weight": int(v.weight),
            }
            for v in variants
        ],
    }


def canonical_json(content: Any) -> str:
    """The bytes Terraform's ``jsonencode`` writes for the same value (sorted keys, no whitespace, raw UTF-8).

    Terraform also escapes ``<``, ``>``, ``&`` and U+2028/U+2029 as ``\\u`` sequences, as Go's encoder does;
    names never contain them, but they are handled so the two sides cannot silently disagree.
    """
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def config_hash(content: Any) -> str:
    """First 8 hex of the sha256 of the canonical JSON of ``content``."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:8]


def release_config_variants(release: Release) -> list[ConfigVariant]:
    """The release's production variants in release order, with their SageMaker model names."""
    ep = release.endpoint
    return [
        ConfigVariant(
            name=v.name,
            model_name=model_name(v.model, release.environment, release.models[v.model].artifact_sha256),
            weight=v.weight,
            instance_type=ep.instance_type,
            instance_count=ep.instance_count,
        )
        for v in release.variants
    ]


def endpoint_config_name(release: Release, *, artifact_bucket: str, kms_key_arn: str) -> str:
    """Endpoint-configuration name Terraform gives a release: ``<endpoint>-<8 hex of its content>``.

    The same content always gives the same name (a rollback lands on the configuration it left); any change to
    a variant (model, weight, instance type or count), to data capture or to the key gives a new one.
    """
    ep = release.endpoint
    content = endpoint_config_content(
        artifact_bucket=artifact_bucket,
        environment=release.environment,
        endpoint=ep.name,
        variants=release_config_variants(release),
        data_capture_enabled=ep.data_capture.enabled,
        sampling_percentage=ep.data_capture.sampling_percentage,
        kms_key_arn=kms_key_arn,
    )
    return f"{ep.name}-{config_hash(content)}"
