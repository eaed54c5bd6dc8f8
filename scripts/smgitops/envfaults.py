"""Failures of the environment, each as one line saying what failed and what to do.

The pipeline's own logic is not at fault when AWS cannot be reached, does not answer, refuses the credentials,
denies an action, throttles, lacks a resource ``bootstrap/`` creates, or when the disk under ``out/`` is full or
read-only. Those surface as botocore exceptions, ``OSError``, or Terraform's error text, wrapped or not by the
stage that met them. :func:`classify` finds one anywhere in an exception's chain (``__cause__`` and
``__context__``) and :func:`from_terraform` in Terraform's output; the CLI prints the line and exits 2, with the
traceback only under ``--debug``.

:func:`preflight` asks AWS (STS ``GetCallerIdentity``, which needs no permission) once per process before Terraform
starts: an endpoint that is down or silent, or credentials that are missing or expired, then fail in seconds with
one line instead of after Terraform's provider has retried for minutes.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import UserError
from .terraform import Completed, TerraformError

if TYPE_CHECKING:
    from .aws import Aws

EXIT_CODE = 2
BOOTSTRAP_HINT = "run bootstrap/ (see bootstrap/README.md)"

# ClientError codes, grouped by what the user has to do about them.
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired", "InvalidGrantException"}
)
REJECTED_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden", "403"}
)
THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
DYNAMODB_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "DeleteItem", "UpdateItem", "DescribeTable", "Query", "Scan", "DescribeContinuousBackups"}
)
DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


@dataclass(frozen=True)
class Fault:
    """One environment failure: ``kind`` for tests and callers, ``message`` the line the user reads."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


class EnvironmentFault(UserError):
    """An environment failure raised as such (by :func:`preflight`, or a caller that translated one): exit 2."""

    exit_code = EXIT_CODE

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        super().__init__(fault.message)


# -- where the credentials come from ------------------------------------------------------------------------------


def credentials_in_use(env: Mapping[str, str] | None = None) -> str:
    """Which credentials the environment selects, named without revealing them (for AccessDenied and friends)."""
    environ = os.environ if env is None else env
    role = environ.get("AWS_ROLE_ARN", "").strip()
    if role and environ.get("AWS_WEB_IDENTITY_TOKEN_FILE", "").strip():
        return f"role {role} (web identity, AWS_ROLE_ARN)"
    key = environ.get("AWS_ACCESS_KEY_ID", "").strip()
    if key:
        temporary = " with a session token" if environ.get("AWS_SESSION_TOKEN", "").strip() else ""
        return f"access key ...{key[-4:]} from AWS_ACCESS_KEY_ID{temporary}"
    profile = environ.get("AWS_PROFILE", "").strip() or environ.get("AWS_DEFAULT_PROFILE", "").strip()
    if profile:
        return f"profile {profile} (AWS_PROFILE)"
    return "the default credential chain (no AWS_* credentials in the environment)"


def _where(env: Mapping[str, str] | None) -> tuple[str, str]:
    """(the endpoint named by the environment or '', what to check)."""
    environ = os.environ if env is None else env
    url = environ.get("AWS_ENDPOINT_URL", "").strip()
    if url:
        return url, f"is the emulator running (`smgitops emulator`) and AWS_ENDPOINT_URL={url} right?"
    return "", "check the network, any HTTPS_PROXY, and the region"


# -- classifying exceptions ---------------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (item.__cause__, item.__context__):
            if nxt is not None:
                todo.append(nxt)


def classify(exc: BaseException, env: Mapping[str, str] | None = None) -> Fault | None:
    """The environment fault in ``exc`` or anything it was raised from; None when it is not one."""
    for item in _chain(exc):
        fault = _classify_one(item, env)
        if fault is not None:
            return fault
    return None


