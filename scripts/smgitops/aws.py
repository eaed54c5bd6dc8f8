"""The AWS adapter: every AWS client smgitops makes, typed, from one injected session (:class:`Aws`).

botocore honours ``AWS_ENDPOINT_URL`` (and ``AWS_CA_BUNDLE``) by itself, so every command can target the local
emulator without code of its own. A command makes one session (:func:`make_session`) and one :class:`Aws` from it
(its :class:`smgitops.context.Context` does); the stages take their clients from that, never from a session of
their own. SageMaker's "not found" is translated here and only here (:meth:`Aws.describe_endpoint` and friends
return None, :meth:`Aws.absent_as_none` for any other call). tests/test_aws.py fails when another module makes a
client itself.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.hooks import HierarchicalEmitter
from botocore.loaders import JSONFileLoader, Loader

from .clock import Sleep, real_sleep
from .errors import ExternalError, UserError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sts import STSClient

T = TypeVar("T")

# Every client's bounds. An endpoint that refuses connections fails after MAX_ATTEMPTS tries and botocore's
# standard-mode backoff (random, at most 1 s then 2 s); one that accepts connections and never answers after
# MAX_ATTEMPTS * READ_TIMEOUT + 3 s, i.e. at most 18 s; a black-holed address after MAX_ATTEMPTS * CONNECT_TIMEOUT
# + 3 s. The first such failure ends the command (the CLI prints one line), so a command never waits longer.
# The control-plane calls smgitops makes (describe, head, put of a model archive, metric queries) answer in well
# under a second; throttling is retried with the same budget. (``total_max_attempts`` counts the first try;
# botocore's ``max_attempts`` would not.)
CONNECT_TIMEOUT = 4
READ_TIMEOUT = 5
MAX_ATTEMPTS = 3
RETRY_CONFIG = Config(
    retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
)
# The reachability check before Terraform starts (smgitops.envfaults.preflight): two tries of 4 s at most each.
PREFLIGHT_CONFIG = RETRY_CONFIG.merge(Config(retries={"total_max_attempts": 2, "mode": "standard"}, read_timeout=4))
# SageMaker runtime: a model may take up to 60 s to answer, and each request must be exactly one invocation.
INVOKE_CONFIG = RETRY_CONFIG.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=70))


# Teardown's sweep: bounded concurrency (TEARDOWN_WORKERS requests in flight, a pooled connection each) and
# botocore's adaptive mode, which also slows the client down when SageMaker throttles (client-side rate limiting).
TEARDOWN_WORKERS = 8
TEARDOWN_CONFIG = RETRY_CONFIG.merge(
    Config(
        retries={"total_max_attempts": 5, "mode": "adaptive"},
        max_pool_connections=TEARDOWN_WORKERS,
    )
)


# ``SMGITOPS_AWS_READ_TIMEOUT`` (seconds) shortens every client's read timeout, never lengthens it: the tests prove
# the bounds above (the attempts, the retries, the one-line error) against a silent endpoint without waiting the
# full 18 s for it. Unset, the bounds are the ones above.
READ_TIMEOUT_ENV = "SMGITOPS_AWS_READ_TIMEOUT"


def with_read_timeout_from_env(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """``config`` with its read timeout shortened to ``SMGITOPS_AWS_READ_TIMEOUT`` when that is set and shorter."""
    value = (os.environ if environ is None else environ).get(READ_TIMEOUT_ENV, "").strip()
    if not value:
        return config
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"{READ_TIMEOUT_ENV}={value!r}: give the seconds to wait for an answer, e.g. 5 or 0.5")
    current: float = config.read_timeout  # type: ignore[attr-defined]  # botocore-stubs declare no option attributes
    return config.merge(Config(read_timeout=min(seconds, current)))


_LOADER: Loader | None = None
_BUILTIN_EVENTS: HierarchicalEmitter | None = None


def _builtin_events() -> HierarchicalEmitter:
    """An event emitter holding botocore's built-in handlers, for one session: a copy of one registered once per
    process. Registering them checks each handler's signature (about 150 handlers, 10 ms of every session); a copy
    is what botocore itself gives each client of a session. The original is never registered on after this."""
    global _BUILTIN_EVENTS
    if _BUILTIN_EVENTS is None:
        events = HierarchicalEmitter()
        botocore.session.Session(event_hooks=events)  # registers the built-in handlers on ``events``
        _BUILTIN_EVENTS = events
    return copy.copy(_BUILTIN_EVENTS)


class PlainJSONFileLoader(JSONFileLoader):
    """botocore's model files (``NAME.json`` or ``NAME.json.gz``) parsed into plain dicts. botocore's own loader
    parses them with ``object_pairs_hook=OrderedDict``, four to five times slower: SageMaker's model (2.6 MB of
    JSON) took about 0.09 s instead of 0.02 s, in every command that makes a SageMaker client. A dict keeps the
    file's order as an OrderedDict does; botocore reads the data, it never reorders it."""

    _OPENERS: tuple[tuple[str, Callable[[str], Any]], ...] = (
        (".json", lambda path: open(path, "rb")),  # noqa: SIM115 - closed by the with below
        (".json.gz", lambda path: gzip.open(path, "rb")),
    )

    def load_file(self, file_path: str) -> Any:
        for ext, opener in self._OPENERS:
            if os.path.isfile(file_path + ext):
                with opener(file_path + ext) as fp:
                    return json.loads(fp.read())
        return None


