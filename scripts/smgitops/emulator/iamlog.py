"""What each request to the emulator asks IAM: action, resource ARN(s) and condition keys.

The emulator records every AWS request while a recording is on (admin routes ``iam-log``); tests then judge each
recorded call with an IAM policy simulator against the policy of the role whose access key signed it. This module
is the one map from a request's wire shape to what AWS authorises it as:

* S3 REST (path-style: ``/bucket/key``, sub-resources such as ``?tagging``, ``?versioning``, ``?uploads``);
* JSON protocols by ``X-Amz-Target``: SageMaker, DynamoDB, KMS;
* query protocols by ``Action=``: CloudWatch (``monitoring``), STS, IAM;
* sagemaker-runtime ``POST /endpoints/<name>/invocations``.

A request of any other shape raises :class:`UnknownRequest` (the recording keeps it as an error entry, and the test
fails on it): nothing is ever skipped silently.

Condition keys are filled from the request (``aws:RequestTag/*``, ``aws:TagKeys``, ``s3:prefix``,
``s3:if-none-match``, ``dynamodb:LeadingKeys``, ``aws:SecureTransport``) and from the emulator's state at request time
(``aws:ResourceTag/*`` of the target, the bucket's KMS key, the lock table's partition key), through :class:`World`.

Calls AWS makes on the caller's behalf with the caller's permissions are recorded as *derived* calls, with ``via``
naming the request that caused them:

* ``sagemaker:AddTags`` for the tags a SageMaker ``Create*`` request carries (SageMaker authorises tagging on
  create as ``AddTags`` on the new resource);
* ``iam:PassRole`` for a role handed to a service (SageMaker ``CreateModel``'s ``ExecutionRoleArn``), with
  ``iam:PassedToService``;
* S3 server-side encryption with a KMS key (SSE-KMS, also with an S3 Bucket Key): a write needs
  ``kms:GenerateDataKey`` and a read of the object's bytes ``kms:Decrypt`` on the key, asked by S3 for the caller
  (``kms:ViaService = s3.<region>.amazonaws.com``). A Bucket Key makes S3 call KMS less often, but each call is
  still authorised with the caller's permissions, so every such request is judged as if it made the call: the
  conservative reading. ``HeadObject`` reads no bytes and asks KMS nothing;
* DynamoDB tables encrypted with a customer managed key: an item read or write may need the table key decrypted,
  recorded as ``kms:Decrypt`` via ``dynamodb.<region>.amazonaws.com`` (conservative in the same way);
* SageMaker endpoints whose configuration names a KMS key (storage volumes, data capture): ``CreateEndpoint`` and
  ``UpdateEndpoint`` make SageMaker create a grant for the instances, recorded as ``kms:CreateGrant`` via
  ``sagemaker.<region>.amazonaws.com`` with ``kms:GrantIsForAWSResource = true``;
* a read of a missing S3 object answers 404 only to a caller who may ``s3:ListBucket`` the bucket (else 403): after
  a 404 the request also records ``s3:ListBucket`` on the bucket, without a prefix.

``sts:GetCallerIdentity`` needs no permission in AWS; it is recorded with ``needs_permission = False``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

ContextValue = str | list[str]

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/")
_INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


class UnknownRequest(ValueError):
    """A request whose IAM action or resource this module does not know."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded
    query: Mapping[str, list[str]]  # blank values kept (``?versioning`` -> {"versioning": [""]})
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    secure: bool


@dataclass
class Call:
    """One authorisation AWS makes for a request: ``principal`` may do ``action`` on ``resource`` given ``context``."""

    access_key: str
    service: str  # the signing name
    operation: str  # the API operation, e.g. PutObject
    action: str  # the IAM action, e.g. s3:PutObject
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: dict[str, ContextValue] = field(default_factory=dict)
    via: str = ""  # for a call AWS makes on the caller's behalf: the action that caused it
    needs_permission: bool = True
    region: str = ""
    account: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "access_key": self.access_key,
            "service": self.service,
            "operation": self.operation,
            "action": self.action,
            "resource": self.resource,
            "context": self.context,
            "via": self.via,
            "needs_permission": self.needs_permission,
            "region": self.region,
            "account": self.account,
        }


class World(Protocol):
    """What the emulator knows at request time (read from moto's backends)."""

    account_id: str

    def sagemaker_tags(self, region: str, arn: str) -> dict[str, str] | None: ...

    def sagemaker_config_kms_keys(self, region: str, config_name: str) -> list[str]: ...

    def alarm_tags(self, region: str, arn: str) -> dict[str, str] | None: ...

    def bucket_kms_key(self, bucket: str) -> str | None: ...

    def object_kms_key(self, bucket: str, key: str) -> str | None: ...

    def table_hash_key(self, region: str, table: str) -> str | None: ...

    def table_kms_key(self, region: str, table: str) -> str | None: ...

    def kms_key_arn(self, region: str, key_id: str) -> str | None: ...


