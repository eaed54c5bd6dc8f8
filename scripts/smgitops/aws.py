"""Small helpers shared by the typed AWS wrappers of each stage.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_CA_BUNDLE``) by itself, so every command can target the local
emulator without code of its own. Sessions are injected into the wrappers, never created deep inside them.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

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


_LOADER: Loader | None = None


def make_session(region: str) -> boto3.session.Session:
    """A session of its own (credentials, region), sharing the process's botocore data loader: the loader caches
    what it parses (the endpoint rules, each service's model: JSON of megabytes), so a later session's clients cost
    milliseconds instead of about 0.1 s each. What it loads is read-only and the same for every session."""
    global _LOADER
    core = botocore.session.Session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")  # honours AWS_DATA_PATH as botocore does
    else:
        core.register_component("data_loader", _LOADER)
    session = boto3.session.Session(botocore_session=core, region_name=region)
    # boto3 adds its own data directory to the loader's search path on every session: once is enough.
    search = _LOADER.search_paths
    search[:] = list(dict.fromkeys(search))
    return session


def client(session: boto3.session.Session, service: str, config: Config = RETRY_CONFIG) -> Any:
    """A client with the project's bounds and retry policy (botocore's standard mode: backoff with jitter,
    throttling aware). Every client smgitops makes comes from here."""
    return session.client(service, config=config)  # type: ignore[call-overload]


def is_not_found(exc: Any) -> bool:
    """SageMaker reports a missing endpoint, configuration or model as a ValidationException whose message says
    "Could not find ..." (or "... does not exist"); any other error (throttling, access denied) is not an absence."""
    err = getattr(exc, "response", {}).get("Error", {})
    message = str(err.get("Message", "")).lower()
    return err.get("Code") == "ValidationException" and ("could not find" in message or "does not exist" in message)
