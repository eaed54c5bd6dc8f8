"""The AWS adapter: what counts as "that resource is gone" (for verify, recovery and teardown alike), translated
once, against the emulator; every client made by it, once, with its bounds; and no other module making one."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from botocore.stub import Stubber

from smgitops.aws import (
    INVOKE_CONFIG,
    MAX_ATTEMPTS,
    READ_TIMEOUT,
    READ_TIMEOUT_ENV,
    RETRY_CONFIG,
    TEARDOWN_CONFIG,
    Aws,
    PlainJSONFileLoader,
    is_not_found,
    make_session,
)
from smgitops.errors import ExternalError, UserError

ROOT = Path(__file__).resolve().parents[1]


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeEndpoint")


def test_sagemaker_absence_is_a_validation_exception_saying_so() -> None:
    assert is_not_found(_error("ValidationException", 'Could not find endpoint "smgitops-dev".'))
    assert is_not_found(_error("ValidationException", "Endpoint smgitops-dev does not exist."))


def test_other_errors_are_never_read_as_absence() -> None:
    # an endpoint that cannot be read is not an endpoint that is gone: teardown and verify must fail, not skip it
    assert not is_not_found(_error("ThrottlingException", "Rate exceeded; endpoint does not exist yet?"))
    assert not is_not_found(_error("AccessDeniedException", "Could not find credentials"))
    assert not is_not_found(_error("ValidationException", "Cannot update in-progress endpoint"))


# -- the adapter against the emulator ------------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution"


def test_sessions_have_botocores_builtin_handlers_and_each_its_own_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_session starts each session's events from a copy of botocore's built-in handlers: they run (an invalid
    bucket name is refused before any request is made) and a handler one session registers is not another's."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing reaches AWS, whatever happens
    first, second = make_session("us-east-1"), make_session("us-east-1")
    once = Config(retries={"total_max_attempts": 1})
    for session in (first, second):
        with pytest.raises(ParamValidationError, match="Invalid bucket name"):
            session.client("s3", config=once).head_bucket(Bucket="not/a bucket")
    seen: list[str] = []
    first.events.register("provide-client-params.sagemaker.ListEndpoints", lambda **_: seen.append("first"))
    for session in (first, second):
        client = session.client("sagemaker")
        with Stubber(client) as stub:
            stub.add_response("list_endpoints", {"Endpoints": []}, {})
            client.list_endpoints()
    assert seen == ["first"]


def test_absence_is_none_and_presence_a_description_on_the_emulator(emulator: Any) -> None:
    aws = Aws.for_region("us-east-1")
    assert aws.describe_endpoint("smgitops-nope") is None
    assert aws.describe_endpoint_config("smgitops-nope-12345678") is None
    assert aws.describe_model("nope-dev-0123456789ab") is None
    assert aws.absent_as_none(lambda: aws.sagemaker.delete_endpoint(EndpointName="smgitops-nope")) is None

    sm = aws.sagemaker
    sm.create_model(ModelName="m-dev-0123456789ab", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "sklearn"})
    sm.create_endpoint_config(
        EndpointConfigName="smgitops-dev-12345678",
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": "m-dev-0123456789ab", "InstanceType": "ml.t2.medium",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}
        ],
    )  # fmt: skip
    sm.create_endpoint(EndpointName="smgitops-dev", EndpointConfigName="smgitops-dev-12345678")
    endpoint = aws.describe_endpoint("smgitops-dev")
    assert endpoint is not None and endpoint["EndpointConfigName"] == "smgitops-dev-12345678"
    config = aws.describe_endpoint_config("smgitops-dev-12345678")
    assert config is not None and config["ProductionVariants"][0]["ModelName"] == "m-dev-0123456789ab"
    model = aws.describe_model("m-dev-0123456789ab")
    assert model is not None and model["ModelName"] == "m-dev-0123456789ab"

    # any other refusal is not an absence: raised as SageMaker gave it
    with pytest.raises(ClientError, match="already exist"):
        aws.absent_as_none(
            lambda: sm.create_model(
                ModelName="m-dev-0123456789ab", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "sklearn"}
            )
        )


def test_a_describe_that_fails_otherwise_is_an_external_error_not_an_absence() -> None:
    client = make_session("us-east-1").client("sagemaker")  # the process's parsed model, not a fresh parse
    aws = Aws(None, clients={"sagemaker": client})
    with Stubber(client) as stub:
        stub.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded")
        with pytest.raises(ExternalError, match="SageMaker describe_endpoint: .*Rate exceeded"):
            aws.describe_endpoint("smgitops-dev")


def test_clients_are_made_once_each_with_their_bounds() -> None:
    aws = Aws(make_session("us-east-1"))
    assert aws.sagemaker is aws.sagemaker
    assert aws.sagemaker_teardown is not aws.sagemaker
    assert aws.sagemaker_teardown.meta.config.retries == TEARDOWN_CONFIG.retries
    assert aws.runtime.meta.config.retries == INVOKE_CONFIG.retries  # one attempt: one request, one invocation
    assert aws.s3.meta.config.retries == RETRY_CONFIG.retries


def test_the_plain_json_loader_reads_what_botocores_own_loader_reads() -> None:
    """The loader the sessions share parses botocore's model files (gzipped or not) to the same data as botocore's
    own loader, as plain dicts; a name with no file is None, as botocore's loader answers."""
    import botocore.loaders

    data = Path(botocore.loaders.__file__).parent / "data"
    names = [
        data / "sagemaker" / "2017-07-24" / "service-2",  # gzipped in the wheel
        data / "endpoints",
        data / "sts" / "2011-06-15" / "endpoint-rule-set-1",
    ]
    for name in names:
        plain = PlainJSONFileLoader().load_file(str(name))
        assert type(plain) is dict and plain == botocore.loaders.JSONFileLoader().load_file(str(name)), name
    assert PlainJSONFileLoader().load_file(str(data / "no-such-file")) is None
    session = make_session("us-east-1")
    assert isinstance(session.core.get_component("data_loader").file_loader, PlainJSONFileLoader)
    assert session.client("sagemaker").meta.service_model.operation_model("DescribeEndpoint").name == "DescribeEndpoint"