def access_key_of(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> tuple[str, str, str]:
    """(access key id, region, signing service) from SigV4's Authorization header or a presigned URL."""
    m = _CREDENTIAL.search(headers.get("authorization", ""))
    if m is None and "X-Amz-Credential" in query:
        m = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0])
    if m is None:
        raise UnknownRequest("unsigned request (no SigV4 credential): cannot tell which principal made it")
    return m["key"], m["region"], m["service"]


def describe(request: Request, world: World) -> list[Call]:
    """Every authorisation the request needs, the request's own first."""
    key, region, service = access_key_of(request.headers, request.query)
    base = _Base(key, region, world.account_id, request.secure)
    if service == "s3":
        calls = _s3(request, world, base)
    elif service == "sagemaker" and _INVOKE_PATH.match(request.path):
        calls = _invoke(request, world, base)
    elif service in ("sagemaker", "dynamodb", "kms") or (service == "monitoring" and "x-amz-target" in request.headers):
        calls = _json_protocol(service, request, world, base)
    elif service in ("monitoring", "sts", "iam"):
        calls = _query_protocol(service, request, world, base)
    else:
        raise UnknownRequest(f"no IAM mapping for service {service!r} ({request.method} {request.path})")
    for call in calls:
        call.context.setdefault("aws:SecureTransport", "true" if request.secure else "false")
    return calls


@dataclass(frozen=True)
class _Base:
    key: str
    region: str
    account: str
    secure: bool

    def call(
        self,
        service: str,
        operation: str,
        action: str,
        resource: str,
        context: dict[str, ContextValue] | None = None,
        **extra: Any,
    ) -> Call:
        return Call(
            self.key,
            service,
            operation,
            action,
            resource,
            dict(context or {}),
            region=self.region,
            account=self.account,
            **extra,
        )


def _tags_context(tags: Mapping[str, str], prefix: str = "aws:RequestTag/") -> dict[str, ContextValue]:
    out: dict[str, ContextValue] = {f"{prefix}{k}": v for k, v in tags.items()}
    return out


def _request_tags(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    if not tags:
        return {}
    return {**_tags_context(tags), "aws:TagKeys": sorted(tags)}


# ---------------------------------------------------------------------------------------------------------------
# S3 REST
# ---------------------------------------------------------------------------------------------------------------

# Bucket sub-resources: (GET, PUT, DELETE) IAM actions (AWS: "Actions, resources, and condition keys for S3").
_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "location": ("GetBucketLocation", None, None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "versions": ("ListBucketVersions", None, None),
}
# Query parameters that are arguments, not sub-resources.
_S3_ARGUMENTS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "marker",
        "continuation-token",
        "start-after",
        "encoding-type",
        "fetch-owner",
        "key-marker",
        "version-id-marker",
        "upload-id-marker",
        "max-uploads",
        "x-id",
        "versionId",
        "partNumber",
        "uploadId",
        "response-content-type",
        "response-content-disposition",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "max-parts",
        "part-number-marker",
        "object-lock",
    }
)
# S3 condition keys that are request headers.
_S3_HEADER_KEYS = (
    "if-none-match",
    "if-match",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
)


def _s3(request: Request, world: World, base: _Base) -> list[Call]:
    path = request.path
    if path in ("", "/"):
        if request.method == "GET":
            return [base.call("s3", "ListBuckets", "s3:ListAllMyBuckets", "*")]
        raise UnknownRequest(f"S3 {request.method} / is not a known operation")
    bucket, _, key = path.lstrip("/").partition("/")
    subresources = [q for q in request.query if q not in _S3_ARGUMENTS]
    if len(subresources) > 1:
        raise UnknownRequest(f"S3 {request.method} {path}: several sub-resources {sorted(subresources)}")
    sub = subresources[0] if subresources else ""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        return _s3_bucket(request, world, base, bucket, bucket_arn, sub)
    return _s3_object(request, world, base, bucket, key, f"{bucket_arn}/{key}", sub)


