"""Bucket-policy condition evaluation (smgitops.emulator.policy), without a server."""

from __future__ import annotations

import pytest

from smgitops.emulator.policy import Decision, RequestFacts, UnsupportedCondition, evaluate

BUCKET = "arn:aws:s3:::artifacts"
OBJECT = f"{BUCKET}/models/m/sha256=ab/model.tar.gz"

TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}

WRITE_ONCE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyUnconditionalWrites",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": f"{BUCKET}/*",
            "Condition": {"Null": {"s3:if-none-match": "true"}},
        }
    ],
}


def test_tls_only_denies_plain_http_and_is_neutral_over_https() -> None:
    """AWS: a Deny conditioned on aws:SecureTransport=false applies only to plain-HTTP requests. The project's
    state and artifact buckets carry it; Terraform's S3 backend must keep working over HTTPS."""
    assert evaluate(TLS_ONLY, "s3:GetObject", OBJECT, RequestFacts(secure_transport=True)) is Decision.NEUTRAL
    assert evaluate(TLS_ONLY, "s3:PutObject", OBJECT, RequestFacts(secure_transport=False)) is Decision.DENIED


def test_write_once_requires_if_none_match_on_put_only() -> None:
    """AWS: ``Null {s3:if-none-match: true}`` is true when the request has no If-None-Match header, so the Deny
    refuses unconditional PutObject; reads are another action. The artifact bucket relies on it (immutability)."""
    facts = RequestFacts(secure_transport=True)
    assert evaluate(WRITE_ONCE, "s3:PutObject", OBJECT, facts) is Decision.DENIED
    conditional = RequestFacts(secure_transport=True, headers={"if-none-match": "*"})
    assert evaluate(WRITE_ONCE, "s3:PutObject", OBJECT, conditional) is Decision.NEUTRAL
    assert evaluate(WRITE_ONCE, "s3:GetObject", OBJECT, facts) is Decision.NEUTRAL


def test_string_operators_and_missing_keys() -> None:
    """AWS: StringEquals on a missing key is false, StringNotEquals on a missing key is true, *IfExists is true
    for a missing key. Encryption-enforcing Deny statements depend on exactly these rules."""
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET}/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
    }
    policy = {"Statement": [statement]}
    plain = RequestFacts(secure_transport=True)
    kms = RequestFacts(secure_transport=True, headers={"x-amz-server-side-encryption": "aws:kms"})
    assert evaluate(policy, "s3:PutObject", OBJECT, plain) is Decision.DENIED
    assert evaluate(policy, "s3:PutObject", OBJECT, kms) is Decision.NEUTRAL
    statement["Condition"] = {"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}
    assert evaluate(policy, "s3:PutObject", OBJECT, plain) is Decision.DENIED
    assert evaluate(policy, "s3:PutObject", OBJECT, kms) is Decision.NEUTRAL
    statement["Condition"] = {"StringLike": {"s3:if-match": '"ab*"'}}
    assert evaluate(policy, "s3:PutObject", OBJECT, plain) is Decision.NEUTRAL
    assert evaluate(policy, "s3:PutObject", OBJECT, RequestFacts(True, {"if-match": '"abc"'})) is Decision.DENIED


def test_allow_and_specific_principals() -> None:
    """An Allow for everyone permits; a statement naming a specific principal is neutral (the emulator does not
    authenticate callers, as moto does not), and a Deny beats an Allow."""
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}
    role = {
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/x"},
        "Action": "s3:*",
        "Resource": "*",
    }
    facts = RequestFacts(secure_transport=False)
    assert evaluate({"Statement": [allow]}, "s3:GetObject", OBJECT, facts) is Decision.ALLOWED
    assert evaluate({"Statement": [allow, role]}, "s3:GetObject", OBJECT, facts) is Decision.ALLOWED
    assert evaluate({"Statement": [allow, *TLS_ONLY["Statement"]]}, "s3:GetObject", OBJECT, facts) is Decision.DENIED


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "IpAddress"),
        ({"Bool": {"aws:ViaAWSService": "true"}}, "aws:ViaAWSService"),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-123"}}, "aws:PrincipalOrgID"),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, "NumericLessThan"),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}, "ForAnyValue:StringEquals"),
    ],
)
def test_unknown_operator_or_key_is_an_error_never_an_allow(condition: dict[str, object], named: str) -> None:
    """A condition the emulator cannot evaluate must not silently allow (or deny): it raises, naming it."""
    statement = {"Sid": "S", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    statement["Condition"] = condition
    with pytest.raises(UnsupportedCondition) as err:
        evaluate({"Statement": [statement]}, "s3:GetObject", OBJECT, RequestFacts(secure_transport=True))
    assert named in str(err.value)
    assert "'S'" in str(err.value)