def _classify_one(exc: BaseException, env: Mapping[str, str] | None) -> Fault | None:
    if isinstance(exc, (EnvironmentFault, TerraformFault)):
        return exc.fault
    module = type(exc).__module__
    if module.startswith("botocore"):
        return _botocore(exc, env)
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        if exc.filename is not None:
            return _disk(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):  # a failed write() names no file
            what = DISK_ERRNOS[exc.errno]
            return Fault("disk", f"cannot write a file: {what}: free space (df -h) or write elsewhere (--out DIR)")
    if isinstance(exc, TerraformError):
        return from_terraform(exc.result.stderr + "\n" + exc.result.stdout, env)
    return None


def _endpoint_of(exc: BaseException) -> str:
    """The endpoint (scheme, host and port) botocore was talking to, without the request's path."""
    kwargs = getattr(exc, "kwargs", None) or {}
    parts = urlsplit(str(kwargs.get("endpoint_url") or ""))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _botocore(exc: BaseException, env: Mapping[str, str] | None) -> Fault | None:
    from botocore import exceptions as bx

    configured, check = _where(env)
    url = _endpoint_of(exc) or configured or "AWS"
    if isinstance(exc, bx.SSLError):
        return Fault(
            "unreachable",
            f"TLS handshake with {url} failed ({_short(exc)}): check AWS_CA_BUNDLE (local mode: the emulator's "
            "certificate made by `make setup`)",
        )
    if isinstance(exc, bx.ConnectTimeoutError):
        return Fault("unreachable", f"cannot reach {url}: no connection within the connect timeout: {check}")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ProxyConnectionError)):
        return Fault("unreachable", f"cannot reach {url} (connection failed, retried): {check}")
    if isinstance(exc, bx.ReadTimeoutError):
        return Fault(
            "timeout",
            f"{url} accepted the connection but did not answer within the read timeout (retried): {check}",
        )
    if isinstance(exc, bx.ConnectionClosedError):
        return Fault("unreachable", f"{url} closed the connection without an answer (retried): {check}")
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return Fault(
            "no-credentials",
            "no AWS credentials found: in GitHub Actions let configure-aws-credentials assume the workflow's role "
            "(permissions: id-token: write); locally set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, (bx.TokenRetrievalError, bx.CredentialRetrievalError)) or type(exc).__name__ in (
        "SSOTokenLoadError",
        "UnauthorizedSSOTokenError",
    ):
        return Fault(
            "expired-credentials",
            f"AWS credentials could not be obtained or have expired ({_short(exc)}): "
            "log in again (aws sso login) or re-run the job to get fresh role credentials",
        )
    if isinstance(exc, bx.ClientError):
        return _client_error(exc, env)
    return None


def _client_error(exc: Any, env: Mapping[str, str] | None) -> Fault | None:
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "") or "")
    operation = str(getattr(exc, "operation_name", "") or "the request")
    attempts = int((response.get("ResponseMetadata", {}) or {}).get("RetryAttempts", 0) or 0) + 1
    who = credentials_in_use(env)
    if code in EXPIRED_CODES:
        return Fault(
            "expired-credentials",
            f"AWS credentials have expired ({code} on {operation}; {who}): get fresh ones "
            "(re-run the job, or aws sso login / renew the session) and run again",
        )
    if code in REJECTED_CODES:
        return Fault(
            "rejected-credentials",
            f"AWS rejected the credentials ({code} on {operation}; {who}): check the access key, secret and "
            "session token, or the role the job assumes",
        )
    if code in DENIED_CODES:
        return Fault("access-denied", _denied(message, operation, who))
    if code in THROTTLED_CODES:
        return Fault(
            "throttled",
            f"AWS throttled {operation} ({code}) after {attempts} attempts: wait a minute and run again; if it "
            "persists, run fewer jobs at once or ask for a higher quota",
        )
    if code == "NoSuchBucket":
        bucket = str(error.get("BucketName", "") or "")
        return Fault("missing-bootstrap", _missing_bucket(bucket, env))
    if code == "ResourceNotFoundException" and (operation in DYNAMODB_OPERATIONS or "table" in message.lower()):
        return Fault("missing-bootstrap", _missing_table(_table_name(message, env), env))
    return None


