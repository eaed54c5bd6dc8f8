"""CKV_SMG_4: SageMaker endpoint configurations encrypt the instance storage and the captured data with KMS.

checkov's built-in CKV_AWS_98 looks at ``kms_key_arn`` only; captured requests hold the same data, so the
data-capture block must name a key too.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import attr, blocks


class SageMakerEndpointConfigKms(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SageMaker endpoint configuration sets kms_key_arn and a KMS key for captured data",
            id="CKV_SMG_4",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_sagemaker_endpoint_configuration"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if not attr(conf, "kms_key_arn"):
            return CheckResult.FAILED
        for capture in blocks(conf, "data_capture_config"):
            if not attr(capture, "kms_key_id"):
                return CheckResult.FAILED
        return CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return ["kms_key_arn", "data_capture_config/[0]/kms_key_id"]


check = SageMakerEndpointConfigKms()
