"""CKV_SMG_1: SageMaker endpoint configurations use only instance types on the cost allowlist."""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import attr, blocks, is_unresolved

# The same allowlist `smgitops validate` applies to release files by default (smgitops.release.
# DEFAULT_ALLOWED_INSTANCE_TYPES; tests/test_policy.py holds the two together): small, cheap, CPU-only instances
# that SageMaker hosts real-time endpoints on. No ml.t3.*: SageMaker does not host endpoints on them.
ALLOWED_INSTANCE_TYPES = ("ml.t2.medium", "ml.t2.large")
NAME = "SageMaker production variants use an allowlisted instance type (" + ", ".join(ALLOWED_INSTANCE_TYPES) + ")"


class SageMakerInstanceTypeAllowlist(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name=NAME,
            id="CKV_SMG_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_sagemaker_endpoint_configuration"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        variants = blocks(conf, "production_variants")
        if not variants:
            return CheckResult.FAILED
        unknown = False
        for variant in variants:
            instance_type = attr(variant, "instance_type")
            if is_unresolved(instance_type):
                unknown = True
            elif instance_type not in ALLOWED_INSTANCE_TYPES:
                return CheckResult.FAILED
        return CheckResult.UNKNOWN if unknown else CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return ["production_variants/[0]/instance_type"]


check = SageMakerInstanceTypeAllowlist()
