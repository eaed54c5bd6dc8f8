"""Small helpers shared by the typed AWS wrappers of each stage.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_CA_BUNDLE``) by itself, so every command can target the local
emulator without code of its own. Sessions are injected into the wrappers, never created deep inside them.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=70)


def make_session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(session: boto3.session.Session, service: str) -> Any:
    """A client with the project's retry policy (botocore's standard mode: backoff with jitter, throttling aware)."""
    return session.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


def is_not_found(exc: Any) -> bool:
    """SageMaker reports a missing endpoint, configuration or model as a ValidationException whose message says
    "Could not find ..." (or "... does not exist"); any other error (throttling, access denied) is not an absence."""
    err = getattr(exc, "response", {}).get("Error", {})
    message = str(err.get("Message", "")).lower()
    return err.get("Code") == "ValidationException" and ("could not find" in message or "does not exist" in message)
