"""CKV_SMG_8: roles assumed through GitHub's OIDC provider pin the audience and an exact subject.

Every trust statement that allows ``sts:AssumeRoleWithWebIdentity`` (or names a federated OIDC principal) must
have ``StringEquals`` on ``<provider>:aud`` (``sts.amazonaws.com``) and ``StringEquals`` on ``<provider>:sub`` with
values that contain no wildcard. Stricter than checkov's CKV_AWS_358/393, which accept ``repo:org/repo:*``: with
such a subject any branch's workflow could take the apply role. Inline policies and ``aws_iam_policy_document``
data sources are both read.

One ``StringLike`` form is accepted: a pull request's subject in the customised template,
``repo:<o/r>:pull_request:job_workflow_ref:<o/r>/.github/workflows/<file>@refs/pull/*/merge``, whose only wildcard
is the pull request's number (it cannot be written exactly). It matches nothing but pull-request runs of that one
workflow file, which run the pull request's own code: such a role must be read-only (bootstrap/roles.tf).
"""

from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from smgitops_common import as_list, data_policy_document, resolve_policy, statements

WEB_IDENTITY = "sts:assumerolewithwebidentity"
AUDIENCE = "sts.amazonaws.com"


def _is_web_identity(statement: dict[str, Any]) -> bool:
    actions = {str(a).lower() for a in as_list(statement.get("Action"))}
    if WEB_IDENTITY in actions:
        return True
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        return any(
            "oidc-provider" in str(p) or "openid_connect_provider" in str(p)
            for p in as_list(principal.get("Federated"))
        )
    return False


_INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def subject_exact(value: Any, for_each_text: str) -> bool:
    """An exact subject: no ``*``/``?`` in its literal text.

    ``each.value`` (a policy document with ``for_each``) is judged by the ``for_each`` expression it iterates
    over, as checkov renders it; an interpolation (``repo:${var.github_repository}:pull_request``) by the text
    around it.
    """
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip()
    if text.startswith("each.") or text.startswith("${each."):
        text = for_each_text.replace("[*]", "")
        return bool(text) and "*" not in text and "?" not in text
    literal = _INTERPOLATION.sub("", text)
    return "*" not in literal and "?" not in literal


# Literal text of a pull-request subject (interpolations replaced by "x"): the only wildcard is the PR number.
_PULL_REQUEST_SUBJECT = re.compile(
    r"repo:[^*?:]+:pull_request:job_workflow_ref:[^*?@]*/\.github/workflows/[^*?/@]+@refs/pull/\*/merge"
)


def subject_pull_request(value: Any) -> bool:
    """A ``StringLike`` subject whose only wildcard is a pull request's number (see the module docstring)."""
    if not isinstance(value, str):
        return False
    return bool(_PULL_REQUEST_SUBJECT.fullmatch(_INTERPOLATION.sub("x", value.strip())))


def statement_ok(statement: dict[str, Any], for_each_text: str = "") -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    like: list[Any] = []
    for operator, values in condition.items():
        if not isinstance(values, dict):
            return False
        subjects = [v for k, vs in values.items() if str(k).endswith(":sub") for v in as_list(vs)]
        if operator == "StringLike" and subjects and len(values) == 1:
            like.extend(subjects)
        elif operator != "StringEquals" and subjects:
            return False  # ForAnyValue:…, StringNotEquals, a StringLike beside other keys: never exact
    equals = condition.get("StringEquals")
    if not isinstance(equals, dict):
        return False
    aud = [v for k, vs in equals.items() if str(k).endswith(":aud") for v in as_list(vs)]
    sub = [v for k, vs in equals.items() if str(k).endswith(":sub") for v in as_list(vs)]
    if not aud or any(str(a) != AUDIENCE for a in aud):
        return False
    if like:
        return not sub and all(subject_pull_request(s) for s in like)
    if not sub:
        return False
    return all(subject_exact(s, for_each_text) for s in sub)


class GitHubOidcTrustExactSubject(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="OIDC trust policy pins aud = sts.amazonaws.com and an exact sub (StringEquals, no wildcard)",
            id="CKV_SMG_8",
            categories=[CheckCategories.IAM],
            supported_resources=["aws_iam_role"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if "assume_role_policy" not in conf:
            return CheckResult.UNKNOWN if "__change_actions__" in conf else CheckResult.FAILED
        for_each_text = ""
        resolved = data_policy_document(self, conf.get("assume_role_policy"))
        if resolved is not None:
            doc: dict[str, Any] | None = resolved[0]
            for_each_text = str(resolved[1].get("for_each") or "")
        else:
            doc = resolve_policy(self, conf, "assume_role_policy")
        if doc is None:
            return CheckResult.FAILED  # a trust policy the gate cannot read is not trusted
        federated = [s for s in statements(doc) if _is_web_identity(s)]
        if not federated:
            return CheckResult.UNKNOWN  # not an OIDC role (e.g. the SageMaker execution role)
        return CheckResult.PASSED if all(statement_ok(s, for_each_text) for s in federated) else CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["assume_role_policy"]


check = GitHubOidcTrustExactSubject()