class Session:
    """A botocore session and its region: the clients of one command. botocore alone, not boto3's session around
    it: boto3's import loads s3transfer (about 0.1 s of every command), and smgitops uses none of what boto3 adds
    (resources, managed transfers)."""

    def __init__(self, core: botocore.session.Session, region_name: str) -> None:
        self.core = core
        self.region_name = region_name

    @property
    def events(self) -> HierarchicalEmitter:
        """The session's event emitter (every client of the session copies it when made)."""
        return cast(HierarchicalEmitter, self.core.get_component("event_emitter"))

    def client(
        self,
        service: str,
        config: Config | None = None,
        endpoint_url: str | None = None,
        verify: bool | str | None = None,
    ) -> Any:
        """A client of ``service`` in the session's region (``endpoint_url`` and ``verify``, the CA bundle or
        False, default to what the environment says, as boto3's would)."""
        return self.core.create_client(
            service, region_name=self.region_name, config=config, endpoint_url=endpoint_url, verify=verify
        )


def make_session(region: str) -> Session:
    """A session of its own (credentials, region, event handlers), sharing the process's botocore data loader: the
    loader caches what it parses (the endpoint rules, each service's model: JSON of megabytes), so a later
    session's clients cost milliseconds instead of about 0.1 s each. What it loads is read-only and the same for
    every session; it parses with :class:`PlainJSONFileLoader`. Its emitter starts as a copy of botocore's
    built-in handlers (:func:`_builtin_events`)."""
    global _LOADER
    core = botocore.session.Session(event_hooks=_builtin_events(), include_builtin_handlers=False)
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")  # honours AWS_DATA_PATH as botocore does
        _LOADER.file_loader = PlainJSONFileLoader()
    else:
        core.register_component("data_loader", _LOADER)
    return Session(core, region)


def is_not_found(exc: Any) -> bool:
    """SageMaker reports a missing endpoint, configuration or model as a ValidationException whose message says
    "Could not find ..." (or "... does not exist"); any other error (throttling, access denied) is not an absence."""
    err = getattr(exc, "response", {}).get("Error", {})
    message = str(err.get("Message", "")).lower()
    return err.get("Code") == "ValidationException" and ("could not find" in message or "does not exist" in message)


