"""Emulator fixtures: the local AWS emulator (moto's server + smgitops extensions) in a child process.

* ``emulator_server`` (session): one HTTPS emulator for the whole run, on a free port.
* ``emulator`` (function): the session emulator, reset (moto state, faults, delays, clock), with the test's
  environment pointed at it (AWS_ENDPOINT_URL, AWS_CA_BUNDLE, SSL_CERT_FILE, dummy credentials, us-east-1).
* ``emulator_admin`` (function): an ``AdminClient`` for it.
* ``start_emulator(...)``: a context manager for a private emulator (long Terraform journeys, module fixtures).

The server runs in a child process, so ``mock_aws()`` unit tests in this pytest process neither see nor wipe
its state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smgitops.emulator.admin import AdminClient
from smgitops.emulator.server import Emulator


@contextmanager
def start_emulator(tls: bool = True, tls_dir: Path | None = None) -> Iterator[Emulator]:
    """A private emulator on a free port, stopped on exit."""
    server = Emulator(tls=tls, tls_dir=tls_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    with start_emulator() as server:
        yield server


@pytest.fixture()
def emulator(emulator_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    emulator_server.admin.reset()
    for key, value in emulator_server.env().items():
        monkeypatch.setenv(key, value)
    yield emulator_server


@pytest.fixture()
def emulator_admin(emulator: Emulator) -> AdminClient:
    admin: AdminClient = emulator.admin
    return admin