def _s3_bucket(request: Request, world: World, base: _Base, bucket: str, arn: str, sub: str) -> list[Call]:
    method = request.method
    if sub == "delete" and method == "POST":
        root = ET.fromstring(request.body)
        keys = [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]
        return [base.call("s3", "DeleteObjects", "s3:DeleteObject", f"{arn}/{k}") for k in keys]
    if sub:
        if sub not in _BUCKET_SUBRESOURCES:
            raise UnknownRequest(f"S3 bucket sub-resource ?{sub} is not mapped")
        verbs = dict(zip(("GET", "PUT", "DELETE"), _BUCKET_SUBRESOURCES[sub], strict=True))
        action = verbs.get(method)
        if action is None:
            raise UnknownRequest(f"S3 {method} ?{sub} on a bucket is not mapped")
        operation = {"DELETE": f"DeleteBucket{sub[0].upper()}{sub[1:]}"}.get(method, action)
        return [base.call("s3", operation, f"s3:{action}", arn)]
    if method in ("GET", "HEAD"):
        context: dict[str, ContextValue] = {}
        for name in ("prefix", "delimiter", "max-keys"):
            if name in request.query:
                context[f"s3:{name}"] = request.query[name][0]
        operation = "HeadBucket" if method == "HEAD" else "ListObjectsV2"
        return [base.call("s3", operation, "s3:ListBucket", arn, context)]
    if method == "PUT":
        return [base.call("s3", "CreateBucket", "s3:CreateBucket", arn)]
    if method == "DELETE":
        return [base.call("s3", "DeleteBucket", "s3:DeleteBucket", arn)]
    raise UnknownRequest(f"S3 {method} on bucket {bucket} is not mapped")


def _s3_headers_context(request: Request) -> dict[str, ContextValue]:
    return {f"s3:{h}": request.headers[h] for h in _S3_HEADER_KEYS if h in request.headers}


