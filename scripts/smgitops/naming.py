"""Names derived from content (DESIGN.md section 4). Terraform computes the same names from the release file;
``tests/test_naming.py`` holds both sides to each other."""

from __future__ import annotations

MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "smgitops"
RELEASE_TAG = "release"
DIGEST_TAG = "model-digest"

# The SageMaker scikit-learn images are published from this AWS-owned registry account in us-east-1.
SKLEARN_IMAGE_REGISTRY = {"us-east-1": "683313688378.dkr.ecr.us-east-1.amazonaws.com"}


def model_name(model_id: str, digest: str) -> str:
    """SageMaker model name: ``<model-id>-<first 12 hex of the artifact digest>``."""
    return f"{model_id}-{digest[:12]}"


def artifact_key(model_id: str, digest: str) -> str:
    """Content-addressed S3 key of a model artifact, written once."""
    return f"models/{model_id}/sha256={digest}/model.tar.gz"


def image_uri(region: str, tag: str) -> str:
    registry = SKLEARN_IMAGE_REGISTRY.get(region, f"683313688378.dkr.ecr.{region}.amazonaws.com")
    return f"{registry}/sagemaker-scikit-learn:{tag}"
