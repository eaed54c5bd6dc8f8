"""The emulator's host dispatcher remembers which moto backend serves a host, and answers as moto does."""

from __future__ import annotations

from typing import Any

import pytest

HOSTS = [
    None,
    "moto_api",
    "s3",
    "dynamodb",
    "s3.us-east-1.amazonaws.com",
    "api.sagemaker.us-east-1.amazonaws.com",
    "runtime.sagemaker.us-east-1.amazonaws.com",
    "kms.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "iam.amazonaws.com",
    "monitoring.us-east-1.amazonaws.com",
    "no-such-service.example.invalid",
]


def test_the_memoizing_dispatcher_answers_as_moto_does_and_lists_moto_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from smgitops.emulator.server import memoizing_dispatcher

    plain = DomainDispatcherApplication(create_backend_app)
    expected = {host: plain.get_backend_for_host(host) for host in HOSTS}

    listings = []
    original = backends.list_of_moto_modules

    def counting() -> Any:
        listings.append(1)
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", counting)
    dispatcher = memoizing_dispatcher()
    first = {host: dispatcher.get_backend_for_host(host) for host in HOSTS}
    listed = len(listings)
    again = {host: dispatcher.get_backend_for_host(host) for host in HOSTS}
    assert first == expected and again == expected
    assert expected["api.sagemaker.us-east-1.amazonaws.com"] == "sagemaker"  # moto still knows its services
    assert listed > 0 and len(listings) == listed  # the second round asked moto nothing