def _s3_object(request: Request, world: World, base: _Base, bucket: str, key: str, arn: str, sub: str) -> list[Call]:
    method, query = request.method, request.query
    versioned = "versionId" in query
    calls: list[Call] = []
    if method in ("GET", "HEAD") and not sub:
        action = "s3:GetObjectVersion" if versioned else "s3:GetObject"
        calls.append(base.call("s3", "HeadObject" if method == "HEAD" else "GetObject", action, arn))
        if method == "GET":
            kms_key = world.object_kms_key(bucket, key)
            if kms_key:
                calls.append(_via_s3(base, "kms:Decrypt", kms_key, bucket, action))
        return calls
    if method == "GET" and sub in ("tagging", "acl", "attributes"):
        action = {"tagging": "GetObjectTagging", "acl": "GetObjectAcl", "attributes": "GetObjectAttributes"}[sub]
        if versioned:
            action = action.replace("GetObject", "GetObjectVersion")
        return [base.call("s3", action, f"s3:{action}", arn)]
    if method == "PUT" and not sub:
        context = _s3_headers_context(request)
        tagging = request.headers.get("x-amz-tagging")
        if tagging:
            tags = dict(urllib.parse.parse_qsl(tagging, keep_blank_values=True))
            context.update({f"s3:RequestObjectTag/{k}": v for k, v in tags.items()})
            context["s3:RequestObjectTagKeys"] = sorted(tags)
        if "uploadId" in query:
            operation = "UploadPart"
        elif "x-amz-copy-source" in request.headers:
            operation = "CopyObject"
        else:
            operation = "PutObject"
        calls.append(base.call("s3", operation, "s3:PutObject", arn, context))
        if operation == "CopyObject":
            source = urllib.parse.unquote(request.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
            calls.append(base.call("s3", operation, "s3:GetObject", f"arn:aws:s3:::{source}"))
        if operation != "UploadPart":
            kms_key = _put_kms_key(request, world, base, bucket)
            if kms_key:
                calls.append(_via_s3(base, "kms:GenerateDataKey", kms_key, bucket, "s3:PutObject"))
        return calls
    if method == "PUT" and sub in ("tagging", "acl"):
        action = {"tagging": "PutObjectTagging", "acl": "PutObjectAcl"}[sub]
        if versioned:
            action = action.replace("PutObject", "PutObjectVersion")
        return [base.call("s3", action, f"s3:{action}", arn, _s3_headers_context(request))]
    if method == "POST" and sub == "uploads":
        return [base.call("s3", "CreateMultipartUpload", "s3:PutObject", arn, _s3_headers_context(request))]
    if method == "POST" and not sub and "uploadId" in query:
        return [base.call("s3", "CompleteMultipartUpload", "s3:PutObject", arn)]
    if method == "DELETE" and not sub:
        if "uploadId" in query:
            return [base.call("s3", "AbortMultipartUpload", "s3:AbortMultipartUpload", arn)]
        action = "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
        return [base.call("s3", "DeleteObject", action, arn)]
    if method == "DELETE" and sub == "tagging":
        action = "DeleteObjectVersionTagging" if versioned else "DeleteObjectTagging"
        return [base.call("s3", action, f"s3:{action}", arn)]
    raise UnknownRequest(f"S3 {method} on object {bucket}/{key}{'?' + sub if sub else ''} is not mapped")


def _put_kms_key(request: Request, world: World, base: _Base, bucket: str) -> str | None:
    if request.headers.get("x-amz-server-side-encryption") == "aws:kms":
        named = request.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
        if named:
            return world.kms_key_arn(base.region, named) or named
    return world.bucket_kms_key(bucket)


def _via_s3(base: _Base, action: str, key_arn: str, bucket: str, via: str) -> Call:
    context: dict[str, ContextValue] = {
        "kms:ViaService": f"s3.{base.region}.amazonaws.com",
        "kms:CallerAccount": base.account,
        # with or without a Bucket Key, S3's encryption context names the bucket (Bucket Key) or the object
        "kms:EncryptionContextKeys": ["aws:s3:arn"],
    }
    return base.call("s3", via.split(":", 1)[1], action, key_arn, context, via=via)


# ---------------------------------------------------------------------------------------------------------------
# sagemaker-runtime
# ---------------------------------------------------------------------------------------------------------------


def _sagemaker_arn(base: _Base, kind: str, name: str) -> str:
    # SageMaker ARNs carry resource names in lower case
    return f"arn:aws:sagemaker:{base.region}:{base.account}:{kind}/{name.lower()}"


def _with_resource_tags(tags: Mapping[str, str] | None) -> dict[str, ContextValue]:
    return _tags_context(tags or {}, "aws:ResourceTag/")


def _invoke(request: Request, world: World, base: _Base) -> list[Call]:
    m = _INVOKE_PATH.match(request.path)
    assert m is not None
    arn = _sagemaker_arn(base, "endpoint", urllib.parse.unquote(m["name"]))
    context = _with_resource_tags(world.sagemaker_tags(base.region, arn))
    return [base.call("sagemaker", "InvokeEndpoint", "sagemaker:InvokeEndpoint", arn, context)]


# ---------------------------------------------------------------------------------------------------------------
# JSON protocols: SageMaker, DynamoDB, KMS
# ---------------------------------------------------------------------------------------------------------------

_TARGET_PREFIX = {
    "sagemaker": "SageMaker.",
    "dynamodb": "DynamoDB_20120810.",
    "kms": "TrentService.",
    "monitoring": "GraniteServiceVersion20100801.",
}


def _json_protocol(service: str, request: Request, world: World, base: _Base) -> list[Call]:
    target = request.headers.get("x-amz-target", "")
    prefix = _TARGET_PREFIX[service]
    if not target.startswith(prefix):
        raise UnknownRequest(f"{service} request without a known X-Amz-Target ({target!r})")
    operation = target[len(prefix) :]
    try:
        body: dict[str, Any] = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise UnknownRequest(f"{service} {operation}: the body is not JSON") from exc
    if service == "monitoring":  # CloudWatch's JSON protocol (current SDKs), read as its query form
        return _cloudwatch(operation, _json_as_query(body), world, base)
    handler = {"sagemaker": _sagemaker, "dynamodb": _dynamodb, "kms": _kms}[service]
    return handler(operation, body, world, base)


def _json_as_query(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """A JSON-protocol body as the query protocol's flat parameters (``Names.member.1``, ``Tags.member.1.Key``)."""
    params: dict[str, list[str]] = {}
    for name, value in body.items():
        if isinstance(value, list):
            for i, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    for k, v in item.items():
                        params[f"{name}.member.{i}.{k}"] = [str(v)]
                else:
                    params[f"{name}.member.{i}"] = [str(item)]
        elif not isinstance(value, dict):
            params[name] = [str(value)]
    return params


def _tag_list(tags: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or []}


_SM_KIND = {"Model": "model", "EndpointConfig": "endpoint-config", "Endpoint": "endpoint"}
_SM_NAME_FIELD = {"model": "ModelName", "endpoint-config": "EndpointConfigName", "endpoint": "EndpointName"}
_SM_ACCOUNT_WIDE = frozenset({"ListEndpoints", "ListEndpointConfigs", "ListModels"})


def _sagemaker(operation: str, body: dict[str, Any], world: World, base: _Base) -> list[Call]:
    action = f"sagemaker:{operation}"
    if operation in _SM_ACCOUNT_WIDE:
        return [base.call("sagemaker", operation, action, "*")]
    if operation in ("AddTags", "DeleteTags", "ListTags"):
        arn = str(body["ResourceArn"])
        context = _with_resource_tags(world.sagemaker_tags(base.region, arn))
        if operation == "AddTags":
            context.update(_request_tags(_tag_list(body.get("Tags"))))
        elif operation == "DeleteTags":
            context["aws:TagKeys"] = sorted(str(k) for k in body.get("TagKeys", []))
        return [base.call("sagemaker", operation, action, arn, context)]
    m = re.fullmatch(
        r"(Create|Describe|Delete|Update)(Model|EndpointConfig|Endpoint)(WeightsAndCapacities)?", operation
    )
    if m is None or (m[3] and m[2] != "Endpoint"):
        raise UnknownRequest(f"SageMaker operation {operation} is not mapped")
    kind = _SM_KIND[m[2]]
    arn = _sagemaker_arn(base, kind, str(body[_SM_NAME_FIELD[kind]]))
    calls: list[Call] = []
    if m[1] == "Create":
        context = _request_tags(_tag_list(body.get("Tags")))
        if kind == "endpoint-config":
            kms = body.get("KmsKeyId")
            if kms:
                context["sagemaker:VolumeKmsKeyArn"] = str(world.kms_key_arn(base.region, str(kms)) or kms)
            variants = body.get("ProductionVariants", [])
            context["sagemaker:InstanceTypes"] = sorted(
                {str(v["InstanceType"]) for v in variants if "InstanceType" in v}
            )
            context["sagemaker:ModelArn"] = sorted(
                {_sagemaker_arn(base, "model", str(v["ModelName"])) for v in variants if "ModelName" in v}
            )
        calls.append(base.call("sagemaker", operation, action, arn, context))
        tags = _tag_list(body.get("Tags"))
        if tags:  # tags given on create are authorised as sagemaker:AddTags on the new resource too
            calls.append(base.call("sagemaker", operation, "sagemaker:AddTags", arn, _request_tags(tags), via=action))
    else:
        calls.append(
            base.call("sagemaker", operation, action, arn, _with_resource_tags(world.sagemaker_tags(base.region, arn)))
        )
    if kind == "model" and m[1] == "Create":
        role = body.get("ExecutionRoleArn")
        if role:
            calls.append(
                base.call(
                    "sagemaker",
                    operation,
                    "iam:PassRole",
                    str(role),
                    {"iam:PassedToService": "sagemaker.amazonaws.com", "iam:AssociatedResourceArn": arn},
                    via=action,
                )
            )
    if kind == "endpoint" and m[1] in ("Create", "Update") and not m[3]:
        config = str(body["EndpointConfigName"])
        config_arn = _sagemaker_arn(base, "endpoint-config", config)
        # AWS authorises CreateEndpoint/UpdateEndpoint on the endpoint and on the configuration it names, in one
        # request context: the request's tags hold for both, the resource tags are each resource's own
        config_context = {
            **_with_resource_tags(world.sagemaker_tags(base.region, config_arn)),
            **_request_tags(_tag_list(body.get("Tags"))),
        }
        calls.append(base.call("sagemaker", operation, action, config_arn, config_context))
        for kms_key in world.sagemaker_config_kms_keys(base.region, config):
            calls.append(
                base.call(
                    "sagemaker",
                    operation,
                    "kms:CreateGrant",
                    kms_key,
                    {
                        "kms:ViaService": f"sagemaker.{base.region}.amazonaws.com",
                        "kms:GrantIsForAWSResource": "true",
                        "kms:CallerAccount": base.account,
                    },
                    via=action,
                )
            )
    return calls


_DYNAMODB_ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "DeleteItem", "UpdateItem"})
_DYNAMODB_TABLE_OPERATIONS = frozenset(
    {"DescribeTable", "DescribeContinuousBackups", "DescribeTimeToLive", "DescribeKinesisStreamingDestination"}
)


