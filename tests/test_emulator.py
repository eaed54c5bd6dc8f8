"""The emulator server: moto + smgitops extensions, driven over HTTPS with boto3 like the CLI and Terraform do.

Each test's docstring states the AWS behaviour it reproduces and why the project depends on it.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fixtures_emulator import start_emulator
from smgitops.aws import make_session
from smgitops.emulator.admin import AdminClient, AdminError
from smgitops.emulator.server import Emulator, EmulatorStartError

ROLE = "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def _client(service: str, emulator: Emulator | None = None) -> Any:
    if emulator is None:  # from the environment, as the CLI does
        return make_session("us-east-1").client(service, config=NO_RETRY)
    verify: Any = str(emulator.ca_bundle) if emulator.url.startswith("https") else False
    return make_session("us-east-1").client(service, endpoint_url=emulator.url, verify=verify, config=NO_RETRY)


@pytest.fixture()
def sm(emulator: Emulator) -> Any:
    return _client("sagemaker")


def _model(sm: Any, name: str, isolation: bool = True) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://artifacts/models/{name}/model.tar.gz"},
        EnableNetworkIsolation=isolation,
    )


def _config(sm: Any, name: str, weights: dict[str, float]) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": variant,
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
            for variant, weight in weights.items()
        ],
    )


@pytest.fixture()
def live_endpoint(sm: Any, emulator_admin: AdminClient) -> Iterator[str]:
    """An InService endpoint "ep" on config "ep-1" (variant "blue" = 1.0), models "blue" and "green" created."""
    _model(sm, "blue")
    _model(sm, "green")
    _config(sm, "ep-1", {"blue": 1.0})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep-1")
    emulator_admin.advance_clock(60)
    yield "ep"


# -- server, TLS, admin ---------------------------------------------------------------------------------------


def test_env_points_boto3_at_the_emulator_over_https(emulator: Emulator) -> None:
    """boto3 honours AWS_ENDPOINT_URL and AWS_CA_BUNDLE: with only ``Emulator.env()`` in the environment, any
    command of the CLI reaches the emulator over verified TLS (the certificate of .cache/emulator/tls)."""
    env = emulator.env()
    assert env["AWS_ENDPOINT_URL"] == emulator.url and emulator.url.startswith("https://127.0.0.1:")
    assert env["AWS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == str(emulator.ca_bundle)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    s3 = _client("s3")
    s3.create_bucket(Bucket="smgitops-env-check")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["smgitops-env-check"]
    # An untrusting client is refused: the TLS is real, not disabled verification.
    untrusting = make_session("us-east-1").client("s3", endpoint_url=emulator.url, verify=True, config=NO_RETRY)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        untrusting.list_buckets()


@contextlib.contextmanager
def _tls_connection(emulator: Emulator) -> Iterator[ssl.SSLSocket]:
    url = urllib.parse.urlsplit(emulator.url)
    assert url.hostname and url.port
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=url.hostname) as tls:
            yield tls


def _read_to_end(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    return data


def test_an_answer_leaves_in_one_record_and_100_continue_at_once(emulator: Emulator) -> None:
    """An answer leaves the emulator in one write: its headers and body in one TLS record. Written apart, the headers
    went out alone and Nagle's algorithm held the body back until the client acknowledged them (about 12 ms per
    answer); in that gap Terraform's SDK sometimes closed the connection and sent the request again (seen in
    packet captures): a lock taken, then refused as held, Terraform waiting out its lock timeout. A client asking
    for ``100 Continue`` still gets it before it sends the body."""
    host = urllib.parse.urlsplit(emulator.url).netloc
    with _tls_connection(emulator) as tls:
        tls.sendall(f"GET /_smgitops/stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        first = tls.recv(65536)  # a TLS read gives at most one record
        head, _, body = first.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        assert head.startswith(b"HTTP/1.1 200") and length, first
        assert len(body) == int(length.group(1)), f"the first record held {len(body)} of {int(length.group(1))} bytes"
        assert "aws_requests" in json.loads(body)
        assert _read_to_end(tls) == b""

    payload = json.dumps({"region": "us-east-1", "buckets": ["smgitops-no-such-bucket"]}).encode()
    with _tls_connection(emulator) as tls:
        tls.sendall(
            f"POST /_smgitops/missing HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode()
        )
        tls.settimeout(5)  # without the interim answer, this read waits out the timeout
        assert tls.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(payload)
        answer = _read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"missing": ["smgitops-no-such-bucket"]}


def _answers(tls: ssl.SSLSocket, methods: list[str]) -> list[tuple[bytes, bytes]]:
    """The answers to requests of ``methods`` read from ``tls``, each as (head, body), the body as long as its
    Content-Length says (none for an answer to HEAD); nothing more may follow."""
    data, found = b"", []
    count = len(methods)
    while len(found) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            size = 0 if methods[len(found)] == "HEAD" or not length else int(length.group(1))
            if len(rest) >= size:
                found.append((head, rest[:size]))
                data = rest[size:]
                continue
        chunk = tls.recv(65536)
        assert chunk, f"the connection ended after {len(found)} of {count} answers: {data!r}"
        data += chunk
    assert data == b"", f"more than {count} answers: {data!r}"
    return found


def test_a_connection_carries_many_requests_and_is_closed_only_when_it_must(emulator: Emulator) -> None:
    """The emulator keeps a client's connection open between requests (HTTP/1.1 keep-alive), as AWS does. werkzeug's
    server closed every one after its answer, so each request paid a TCP connection, a TLS handshake and a thread on
    both sides (3,770 of each in the workflow tests alone). Requests sent back to back (pipelined) are answered in
    order, a body the app did not read is skipped rather than taken for the next request, an answer to HEAD has no
    body; a request asking for ``Connection: close``, and any HTTP/1.0 request, still ends its connection."""
    host = urllib.parse.urlsplit(emulator.url).netloc
    ignored = b"GET /_smgitops/health HTTP/1.1\r\n\r\n"  # a body the stats route does not read
    requests = (
        f"GET /_smgitops/stats HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(ignored)}\r\n\r\n".encode()
        + ignored
        + f"HEAD /_smgitops/stats HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        + f"GET /_smgitops/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )
    with _tls_connection(emulator) as tls:
        tls.sendall(requests)
        (stats_head, stats), (head_head, head_body), (health_head, health) = _answers(tls, ["GET", "HEAD", "GET"])
        for answer_head in (stats_head, head_head, health_head):
            assert answer_head.startswith(b"HTTP/1.1 "), answer_head
            assert b"connection: close" not in answer_head.lower(), answer_head
        assert stats_head.startswith(b"HTTP/1.1 200") and "aws_requests" in json.loads(stats)
        assert head_body == b"" and re.search(rb"(?im)^content-length: *[1-9]", head_head), head_head
        assert health_head.startswith(b"HTTP/1.1 200") and json.loads(health) == {"ok": True}
        # still open: one more request on it, asking for the connection to end with its answer
        tls.sendall(f"GET /_smgitops/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        ((last_head, last),) = _answers(tls, ["GET"])
        assert b"connection: close" in last_head.lower() and json.loads(last) == {"ok": True}
        assert _read_to_end(tls) == b""

    with _tls_connection(emulator) as tls:
        tls.sendall(f"GET /_smgitops/health HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        answer = _read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"ok": true}'), answer


def test_reset_forgets_moto_and_extension_state(emulator: Emulator, emulator_admin: AdminClient) -> None:
    """The per-test reset clears moto's backends and the extension's faults and delays."""
    _client("s3").create_bucket(Bucket="smgitops-reset-check")
    emulator_admin.inject_fault("ep", "blue", error_rate=0.5, latency_ms=10)
    emulator_admin.set_update_delay(42)
    emulator_admin.seed(99)
    emulator_admin.reset()
    assert _client("s3").list_buckets()["Buckets"] == []
    assert emulator_admin.faults() == []
    stats = emulator_admin.stats()
    assert (stats["transition_delay"], stats["seed"], stats["pending_transitions"]) == (0.0, 0, 0)


def test_busy_time_covers_the_aws_requests_served_and_not_the_time_between(
    emulator: Emulator, emulator_admin: AdminClient
) -> None:
    """A benchmark subtracts the time AWS requests were being served from a command's own time."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="busy-check")
    before = time.time()
    s3.head_bucket(Bucket="busy-check")
    between = time.time()
    time.sleep(0.3)  # no request in flight: not busy
    s3.head_bucket(Bucket="busy-check")
    after = time.time()
    intervals = emulator_admin.busy(since=before)
    assert len(intervals) == 2
    (a0, a1), (b0, b1) = intervals
    assert before <= a0 <= a1 <= between and between + 0.3 <= b0 <= b1 <= after
    assert emulator_admin.busy(since=after + 1) == []
    # admin calls are not AWS requests: asking did not add an interval
    assert len(emulator_admin.busy(since=before)) == 2


