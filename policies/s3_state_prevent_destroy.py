"""CKV_SMG_7: the Terraform state bucket has ``lifecycle { prevent_destroy = true }``.

checkov's HCL view carries lifecycle blocks (``conf["lifecycle"]``), so this is an ordinary resource check. A
bucket is the state bucket when its resource name, its ``bucket`` name or a ``purpose`` tag says "state". Other
buckets are not this check's business (UNKNOWN, left out of the report); ``smgitops policy`` fails when this check
evaluated no bucket at all, so a renamed state bucket cannot slip past. A plan does not record lifecycle
settings: there the check stays silent.
"""

from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import attr, blocks, tags_of, truthy

_STATE = re.compile(r"(^|[^a-z])(tf)?state([^a-z]|$)", re.IGNORECASE)


def is_state_bucket(conf: dict[str, Any]) -> bool:
    address = str(conf.get("__address__", ""))
    name = address.rsplit(".", 1)[-1]
    bucket = str(attr(conf, "bucket") or attr(conf, "bucket_prefix") or "")
    tags = tags_of(conf) or {}
    purpose = str(tags.get("purpose", ""))
    return any(_STATE.search(s) for s in (name, bucket, purpose) if s)


class StateBucketPreventDestroy(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Terraform state bucket has lifecycle prevent_destroy = true",
            id="CKV_SMG_7",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_s3_bucket"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if "__change_actions__" in conf or not is_state_bucket(conf):
            return CheckResult.UNKNOWN
        for lifecycle in blocks(conf, "lifecycle"):
            if truthy(lifecycle.get("prevent_destroy")) is True:
                return CheckResult.PASSED
        return CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["lifecycle/[0]/prevent_destroy"]


check = StateBucketPreventDestroy()