def _dynamodb(operation: str, body: dict[str, Any], world: World, base: _Base) -> list[Call]:
    action = f"dynamodb:{operation}"
    if operation == "ListTables":
        return [base.call("dynamodb", operation, action, "*")]
    if operation in ("CreateTable", "DeleteTable", "UpdateContinuousBackups", "UpdateTimeToLive"):
        arn = f"arn:aws:dynamodb:{base.region}:{base.account}:table/{body['TableName']}"
        return [base.call("dynamodb", operation, action, arn)]
    if operation in ("ListTagsOfResource", "TagResource", "UntagResource"):
        return [base.call("dynamodb", operation, action, str(body["ResourceArn"]))]
    if operation not in _DYNAMODB_ITEM_OPERATIONS | _DYNAMODB_TABLE_OPERATIONS:
        raise UnknownRequest(f"DynamoDB operation {operation} is not mapped")
    table = str(body["TableName"])
    arn = f"arn:aws:dynamodb:{base.region}:{base.account}:table/{table}"
    if operation in _DYNAMODB_TABLE_OPERATIONS:
        return [base.call("dynamodb", operation, action, arn)]
    hash_key = world.table_hash_key(base.region, table)
    if hash_key is None:
        raise UnknownRequest(f"DynamoDB {operation} on table {table}, which the emulator does not have")
    item = body.get("Key") if operation != "PutItem" else body.get("Item")
    value = (item or {}).get(hash_key)
    if not isinstance(value, dict) or len(value) != 1:
        raise UnknownRequest(f"DynamoDB {operation} on {table} without the partition key {hash_key}")
    context: dict[str, ContextValue] = {"dynamodb:LeadingKeys": [str(next(iter(value.values())))]}
    if item is not None:
        context["dynamodb:Attributes"] = sorted(str(a) for a in item)
    calls = [base.call("dynamodb", operation, action, arn, context)]
    kms_key = world.table_kms_key(base.region, table)
    if kms_key:
        calls.append(
            base.call(
                "dynamodb",
                operation,
                "kms:Decrypt",
                kms_key,
                {"kms:ViaService": f"dynamodb.{base.region}.amazonaws.com", "kms:CallerAccount": base.account},
                via=action,
            )
        )
    return calls