def test_snapshot_restore_puts_the_whole_aws_state_back_any_number_of_times(
    emulator: Emulator, emulator_admin: AdminClient
) -> None:
    """A suite bootstraps once and restores the bootstrapped state before each test: restoring must drop what was
    created since (buckets, objects, items, endpoints, faults), bring back what was changed or deleted, and leave the
    snapshot intact for the next restore."""
    s3, ddb, sm = _client("s3"), _client("dynamodb"), _client("sagemaker")
    s3.create_bucket(Bucket="kept-bucket")
    s3.put_object(Bucket="kept-bucket", Key="state", Body=b"v1")
    ddb.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    emulator_admin.snapshot("base")
    for _ in range(2):
        s3.put_object(Bucket="kept-bucket", Key="state", Body=b"v2")
        s3.put_object(Bucket="kept-bucket", Key="extra", Body=b"x")
        s3.create_bucket(Bucket="new-bucket")
        ddb.put_item(TableName="locks", Item={"LockID": {"S": "held"}})
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
        emulator_admin.inject_fault("ep", "primary", error_rate=1.0)
        emulator_admin.restore("base")
        assert s3.get_object(Bucket="kept-bucket", Key="state")["Body"].read() == b"v1"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="kept-bucket")["Contents"]] == ["state"]
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept-bucket"]
        assert ddb.scan(TableName="locks")["Items"] == []
        assert sm.list_models()["Models"] == []
        assert emulator_admin.faults() == []
    with pytest.raises(AdminError, match="no snapshot named 'other'"):
        emulator_admin.restore("other")


