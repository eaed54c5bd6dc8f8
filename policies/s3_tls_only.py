"""CKV_SMG_6: every S3 bucket policy denies requests that do not use TLS.

The policy may be inline (``jsonencode``/JSON) or a ``data "aws_iam_policy_document"`` reference, which is read
from checkov's graph. A policy that cannot be read fails: a gate that cannot see the policy must not pass it.
That every bucket *has* a policy is CKV2_SMG_2 (policies/s3_bucket_has_policy.yaml).
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import as_list, resolve_policy, statements, truthy


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    if str(statement.get("Effect", "")).lower() != "deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
        if not (isinstance(principal, dict) and "*" in as_list(principal.get("*"))):
            return False
    actions = {str(a) for a in as_list(statement.get("Action"))}
    if not actions & {"s3:*", "*"}:
        return False
    resources = [str(r) for r in as_list(statement.get("Resource"))]
    if "*" not in resources:
        covers_objects = any(r.endswith("/*") for r in resources)
        covers_bucket = any(not r.endswith("/*") for r in resources)
        if not (covers_objects and covers_bucket):
            return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    for operator in ("Bool", "BoolIfExists"):
        values = condition.get(operator)
        if isinstance(values, dict) and "aws:SecureTransport" in values:
            return all(truthy(v) is False for v in as_list(values["aws:SecureTransport"]))
    return False


class S3BucketPolicyTlsOnly(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="S3 bucket policy denies every request without TLS (aws:SecureTransport = false)",
            id="CKV_SMG_6",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_s3_bucket_policy"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if "policy" not in conf and "__change_actions__" in conf:
            return CheckResult.UNKNOWN  # a plan value known only after apply
        doc = resolve_policy(self, conf, "policy")
        if doc is None:
            return CheckResult.FAILED
        return CheckResult.PASSED if any(_denies_plain_http(s) for s in statements(doc)) else CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["policy"]


check = S3BucketPolicyTlsOnly()