_KMS_KEY_OPERATIONS = frozenset(
    {
        "DescribeKey",
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "ListResourceTags",
        "CreateGrant",
    }
)


def _kms(operation: str, body: dict[str, Any], world: World, base: _Base) -> list[Call]:
    action = f"kms:{operation}"
    if operation in ("ListAliases", "ListKeys"):
        return [base.call("kms", operation, action, "*")]
    if operation not in _KMS_KEY_OPERATIONS or "KeyId" not in body:
        raise UnknownRequest(f"KMS operation {operation} is not mapped")
    key = str(body["KeyId"])
    arn = world.kms_key_arn(base.region, key)
    if arn is None:
        raise UnknownRequest(f"KMS {operation} names the unknown key {key!r}")
    return [base.call("kms", operation, action, arn)]


# ---------------------------------------------------------------------------------------------------------------
# Query protocols: CloudWatch, STS, IAM
# ---------------------------------------------------------------------------------------------------------------


def _form(request: Request) -> dict[str, list[str]]:
    params = {k: list(v) for k, v in request.query.items()}
    if request.method == "POST" and request.body:
        for k, v in urllib.parse.parse_qs(request.body.decode(), keep_blank_values=True).items():
            params.setdefault(k, []).extend(v)
    return params


def _members(params: Mapping[str, list[str]], prefix: str) -> list[str]:
    """``Prefix.member.1``, ``Prefix.member.2``, ... in order."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.member\.(\d+)$")
    found = sorted((int(m[1]), v[0]) for k, v in params.items() if (m := pattern.match(k)))
    return [v for _, v in found]


def _query_tags(params: Mapping[str, list[str]]) -> dict[str, str]:
    tags: dict[str, str] = {}
    pattern = re.compile(r"^Tags\.member\.(\d+)\.Key$")
    for k, v in params.items():
        m = pattern.match(k)
        if m:
            tags[v[0]] = params.get(f"Tags.member.{m[1]}.Value", [""])[0]
    return tags


_CLOUDWATCH_ACCOUNT_WIDE = frozenset({"GetMetricData", "GetMetricStatistics", "ListMetrics", "PutMetricData"})


def _query_protocol(service: str, request: Request, world: World, base: _Base) -> list[Call]:
    if request.headers.get("content-type", "").startswith(("application/json", "application/x-amz-json")):
        raise UnknownRequest(f"{service}: JSON protocol requests are not mapped (only the query protocol)")
    if "smithy-protocol" in request.headers:
        raise UnknownRequest(f"{service}: {request.headers['smithy-protocol']} requests are not mapped")
    params = _form(request)
    if "Action" not in params:
        raise UnknownRequest(f"{service} {request.method} {request.path}: no Action parameter")
    operation = params["Action"][0]
    if service == "sts":
        if operation == "GetCallerIdentity":
            return [base.call("sts", operation, "sts:GetCallerIdentity", "*", needs_permission=False)]
        raise UnknownRequest(f"STS operation {operation} is not mapped")
    if service == "iam":
        return _iam(operation, params, base)
    return _cloudwatch(operation, params, world, base)


def _alarm_arn(base: _Base, name: str) -> str:
    return f"arn:aws:cloudwatch:{base.region}:{base.account}:alarm:{name}"


def _cloudwatch(operation: str, params: Mapping[str, list[str]], world: World, base: _Base) -> list[Call]:
    action = f"cloudwatch:{operation}"
    if operation in _CLOUDWATCH_ACCOUNT_WIDE:
        context: dict[str, ContextValue] = {}
        if operation == "PutMetricData" and "Namespace" in params:
            context["cloudwatch:namespace"] = params["Namespace"][0]
        return [base.call("cloudwatch", operation, action, "*", context)]
    if operation == "PutMetricAlarm":
        arn = _alarm_arn(base, params["AlarmName"][0])
        context = {**_with_resource_tags(world.alarm_tags(base.region, arn)), **_request_tags(_query_tags(params))}
        return [base.call("cloudwatch", operation, action, arn, context)]
    if operation in ("DeleteAlarms", "DescribeAlarms"):
        names = _members(params, "AlarmNames")
        if not names:
            if operation == "DeleteAlarms":
                raise UnknownRequest("CloudWatch DeleteAlarms without AlarmNames")
            return [base.call("cloudwatch", operation, action, _alarm_arn(base, "*"))]
        return [
            base.call(
                "cloudwatch",
                operation,
                action,
                _alarm_arn(base, n),
                _with_resource_tags(world.alarm_tags(base.region, _alarm_arn(base, n))),
            )
            for n in names
        ]
    if operation in ("ListTagsForResource", "TagResource", "UntagResource"):
        arn = params["ResourceARN"][0]
        context = _with_resource_tags(world.alarm_tags(base.region, arn))
        if operation == "TagResource":
            context.update(_request_tags(_query_tags(params)))
        elif operation == "UntagResource":
            context["aws:TagKeys"] = sorted(_members(params, "TagKeys"))
        return [base.call("cloudwatch", operation, action, arn, context)]
    raise UnknownRequest(f"CloudWatch operation {operation} is not mapped")


_IAM_ROLE_OPERATIONS = frozenset(
    {
        "GetRole",
        "GetRolePolicy",
        "ListRolePolicies",
        "ListAttachedRolePolicies",
        "ListInstanceProfilesForRole",
        "CreateRole",
        "DeleteRole",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "UpdateAssumeRolePolicy",
        "TagRole",
        "UpdateRole",
        "UpdateRoleDescription",
        "ListRoleTags",
    }
)


def _iam(operation: str, params: Mapping[str, list[str]], base: _Base) -> list[Call]:
    action = f"iam:{operation}"
    if operation in _IAM_ROLE_OPERATIONS:
        arn = f"arn:aws:iam::{base.account}:role/{params['RoleName'][0]}"
        return [base.call("iam", operation, action, arn)]
    if operation in (
        "GetOpenIDConnectProvider",
        "CreateOpenIDConnectProvider",
        "DeleteOpenIDConnectProvider",
        "ListOpenIDConnectProviderTags",
    ):
        arn = params.get("OpenIDConnectProviderArn", ["*"])[0]
        return [base.call("iam", operation, action, arn)]
    if operation in ("ListRoles", "ListOpenIDConnectProviders"):
        return [base.call("iam", operation, action, "*")]
    raise UnknownRequest(f"IAM operation {operation} is not mapped")


# ---------------------------------------------------------------------------------------------------------------
# The emulator's side: moto's backends as the World, and the recording
# ---------------------------------------------------------------------------------------------------------------


class MotoWorld:
    """:class:`World` read from moto's backends in the emulator process, at request time."""

    def __init__(self, account_id: str | None = None) -> None:
        from moto.core.models import DEFAULT_ACCOUNT_ID

        self.account_id = account_id or DEFAULT_ACCOUNT_ID

    def sagemaker_tags(self, region: str, arn: str) -> dict[str, str] | None:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self.account_id][region]
        kind, _, name = arn.split(":", 5)[-1].partition("/")
        stores: dict[str, dict[str, Any]] = {
            "model": backend._models,
            "endpoint-config": backend.endpoint_configs,
            "endpoint": backend.endpoints,
        }
        store = stores.get(kind, {})
        for stored_name, resource in list(store.items()):
            if stored_name.lower() == name.lower():
                return _tag_list(resource.tags)
        return None

    def sagemaker_config_kms_keys(self, region: str, config_name: str) -> list[str]:
        from moto.sagemaker.models import sagemaker_backends

        config = sagemaker_backends[self.account_id][region].endpoint_configs.get(config_name)
        if config is None:
            return []
        named = [config.kms_key_id, (config.data_capture_config or {}).get("KmsKeyId")]
        return sorted({self.kms_key_arn(region, str(k)) or str(k) for k in named if k})

    def alarm_tags(self, region: str, arn: str) -> dict[str, str] | None:
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[self.account_id][region]
        if arn.rsplit(":", 1)[-1] not in backend.alarms:
            return None
        tags: dict[str, str] = backend.tagger.get_tag_dict_for_resource(arn)
        return tags

    def _bucket(self, bucket: str) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account_id]["aws"].buckets.get(bucket)

    def bucket_kms_key(self, bucket: str) -> str | None:
        found = self._bucket(bucket)
        if found is None or not found.encryption:
            return None
        default = found.encryption["Rule"]["ApplyServerSideEncryptionByDefault"]
        if default.get("SSEAlgorithm") != "aws:kms":
            return None
        key = default.get("KMSMasterKeyID")
        return (self.kms_key_arn(found.region_name, str(key)) or str(key)) if key else None

    def object_kms_key(self, bucket: str, key: str) -> str | None:
        found = self._bucket(bucket)
        if found is None:
            return None
        obj = found.keys.get(key)  # the latest version: in a versioned bucket, maybe a delete marker
        if getattr(obj, "encryption", None) != "aws:kms" or not getattr(obj, "kms_key_id", None):
            return None
        return self.kms_key_arn(found.region_name, str(obj.kms_key_id)) or str(obj.kms_key_id)

    def _table(self, region: str, table: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][region].tables.get(table)

    def table_hash_key(self, region: str, table: str) -> str | None:
        found = self._table(region, table)
        return None if found is None else str(found.hash_key_attr)

    def table_kms_key(self, region: str, table: str) -> str | None:
        found = self._table(region, table)
        sse = getattr(found, "sse_specification", None) or {}
        if not sse.get("Enabled") or not sse.get("KMSMasterKeyId"):
            return None
        return self.kms_key_arn(region, str(sse["KMSMasterKeyId"])) or str(sse["KMSMasterKeyId"])

    def kms_key_arn(self, region: str, key_id: str) -> str | None:
        from moto.kms.models import kms_backends

        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id
        backend = kms_backends[self.account_id][region]
        try:
            resolved = backend.any_id_to_key_id(key_id)
            arn: str = backend.keys[resolved].arn
        except Exception:  # noqa: BLE001 - an unknown alias or id: the caller decides what that means
            return None
        return arn