# -- only the adapter makes clients -----------------------------------------------------------------------------------


def clients_outside_the_adapter(package: Path) -> list[str]:
    """``path:line`` of every call in ``package`` but ``aws.py`` that makes a boto3 client or resource itself:
    ``<anything>.client(...)`` / ``.resource(...)`` (``session.client``, ``boto3.client``) or a bare ``client(...)``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel == "aws.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("client", "resource"):
                found.append(f"{rel}:{node.lineno}")
    return found


def test_only_the_aws_adapter_makes_clients() -> None:
    assert clients_outside_the_adapter(ROOT / "scripts" / "smgitops") == []


@pytest.mark.parametrize(
    "line",
    [
        'session.client("sagemaker")',
        'boto3.client("s3", region_name="us-east-1")',
        'boto3.resource("s3")',
        'client(session, "cloudwatch")',
    ],
)
def test_a_stage_making_its_own_client_is_found(tmp_path: Path, line: str) -> None:
    package = tmp_path / "smgitops"
    (package / "commands").mkdir(parents=True)
    body = f"def _f(session, boto3, client):\n    return {line}\n"
    (package / "aws.py").write_text(body)  # the adapter may
    (package / "commands" / "stage.py").write_text(body)
    (package / "quiet.py").write_text('HELP = "the sagemaker client"\naws.sagemaker.list_endpoints()\n')
    assert clients_outside_the_adapter(package) == ["commands/stage.py:2"]


def test_a_silent_endpoint_is_waited_on_five_seconds_three_times_unless_the_environment_shortens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented bound (a silent endpoint fails within 3 x 5 s + backoff; the check before Terraform waits 4 s a
    try); ``SMGITOPS_AWS_READ_TIMEOUT`` shortens it (the silent-endpoint tests use 1 s) and never lengthens it."""
    assert (READ_TIMEOUT, MAX_ATTEMPTS) == (5, 3)
    monkeypatch.delenv(READ_TIMEOUT_ENV, raising=False)
    aws = Aws(make_session("us-east-1"))
    assert aws.sagemaker.meta.config.read_timeout == 5
    assert aws.sagemaker.meta.config.retries["total_max_attempts"] == 3
    assert aws.sts_preflight.meta.config.read_timeout == 4
    monkeypatch.setenv(READ_TIMEOUT_ENV, "1")
    short = Aws(make_session("us-east-1"))
    assert short.sagemaker.meta.config.read_timeout == 1 and short.sts_preflight.meta.config.read_timeout == 1
    assert short.sagemaker.meta.config.retries["total_max_attempts"] == 3
    monkeypatch.setenv(READ_TIMEOUT_ENV, "600")
    assert Aws(make_session("us-east-1")).sagemaker.meta.config.read_timeout == 5
    monkeypatch.setenv(READ_TIMEOUT_ENV, "soon")
    with pytest.raises(UserError, match=f"{READ_TIMEOUT_ENV}='soon'"):
        Aws(make_session("us-east-1")).client("sagemaker")
