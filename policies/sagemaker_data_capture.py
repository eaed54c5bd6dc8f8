"""CKV_SMG_3: SageMaker endpoint configurations capture requests and responses (data capture on, sampling > 0)."""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import attr, blocks, is_unresolved, truthy


class SageMakerDataCaptureEnabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SageMaker endpoint configuration has data capture enabled with a destination and sampling > 0",
            id="CKV_SMG_3",
            categories=[CheckCategories.LOGGING],
            supported_resources=["aws_sagemaker_endpoint_configuration"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        captures = blocks(conf, "data_capture_config")
        if not captures:
            return CheckResult.FAILED
        capture = captures[0]
        enabled_raw = attr(capture, "enable_capture")
        if is_unresolved(enabled_raw):
            return CheckResult.UNKNOWN
        if truthy(enabled_raw) is not True:
            return CheckResult.FAILED
        destination = attr(capture, "destination_s3_uri")
        if not destination:
            return CheckResult.FAILED
        sampling = attr(capture, "initial_sampling_percentage")
        if is_unresolved(sampling):
            return CheckResult.UNKNOWN
        try:
            if int(sampling) <= 0:
                return CheckResult.FAILED
        except (TypeError, ValueError):
            return CheckResult.FAILED
        return CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return [
            "data_capture_config/[0]/enable_capture",
            "data_capture_config/[0]/destination_s3_uri",
            "data_capture_config/[0]/initial_sampling_percentage",
        ]


check = SageMakerDataCaptureEnabled()