class Recorder:
    """The request log: off until started; each entry is one request and the calls it needs (or why none)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.recording = False
        self.entries: list[dict[str, Any]] = []

    def start(self) -> None:
        with self._lock:
            self.recording, self.entries = True, []

    def stop(self) -> None:
        with self._lock:
            self.recording = False

    def reset(self) -> None:
        """Off and empty (the emulator's reset)."""
        with self._lock:
            self.recording, self.entries = False, []

    def add(self, request: Request, world: World) -> dict[str, Any]:
        entry: dict[str, Any] = {"method": request.method, "path": request.path, "status": None}
        try:
            entry["access_key"] = access_key_of(request.headers, request.query)[0]
        except UnknownRequest:
            entry["access_key"] = ""
        try:
            entry["calls"], entry["error"] = [c.to_json() for c in describe(request, world)], None
        except Exception as exc:  # a request the log cannot describe is judged, never failed
            # Any failure of the description (an unknown request, or moto state it did not expect) is kept as the
            # entry's error, which the IAM judgement reports; the request itself still goes to moto.
            entry["calls"], entry["error"] = [], f"{type(exc).__name__}: {exc}"
            entry["target"] = request.headers.get("x-amz-target", "")
            entry["query"] = {k: v for k, v in request.query.items() if not k.startswith("X-Amz-")}
        with self._lock:
            entry["seq"] = len(self.entries)
            self.entries.append(entry)
        return entry

    def answered(self, entry: dict[str, Any], status: int) -> None:
        """The response's status, and what it tells about authorisation.

        A read of a missing S3 object answers 404 only to a caller who may also ``s3:ListBucket`` the bucket (else
        403, which the pipeline would take for an error, not for "not published yet"): recorded as a derived
        ``s3:ListBucket`` without a prefix.
        """
        with self._lock:
            entry["status"] = status
            if status != 404:
                return
            for call in list(entry["calls"]):
                if call["action"] in ("s3:GetObject", "s3:GetObjectVersion") and not call["via"]:
                    bucket = call["resource"].split(":::", 1)[1].split("/", 1)[0]
                    entry["calls"].append(
                        {
                            **call,
                            "action": "s3:ListBucket",
                            "resource": f"arn:aws:s3:::{bucket}",
                            "context": {"aws:SecureTransport": call["context"].get("aws:SecureTransport", "true")},
                            "via": call["action"],
                        }
                    )

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries[seq:]]