def test_admin_names_the_bootstrap_resources_it_does_not_hold(emulator: Emulator, emulator_admin: AdminClient) -> None:
    """Local mode's bootstrap check: one admin request says which buckets, tables and KMS keys are gone."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    kms = boto3.client("kms", region_name="us-east-1")
    s3.create_bucket(Bucket="state")
    ddb.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = kms.create_key()["KeyMetadata"]["Arn"]
    account = key.split(":")[4]
    gone_key = key.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"

    def missing(**names: list[str]) -> list[str]:
        asked = {"buckets": [], "tables": [], "kms_keys": [], **names}
        return emulator_admin.missing("us-east-1", account=account, **asked)

    assert missing(buckets=["state"], tables=["locks"], kms_keys=[key]) == []
    assert missing(buckets=["state", "artifacts"], tables=["locks", "other"], kms_keys=[key, gone_key]) == [
        "artifacts",
        "other",
        gone_key,
    ]
    s3.delete_bucket(Bucket="state")
    ddb.delete_table(TableName="locks")
    assert missing(buckets=["state"], tables=["locks"], kms_keys=[key]) == ["state", "locks"]
    assert emulator_admin.missing("eu-west-1", account=account, buckets=[], tables=["locks"], kms_keys=[]) == ["locks"]
    with pytest.raises(AdminError, match="HTTP 400.*not a KMS key ARN"):
        missing(kms_keys=["alias/state"])


def test_admin_rejects_bad_input(emulator_admin: AdminClient) -> None:
    """Admin calls validate their arguments (an error rate is a fraction) and name unknown routes."""
    with pytest.raises(AdminError, match="HTTP 400"):
        emulator_admin.inject_fault("ep", "blue", error_rate=1.5)
    with pytest.raises(AdminError, match="HTTP 400"):
        emulator_admin.set_update_delay(-1)
    with pytest.raises(AdminError, match="HTTP 404"):
        emulator_admin._call("POST", "no-such-route", {})


@pytest.fixture(scope="module")
def private_plain() -> Iterator[Emulator]:
    """A private emulator over plain HTTP, beside the session's (HTTPS) one: one start (about 1.7 s of CPU, with its
    warm-up) for the file's two tests that need a second server; each resets it first."""
    with start_emulator(tls=False) as plain:
        yield plain


