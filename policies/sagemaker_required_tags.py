"""CKV_SMG_2: SageMaker models, endpoint configurations and endpoints carry the smgitops ownership tags.

Teardown deletes only endpoints tagged ``managed-by = smgitops``; an untagged endpoint would live overnight.
The provider's ``default_tags`` count: a plan's ``tags_all`` holds them, and for HCL the check merges the
``default_tags`` of the provider configuration in the resource's own module.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import effective_tags, is_unresolved

MANAGED_BY = ("managed-by", "smgitops")
REQUIRED_KEYS = ("managed-by", "release")
DIGEST_KEY = "model-digest"  # models only: which artifact a model serves


class SageMakerRequiredTags(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SageMaker resources are tagged managed-by = smgitops and release (models also model-digest)",
            id="CKV_SMG_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=[
                "aws_sagemaker_model",
                "aws_sagemaker_endpoint_configuration",
                "aws_sagemaker_endpoint",
            ],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        tags = effective_tags(self, conf)
        if tags is None:
            return CheckResult.UNKNOWN
        required = list(REQUIRED_KEYS)
        if self.entity_type == "aws_sagemaker_model":
            required.append(DIGEST_KEY)
        for key in required:
            value = tags.get(key)
            if value is None or value == "":
                return CheckResult.FAILED
        managed_by = tags[MANAGED_BY[0]]
        if not is_unresolved(managed_by) and managed_by != MANAGED_BY[1]:
            return CheckResult.FAILED
        return CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return ["tags", "tags_all"]


check = SageMakerRequiredTags()
