"""CKV_SMG_5: SageMaker models run with network isolation (the container cannot make outbound calls)."""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import attr, is_unresolved, truthy


class SageMakerModelNetworkIsolation(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SageMaker model has enable_network_isolation = true",
            id="CKV_SMG_5",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["aws_sagemaker_model"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        value = attr(conf, "enable_network_isolation")
        if is_unresolved(value):
            return CheckResult.UNKNOWN
        return CheckResult.PASSED if truthy(value) is True else CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["enable_network_isolation"]


check = SageMakerModelNetworkIsolation()
