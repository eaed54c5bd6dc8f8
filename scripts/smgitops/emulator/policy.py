"""Bucket-policy evaluation with ``Condition`` blocks, for the emulator's S3.

moto 5.2.5 enforces bucket policies on object requests but does not evaluate conditions: a statement that carries a
``Condition`` applies unconditionally, so the TLS-only ``Deny`` every hardened bucket has denies HTTPS requests too.
This module evaluates a statement the way S3 does for the conditions the project's own policies use, from the facts
of the request (``RequestFacts``). A condition operator or key it cannot evaluate raises ``UnsupportedCondition``:
the emulator answers 500 naming it, rather than guessing and silently allowing (or denying) a request.

Principals: like moto, only statements whose principal is ``*`` (or ``{"AWS": "*"}``) are evaluated; a statement
naming a specific principal is neutral, because the emulator does not authenticate callers.
"""

from __future__ import annotations

import enum
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class UnsupportedCondition(Exception):
    """A policy condition the emulator cannot evaluate (operator or key)."""

    def __init__(self, what: str, name: str, sid: str | None) -> None:
        self.what, self.name, self.sid = what, name, sid
        where = f" in statement {sid!r}" if sid else ""
        super().__init__(
            f"the emulator cannot evaluate condition {what} {name!r}{where}; "
            "refusing to guess (extend smgitops.emulator.policy)"
        )


class Decision(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class RequestFacts:
    """What S3 knows about a request when it evaluates a bucket policy."""

    secure_transport: bool
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    def context_value(self, key: str) -> str | None | _Unknown:
        """The value of a condition key for this request; ``None`` when absent; ``UNKNOWN`` if not modelled."""
        lowered = key.lower()
        if lowered == "aws:securetransport":
            return "true" if self.secure_transport else "false"
        header = _HEADER_KEYS.get(lowered)
        if header is not None:
            return self.headers.get(header)
        return UNKNOWN


class _Unknown:
    pass


UNKNOWN = _Unknown()

# S3 condition keys that mirror a request header (AWS: "Actions, resources, and condition keys for Amazon S3").
_HEADER_KEYS = {
    "s3:if-none-match": "if-none-match",
    "s3:if-match": "if-match",
    "s3:x-amz-server-side-encryption": "x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id": "x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-acl": "x-amz-acl",
}


_OPERATORS = frozenset(
    {"Null", "Bool", "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike", "StringNotLike"}
)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _string_match(pattern: str, value: str) -> bool:
    # IAM wildcards: * any run of characters, ? exactly one; no other metacharacters.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _evaluate_operator(operator: str, expected: list[str], actual: str | None, sid: str | None) -> bool:
    base = operator
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base == "Null":
        # "true": the key must be absent; "false": it must be present.
        return any((actual is None) == (str(e).lower() == "true") for e in expected)
    if actual is None:
        # Every operator except Null (and the negated ones) is false for a missing key; *IfExists makes it true.
        if if_exists:
            return True
        return base in ("StringNotEquals", "StringNotLike")
    if base == "Bool":
        return any(actual.lower() == str(e).lower() for e in expected)
    if base == "StringEquals":
        return actual in [str(e) for e in expected]
    if base == "StringNotEquals":
        return actual not in [str(e) for e in expected]
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [str(e).lower() for e in expected]
    if base == "StringLike":
        return any(_string_match(str(e), actual) for e in expected)
    if base == "StringNotLike":
        return not any(_string_match(str(e), actual) for e in expected)
    raise UnsupportedCondition("operator", operator, sid)


def conditions_hold(conditions: Mapping[str, Any], facts: RequestFacts, sid: str | None = None) -> bool:
    """True when every operator/key pair of a ``Condition`` block holds for the request (AND of all)."""
    for operator, pairs in conditions.items():
        if operator.removesuffix("IfExists") not in _OPERATORS or not isinstance(pairs, Mapping):
            raise UnsupportedCondition("operator", operator, sid)
        for key, expected in pairs.items():
            actual = facts.context_value(key)
            if isinstance(actual, _Unknown):
                raise UnsupportedCondition("key", key, sid)
            if not _evaluate_operator(operator, [str(e) for e in _as_list(expected)], actual, sid):
                return False
    return True


def _matches(patterns: Any, value: str) -> bool:
    return any(_string_match(str(p), value) for p in _as_list(patterns))


def _action_matches(patterns: Any, action: str) -> bool:
    # Action names are case-insensitive in IAM.
    return any(_string_match(str(p).lower(), action.lower()) for p in _as_list(patterns))


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def statement_decision(statement: Mapping[str, Any], action: str, resource: str, facts: RequestFacts) -> Decision:
    sid = statement.get("Sid")
    if "NotAction" in statement:
        if _action_matches(statement["NotAction"], action):
            return Decision.NEUTRAL
    elif not _action_matches(statement.get("Action", []), action):
        return Decision.NEUTRAL
    if "NotResource" in statement:
        if _matches(statement["NotResource"], resource):
            return Decision.NEUTRAL
    elif not _matches(statement.get("Resource", []), resource):
        return Decision.NEUTRAL
    if "Principal" in statement and not _principal_is_everyone(statement["Principal"]):
        return Decision.NEUTRAL
    if "NotPrincipal" in statement:
        raise UnsupportedCondition("element", "NotPrincipal", sid)
    if not conditions_hold(statement.get("Condition") or {}, facts, sid):
        return Decision.NEUTRAL
    return Decision.DENIED if statement.get("Effect") == "Deny" else Decision.ALLOWED


def evaluate(policy: str | bytes | Mapping[str, Any], action: str, resource: str, facts: RequestFacts) -> Decision:
    """An explicit Deny wins, then any Allow; otherwise the policy is neutral."""
    document: Any = json.loads(policy) if isinstance(policy, str | bytes) else policy
    statements = _as_list(document.get("Statement", []))
    decisions = [statement_decision(s, action, resource, facts) for s in statements]
    if Decision.DENIED in decisions:
        return Decision.DENIED
    if Decision.ALLOWED in decisions:
        return Decision.ALLOWED
    return Decision.NEUTRAL