_PRINCIPAL = re.compile(
    r"(?:User|Principal): (\S+) is not authorized to perform: (\S+?)(?: on resource: (\S+?))?[.,]?(?:\s|$)"
)


def _denied(message: str, operation: str, who: str) -> str:
    match = _PRINCIPAL.search(message)
    if match:
        principal, action, resource = match.group(1), match.group(2), match.group(3)
        on = f" on {resource}" if resource else ""
        return (
            f"access denied: {principal} may not {action}{on} ({who}): grant it in bootstrap/roles.tf and apply "
            "bootstrap/, or use the role meant for this job"
        )
    return (
        f"access denied to {operation} ({who}): the credentials lack a permission this command needs; use the "
        "role meant for this job, or grant it in bootstrap/roles.tf and apply bootstrap/"
    )


def _which_bucket(bucket: str, env: Mapping[str, str] | None) -> str:
    environ = os.environ if env is None else env
    for var, label in (("SMGITOPS_STATE_BUCKET", "state bucket"), ("SMGITOPS_ARTIFACT_BUCKET", "artifact bucket")):
        if bucket and environ.get(var, "").strip() == bucket:
            return f"{label} {bucket} ({var})"
    return f"S3 bucket {bucket}" if bucket else "an S3 bucket the pipeline uses"


def _missing_bucket(bucket: str, env: Mapping[str, str] | None) -> str:
    what = _which_bucket(bucket, env)
    return f"{what} does not exist: {BOOTSTRAP_HINT}, and set the SMGITOPS_* variables to its outputs"


def _table_name(message: str, env: Mapping[str, str] | None) -> str:
    environ = os.environ if env is None else env
    found = re.search(r"[Tt]able[:\s]+\"?([A-Za-z0-9_.-]{3,255})", message)
    if found and found.group(1).lower() not in ("not", "does", "was", "is"):
        return found.group(1)
    return environ.get("SMGITOPS_LOCK_TABLE", "").strip()


def _missing_table(table: str, env: Mapping[str, str] | None) -> str:
    name = f"lock table {table}" if table else "the state lock table"
    return f"{name} (DynamoDB) does not exist: {BOOTSTRAP_HINT}, and set SMGITOPS_LOCK_TABLE to its output"


def _disk(exc: OSError) -> Fault:
    path = os.fsdecode(exc.filename)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    what = DISK_ERRNOS[exc.errno or 0]
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = f"free space there (df -h {directory}) or write elsewhere (--out DIR)"
    elif exc.errno == errno.EROFS:
        todo = "write elsewhere (--out DIR)"
    else:  # permission: a read or a write, the errno does not say which
        return Fault("disk", f"{path}: {what}: give this user access to {directory}, or write elsewhere (--out DIR)")
    return Fault("disk", f"cannot write {path}: {what}: {todo}")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


# -- Terraform's output -------------------------------------------------------------------------------------------

_TF_UNREACHABLE = re.compile(
    r"connection refused|no such host|dial tcp|i/o timeout|connection reset by peer|send request failed|"
    r"context deadline exceeded|TLS handshake timeout|exceeded maximum number of attempts",
    re.IGNORECASE,
)
_TF_BUCKET = re.compile(
    r"NoSuchBucket|S3 bucket \"?([A-Za-z0-9.-]+)\"? does not exist|The specified bucket does not exist"
)
_TF_BUCKET_NAME = re.compile(
    r"S3 bucket \"?([A-Za-z0-9.-]+)\"? does not exist|[Bb]ucket[\"': =]+([a-z0-9][a-z0-9.-]{2,62})"
)
_TF_TABLE = re.compile(
    r"ResourceNotFoundException|Cannot do operations on a non-existent table|Requested resource not found"
)
_TF_DENIED = re.compile(
    r"AccessDenied|is not authorized to perform|UnauthorizedOperation|StatusCode: 403", re.IGNORECASE
)