# Which client each name of :class:`Aws` is: (service, its bounds). One client per name and adapter.
_CLIENTS: dict[str, tuple[str, Config]] = {
    "sagemaker": ("sagemaker", RETRY_CONFIG),
    "sagemaker_teardown": ("sagemaker", TEARDOWN_CONFIG),
    "sagemaker_runtime": ("sagemaker-runtime", INVOKE_CONFIG),
    "s3": ("s3", RETRY_CONFIG),
    "cloudwatch": ("cloudwatch", RETRY_CONFIG),
    "dynamodb": ("dynamodb", RETRY_CONFIG),
    "kms": ("kms", RETRY_CONFIG),
    "iam": ("iam", RETRY_CONFIG),
    "sts_preflight": ("sts", PREFLIGHT_CONFIG),
}


class Aws:
    """Every AWS client smgitops uses, from one injected session (:func:`make_session`): typed, made on first use,
    each once (with the project's bounds and retry policy: botocore's standard mode, backoff with jitter, throttling
    aware), and the few SageMaker reads whose "not found" is an answer, not an error.

    ``sleep`` is the one waits on AWS use (an endpoint's transition); ``clients`` replaces clients by name (a
    botocore ``Stubber``'s client, in tests)."""

    def __init__(
        self,
        session: Session | None,
        *,
        sleep: Sleep = real_sleep,
        clients: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.sleep = sleep
        self._clients: dict[str, Any] = dict(clients or {})
        self._lock = threading.Lock()  # creating clients of one session from two threads at once is not safe

    @classmethod
    def for_region(cls, region: str, *, sleep: Sleep = real_sleep) -> Aws:
        """An adapter on a session of its own (:func:`make_session`)."""
        return cls(make_session(region), sleep=sleep)

    def client(self, name: str) -> Any:
        """The client called ``name`` (a key of :data:`_CLIENTS`), made on first use."""
        found = self._clients.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._clients:
                service, config = _CLIENTS[name]
                if self.session is None:
                    raise ExternalError(f"no AWS session to make a {service} client with")
                config = with_read_timeout_from_env(config)
                self._clients[name] = self.session.client(service, config=config)
            return self._clients[name]

    @property
    def sagemaker(self) -> SageMakerClient:
        return cast("SageMakerClient", self.client("sagemaker"))

    @property
    def sagemaker_teardown(self) -> SageMakerClient:
        """SageMaker for teardown's sweep: bounded concurrency, adaptive retries (:data:`TEARDOWN_CONFIG`)."""
        return cast("SageMakerClient", self.client("sagemaker_teardown"))

    @property
    def runtime(self) -> SageMakerRuntimeClient:
        """The SageMaker runtime: one attempt per request, so that every request is exactly one invocation."""
        return cast("SageMakerRuntimeClient", self.client("sagemaker_runtime"))

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", self.client("s3"))

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return cast("CloudWatchClient", self.client("cloudwatch"))

    @property
    def dynamodb(self) -> DynamoDBClient:
        return cast("DynamoDBClient", self.client("dynamodb"))

    @property
    def kms(self) -> Any:  # no mypy_boto3_kms stubs installed
        return self.client("kms")

    @property
    def iam(self) -> IAMClient:
        return cast("IAMClient", self.client("iam"))

    @property
    def sts_preflight(self) -> STSClient:
        """STS for the reachability check before Terraform starts (:data:`PREFLIGHT_CONFIG`)."""
        return cast("STSClient", self.client("sts_preflight"))

    # -- SageMaker's "not found", translated once ----------------------------------------------------------------

    @staticmethod
    def absent_as_none(call: Callable[[], T]) -> T | None:
        """``call()``, or None when SageMaker says what it names does not exist (:func:`is_not_found`); any other
        error is raised as it came."""
        try:
            return call()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def _describe(self, op: str, call: Callable[[], Any]) -> dict[str, Any] | None:
        try:
            found = self.absent_as_none(call)
        except ClientError as exc:
            raise ExternalError(f"SageMaker {op}: {exc}") from exc
        return None if found is None else dict(found)

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        """The endpoint's description; None when there is no such endpoint (ExternalError on any other error)."""
        return self._describe("describe_endpoint", lambda: self.sagemaker.describe_endpoint(EndpointName=name))

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe(
            "describe_endpoint_config", lambda: self.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        )

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_model", lambda: self.sagemaker.describe_model(ModelName=name))
