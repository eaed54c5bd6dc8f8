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


def _handler(access_log: bool) -> Any:
    from smgitops.emulator.server import request_handler

    cls = request_handler(access_log)
    handler = cls.__new__(cls)  # only its logging is used: no connection
    handler.command, handler.path, handler.request_version = "GET", "/_smgitops/health", "HTTP/1.1"
    handler.requestline, handler.client_address = "GET /_smgitops/health HTTP/1.1", ("127.0.0.1", 4711)
    return handler


def test_without_the_access_log_only_server_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="werkzeug")
    quiet = _handler(access_log=False)
    for code in (200, 404, 403):
        quiet.log_request(code)
    assert not [r for r in caplog.records if "/_smgitops/health" in r.getMessage()]
    quiet.log_request(500)
    assert [r for r in caplog.records if "/_smgitops/health" in r.getMessage()]
    caplog.clear()
    _handler(access_log=True).log_request(200)  # the foreground command logs every request
    assert [r for r in caplog.records if "/_smgitops/health" in r.getMessage()]


def test_the_emulator_child_logs_no_line_per_request(emulator_server: Any) -> None:
    """The session's emulator is an :class:`Emulator` child like any other (no private one started for this)."""
    assert emulator_server.admin.health()
    assert emulator_server.log_path is not None
    assert "/_smgitops/health" not in emulator_server.log_path.read_text()