def test_private_emulators_are_isolated(emulator: Emulator, private_plain: Emulator) -> None:
    """A private emulator (long Terraform journeys) has its own port and state; neither sees the other's."""
    private_plain.admin.reset()
    _client("s3").create_bucket(Bucket="smgitops-shared")
    assert private_plain.url != emulator.url
    assert _client("s3", private_plain).list_buckets()["Buckets"] == []
    _client("s3", private_plain).create_bucket(Bucket="smgitops-private")
    assert [b["Name"] for b in _client("s3").list_buckets()["Buckets"]] == ["smgitops-shared"]
    assert [b["Name"] for b in _client("s3", private_plain).list_buckets()["Buckets"]] == ["smgitops-private"]


# Starts the rest of its arguments with SIGINT set to argv[1] first. A non-interactive shell starts its background
# jobs with SIGINT ignored (`smgitops emulator &` in a script, a test run started with `&`), exec keeps it ignored
# and so does Python: nothing in the process raises KeyboardInterrupt unless the program installs a handler itself.
_EXEC_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@pytest.mark.parametrize("inherited", ["SIG_DFL", "SIG_IGN"])
def test_cli_prints_exports_and_stops_cleanly_on_ctrl_c(inherited: str) -> None:
    """``smgitops emulator`` runs in the foreground, prints the URL and the export lines, and Ctrl-C stops it,
    whatever SIGINT disposition it was started with (ignored: a script's background job)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _EXEC_WITH_SIGINT, inherited, "-m", "smgitops.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("smgitops emulator listening on https://127.0.0.1:")
        url = first.split()[-1]
        exports = [proc.stdout.readline().strip() for _ in range(8)]
        assert f"export AWS_ENDPOINT_URL={url}" in exports
        assert any(line.startswith("export SSL_CERT_FILE=") for line in exports)
        from smgitops import paths

        assert AdminClient(url, paths.emulator_tls_dir() / "cert.pem").health()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "emulator stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_busy_port_is_a_clear_error(emulator: Emulator) -> None:
    """A port already in use: ``smgitops emulator`` exits 2 naming it; ``Emulator.start`` raises with the log."""
    proc = subprocess.run(
        [sys.executable, "-m", "smgitops.cli", "emulator", "--port", str(emulator.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{emulator.port}" in proc.stderr
    with pytest.raises(EmulatorStartError, match="did not start"):
        Emulator(port=emulator.port).start()


def test_cli_aws_clients_honour_aws_endpoint_url(emulator: Emulator) -> None:
    """boto3 honours AWS_ENDPOINT_URL for every service, so the CLI's clients (smgitops.aws) reach the emulator
    without code of their own: S3, SageMaker, sagemaker-runtime and CloudWatch all land on the same server."""
    from smgitops.aws import Aws

    aws = Aws.for_region("us-east-1")
    aws.s3.create_bucket(Bucket="smgitops-via-cli-wrapper")
    assert _client("s3").head_bucket(Bucket="smgitops-via-cli-wrapper")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert aws.sagemaker.list_endpoints()["Endpoints"] == []
    # moto's CloudWatch reports the S3 bucket it shares the server with.
    metrics = aws.cloudwatch.list_metrics(Namespace="AWS/S3")["Metrics"]
    assert {"Name": "BucketName", "Value": "smgitops-via-cli-wrapper"} in metrics[0]["Dimensions"]
    with pytest.raises(ClientError, match="Endpoint nope of account 123456789012 not found"):
        aws.runtime.invoke_endpoint(EndpointName="nope", Body=b"x")


# -- S3 bucket-policy conditions ------------------------------------------------------------------------------


def _tls_only_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def test_tls_only_bucket_policy_allows_https_and_denies_http(emulator: Emulator, private_plain: Emulator) -> None:
    """AWS evaluates ``Bool aws:SecureTransport = false`` from the request's scheme: the TLS-only Deny of the
    state and artifact buckets refuses plain HTTP and lets HTTPS through. moto ignores conditions and denies
    everything, which breaks Terraform's S3 backend right after bootstrap."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="smgitops-state")
    s3.put_bucket_policy(Bucket="smgitops-state", Policy=_tls_only_policy("smgitops-state"))
    s3.put_object(Bucket="smgitops-state", Key="dev/terraform.tfstate", Body=b"{}")
    assert s3.get_object(Bucket="smgitops-state", Key="dev/terraform.tfstate")["Body"].read() == b"{}"
    assert s3.list_objects_v2(Bucket="smgitops-state")["KeyCount"] == 1
    s3.get_bucket_versioning(Bucket="smgitops-state")

    private_plain.admin.reset()  # the same requests over plain HTTP
    s3_http = _client("s3", private_plain)
    s3_http.create_bucket(Bucket="smgitops-state")
    s3_http.put_object(Bucket="smgitops-state", Key="before", Body=b"1")
    s3_http.put_bucket_policy(Bucket="smgitops-state", Policy=_tls_only_policy("smgitops-state"))
    with pytest.raises(ClientError) as denied:
        s3_http.put_object(Bucket="smgitops-state", Key="after", Body=b"2")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as denied_read:
        s3_http.get_object(Bucket="smgitops-state", Key="before")
    assert denied_read.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as denied_list:  # bucket-level requests too
        s3_http.list_objects_v2(Bucket="smgitops-state")
    assert denied_list.value.response["Error"]["Code"] == "AccessDenied"
    # The owner can still read and remove the policy over HTTP (S3 never locks the owning account out).
    assert "DenyInsecureTransport" in s3_http.get_bucket_policy(Bucket="smgitops-state")["Policy"]
    s3_http.delete_bucket_policy(Bucket="smgitops-state")
    assert s3_http.list_objects_v2(Bucket="smgitops-state")["KeyCount"] == 1