def from_terraform(text: str, env: Mapping[str, str] | None = None) -> Fault | None:
    """The environment fault Terraform's output reports (backend or provider), as one line; None when none.

    For Terraform's runner and the CLI: a ``terraform init`` whose backend bucket or lock table is missing, a
    provider that cannot reach AWS, credentials that are missing, expired or denied, or throttling."""
    configured, check = _where(env)
    who = credentials_in_use(env)
    if _TF_BUCKET.search(text):
        name = ""
        for found in _TF_BUCKET_NAME.finditer(text):
            name = found.group(1) or found.group(2) or ""
            if name:
                break
        return Fault("missing-bootstrap", "terraform: " + _missing_bucket(name, env))
    if _TF_TABLE.search(text) and re.search(r"dynamodb|lock", text, re.IGNORECASE):
        return Fault("missing-bootstrap", "terraform: " + _missing_table(_table_name(text, env), env))
    if re.search(r"ExpiredToken|expired", text) and re.search(r"token|credential", text, re.IGNORECASE):
        return Fault(
            "expired-credentials",
            f"terraform: AWS credentials have expired ({who}): get fresh ones (re-run the job, or renew the "
            "session) and run again",
        )
    if re.search(r"No valid credential sources found|NoCredentialProviders|failed to refresh cached credentials", text):
        return Fault(
            "no-credentials",
            "terraform: no AWS credentials found: in GitHub Actions let configure-aws-credentials assume the "
            "workflow's role; locally set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if re.search(r"InvalidClientTokenId|SignatureDoesNotMatch|UnrecognizedClientException", text):
        return Fault("rejected-credentials", f"terraform: AWS rejected the credentials ({who}): check them")
    if _TF_DENIED.search(text):
        return Fault("access-denied", "terraform: " + _denied(_one_line(text), "a Terraform call", who))
    if re.search(r"Throttling|ThrottlingException|Rate exceeded|TooManyRequests|SlowDown", text):
        return Fault(
            "throttled",
            "terraform: AWS throttled the run after its retries: wait a minute and run again; if it persists, run "
            "fewer jobs at once or ask for a higher quota",
        )
    if _TF_UNREACHABLE.search(text):
        where = configured or "AWS"
        return Fault("unreachable", f"terraform: cannot reach {where}: {check}")
    return None


class TerraformFault(TerraformError):
    """A Terraform call that failed because of the environment: still a :class:`TerraformError` (callers that
    handle one keep doing so), but its message is the one line of :func:`from_terraform`, and exit 2."""

    exit_code = EXIT_CODE

    def __init__(self, command: str, result: Completed, fault: Fault) -> None:
        super().__init__(command, result)
        self.fault = fault
        self.args = (fault.message,)

    def __str__(self) -> str:
        return self.fault.message


def terraform_fault(command: str, result: Completed, env: Mapping[str, str] | None = None) -> TerraformFault | None:
    """For Terraform's runner: the failed call as a :class:`TerraformFault` when the environment caused it (raise
    it instead of the generic error, before reading the output as anything else, e.g. a held lock)."""
    fault = from_terraform(result.stderr + "\n" + result.stdout, env)
    return TerraformFault(command, result, fault) if fault is not None else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- a quick look before Terraform starts -------------------------------------------------------------------------

_CHECKED: set[tuple[str, str]] = set()


def preflight(region: str, aws: Aws | None = None, env: Mapping[str, str] | None = None) -> None:
    """Ask AWS who we are, once per process and endpoint; raise :class:`EnvironmentFault` on an environment fault.

    Bounded by :data:`smgitops.aws.PREFLIGHT_CONFIG` (a silent endpoint fails in about ten seconds, a closed port at
    once), so Terraform, whose provider retries for minutes, never starts against an endpoint that cannot work."""
    environ = os.environ if env is None else env
    key = (environ.get("AWS_ENDPOINT_URL", "").strip(), region)
    if key in _CHECKED:
        return
    from .aws import Aws

    try:
        (aws or Aws.for_region(region)).sts_preflight.get_caller_identity()
    except Exception as exc:
        fault = classify(exc, env)
        if fault is None:
            raise
        raise EnvironmentFault(fault) from exc
    _CHECKED.add(key)