def test_write_once_policy_requires_if_none_match(emulator: Emulator) -> None:
    """AWS: with a Deny on ``s3:PutObject`` when ``s3:if-none-match`` is Null, only conditional writes succeed,
    and an existing key answers 412 PreconditionFailed. ``smgitops publish`` relies on both: artifacts are
    written once and never overwritten."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="smgitops-artifacts")
    s3.put_bucket_policy(
        Bucket="smgitops-artifacts",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyOverwrites",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::smgitops-artifacts/*",
                        "Condition": {"Null": {"s3:if-none-match": "true"}},
                    }
                ],
            }
        ),
    )
    key = "models/m/sha256=00/model.tar.gz"
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="smgitops-artifacts", Key=key, Body=b"a")
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "403")
    s3.put_object(Bucket="smgitops-artifacts", Key=key, Body=b"a", IfNoneMatch="*")
    with pytest.raises(ClientError) as again:
        s3.put_object(Bucket="smgitops-artifacts", Key=key, Body=b"b", IfNoneMatch="*")
    assert again.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="smgitops-artifacts", Key=key)["Body"].read() == b"a"


def test_unknown_condition_key_is_an_explicit_error(emulator: Emulator) -> None:
    """A condition the emulator cannot evaluate is a 500 naming it, never a silent allow."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="smgitops-odd")
    s3.put_bucket_policy(
        Bucket="smgitops-odd",
        Policy=json.dumps(
            {
                "Statement": [
                    {
                        "Sid": "OnlyFromOffice",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": "arn:aws:s3:::smgitops-odd/*",
                        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}},
                    }
                ]
            }
        ),
    )
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="smgitops-odd", Key="k", Body=b"x")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "aws:SourceVpce" in err.value.response["Error"]["Message"]


# -- SageMaker ------------------------------------------------------------------------------------------------


def test_duplicate_creates_are_refused(sm: Any) -> None:
    """AWS refuses CreateModel/CreateEndpointConfig/CreateEndpoint for an existing name with ValidationException
    "Cannot create already existing ..."; moto overwrites silently, which would hide a name collision."""
    _model(sm, "blue")
    _config(sm, "ep-1", {"blue": 1.0})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep-1")
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    cases = [
        (lambda: _model(sm, "blue"), f'Cannot create already existing model "{arn}:model/blue".'),
        (
            lambda: _config(sm, "ep-1", {"blue": 1.0}),
            f'Cannot create already existing endpoint configuration "{arn}:endpoint-config/ep-1".',
        ),
        (
            lambda: sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep-1"),
            f'Cannot create already existing endpoint "{arn}:endpoint/ep".',
        ),
    ]
    for call, message in cases:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"] == {"Code": "ValidationException", "Message": message}


def test_describe_model_echoes_what_was_created(sm: Any) -> None:
    """DescribeModel returns EnableNetworkIsolation as set and no VpcConfig when none was given. moto echoes an
    empty VpcConfig and always false, so Terraform (provider 3.39) plans a forced replacement after each apply."""
    _model(sm, "isolated", isolation=True)
    _model(sm, "open", isolation=False)
    isolated = sm.describe_model(ModelName="isolated")
    assert isolated["EnableNetworkIsolation"] is True
    assert "VpcConfig" not in isolated
    assert isolated["PrimaryContainer"]["Image"] == IMAGE
    assert sm.describe_model(ModelName="open")["EnableNetworkIsolation"] is False


def test_create_endpoint_is_creating_then_in_service(sm: Any, emulator_admin: AdminClient) -> None:
    """AWS answers CreateEndpoint with the endpoint ``Creating``; it becomes ``InService`` later. Terraform and
    ``smgitops verify`` wait for InService, so the emulator must pass through Creating, not skip it. (The default
    delay is 0: provider 3.39's waiter polls every 30 s, so a delay would cost every apply 30 s.)"""
    emulator_admin.set_update_delay(30)
    _model(sm, "blue")
    _config(sm, "ep-1", {"blue": 1.0})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep-1")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"
    emulator_admin.advance_clock(29)
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"
    emulator_admin.advance_clock(1)
    described = sm.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "ep-1"
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described["ProductionVariants"]] == [("blue", 1.0)]


def test_update_endpoint_switches_config_when_in_service(
    sm: Any, emulator_admin: AdminClient, live_endpoint: str
) -> None:
    """UpdateEndpoint (absent from moto 5.2.5): the endpoint is ``Updating`` and keeps serving the old
    configuration until the update completes (PendingDeploymentSummary names the new one), then ``InService`` on
    the new one, with weights of 0 reported (a promotion drains a variant to 0). Every Terraform change of the
    endpoint goes through it."""
    _config(sm, "ep-2", {"blue": 0.0, "green": 1.0})
    emulator_admin.set_update_delay(10)
    before = sm.describe_endpoint(EndpointName=live_endpoint)
    sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="ep-2")
    updating = sm.describe_endpoint(EndpointName=live_endpoint)
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == "ep-1"
    pending = updating["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "ep-2"
    assert [(v["VariantName"], v["DesiredWeight"]) for v in pending["ProductionVariants"]] == [
        ("blue", 0.0),
        ("green", 1.0),
    ]
    assert updating["LastModifiedTime"] >= before["LastModifiedTime"]
    emulator_admin.advance_clock(10)
    done = sm.describe_endpoint(EndpointName=live_endpoint)
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == "ep-2"
    assert "FailureReason" not in done
    assert "PendingDeploymentSummary" not in done
    weights = {v["VariantName"]: (v["CurrentWeight"], v["DesiredWeight"]) for v in done["ProductionVariants"]}
    assert weights == {"blue": (0.0, 0.0), "green": (1.0, 1.0)}


def test_failed_update_stays_on_old_config_with_failure_reason(
    sm: Any, emulator_admin: AdminClient, live_endpoint: str
) -> None:
    """AWS: when an update fails the endpoint returns to ``InService`` on its previous configuration and
    DescribeEndpoint's FailureReason says why. ``smgitops verify`` surfaces it and the rollout rolls back."""
    _config(sm, "ep-2", {"green": 1.0})
    emulator_admin.fail_next_update(live_endpoint, "Model container failed the ping health check.")
    sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="ep-2")
    emulator_admin.advance_clock(60)
    failed = sm.describe_endpoint(EndpointName=live_endpoint)
    assert failed["EndpointStatus"] == "InService"
    assert failed["EndpointConfigName"] == "ep-1"
    assert failed["FailureReason"] == "Model container failed the ping health check."
    assert [v["VariantName"] for v in failed["ProductionVariants"]] == ["blue"]
    # Only the next update fails: a retry goes through and clears the reason.
    sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="ep-2")
    emulator_admin.advance_clock(60)
    retried = sm.describe_endpoint(EndpointName=live_endpoint)
    assert retried["EndpointConfigName"] == "ep-2"
    assert "FailureReason" not in retried


def test_update_endpoint_validates_like_aws(sm: Any, emulator_admin: AdminClient, live_endpoint: str) -> None:
    """AWS: UpdateEndpoint needs an existing endpoint and configuration and refuses an endpoint that is already
    being updated ("Cannot update in-progress endpoint")."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    with pytest.raises(ClientError, match=f'Could not find endpoint "{arn}:endpoint/nope"'):
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="ep-1")
    with pytest.raises(ClientError, match=f'Could not find endpoint configuration "{arn}:endpoint-config/nope"'):
        sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="nope")
    _config(sm, "ep-2", {"green": 1.0})
    emulator_admin.set_update_delay(60)
    sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="ep-2")
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        sm.update_endpoint(EndpointName=live_endpoint, EndpointConfigName="ep-1")


def test_update_weights_passes_through_updating(sm: Any, emulator_admin: AdminClient, live_endpoint: str) -> None:
    """UpdateEndpointWeightsAndCapacities: ``Updating`` then ``InService`` with the new weights."""
    emulator_admin.set_update_delay(60)
    sm.update_endpoint_weights_and_capacities(
        EndpointName=live_endpoint, DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 0.5}]
    )
    assert sm.describe_endpoint(EndpointName=live_endpoint)["EndpointStatus"] == "Updating"
    emulator_admin.advance_clock(60)
    done = sm.describe_endpoint(EndpointName=live_endpoint)
    assert done["EndpointStatus"] == "InService"
    assert done["ProductionVariants"][0]["CurrentWeight"] == 0.5


def test_delete_endpoint_in_any_status(sm: Any, emulator_admin: AdminClient) -> None:
    """AWS lets DeleteEndpoint delete a Creating or Updating endpoint; teardown depends on it."""
    emulator_admin.set_update_delay(300)
    _model(sm, "blue")
    _config(sm, "ep-1", {"blue": 1.0})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep-1")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"
    sm.delete_endpoint(EndpointName="ep")
    emulator_admin.advance_clock(300)
    assert sm.list_endpoints()["Endpoints"] == []
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sm.describe_endpoint(EndpointName="ep")


def test_describe_endpoint_config_and_endpoint_echo_like_aws(sm: Any) -> None:
    """DescribeEndpointConfig omits DataCaptureConfig when none was set and reports the default weight 1.0;
    DescribeEndpoint reports data capture in the endpoint's shape (CaptureStatus, CurrentSamplingPercentage).
    moto echoes ``DataCaptureConfig: {}``, which provider 3.39 plans as a forced replacement every time."""
    _model(sm, "blue")
    sm.create_endpoint_config(
        EndpointConfigName="bare",
        ProductionVariants=[
            {"VariantName": "blue", "ModelName": "blue", "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}
        ],
    )
    bare = sm.describe_endpoint_config(EndpointConfigName="bare")
    assert "DataCaptureConfig" not in bare
    assert bare["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": "s3://smgitops-artifacts/data-capture/ep",
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    sm.create_endpoint_config(
        EndpointConfigName="captured",
        ProductionVariants=[
            {"VariantName": "blue", "ModelName": "blue", "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}
        ],
        DataCaptureConfig=capture,
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    captured = sm.describe_endpoint_config(EndpointConfigName="captured")
    assert captured["DataCaptureConfig"] == capture
    assert captured["KmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/k"
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="captured")
    assert sm.describe_endpoint(EndpointName="ep")["DataCaptureConfig"] == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 20,
        "DestinationS3Uri": "s3://smgitops-artifacts/data-capture/ep",
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
    }
